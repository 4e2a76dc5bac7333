#include "supervisor/process.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace torgw::supervisor {

Result<Credentials> lookup_user(const std::string& name) {
  passwd pw{};
  passwd* res = nullptr;
  std::vector<char> buf(16384);
  int rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &res);
  if (rc != 0 || res == nullptr) return make_error("process.no_such_user", name);
  return Credentials{pw.pw_uid, pw.pw_gid, {}};
}

namespace {

struct ChildFailure {
  int step;
  int err;
};

enum Step : int { kSetpgid = 1, kSignals, kStdio, kSetgroups, kSetgid, kSetuid, kRegain, kPdeath, kChdir, kCloseRange, kExec };

const char* step_name(int s) {
  switch (s) {
    case kSetpgid: return "setpgid";
    case kSignals: return "signals";
    case kStdio: return "stdio";
    case kSetgroups: return "setgroups";
    case kSetgid: return "setgid";
    case kSetuid: return "setuid";
    case kRegain: return "privileges could be regained";
    case kPdeath: return "prctl(PR_SET_PDEATHSIG)";
    case kChdir: return "chdir";
    case kCloseRange: return "close_range";
    case kExec: return "execve";
  }
  return "?";
}

[[noreturn]] void child_fail(int pipe_fd, int step) {
  ChildFailure f{step, errno};
  (void)!::write(pipe_fd, &f, sizeof f);
  _exit(127);
}

}  // namespace

Result<Child> spawn(const SpawnSpec& spec) {
  if (spec.path.empty() || spec.path.front() != '/' || spec.argv.empty())
    return make_error("process.spawn_failed", "path must be absolute and argv non-empty");
  // Everything the child needs is built before fork: after it, only async-signal-safe
  // calls.
  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull) return make_error("process.spawn_failed", std::string("/dev/null: ") + std::strerror(errno));
  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return make_error("process.spawn_failed", std::string("pipe2: ") + std::strerror(errno));
  UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);
  const pid_t parent = ::getpid();
  const int out = spec.output_fd >= 0 ? spec.output_fd : devnull.get();

  pid_t pid = ::fork();
  if (pid < 0) return make_error("process.spawn_failed", std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    const int ew = err_w.get();
    if (spec.new_process_group && ::setpgid(0, 0) != 0) child_fail(ew, kSetpgid);
    sigset_t none;
    sigemptyset(&none);
    for (int s = 1; s < NSIG; ++s) ::signal(s, SIG_DFL);  // errors for SIGKILL/SIGSTOP/RT are fine
    if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) child_fail(ew, kSignals);
    if (::dup2(devnull.get(), 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0) child_fail(ew, kStdio);
    if (spec.creds) {
      const auto& c = *spec.creds;
      if (::setgroups(c.groups.size(), c.groups.data()) != 0) child_fail(ew, kSetgroups);
      if (::setresgid(c.gid, c.gid, c.gid) != 0) child_fail(ew, kSetgid);
      if (::setresuid(c.uid, c.uid, c.uid) != 0) child_fail(ew, kSetuid);
      if (c.uid != 0 && (::setuid(0) == 0 || ::seteuid(0) == 0)) {
        errno = EPERM;
        child_fail(ew, kRegain);
      }
    }
    // After the drop: a uid change clears the parent-death signal.
    if (spec.die_with_parent) {
      if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) child_fail(ew, kPdeath);
      if (::getppid() != parent) _exit(0);  // the parent is already gone
    }
    if (::chdir(spec.cwd.c_str()) != 0) child_fail(ew, kChdir);
    // Everything above fd 2 closes on exec (our error pipe too, which tells the parent
    // that exec succeeded).
    if (::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) child_fail(ew, kCloseRange);
    ::execve(spec.path.c_str(), argv.data(), envp.data());
    child_fail(ew, kExec);
  }
  err_w.reset();
  ChildFailure f{};
  ssize_t n;
  do n = ::read(err_r.get(), &f, sizeof f);
  while (n < 0 && errno == EINTR);
  if (n == sizeof f) {
    int st;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return make_error("process.spawn_failed", spec.path + ": " + step_name(f.step) + ": " + std::strerror(f.err));
  }
  Child c;
  c.pid = pid;
  c.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (c.pidfd) set_cloexec(c.pidfd.get());
  return c;
}

std::optional<int> try_reap(const Child& c) {
  if (c.pid <= 0) return -1;
  siginfo_t si{};
  int rc;
  if (c.pidfd) {
    do rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(c.pidfd.get()), &si, WEXITED | WNOHANG);
    while (rc < 0 && errno == EINTR);
  } else {
    do rc = ::waitid(P_PID, static_cast<id_t>(c.pid), &si, WEXITED | WNOHANG);
    while (rc < 0 && errno == EINTR);
  }
  if (rc < 0) return -1;           // ECHILD: reaped by someone else
  if (si.si_pid == 0) return std::nullopt;  // still running
  if (si.si_code == CLD_EXITED) return W_EXITCODE(si.si_status, 0);
  return si.si_status & 0x7f;      // killed/dumped: the signal, as a wait status
}

std::string describe_status(int st) {
  if (st < 0) return "status unknown (reaped elsewhere)";
  if (WIFEXITED(st)) return "exited " + std::to_string(WEXITSTATUS(st));
  if (WIFSIGNALED(st)) {
    const char* name = sigabbrev_np(WTERMSIG(st));
    return std::string("killed by SIG") + (name ? name : std::to_string(WTERMSIG(st)).c_str());
  }
  return "status " + std::to_string(st);
}

}  // namespace torgw::supervisor
