// Starting a process and dropping privileges, done once for every module: torgw-init's
// children, the supervisor's tor, and torgw-socks dropping its own root.
//
// spawn() is fork + prepare + drop + exec with an error pipe: what the child must not
// inherit (signal dispositions and mask, fds, environment, session, capabilities) is
// reset explicitly, and a failure between fork and exec comes back as an Error naming
// the step, not as a child that silently exits 127.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/secret.h"

namespace torgw {

struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // the complete supplementary group list after the drop
};

// Each thing spawn() or drop_privileges() does that can fail, so a failure says where.
enum class SpawnStep : int {
  none = 0,
  // spawn() only
  signals,
  session,
  stdio,
  parent_death_signal,
  no_new_privs,
  chdir,
  exec,
  // drop_privileges()
  bounding_set,
  ambient_set,
  setgroups,
  setgid,
  setuid,
  ids_unchanged,    // the kernel accepted the calls, yet the ids are not the requested ones
  capabilities,     // clearing the remaining (inheritable) capabilities
  root_regainable,  // setuid(0) or seteuid(0) still succeeds after the drop
  capabilities_left,
};

// "setgroups: Operation not permitted", "root could be regained" (err 0), ...
std::string describe_failure(SpawnStep step, int err);

// Becomes `creds` for good, in this thread of this process. Async-signal-safe (only
// system calls, no allocation): it runs between fork and exec.
// For a uid other than 0: first empties the capability bounding set and the ambient set
// (while CAP_SETPCAP is still held), so nothing this process execs can gain a
// capability back; then setgroups, setresgid, setresuid; then verifies instead of
// assuming: the ids are as requested, no capability is left (the inheritable set,
// which setresuid keeps, is cleared), and root cannot be regained.
// For uid 0 only the group and id calls run: a root child keeps root's capabilities.
// Returns SpawnStep::none, or the step that failed with errno set (0 for the checks).
SpawnStep drop_privileges(const Credentials& creds) noexcept;

struct SpawnSpec {
  std::string path;               // absolute path of the executable; empty: argv[0]
  std::vector<std::string> argv;  // argv[0] included
  std::vector<std::string> env;   // the whole environment: nothing is inherited
  // Bytes the child reads on stdin, then EOF (e.g. a config holding a password: never in
  // argv, which /proc shows to everyone, never in a file). At most 64 KiB, one pipe
  // buffer, so they are written before fork without blocking. Null: /dev/null.
  const SecretBytes* stdin_secret = nullptr;
  // fds 1 and 2 of the child; -1: /dev/null. An fd that is not open (PID 1 may start
  // without a console on 1 and 2) also becomes /dev/null instead of failing the spawn.
  int stdout_fd = -1;
  int stderr_fd = -1;
  std::optional<Credentials> creds;  // drop_privileges() to these before exec
  std::string cwd = "/";
  std::optional<mode_t> umask;   // nullopt: the parent's
  bool die_with_parent = false;  // PR_SET_PDEATHSIG(SIGKILL), set after the drop
};

// fork + exec. In the child, before exec: default signal dispositions and an empty mask
// (a parent reading signals through signalfd blocks them), a new session (so a
// terminal's ^C or a signal to our process group reaches us, not the child, and
// killing the child's process group reaches its descendants), stdio as the spec says,
// every other fd closed on exec, drop_privileges() when creds are given, the parent
// death signal, PR_SET_NO_NEW_PRIVS (nothing the child execs may gain privileges),
// umask, cwd.
// A failure in the child before exec comes back here with the child already reaped
// (it never ran, so nobody else needs to see it exit): reason spawn.<what>_failed
// (spawn.exec_failed, spawn.drop_failed, spawn.chdir_failed, ...), detail
// "<path>: <step>: <strerror>". Errors before fork: spawn.bad_argv,
// spawn.stdin_too_large, spawn.pipe_failed, spawn.stdin_failed, spawn.stdio_failed,
// spawn.fork_failed.
// The caller owns the returned child: whoever reaps children in this process must
// learn of the pid before it can see the exit (torgw-init: Reaper::watch).
Result<pid_t> spawn(const SpawnSpec& spec);

}  // namespace torgw
