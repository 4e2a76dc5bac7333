#include "init/metadata_helper.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "common/secret.h"
#include "config/metadata.h"

namespace torgw::init {

namespace {

bool write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    s.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Privileges this process must not have; "" when it has none.
std::string privileges_held() {
  uid_t r, e, s;
  gid_t gr, ge, gs;
  if (::getresuid(&r, &e, &s) != 0 || ::getresgid(&gr, &ge, &gs) != 0) return "getresuid failed";
  if (r == 0 || e == 0 || s == 0) return "runs as uid 0";
  if (gr == 0 || ge == 0 || gs == 0) return "runs as gid 0";
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2]{};
  if (::syscall(SYS_capget, &h, d) != 0) return std::string("capget: ") + std::strerror(errno);
  for (const auto& x : d)
    if (x.effective || x.permitted || x.inheritable) return "holds capabilities";
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap)
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1) return "holds ambient capabilities";
  if (::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) return "no_new_privs is not set";
  return {};
}

bool parse_ms(const std::string& s, long& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && out >= 0;
}

}  // namespace

int metadata_helper_main(const std::vector<std::string>& args) {
  config::MetadataOptions o;
  o.gce = o.hetzner = false;
  for (std::size_t i = 0; i < args.size(); i += 2) {
    if (i + 1 >= args.size()) {
      std::fprintf(stderr, "torgw-init --metadata-helper: %s needs a value\n", args[i].c_str());
      return 2;
    }
    const std::string& k = args[i];
    const std::string& v = args[i + 1];
    long n = 0;
    if (k == "--url" && v.rfind("http://", 0) == 0) {
      o.base_url = v;
    } else if (k == "--providers") {
      for (std::string_view rest = v; !rest.empty();) {
        auto comma = rest.find(',');
        auto p = rest.substr(0, comma);
        if (p == "gce") o.gce = true;
        else if (p == "hetzner") o.hetzner = true;
        else return std::fprintf(stderr, "torgw-init --metadata-helper: unknown provider\n"), 2;
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      }
    } else if (k == "--timeout-ms" && parse_ms(v, n) && n > 0) {
      o.timeout = std::chrono::milliseconds(n);
    } else if (k == "--attempts" && parse_ms(v, n) && n > 0 && n <= 100) {
      o.attempts = static_cast<int>(n);
    } else if (k == "--backoff-ms" && parse_ms(v, n)) {
      o.backoff = std::chrono::milliseconds(n);
    } else {
      std::fprintf(stderr, "torgw-init --metadata-helper: bad argument %s\n", k.c_str());
      return 2;
    }
  }
  if (auto held = privileges_held(); !held.empty()) {
    // Said on the pipe too, so PID 1's FATAL names it.
    write_all(1, config::format_metadata_wire(
                     Result<config::MetadataResult>(make_error("metadata:helper_privileged", held))));
    std::fprintf(stderr, "torgw-init --metadata-helper: refusing to run: %s\n", held.c_str());
    return 0;  // a report was written: it is the error
  }
  std::string out = config::format_metadata_wire(config::fetch_metadata(o));
  const bool ok = write_all(1, out);
  wipe(out.data(), out.size());  // may hold a secret (backend_password, identity_salt)
  return ok ? 0 : 2;
}

}  // namespace torgw::init
