#include "common/spawn.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/fd.h"

namespace torgw {

namespace {

const char* step_name(SpawnStep step) {
  switch (step) {
    case SpawnStep::none: return "none";
    case SpawnStep::signals: return "sigprocmask";
    case SpawnStep::session: return "setsid";
    case SpawnStep::stdio: return "stdio";
    case SpawnStep::parent_death_signal: return "prctl(PR_SET_PDEATHSIG)";
    case SpawnStep::no_new_privs: return "prctl(PR_SET_NO_NEW_PRIVS)";
    case SpawnStep::chdir: return "chdir";
    case SpawnStep::exec: return "execve";
    case SpawnStep::bounding_set: return "prctl(PR_CAPBSET_DROP)";
    case SpawnStep::ambient_set: return "prctl(PR_CAP_AMBIENT_CLEAR_ALL)";
    case SpawnStep::setgroups: return "setgroups";
    case SpawnStep::setgid: return "setresgid";
    case SpawnStep::setuid: return "setresuid";
    case SpawnStep::ids_unchanged: return "ids did not change as requested";
    case SpawnStep::capabilities: return "capset";
    case SpawnStep::root_regainable: return "root could be regained";
    case SpawnStep::capabilities_left: return "capabilities left after the drop";
  }
  return "unknown step";
}

bool any_capability() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct sets[_LINUX_CAPABILITY_U32S_3]{};
  if (::syscall(SYS_capget, &header, sets) != 0) return true;  // unknown counts as held
  for (const auto& s : sets)
    if (s.effective || s.permitted || s.inheritable) return true;
  return false;
}

}  // namespace

std::string describe_failure(SpawnStep step, int err) {
  return err == 0 ? step_name(step) : std::string(step_name(step)) + ": " + std::strerror(err);
}

SpawnStep drop_privileges(const Credentials& creds) noexcept {
  const bool to_root = creds.uid == 0;
  if (!to_root) {
    // PR_CAPBSET_READ fails for the first number this kernel does not know, which may
    // be above our headers' CAP_LAST_CAP.
    for (int cap = 0; ::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; ++cap)
      if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) return SpawnStep::bounding_set;
    // EINVAL: a kernel before 4.3 has no ambient set to clear.
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
      return SpawnStep::ambient_set;
  }
  if (::setgroups(creds.groups.size(), creds.groups.data()) != 0) return SpawnStep::setgroups;
  if (::setresgid(creds.gid, creds.gid, creds.gid) != 0) return SpawnStep::setgid;
  if (::setresuid(creds.uid, creds.uid, creds.uid) != 0) return SpawnStep::setuid;
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  if (::getresuid(&ruid, &euid, &suid) != 0 || ::getresgid(&rgid, &egid, &sgid) != 0) return SpawnStep::ids_unchanged;
  errno = 0;
  if (ruid != creds.uid || euid != creds.uid || suid != creds.uid || rgid != creds.gid || egid != creds.gid ||
      sgid != creds.gid)
    return SpawnStep::ids_unchanged;
  if (to_root) return SpawnStep::none;
  // setresuid away from root emptied the permitted and effective sets but kept the
  // inheritable one, which a later exec could combine with file capabilities.
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct empty[_LINUX_CAPABILITY_U32S_3]{};
  if (::syscall(SYS_capset, &header, empty) != 0) return SpawnStep::capabilities;
  errno = 0;
  if (any_capability()) return SpawnStep::capabilities_left;
  if (::setuid(0) == 0 || ::seteuid(0) == 0) {
    errno = 0;
    return SpawnStep::root_regainable;
  }
  return SpawnStep::none;
}

namespace {

// What the child writes to the error pipe before _exit(127).
struct ChildFailure {
  SpawnStep step;
  int err;
};

// Everything the child uses, made before fork: after it, only async-signal-safe calls.
struct ChildSetup {
  const char* path;
  char* const* argv;
  char* const* envp;
  int stdin_fd;  // the secret's pipe, or -1
  int devnull;
  int error_pipe;
  pid_t parent;
  int fd_limit;  // RLIMIT_NOFILE: where the close_range fallback stops
};

[[noreturn]] void fail(const ChildSetup& setup, SpawnStep step) {
  ChildFailure f{step, errno};
  (void)!::write(setup.error_pipe, &f, sizeof f);
  _exit(127);
}

// A copy of `fd` numbered 3 or above, so that filling 0, 1 and 2 cannot overwrite a
// source that is itself one of them (a PID 1 started without a console gets its
// /dev/null or pipes there). An fd that is not open gives /dev/null's copy.
int above_stdio(int fd, int devnull) {
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  return copy >= 0 ? copy : ::fcntl(devnull, F_DUPFD_CLOEXEC, 3);
}

[[noreturn]] void run_child(const SpawnSpec& spec, const ChildSetup& setup) {
  for (int s = 1; s < NSIG; ++s)
    if (s != SIGKILL && s != SIGSTOP) ::signal(s, SIG_DFL);  // glibc's own RT signals refuse: fine
  sigset_t none;
  sigemptyset(&none);
  if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) fail(setup, SpawnStep::signals);
  if (::setsid() < 0) fail(setup, SpawnStep::session);

  const int in = above_stdio(setup.stdin_fd, setup.devnull);
  const int out = above_stdio(spec.stdout_fd, setup.devnull);
  const int err = above_stdio(spec.stderr_fd, setup.devnull);
  if (in < 0 || out < 0 || err < 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0)
    fail(setup, SpawnStep::stdio);
  // Everything above fd 2 closes on exec, the error pipe too, which is how the parent
  // learns that exec succeeded. CLOSE_RANGE_CLOEXEC needs Linux 5.11: before it, mark
  // them one by one.
  if (::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
    for (int fd = 3; fd < setup.fd_limit; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);

  if (spec.creds) {
    if (SpawnStep step = drop_privileges(*spec.creds); step != SpawnStep::none) fail(setup, step);
  }
  // After the drop: a change of uid or gid clears the parent-death signal.
  if (spec.die_with_parent) {
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(setup, SpawnStep::parent_death_signal);
    if (::getppid() != setup.parent) _exit(127);  // the parent is gone already: nobody to run for
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(setup, SpawnStep::no_new_privs);
  if (spec.umask) ::umask(*spec.umask);
  if (::chdir(spec.cwd.c_str()) != 0) fail(setup, SpawnStep::chdir);
  ::execve(setup.path, setup.argv, setup.envp);
  fail(setup, SpawnStep::exec);
}

const char* failure_reason(SpawnStep step) {
  switch (step) {
    case SpawnStep::signals: return "spawn.signals_failed";
    case SpawnStep::session: return "spawn.setsid_failed";
    case SpawnStep::stdio: return "spawn.stdio_failed";
    case SpawnStep::parent_death_signal: return "spawn.pdeathsig_failed";
    case SpawnStep::no_new_privs: return "spawn.no_new_privs_failed";
    case SpawnStep::chdir: return "spawn.chdir_failed";
    case SpawnStep::exec: return "spawn.exec_failed";
    default: return "spawn.drop_failed";
  }
}

Error os_error(const char* reason, const char* what) {
  return make_error(reason, std::string(what) + ": " + std::strerror(errno));
}

}  // namespace

Result<pid_t> spawn(const SpawnSpec& spec) {
  const std::string& path = spec.path.empty() && !spec.argv.empty() ? spec.argv[0] : spec.path;
  if (path.empty() || path.front() != '/' || spec.argv.empty())
    return make_error("spawn.bad_argv", "the executable's path must be absolute and argv non-empty");
  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  UniqueFd stdin_read;
  if (spec.stdin_secret) {
    const SecretBytes& data = *spec.stdin_secret;
    if (data.size() > 65536) return make_error("spawn.stdin_too_large", std::to_string(data.size()) + " bytes");
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return os_error("spawn.pipe_failed", "pipe2");
    stdin_read.reset(fds[0]);
    UniqueFd stdin_write(fds[1]);  // closed before fork: the child reads the bytes, then EOF
    if (!data.empty() && ::write(stdin_write.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size()))
      return os_error("spawn.stdin_failed", "write");
  }
  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull) return os_error("spawn.stdio_failed", "/dev/null");
  int error_pipe[2];
  if (::pipe2(error_pipe, O_CLOEXEC) != 0) return os_error("spawn.pipe_failed", "pipe2");
  UniqueFd error_read(error_pipe[0]), error_write(error_pipe[1]);
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  const ChildSetup setup{
      path.c_str(),  argv.data(),       envp.data(), stdin_read.get(),
      devnull.get(), error_write.get(), ::getpid(),  static_cast<int>(std::min<rlim_t>(files.rlim_cur, 1 << 20))};

  const pid_t pid = ::fork();
  if (pid < 0) return os_error("spawn.fork_failed", "fork");
  if (pid == 0) run_child(spec, setup);
  error_write.reset();
  ChildFailure f{};
  ssize_t n;
  do n = ::read(error_read.get(), &f, sizeof f);
  while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof f)) return pid;  // EOF: exec closed the pipe
  // The child exits 127 without having run: reap it here, synchronously, before anyone
  // who reaps children of this process (PID 1's Reaper) could learn of it.
  int status;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return make_error(failure_reason(f.step), path + ": " + describe_failure(f.step, f.err));
}

}  // namespace torgw
