#include "init/child.h"

#include "common/spawn.h"

#include "config/text.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <thread>

namespace torgw::init {

// ---- users ------------------------------------------------------------------------------

namespace {

std::optional<std::uint32_t> parse_id(std::string_view s) {
  std::uint32_t v = 0;
  if (s.empty() || s.size() > 10) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// passwd/group lines, without comments and blank lines.
template <class Fn>
void for_each_entry(std::string_view file, Fn fn) {
  text::for_each_line(file, [&](std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty() && line.front() != '#') fn(line);
  });
}

}  // namespace

Result<UserIds> lookup_user(std::string_view name, std::string_view passwd, std::string_view group) {
  std::optional<UserIds> found;
  bool bad = false;
  for_each_entry(passwd, [&](std::string_view line) {
    auto f = text::fields(line, ':');
    if (f.size() != 7 || f[0] != name || found) return;
    auto uid = parse_id(f[2]);
    auto gid = parse_id(f[3]);
    if (!uid || !gid) {
      bad = true;
      return;
    }
    found = UserIds{std::string(name), *uid, *gid, {*gid}};
  });
  if (bad) return make_error("user.bad_passwd", std::string(name));
  if (!found) return make_error("user.unknown", std::string(name));
  for_each_entry(group, [&](std::string_view line) {
    auto f = text::fields(line, ':');
    if (f.size() != 4) return;
    auto gid = parse_id(f[2]);
    if (!gid || *gid == found->gid) return;
    for (auto member : text::fields(f[3], ','))
      if (member == name) found->groups.push_back(*gid);
  });
  return *found;
}

Result<UserIds> lookup_user_in(std::string_view name, const std::string& root) {
  std::string base = root == "/" ? "" : root;
  return lookup_user(name, text::read_small(base + "/etc/passwd", 1 << 20).value_or(""),
                     text::read_small(base + "/etc/group", 1 << 20).value_or(""));
}

// ---- spawning ---------------------------------------------------------------------------

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit_" + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal_" + std::to_string(WTERMSIG(status)) + (WCOREDUMP(status) ? "_core" : "");
  return "status_" + std::to_string(status);
}

Result<pid_t> spawn(const ChildSpec& spec) {
  SpawnSpec s;
  s.argv = spec.argv;
  s.env = spec.env;
  s.stdin_secret = spec.stdin_secret.get();
  s.stdout_fd = spec.stdout_fd >= 0 ? spec.stdout_fd : STDOUT_FILENO;
  s.stderr_fd = spec.stderr_fd >= 0 ? spec.stderr_fd : STDERR_FILENO;
  if (spec.user) s.creds = Credentials{spec.user->uid, spec.user->gid, spec.user->groups};
  s.cwd = spec.cwd;
  s.umask = spec.umask;
  s.die_with_parent = spec.die_with_parent;
  return torgw::spawn(s);
}

// ---- short-lived helpers -----------------------------------------------------------------

// One run. Everything that can call back into it dies with it: the pipe watch and the
// deadline are members, its posts are tied to `life`, and retire() hands the reaper's
// entry to a callback that ignores the exit before the State goes. So the callbacks
// hold a plain State*, with no "is it still there" guard of their own.
struct HelperRun::State {
  State(EventLoop& on, std::size_t limit, Done report) : loop(on), max_bytes(limit), done(std::move(report)) {}
  // The output may hold secrets, whether it was still being read or not yet reported.
  ~State() {
    wipe(buf.data(), buf.size());
    if (outcome && *outcome) wipe((*outcome)->data(), (*outcome)->size());
  }
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  // Reports once, on the loop, never from inside the caller's start().
  void finish(Result<std::string> r) {
    if (finished) return;
    finished = true;
    // Timeout, too large: the helper's whole process group (spawn gave it a session of
    // its own), so a descendant holding the pipe goes too. Its exit is reaped later.
    if (pid > 0 && !(exited && eof)) ::kill(-pid, SIGKILL);
    // Kept here, not in the posted call, so ~State wipes it if the run dies first.
    outcome.emplace(std::move(r));
    // The watch and the timer go on the loop, not inside their own callbacks.
    event::post(loop.base(), life, [this] {
      watch.reset();
      deadline.reset();
      auto d = std::move(done);
      Result<std::string> report = std::move(*outcome);
      outcome.reset();
      if (d) d(std::move(report));  // may destroy the run, and this State with it
    });
  }

  // Reports when both the exit and EOF have been seen.
  void settle() {
    if (finished || !eof || !exited) return;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      std::string collected = std::move(buf);
      buf.clear();
      return finish(std::move(collected));
    }
    wipe(buf.data(), buf.size());
    finish(make_error("helper.exit", describe_status(status)));
  }

  void read_output() {
    if (finished) return;
    char chunk[16384];
    while (true) {
      ssize_t n = ::read(out.get(), chunk, sizeof chunk);
      if (n > 0) {
        if (buf.size() + static_cast<std::size_t>(n) > max_bytes) {
          wipe(chunk, sizeof chunk);
          wipe(buf.data(), buf.size());
          return finish(make_error("helper.too_large", "over " + std::to_string(max_bytes) + " bytes"));
        }
        buf.append(chunk, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      eof = true;                                                 // EOF, or an error that ends the stream just the same
      event::post(loop.base(), life, [this] { watch.reset(); });  // not inside its own callback
      break;
    }
    wipe(chunk, sizeof chunk);
    settle();
  }

  EventLoop& loop;
  pid_t pid = -1;
  UniqueFd out;
  std::optional<FdWatch> watch;
  std::optional<Timer> deadline;
  std::string buf;
  std::size_t max_bytes = 0;
  bool eof = false;
  bool exited = false;
  int status = 0;
  bool finished = false;
  Done done;
  std::optional<Result<std::string>> outcome;  // finish()'s, until the loop hands it to `done`
  event::Lifetime life;                        // what finish() and read_output() posted
};

HelperRun::HelperRun(EventLoop& loop, Reaper& reaper) : loop_(loop), reaper_(reaper) {}

HelperRun::~HelperRun() { retire(); }

void HelperRun::retire() {
  if (!st_) return;
  if (st_->pid > 0 && !(st_->exited && st_->eof)) ::kill(-st_->pid, SIGKILL);
  if (!st_->exited && st_->pid > 0) reaper_.watch(st_->pid, [](int) {});  // reaped and ignored
  st_.reset();
}

std::optional<pid_t> HelperRun::pid() const {
  if (!st_ || st_->exited || st_->pid <= 0) return std::nullopt;
  return st_->pid;
}

void HelperRun::start(ChildSpec spec, std::chrono::milliseconds deadline, std::size_t max_bytes, Done done) {
  retire();
  st_ = std::make_unique<State>(loop_, max_bytes, std::move(done));
  State* s = st_.get();
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return s->finish(make_error("helper.spawn_failed", std::string("pipe: ") + std::strerror(errno)));
  s->out.reset(fds[0]);
  UniqueFd write_end(fds[1]);
  // Only our end is non-blocking: the helper writes with ordinary blocking writes.
  if (::fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0)
    return s->finish(make_error("helper.spawn_failed", std::string("pipe: ") + std::strerror(errno)));
  spec.stdout_fd = write_end.get();
  auto pid = spawn(spec);
  write_end.reset();  // the helper holds the only write end now: its exit is our EOF
  if (!pid) return s->finish(make_error("helper.spawn_failed", pid.error().to_string()));
  s->pid = *pid;
  reaper_.watch(*pid, [s](int status) {
    s->exited = true;
    s->status = status;
    s->settle();
  });
  s->watch.emplace(loop_, s->out.get(), [s] { s->read_output(); });
  s->deadline.emplace(loop_);
  s->deadline->start(deadline, [s, deadline] {
    s->finish(make_error("helper.timeout", "killed after " + std::to_string(deadline.count()) + " ms"));
  });
}

// ---- reaping ----------------------------------------------------------------------------

Reaper::Reaper(EventLoop& loop) : loop_(loop) {}

Status Reaper::init() {
  if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return make_error("init.subreaper", std::strerror(errno));
  TORGW_TRY(loop_.on_signal(SIGCHLD, [this](const signalfd_siginfo&) { reap(); }));
  reap();  // anything that exited before we listened
  return {};
}

void Reaper::watch(pid_t pid, ExitFn fn) { watched_[pid] = std::move(fn); }

void Reaper::unwatch(pid_t pid) { watched_.erase(pid); }

void Reaper::reap() {
  while (true) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      if (pid < 0 && errno == EINTR) continue;
      break;
    }
    auto it = watched_.find(pid);
    if (it == watched_.end()) {
      ++orphans_;
      continue;
    }
    auto fn = std::move(it->second);
    watched_.erase(it);
    if (fn) fn(status);
  }
}

bool Reaper::reap_all(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    reap();
    errno = 0;
    if (waitpid(-1, nullptr, WNOHANG) < 0 && errno == ECHILD) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// ---- supervision ------------------------------------------------------------------------

struct ChildSupervisor::Child {
  ChildSpec spec;
  pid_t pid = -1;
  int starts = 0;
  int failures = 0;  // consecutive short runs
  std::chrono::milliseconds next_backoff{0};
  std::chrono::steady_clock::time_point started_at;
  bool stopping = false;
  Timer restart_timer;
  Timer kill_timer;
  std::vector<std::function<void()>> on_stopped;
};

ChildSupervisor::ChildSupervisor(EventLoop& loop, Reaper& reaper) : loop_(loop), reaper_(reaper) {}

ChildSupervisor::~ChildSupervisor() {
  for (auto& c : children_)
    if (c->pid > 0) reaper_.unwatch(c->pid);
}

ChildSupervisor::Child* ChildSupervisor::find(const std::string& name) const {
  for (auto& c : children_)
    if (c->spec.name == name) return c.get();
  return nullptr;
}

Status ChildSupervisor::start(ChildSpec spec) {
  if (find(spec.name)) return make_error("supervise.duplicate_name", spec.name);
  TORGW_ASSIGN_OR_RETURN(auto pid, spawn(spec));
  auto c = std::make_unique<Child>();
  c->spec = std::move(spec);
  c->restart_timer = Timer(loop_);
  c->kill_timer = Timer(loop_);
  c->next_backoff = c->spec.backoff_initial;
  Child& ref = *c;
  children_.push_back(std::move(c));
  ref.pid = pid;
  ref.starts = 1;
  ref.started_at = std::chrono::steady_clock::now();
  reaper_.watch(ref.pid, [this, &ref](int st) { on_exit(ref, st); });
  if (events.started) events.started(ref.spec.name, ref.pid);
  return {};
}

void ChildSupervisor::launch(Child& c) {
  auto pid = spawn(c.spec);
  if (!pid) {
    // The binary vanished or the user cannot be dropped to: retrying will not help.
    if (events.gave_up) events.gave_up(c.spec.name, pid.error());
    return;
  }
  c.pid = *pid;
  ++c.starts;
  c.started_at = std::chrono::steady_clock::now();
  reaper_.watch(c.pid, [this, &c](int st) { on_exit(c, st); });
  if (events.started) events.started(c.spec.name, c.pid);
}

void ChildSupervisor::on_exit(Child& c, int status) {
  c.pid = -1;
  c.kill_timer.cancel();
  if (c.stopping) {
    if (events.exited) events.exited(c.spec.name, status, false, std::chrono::milliseconds(0));
    auto waiters = std::move(c.on_stopped);
    c.on_stopped.clear();
    for (auto& w : waiters) w();
    return;
  }
  const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  bool restart = c.spec.restart == ChildSpec::Restart::Always ||
                 (c.spec.restart == ChildSpec::Restart::OnFailure && !clean);
  const auto ran = std::chrono::steady_clock::now() - c.started_at;
  if (ran >= c.spec.stable_after) {
    c.failures = 0;
    c.next_backoff = c.spec.backoff_initial;
  }
  ++c.failures;
  if (restart && c.failures > c.spec.max_failures) {
    if (events.exited) events.exited(c.spec.name, status, false, std::chrono::milliseconds(0));
    if (events.gave_up)
      events.gave_up(c.spec.name,
                     make_error("supervise.restart_limit", c.spec.name + " " + describe_status(status) + " " +
                                                               std::to_string(c.failures) + " times in a row"));
    return;
  }
  auto delay = c.next_backoff;
  if (events.exited) events.exited(c.spec.name, status, restart, delay);
  if (!restart) return;
  c.next_backoff = std::min(c.spec.backoff_max, c.next_backoff * 2);
  c.restart_timer.start(delay, [this, &c] {
    if (!c.stopping) launch(c);
  });
}

void ChildSupervisor::stop(const std::string& name, std::function<void()> done) {
  Child* c = find(name);
  if (!c) {
    if (done) done();
    return;
  }
  c->stopping = true;
  c->restart_timer.cancel();
  if (c->pid <= 0) {
    if (done) done();
    return;
  }
  if (done) c->on_stopped.push_back(std::move(done));
  ::kill(c->pid, c->spec.stop_signal);
  c->kill_timer.start(c->spec.stop_timeout, [c] {
    if (c->pid > 0) {
      ::kill(-c->pid, SIGKILL);  // its process group: setsid() made it the leader
      ::kill(c->pid, SIGKILL);
    }
  });
}

void ChildSupervisor::stop_all(std::function<void()> done) {
  // Reverse start order, one at a time: later children depend on earlier ones.
  stop_next(std::make_shared<std::vector<std::string>>(names()), std::move(done));
}

void ChildSupervisor::stop_next(std::shared_ptr<std::vector<std::string>> left, std::function<void()> done) {
  if (left->empty()) {
    if (done) done();
    return;
  }
  std::string name = left->back();
  left->pop_back();
  stop(name, [this, left, done = std::move(done)]() mutable { stop_next(left, std::move(done)); });
}

std::optional<pid_t> ChildSupervisor::pid(const std::string& name) const {
  Child* c = find(name);
  if (!c || c->pid <= 0) return std::nullopt;
  return c->pid;
}

int ChildSupervisor::starts(const std::string& name) const {
  Child* c = find(name);
  return c ? c->starts : 0;
}

std::vector<std::string> ChildSupervisor::names() const {
  std::vector<std::string> out;
  for (auto& c : children_) out.push_back(c->spec.name);
  return out;
}

}  // namespace torgw::init
