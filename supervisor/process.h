// tor's process as the supervisor runs it: started by torgw::spawn() (common/spawn.h)
// with a pidfd, so the supervisor can watch it from its event loop without racing
// anyone who reaps children (torgw-init's Reaper), and reaped through that pidfd.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "common/fd.h"
#include "common/result.h"
#include "common/spawn.h"

namespace torgw::supervisor {

// uid and primary gid of a user name (getpwnam_r), no supplementary groups.
// Errors: process.no_such_user.
Result<Credentials> lookup_user(const std::string& name);

struct Child {
  pid_t pid = -1;
  UniqueFd pidfd;  // readable once the child has exited (pidfd_open)
};

// torgw::spawn() plus a pidfd, opened before returning to an event loop whose reaper
// (torgw-init's) could otherwise reap the child first.
// Errors: process.spawn_failed (detail: "<path>: <step>: <strerror>").
Result<Child> spawn_with_pidfd(const SpawnSpec& spec);

// The exit status of an exited child, reaped through its pidfd (WNOHANG): nullopt if it
// is still running. If someone else reaped it first (PID 1's reaper), -1.
std::optional<int> try_reap(const Child& c);

// "exited 1", "killed by SIGKILL", "status -1 (reaped elsewhere)".
std::string describe_status(int wait_status);

}  // namespace torgw::supervisor
