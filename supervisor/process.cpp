#include "supervisor/process.h"

#include <pwd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace torgw::supervisor {

Result<Credentials> lookup_user(const std::string& name) {
  passwd pw{};
  passwd* res = nullptr;
  std::vector<char> buf(16384);
  int rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &res);
  if (rc != 0 || res == nullptr) return make_error("process.no_such_user", name);
  return Credentials{pw.pw_uid, pw.pw_gid, {}};
}

Result<Child> spawn_with_pidfd(const SpawnSpec& spec) {
  auto pid = torgw::spawn(spec);
  if (!pid) return make_error("process.spawn_failed", pid.error().detail);
  Child c;
  c.pid = *pid;
  c.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, *pid, 0)));  // always close-on-exec
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
  if (rc < 0) return -1;                    // ECHILD: reaped by someone else
  if (si.si_pid == 0) return std::nullopt;  // still running
  if (si.si_code == CLD_EXITED) return W_EXITCODE(si.si_status, 0);
  return si.si_status & 0x7f;  // killed/dumped: the signal, as a wait status
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
