// Starting a child the way PID 1 must: a complete, explicit environment, stdout/stderr
// on a pipe (or /dev/null), every other fd closed, its own process group, privileges
// dropped (setgroups, setgid, setuid) before exec, and a pidfd so the parent can watch
// it from an event loop without racing anyone who reaps children.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/result.h"

namespace torgw::supervisor {

struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups after the drop (usually none)
};

// uid and primary gid of a user name (getpwnam_r), no supplementary groups.
// Errors: process.no_such_user.
Result<Credentials> lookup_user(const std::string& name);

struct SpawnSpec {
  std::string path;                  // absolute path of the executable
  std::vector<std::string> argv;     // argv[0] included
  std::vector<std::string> env;      // the whole environment: nothing is inherited
  int output_fd = -1;                // becomes fds 1 and 2; -1: /dev/null
  std::optional<Credentials> creds;  // drop to these before exec
  std::string cwd = "/";
  bool new_process_group = true;     // so a terminal's ^C reaches us, not the child
  bool die_with_parent = true;       // PR_SET_PDEATHSIG(SIGKILL), set after the drop
};

struct Child {
  pid_t pid = -1;
  UniqueFd pidfd;  // readable once the child has exited (pidfd_open)
};

// fork + exec. A failure in the child before exec (chdir, setuid, execve, ...) is
// reported here, with the step and errno, and the child is reaped.
// Errors: process.spawn_failed (detail: "<step>: <strerror>").
Result<Child> spawn(const SpawnSpec& spec);

// The exit status of an exited child, reaped through its pidfd (WNOHANG): nullopt if it
// is still running. If someone else reaped it first (PID 1's reaper), -1.
std::optional<int> try_reap(const Child& c);

// "exited 1", "killed by SIGKILL", "status -1 (reaped elsewhere)".
std::string describe_status(int wait_status);

}  // namespace torgw::supervisor
