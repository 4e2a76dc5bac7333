#include "socks/privdrop.h"

#include "common/spawn.h"

#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace torgw::socks {

Result<Identity> lookup_user(const std::string& name) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* res = nullptr;
  int rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &res);
  if (rc != 0 || res == nullptr) return make_error("privdrop.no_user", "user '" + name + "' does not exist");
  return Identity{name, pw.pw_uid, pw.pw_gid};
}

Result<gid_t> lookup_group(const std::string& name) {
  std::vector<char> buf(16384);
  group gr{};
  group* res = nullptr;
  int rc = ::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &res);
  if (rc != 0 || res == nullptr) return make_error("privdrop.no_group", "group '" + name + "' does not exist");
  return gr.gr_gid;
}

Status set_no_new_privs() {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return make_error("privdrop.failed", std::string("PR_SET_NO_NEW_PRIVS: ") + std::strerror(errno));
  return {};
}

Status drop_privileges(const Identity& id) {
  if (id.uid == 0) return make_error("privdrop.failed", "refusing to 'drop' to uid 0 ('" + id.name + "')");
  if (auto step = torgw::drop_privileges(Credentials{id.uid, id.gid, {id.gid}}); step != SpawnStep::none)
    return make_error("privdrop.failed", describe_failure(step, errno));
  return set_no_new_privs();
}

}  // namespace torgw::socks
