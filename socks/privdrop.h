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

}  // namespace torgw::socks
