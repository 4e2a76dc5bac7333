// torgw serial parse LOG [--json]: what the marker parser sees in a scraped log.
// torgw serial watch LOG|- [--until KEY] [--timeout S] [--json] [--verify [--verify-arg A]...]:
// follows a growing log (a file being appended to, or a pipe from the cloud's serial
// tail) until the newest boot is READY (exit 0), FATAL (1), --timeout passes (3) or the
// input ends first (4); docs/cli.md "serial watch".
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "serial/serial.h"

namespace torgw::cli {

namespace {

nlohmann::json boot_json(const serial::Boot& b) {
  nlohmann::json j;
  j["boot_id"] = b.boot_id;
  j["end"] = serial::to_string(b.end);
  j["complete"] = b.complete();
  j["marker_version"] = b.marker_version;
  j["values"] = b.values;
  j["problems"] = b.problems;
  auto& ms = j["markers"] = nlohmann::json::array();
  for (const auto& m : b.markers) ms.push_back({{"key", m.key}, {"value", m.value}, {"line", m.line}});
  return j;
}

int parse_command(const std::string& path, bool json) {
  std::string data;
  if (!read_input_file(path, data, serial::kMaxLogBytes)) return kExitUsage;
  auto log = serial::parse_log(data);
  if (!log) {
    std::fprintf(stderr, "torgw: %s: %s\n", path.c_str(), log.error().to_string().c_str());
    return kExitUsage;
  }
  const serial::Boot* last = serial::last_complete_boot(*log);
  if (json) {
    nlohmann::json j;
    j["lines"] = log->lines;
    j["marker_lines"] = log->marker_lines;
    j["problems"] = log->problems;
    auto& boots = j["boots"] = nlohmann::json::array();
    int last_index = -1;
    for (std::size_t i = 0; i < log->boots.size(); ++i) {
      boots.push_back(boot_json(log->boots[i]));
      if (&log->boots[i] == last) last_index = static_cast<int>(i);
    }
    j["last_complete_boot"] = last_index < 0 ? nlohmann::json(nullptr) : nlohmann::json(last_index);
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("%zu lines, %zu marker lines, %zu boots\n", log->lines, log->marker_lines, log->boots.size());
    for (const auto& p : log->problems) std::printf("  problem: %s\n", p.c_str());
    for (const auto& b : log->boots) {
      std::printf("boot %s: %s%s, %zu markers\n", b.boot_id.c_str(), serial::to_string(b.end),
                  b.complete() ? "" : " (not complete)", b.markers.size());
      for (const auto& p : b.problems) std::printf("  problem: %s\n", p.c_str());
    }
    if (last) {
      std::printf("last complete boot: %s\n", last->boot_id.c_str());
      for (const auto& [k, v] : last->values)
        std::printf("  %s=%s\n", k.c_str(), v.size() > 80 ? (v.substr(0, 77) + "...").c_str() : v.c_str());
    } else {
      std::printf("no complete boot\n");
    }
  }
  return last ? kExitOk : kExitInvalid;
}

// ---- serial watch -------------------------------------------------------------------

struct WatchArgs {
  std::string input;   // a path, or "-" for stdin
  std::string until;   // a marker key to wait for instead of READY
  double timeout = 0;  // seconds; 0: none
  bool json = false;
  bool verify = false;
  std::vector<std::string> verify_args;
};

enum class Outcome { Waiting, Ready, Fatal, Damaged, Timeout, Ended };
constexpr const char* kOutcomeNames[] = {"waiting", "ready", "fatal", "damaged", "timeout", "ended"};
constexpr int kOutcomeExit[] = {kExitUsage, kExitOk, kExitInvalid, kExitInvalid, kExitTimeout, kExitInputEnded};

// Where the newest boot stands: still waiting, or one of the endings.
Outcome judge(const serial::WatchProgress& p, const WatchArgs& a) {
  if (!p.have_boot) return Outcome::Waiting;
  if (p.boot.end == serial::BootEnd::Fatal) return Outcome::Fatal;
  const bool ready = p.boot.end == serial::BootEnd::Ready;
  // READY with damaged markers (a chunk missing, a bad MARKER_VERSION) will not heal:
  // the boot has said its last word.
  if (ready && !p.boot.complete()) return Outcome::Damaged;
  const bool until_met = a.until.empty() ? ready : p.boot.get(a.until) != nullptr;
  // --verify needs the whole boot (the report comes before READY, verify wants READY).
  return until_met && (!a.verify || ready) ? Outcome::Ready : Outcome::Waiting;
}

// Where the boot stands, without the time: "boot 0123abcd stage TOR_BOOTSTRAP tor 45%".
std::string progress_text(const serial::WatchProgress& p) {
  if (!p.have_boot) return "waiting for a boot (BOOT_ID)";
  return "boot " + p.boot.boot_id.substr(0, 8) + " stage " + (p.stage.empty() ? "-" : p.stage) + " tor " +
         (p.tor_bootstrap < 0 ? "-" : std::to_string(p.tor_bootstrap) + "%");
}

// The one-line reason of an ending (stdout in text mode, "reason" in --json).
std::string outcome_reason(Outcome o, const serial::WatchProgress& p, const serial::WatchState& s, const WatchArgs& a) {
  const std::string noise = s.binary_bytes == 0 ? ""
                                                : " (" + std::to_string(s.binary_bytes) +
                                                      " non-text bytes: is this a serial console log?)";
  switch (o) {
    case Outcome::Ready: return a.until.empty() ? "READY=true" : a.until + "=" + *p.boot.get(a.until);
    case Outcome::Fatal: return "FATAL=" + *p.boot.get("FATAL");
    case Outcome::Damaged: return "serial.watch.damaged: READY but " + p.boot.problems.front();
    case Outcome::Timeout:
      return "serial.watch.timeout: " +
             (p.have_boot ? "boot " + p.boot.boot_id + " still at " + (p.stage.empty() ? "-" : p.stage)
                          : "no boot seen in " + std::to_string(s.lines) + " lines") +
             noise;
    case Outcome::Ended:
      return "serial.watch.ended: input ended " +
             (p.have_boot ? "with boot " + p.boot.boot_id + " at " + p.stage
                          : "before any boot (" + std::to_string(s.lines) + " lines)") +
             noise;
    case Outcome::Waiting: break;
  }
  return "";
}

// Runs `torgw verify` (this very binary) on the boot's markers; with `capture`, its
// stdout is returned through `out`. Returns verify's exit status.
int run_verify(const serial::WatchState& s, const WatchArgs& a, bool capture, std::string& out) {
  char path[] = "/tmp/torgw-watch-XXXXXX";
  const int tfd = ::mkstemp(path);
  if (tfd < 0) {
    std::perror("torgw serial watch: temporary log");
    return kExitUsage;
  }
  std::unique_ptr<char, void (*)(char*)> unlink_guard(path, [](char* p) { ::unlink(p); });
  const std::string& text = s.boot_markers;
  for (std::size_t off = 0; off < text.size();) {
    ssize_t n = ::write(tfd, text.data() + off, text.size() - off);
    if (n <= 0) {
      ::close(tfd);
      std::perror("torgw serial watch: temporary log");
      return kExitUsage;
    }
    off += static_cast<std::size_t>(n);
  }
  ::close(tfd);
  std::vector<std::string> args = {"torgw", "verify", path};
  if (capture) args.push_back("--json");
  args.insert(args.end(), a.verify_args.begin(), a.verify_args.end());
  std::vector<char*> argv;
  for (auto& x : args) argv.push_back(x.data());
  argv.push_back(nullptr);
  int pipefd[2] = {-1, -1};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (capture) {
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return kExitUsage;
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  }
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (capture) ::close(pipefd[1]);
  if (rc != 0) {
    if (capture) ::close(pipefd[0]);
    std::fprintf(stderr, "torgw serial watch: cannot run torgw verify: %s\n", std::strerror(rc));
    return kExitUsage;
  }
  if (capture) {
    char buf[65536];
    ssize_t n;
    while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    ::close(pipefd[0]);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : kExitUsage;
}

int watch_command(const WatchArgs& a) {
  using Clock = std::chrono::steady_clock;
  const bool from_stdin = a.input == "-";
  const int fd = from_stdin ? 0 : ::open(a.input.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::fprintf(stderr, "torgw: %s: cannot open\n", a.input.c_str());
    return kExitUsage;
  }
  std::unique_ptr<const int, void (*)(const int*)> closer(from_stdin ? nullptr : &fd, [](const int* f) {
    if (f) ::close(*f);
  });
  struct stat st {};
  const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);  // follow it as it grows
  const bool tty = ::isatty(2) == 1;
  const auto start = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  serial::WatchState state;
  serial::WatchProgress progress;
  std::string shown;
  std::size_t fed = 0;  // bytes of a regular file already read (to notice truncation)
  Outcome outcome = Outcome::Waiting;
  bool changed = true, ended = false;
  char buf[65536];
  for (;;) {
    if (changed) {
      progress = serial::watch_progress(state);
      outcome = judge(progress, a);
      changed = false;
    }
    if (outcome == Outcome::Waiting && ended) outcome = Outcome::Ended;
    if (outcome == Outcome::Waiting && a.timeout > 0 && elapsed() >= a.timeout) outcome = Outcome::Timeout;
    // A terminal redraws one line in place (the time moves on); a log gets a plain line
    // only when the boot moved on.
    const std::string text = progress_text(progress);
    if (tty) {
      std::fprintf(stderr, "\r\033[K%4.0fs %s", elapsed(), text.c_str());
    } else if (text != shown) {
      std::fprintf(stderr, "serial watch: %.0fs %s\n", elapsed(), text.c_str());
      shown = text;
    }
    if (outcome != Outcome::Waiting) break;
    const double left = a.timeout > 0 ? a.timeout - elapsed() : 1.0;
    const int wait_ms = static_cast<int>(std::max(0.0, std::min(0.25, left)) * 1000) + 1;
    if (regular) {
      ::fstat(fd, &st);
      if (static_cast<std::size_t>(st.st_size) < fed) {  // truncated or replaced: start over
        ::lseek(fd, 0, SEEK_SET);
        fed = 0;
        state = serial::WatchState{};
        changed = true;
      }
    } else {
      pollfd pfd{fd, POLLIN, 0};
      if (::poll(&pfd, 1, wait_ms) <= 0) continue;
    }
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      serial::watch_feed(state, std::string_view(buf, static_cast<std::size_t>(n)));
      fed += static_cast<std::size_t>(n);
      changed = true;
    } else if (n == 0 && regular) {
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      ended = true;
    }
  }
  if (tty) std::fputs("\n", stderr);
  const std::string reason = outcome_reason(outcome, progress, state, a);
  int code = kOutcomeExit[static_cast<int>(outcome)];
  nlohmann::json verify_json = nullptr;
  if (a.verify && outcome == Outcome::Ready) {
    std::string out;
    if (!a.json) std::printf("%s\n", reason.c_str());
    std::fflush(stdout);
    code = run_verify(state, a, a.json, out);
    if (a.json) verify_json = nlohmann::json::parse(out, nullptr, false);
    if (a.json && verify_json.is_discarded()) verify_json = nullptr;
  } else if (!a.json) {
    std::printf("%s\n", reason.c_str());
  }
  if (a.json) {
    nlohmann::json j = {{"outcome", kOutcomeNames[static_cast<int>(outcome)]},
                        {"reason", reason},
                        {"exit_code", code},
                        {"elapsed_seconds", elapsed()},
                        {"lines", state.lines},
                        {"boots_seen", state.boots},
                        {"non_text_bytes", state.binary_bytes},
                        {"boot", progress.have_boot ? boot_json(progress.boot) : nlohmann::json(nullptr)},
                        {"tor_bootstrap", progress.tor_bootstrap < 0 ? nlohmann::json(nullptr)
                                                                     : nlohmann::json(progress.tor_bootstrap)}};
    if (a.verify) j["verify"] = verify_json;
    std::cout << j.dump(2) << "\n";
  }
  return code;
}

}  // namespace

void register_serial(CLI::App& app, Action& selected) {
  auto* serial_cmd = app.add_subcommand("serial", "Serial console logs (markers)");
  serial_cmd->require_subcommand(1);
  auto* parse = serial_cmd->add_subcommand("parse",
                                           "Parse a scraped serial log; exit 0 if it holds a complete boot, 1 if not");
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  parse->add_option("LOG", *path, "Scraped serial console log")->required();
  parse->add_flag("--json", *json, "Machine-readable output");
  parse->callback([&selected, path, json] { selected = [path, json] { return parse_command(*path, *json); }; });

  auto w = std::make_shared<WatchArgs>();
  auto* watch = serial_cmd->add_subcommand(
      "watch", "Follow a growing serial log (a file, or - for stdin) until the newest boot is READY. "
               "Exit 0 READY (or --until KEY), 1 FATAL (prints the reason), 2 usage/unreadable input, "
               "3 --timeout passed, 4 the input ended first");
  watch->add_option("LOG", w->input, "The log file being written, or - for stdin")->required();
  watch->add_option("--until", w->until, "Wait for this marker key instead of READY (e.g. DESCRIPTOR_PUBLISHED)")
      ->check([](const std::string& k) { return serial::valid_key(k) ? std::string() : "not a marker key: " + k; });
  watch->add_option("--timeout", w->timeout, "Give up after this many seconds (exit 3); 0: wait forever")
      ->check(CLI::Range(0.0, 1e9));
  watch->add_flag("--json", w->json, "Print the outcome and the newest boot (as serial parse --json) as JSON");
  auto* verify = watch->add_flag("--verify", w->verify,
                                 "Once READY, run torgw verify on the boot; its exit code becomes watch's");
  watch
      ->add_option("--verify-arg", w->verify_args,
                   "An argument for torgw verify (repeatable), e.g. --verify-arg=--vcek")
      ->needs(verify)
      ->allow_extra_args(false);
  watch->callback([&selected, w] { selected = [w] { return watch_command(*w); }; });
}

}  // namespace torgw::cli
