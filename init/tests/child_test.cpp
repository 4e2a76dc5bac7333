// Child supervision against real processes on the real event loop: spawning, privilege
// drop, restart with backoff, giving up, ordered stop with SIGKILL after the deadline,
// and reaping orphans.
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "common/bytes.h"
#include "init/child.h"
#include "init/loop.h"
#include "tests/support/process.h"
#include "tests/support/result_matchers.h"
#include "tests/support/tempdir.h"

using namespace torgw;
using namespace torgw::init;
using namespace std::chrono_literals;
using torgw::testing::FailsWith;
using torgw::testing::Succeeds;

namespace {

std::string sh() { return torgw::testing::find_program("sh"); }

ChildSpec shell(const std::string& name, const std::string& script) {
  ChildSpec s;
  s.name = name;
  s.argv = {sh(), "-c", script};
  s.env = {"PATH=/usr/bin:/bin"};
  s.backoff_initial = 50ms;
  s.backoff_max = 200ms;
  s.stable_after = 10s;
  s.stop_timeout = 5s;
  return s;
}

// Runs the loop until pred() or the deadline (generous: the machine is shared).
bool run_until(EventLoop& loop, std::function<bool()> pred, std::chrono::milliseconds limit = 30s) {
  bool hit = false;
  Timer deadline(loop), poll(loop);
  deadline.start(limit, [&] { loop.stop(); });
  poll.start(
      10ms,
      [&] {
        if (pred()) {
          hit = true;
          loop.stop();
        }
      },
      true);
  if (pred()) return true;
  loop.run();
  return hit;
}

}  // namespace

TEST_CASE("spawn: exec failures come back as errors, the child already reaped") {
  ChildSpec s;
  s.name = "missing";
  s.argv = {"/nonexistent/binary"};
  auto r = spawn(s);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r, FailsWith("spawn.exec_failed"));
  CHECK(r.error().detail.find("/nonexistent/binary") != std::string::npos);
  s.argv = {"relative"};
  CHECK_THAT(spawn(s), FailsWith("spawn.bad_argv"));
  s.argv = {sh(), "-c", "true"};
  s.cwd = "/nonexistent-dir";
  CHECK_THAT(spawn(s), FailsWith("spawn.chdir_failed"));
  errno = 0;
  CHECK(waitpid(-1, nullptr, WNOHANG) <= 0);
}

TEST_CASE("spawn: clean environment, no inherited fds, own session, no_new_privs") {
  torgw::testing::TempDir dir("spawn");
  int leak = ::open("/dev/null", O_RDONLY);  // not CLOEXEC: spawn must close it anyway
  REQUIRE(leak >= 0);
  const std::string out_path = dir.file("out");
  ChildSpec s = shell("probe", "{ echo env=$(env | grep -c .); echo fds=$(ls /proc/self/fd | wc -l); "
                               "grep NoNewPrivs /proc/self/status; echo sid=$(cut -d' ' -f6 /proc/$$/stat); "
                               "echo pid=$$; } > " +
                                   out_path);
  auto pid = spawn(s);
  REQUIRE(pid.ok());
  int st;
  REQUIRE(waitpid(*pid, &st, 0) == *pid);
  ::close(leak);
  auto out = torgw::testing::read_file(out_path);
  INFO(out);
  auto field = [&](const std::string& k) {
    auto p = out.find(k + "=");
    return p == std::string::npos ? std::string() : out.substr(p + k.size() + 1, out.find('\n', p) - p - k.size() - 1);
  };
  // PATH plus what the shell itself exports (PWD).
  CHECK(std::stoi(field("env")) <= 3);
  CHECK(field("fds") == "4");  // 0, 1, 2 and the fd ls opens to list /proc/self/fd: the leak is gone
  CHECK(out.find("NoNewPrivs:\t1") != std::string::npos);
  CHECK(field("sid") == field("pid"));  // setsid(): a session leader
}

TEST_CASE("spawn: privilege drop to an unprivileged user, empty capability sets") {
  if (geteuid() != 0) {
    TORGW_SKIP(torgw::testing::Needs::root, "privilege drop needs root");
  }
  torgw::testing::TempDir dir("drop");
  ::chmod(dir.path().c_str(), 0777);
  auto nobody = lookup_user_in("nobody");
  REQUIRE(nobody.ok());
  ChildSpec s = shell("drop", "id -u > " + dir.file("out") + "; id -G >> " + dir.file("out") +
                                  "; grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status >> " + dir.file("out"));
  s.user = *nobody;
  auto pid = spawn(s);
  REQUIRE(pid.ok());
  int st;
  REQUIRE(waitpid(*pid, &st, 0) == *pid);
  CHECK(WIFEXITED(st));
  auto out = torgw::testing::read_file(dir.file("out"));
  INFO(out);
  CHECK(out.rfind(std::to_string(nobody->uid) + "\n" + std::to_string(nobody->gid) + "\n", 0) == 0);
  for (const char* cap : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"})
    CHECK(out.find(std::string(cap) + ":\t0000000000000000") != std::string::npos);
}

TEST_CASE("supervision: a crashing child is restarted with growing backoff, then given up") {
  EventLoop loop;
  Reaper reaper(loop);
  REQUIRE(reaper.init().ok());
  ChildSupervisor sup(loop, reaper);
  std::vector<std::string> exits;
  std::vector<std::chrono::milliseconds> delays;
  std::optional<Error> gave_up;
  sup.events.exited = [&](const std::string&, int st, bool again, std::chrono::milliseconds d) {
    exits.push_back(describe_status(st));
    if (again) delays.push_back(d);
  };
  sup.events.gave_up = [&](const std::string&, const Error& e) { gave_up = e; };
  auto spec = shell("crasher", "kill -SEGV $$");
  spec.max_failures = 4;
  REQUIRE(sup.start(spec).ok());
  REQUIRE(run_until(loop, [&] { return gave_up.has_value(); }));
  CHECK(exits.size() == 5);  // the first run and 4 restarts
  for (auto& e : exits) CHECK(e.rfind("signal_11", 0) == 0);
  CHECK(sup.starts("crasher") == 5);
  REQUIRE(delays.size() == 4);
  CHECK(delays == std::vector<std::chrono::milliseconds>{50ms, 100ms, 200ms, 200ms});
  CHECK(gave_up->reason == "supervise.restart_limit");
}

TEST_CASE("supervision: restart policies") {
  EventLoop loop;
  Reaper reaper(loop);
  REQUIRE(reaper.init().ok());
  ChildSupervisor sup(loop, reaper);
  int exits = 0;
  sup.events.exited = [&](const std::string&, int, bool, std::chrono::milliseconds) { ++exits; };
  auto once = shell("clean", "exit 0");
  once.restart = ChildSpec::Restart::OnFailure;
  REQUIRE(sup.start(once).ok());
  auto never = shell("never", "exit 3");
  never.restart = ChildSpec::Restart::Never;
  REQUIRE(sup.start(never).ok());
  CHECK_FALSE(sup.start(never).ok());  // duplicate name
  REQUIRE(run_until(loop, [&] { return exits == 2; }));
  // Nothing restarts: give it time to prove it.
  run_until(
      loop, [] { return false; }, 500ms);
  CHECK(exits == 2);
  CHECK(sup.starts("clean") == 1);
  CHECK(sup.starts("never") == 1);
}

TEST_CASE("supervision: ordered stop, SIGKILL after the deadline for a child ignoring SIGTERM") {
  EventLoop loop;
  Reaper reaper(loop);
  REQUIRE(reaper.init().ok());
  ChildSupervisor sup(loop, reaper);
  std::vector<std::string> order;
  sup.events.exited = [&](const std::string& n, int st, bool, std::chrono::milliseconds) {
    order.push_back(n + "=" + describe_status(st));
  };
  REQUIRE(sup.start(shell("first", "exec sleep 60")).ok());
  auto stubborn = shell("second", "trap '' TERM; while :; do sleep 0.05; done");
  stubborn.stop_timeout = 300ms;
  REQUIRE(sup.start(stubborn).ok());
  // Give the shell time to install its trap.
  run_until(
      loop, [] { return false; }, 300ms);
  bool done = false;
  auto t0 = std::chrono::steady_clock::now();
  sup.stop_all([&] { done = true; });
  REQUIRE(run_until(loop, [&] { return done; }));
  auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE(order.size() == 2);
  CHECK(order[0] == "second=signal_9");  // reverse start order; SIGKILL after 300 ms
  CHECK(order[1] == "first=signal_15");
  CHECK(took >= 300ms);
  CHECK_FALSE(sup.pid("first"));
  // Stopping what is stopped is immediate.
  bool again = false;
  sup.stop("first", [&] { again = true; });
  CHECK(again);
}

TEST_CASE("reaper: orphans of our children come back to us and are reaped") {
  EventLoop loop;
  Reaper reaper(loop);
  REQUIRE(reaper.init().ok());  // not PID 1: becomes a child subreaper
  ChildSupervisor sup(loop, reaper);
  auto spec = shell("parent", "for i in $(seq 1 50); do (sleep 0.2; exit 0) & done; exit 0");
  spec.restart = ChildSpec::Restart::Never;
  REQUIRE(sup.start(spec).ok());
  REQUIRE(run_until(loop, [&] { return reaper.orphans_reaped() >= 50; }));
  CHECK(reaper.orphans_reaped() == 50);
  errno = 0;
  CHECK(waitpid(-1, nullptr, WNOHANG) == -1);
  CHECK(errno == ECHILD);  // nothing left, no zombie
}

TEST_CASE("supervision: stdin_secret reaches every launch of the child, and nothing else") {
  torgw::testing::TempDir dir("stdin");
  EventLoop loop;
  Reaper reaper(loop);
  REQUIRE(reaper.init().ok());
  ChildSupervisor sup(loop, reaper);
  int exits = 0;
  sup.events.exited = [&](const std::string&, int, bool, std::chrono::milliseconds) { ++exits; };
  // Each run appends what it read on stdin, then fails so it is restarted.
  auto spec = shell("reader", "cat >> " + dir.file("got") + "; echo '|' >> " + dir.file("got") + "; exit 1");
  spec.stdin_secret = std::make_shared<const SecretBytes>(SecretBytes::copy_of(as_bytes("backend_credential = u:p")));
  spec.max_failures = 2;
  REQUIRE(sup.start(spec).ok());
  REQUIRE(run_until(loop, [&] { return exits == 3; }));
  CHECK(torgw::testing::read_file(dir.file("got")) ==
        "backend_credential = u:p|\nbackend_credential = u:p|\nbackend_credential = u:p|\n");

  // Larger than a pipe buffer: refused before anything runs.
  auto big = shell("big", "cat");
  big.stdin_secret = std::make_shared<const SecretBytes>(SecretBytes(70000));
  auto r = sup.start(big);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r, FailsWith("spawn.stdin_too_large"));
}

// ---- short-lived helpers (the metadata helper's runner) -------------------------------

namespace {

struct HelperOutcome {
  std::optional<Result<std::string>> result;
  std::chrono::milliseconds took{0};
};

HelperOutcome run_helper(const std::string& script, std::chrono::milliseconds deadline, std::size_t max = 1 << 20) {
  EventLoop loop;
  Reaper reaper(loop);
  REQUIRE(reaper.init());
  HelperRun run(loop, reaper);
  HelperOutcome o;
  const auto t0 = std::chrono::steady_clock::now();
  run.start(shell("helper", script), deadline, max, [&](Result<std::string> r) { o.result.emplace(std::move(r)); });
  REQUIRE(run_until(loop, [&] { return o.result.has_value(); }));
  o.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  // Whatever was killed is reaped: nothing of it is left behind.
  REQUIRE(run_until(loop, [&] { return reaper.watched() == 0; }));
  return o;
}

}  // namespace

TEST_CASE("HelperRun: stdout collected after exit 0, across many pipe buffers") {
  auto o = run_helper("printf 'torgw-metadata 1\\n'; head -c 200000 /dev/zero | tr '\\0' a", 30s);
  REQUIRE(*o.result);
  CHECK(o.result->value().size() == 17 + 200000);
  CHECK(o.result->value().rfind("torgw-metadata 1\naaa", 0) == 0);
}

TEST_CASE("HelperRun: a crash, a failing exit, a hang and a flood are errors, never output") {
  auto crash = run_helper("printf 'torgw-metadata 1\\nend 0\\n'; kill -SEGV $$", 30s);
  REQUIRE_FALSE(*crash.result);
  CHECK(crash.result->error() == make_error("helper.exit", "signal_11"));
  auto fails = run_helper("printf 'torgw-metadata 1\\nend 0\\n'; exit 3", 30s);
  REQUIRE_FALSE(*fails.result);
  CHECK(fails.result->error() == make_error("helper.exit", "exit_3"));
  // Killed at the deadline, not waited for (sleep would run 60 s).
  auto hang = run_helper("printf 'torgw-metadata 1\\n'; exec sleep 60", 300ms);
  REQUIRE_FALSE(*hang.result);
  CHECK_THAT(*hang.result, FailsWith("helper.timeout"));
  CHECK(hang.took < 20s);
  // A child holding the pipe open after the helper exits cannot hold PID 1 either.
  auto holder = run_helper("sleep 60 & exit 0", 300ms);
  REQUIRE_FALSE(*holder.result);
  CHECK_THAT(*holder.result, FailsWith("helper.timeout"));
  auto flood = run_helper("exec cat /dev/zero", 30s, 100000);
  REQUIRE_FALSE(*flood.result);
  CHECK_THAT(*flood.result, FailsWith("helper.too_large"));
  auto missing = run_helper("exit 0", 30s);
  REQUIRE(*missing.result);
  CHECK(missing.result->value().empty());
}

TEST_CASE("HelperRun: destroyed, or started again, while running: the helper is killed and reaped, done never called") {
  EventLoop loop;
  Reaper reaper(loop);
  REQUIRE(reaper.init());
  int calls = 0;
  pid_t first = -1;
  {
    auto run = std::make_unique<HelperRun>(loop, reaper);
    run->start(shell("helper", "exec sleep 60"), 30s, 1 << 20, [&](Result<std::string>) { ++calls; });
    REQUIRE(run->pid());
    first = *run->pid();
    // Its deadline and pipe watch are armed: the run is torn down under them.
    run.reset();
  }
  // The helper's exit is reaped (as ignored), and nothing of the run calls back.
  REQUIRE(run_until(loop, [&] { return reaper.watched() == 0; }));
  CHECK(::kill(first, 0) != 0);
  HelperRun run(loop, reaper);
  std::optional<Result<std::string>> second;
  run.start(shell("helper", "exec sleep 60"), 30s, 1 << 20, [&](Result<std::string>) { ++calls; });
  REQUIRE(run.pid());
  const pid_t killed = *run.pid();
  run.start(shell("helper", "printf again"), 30s, 1 << 20,
            [&](Result<std::string> r) { second.emplace(std::move(r)); });
  REQUIRE(run_until(loop, [&] { return second.has_value() && reaper.watched() == 0; }));
  CHECK_THAT(*second, Succeeds());
  CHECK(second->value() == "again");
  CHECK(::kill(killed, 0) != 0);
  CHECK(calls == 0);
}
