// Privilege drop for torgw-socks: it binds its listener as root (a privileged port, a
// socket in a root-owned directory), then becomes an ordinary user for good.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/result.h"

namespace torgw::socks {

struct Identity {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

// Errors: privdrop.no_user.
Result<Identity> lookup_user(const std::string& name);
// Errors: privdrop.no_group.
Result<gid_t> lookup_group(const std::string& name);

// As root: torgw::drop_privileges() (common/spawn.h) to uid and gid with no other
// group, then PR_SET_NO_NEW_PRIVS. Call it while the process has one thread: the
// capability sets are per thread. Errors: privdrop.failed (the process must not
// continue).
Status drop_privileges(const Identity& id);

// PR_SET_NO_NEW_PRIVS alone (when not started as root).
Status set_no_new_privs();

// The syscall allowlist the running relay lives under (socks/seccomp.cpp, docs/socks.md
// "Syscall filter"): anything else kills the whole process (SECCOMP_RET_KILL_PROCESS;
// the kernel logs it). Install it after the privilege drop (it needs no_new_privs or
// CAP_SYS_ADMIN) and before the first client byte. Errors: seccomp.failed.
Status install_syscall_filter();
// False in sanitizer builds, whose runtimes need syscalls the relay does not (LSan's
// ptrace at exit): there install_syscall_filter() does nothing.
bool syscall_filter_supported();

}  // namespace torgw::socks
