#include "socks/privdrop.h"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace torgw::socks {
namespace {

Error failed(const std::string& what) {
  return make_error("privdrop.failed", what + ": " + std::strerror(errno));
}

// Highest capability number this kernel knows.
int last_cap() {
  int last = CAP_LAST_CAP;
  // Newer kernels may know more than our headers: probe upward.
  while (::prctl(PR_CAPBSET_READ, last + 1, 0, 0, 0) >= 0) ++last;
  return last;
}

bool any_capability() {
  __user_cap_header_struct hdr{};
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  hdr.pid = 0;
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &hdr, data) != 0) return true;
  for (auto& d : data)
    if (d.effective || d.permitted || d.inheritable) return true;
  return false;
}

}  // namespace

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
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return failed("PR_SET_NO_NEW_PRIVS");
  return {};
}

Status drop_privileges(const Identity& id) {
  if (id.uid == 0) return make_error("privdrop.failed", "refusing to 'drop' to uid 0 ('" + id.name + "')");
  // Empty the bounding set while we still hold CAP_SETPCAP: nothing this process or its
  // (nonexistent) children execute can gain a capability back.
  int last = last_cap();
  for (int cap = 0; cap <= last; ++cap)
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return failed("PR_CAPBSET_DROP");
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    return failed("PR_CAP_AMBIENT_CLEAR_ALL");
  gid_t groups[1] = {id.gid};
  if (::setgroups(1, groups) != 0) return failed("setgroups");
  if (::setresgid(id.gid, id.gid, id.gid) != 0) return failed("setresgid");
  if (::setresuid(id.uid, id.uid, id.uid) != 0) return failed("setresuid");
  // Verify, do not assume.
  uid_t r, e, s;
  gid_t rg, eg, sg;
  ::getresuid(&r, &e, &s);
  ::getresgid(&rg, &eg, &sg);
  if (r != id.uid || e != id.uid || s != id.uid || rg != id.gid || eg != id.gid || sg != id.gid)
    return make_error("privdrop.failed", "ids did not change as requested");
  if (::setuid(0) == 0 || ::seteuid(0) == 0) return make_error("privdrop.failed", "could regain root after dropping");
  if (any_capability()) return make_error("privdrop.failed", "capabilities left after dropping");
  return set_no_new_privs();
}

}  // namespace torgw::socks
