#include "init/machine.h"

#include "config/text.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/capability.h>
#include <linux/input.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <map>

namespace torgw::init {

namespace {

std::string errno_text(int e) { return std::strerror(e); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

// ---- mounts -------------------------------------------------------------------------------

std::vector<MountSpec> early_mounts(uid_t tor_uid, gid_t tor_gid) {
  const unsigned long hard = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  return {
      {"proc", "/proc", "proc", hard, "hidepid=invisible", false},
      {"sysfs", "/sys", "sysfs", hard | MS_RDONLY, "", false},
      {"devtmpfs", "/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755", false},
      {"devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620", false, true},
      {"tmpfs", "/dev/shm", "tmpfs", hard, "mode=1777,size=16m", false, true},
      {"tmpfs", "/run", "tmpfs", hard, "mode=0755,size=32m", false},
      {"tmpfs", "/tmp", "tmpfs", hard, "mode=1777,size=32m", false},
      {"configfs", "/sys/kernel/config", "configfs", hard, "", true},
      {"tmpfs", "/var/lib/tor", "tmpfs", hard,
       "mode=0700,size=64m,uid=" + std::to_string(tor_uid) + ",gid=" + std::to_string(tor_gid), false},
  };
}

namespace {

// The filesystem type mounted exactly at `target`, from /proc/self/mountinfo; "" if
// `target` is not a mount point.
std::string mounted_type(const std::string& target) {
  std::ifstream f("/proc/self/mountinfo");
  std::string line, found;
  while (std::getline(f, line)) {
    auto w = words(line);
    // id parent major:minor root mountpoint options [optional...] - fstype source superopts
    if (w.size() < 7 || w[4] != target) continue;
    for (std::size_t i = 6; i + 1 < w.size(); ++i)
      if (w[i] == "-") {
        found = std::string(w[i + 1]);  // the last one wins (stacked mounts)
        break;
      }
  }
  return found;
}

}  // namespace

Status mount_all(const std::vector<MountSpec>& specs) {
  for (const auto& m : specs) {
    // reasons: mount.proc, mount.sys, mount.dev, mount.dev/pts, mount.dev/shm, mount.run, mount.tmp,
    // reasons: mount.sys/kernel/config, mount.var/lib/tor (early_mounts' targets)
    const std::string reason = "mount." + m.target.substr(1);
    if (m.create && ::mkdir(m.target.c_str(), 0755) != 0 && errno != EEXIST)
      return make_error(reason, "mkdir: " + errno_text(errno));
    struct stat st;
    if (::stat(m.target.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      if (m.optional) continue;
      return make_error(reason, "mount point missing on the read-only root");
    }
    if (m.target != "/proc" && mounted_type(m.target) == m.fstype) continue;
    const char* data = m.data.empty() ? nullptr : m.data.c_str();
    if (::mount(m.source.c_str(), m.target.c_str(), m.fstype.c_str(), m.flags, data) == 0) continue;
    int e = errno;
    // hidepid needs Linux 5.8; fall back rather than run without /proc.
    if (m.fstype == "proc" && e == EINVAL &&
        ::mount(m.source.c_str(), m.target.c_str(), m.fstype.c_str(), m.flags, nullptr) == 0)
      continue;
    if (m.optional && (e == ENODEV || e == ENOENT)) continue;
    return make_error(reason, errno_text(e));
  }
  return {};
}

Status ensure_root_readonly() {
  struct statvfs sv;
  if (::statvfs("/", &sv) != 0) return make_error("mount.root_rw", errno_text(errno));
  if (sv.f_flag & ST_RDONLY) return {};
  if (::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_RDONLY, nullptr) != 0 &&
      ::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0)
    return make_error("mount.root_rw", "cannot remount / read-only: " + errno_text(errno));
  return {};
}

Status check_dir(const std::string& path, uid_t uid, gid_t gid, unsigned mode) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return make_error("mount.state_dir_missing", path);
  if (st.st_uid != uid || st.st_gid != gid)
    return make_error("mount.state_dir_owner",
                      path + " is " + std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid));
  if ((st.st_mode & 07777) != mode) return make_error("mount.state_dir_mode", path);
  return {};
}

// ---- modules ------------------------------------------------------------------------------

Result<std::vector<std::string>> parse_module_list(std::string_view text) {
  std::vector<std::string> out;
  std::size_t lineno = 0;
  std::optional<Error> error;
  text::for_each_line(text, [&](std::string_view raw) {
    ++lineno;
    if (error) return;
    auto line = trim(raw);
    if (line.empty() || line.front() == '#') return;
    if (line.front() != '/' || line.find_first_of(" \t") != std::string_view::npos || line.size() > 4096 ||
        line.size() < 4 || line.substr(line.size() - 3) != ".ko")
      error = make_error("modules.syntax", "line " + std::to_string(lineno) + ": expected an absolute path to a .ko");
    else out.emplace_back(line);
  });
  if (error) return *error;
  return out;
}

Result<int> load_modules(const std::vector<std::string>& paths) {
  int loaded = 0;
  for (const auto& p : paths) {
    UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return make_error("modules.load_failed", p + ": " + errno_text(errno));
    if (syscall(SYS_finit_module, fd.get(), "", 0) != 0 && errno != EEXIST)
      return make_error("modules.load_failed", p + ": " + errno_text(errno));
    ++loaded;
  }
  return loaded;
}

// ---- network --------------------------------------------------------------------------------

Status bring_up_loopback() {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s) return make_error("net.lo", errno_text(errno));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0) return make_error("net.lo", errno_text(errno));
  if (ifr.ifr_flags & IFF_UP) return {};
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (ioctl(s.get(), SIOCSIFFLAGS, &ifr) != 0) return make_error("net.lo", errno_text(errno));
  return {};
}

std::vector<Interface> list_interfaces() {
  std::map<std::string, Interface> by_name;
  ifaddrs* ifa = nullptr;
  if (getifaddrs(&ifa) != 0) return {};
  for (ifaddrs* p = ifa; p; p = p->ifa_next) {
    if (!p->ifa_name || std::string_view(p->ifa_name) == "lo") continue;
    auto& i = by_name[p->ifa_name];
    i.name = p->ifa_name;
    i.up = i.up || (p->ifa_flags & IFF_UP);
    if (p->ifa_addr && p->ifa_addr->sa_family == AF_INET && i.ipv4.empty()) {
      char buf[INET_ADDRSTRLEN];
      auto* sin = reinterpret_cast<sockaddr_in*>(p->ifa_addr);
      if (inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf)) i.ipv4 = buf;
    }
  }
  freeifaddrs(ifa);
  std::vector<Interface> out;
  for (auto& [n, i] : by_name) out.push_back(i);
  return out;
}

std::string resolv_conf_from_pnp(std::string_view pnp) {
  std::string ns, search;
  int count = 0;
  text::for_each_line(pnp, [&](std::string_view raw) {
    auto w = words(raw);
    if (w.size() != 2) return;
    if (w[0] == "nameserver") {
      in_addr a{};
      std::string ip(w[1]);
      // inet_pton stops at an embedded NUL: write back the canonical form, never the input.
      char canon[INET_ADDRSTRLEN];
      if (ip.find('\0') != std::string::npos || inet_pton(AF_INET, ip.c_str(), &a) != 1 || a.s_addr == 0 ||
          count >= 3 || !inet_ntop(AF_INET, &a, canon, sizeof canon))
        return;
      ns += "nameserver " + std::string(canon) + "\n";
      ++count;
    } else if (w[0] == "domain" && search.empty() && w[1].size() <= 253) {
      bool ok = true;
      for (char c : w[1]) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.');
      if (ok) search = "search " + std::string(w[1]) + "\n";
    }
  });
  if (ns.empty()) return {};
  return "# written by torgw-init from the kernel's DHCP answer (/proc/net/pnp)\n" + search + ns;
}

// ---- clock, RNG -----------------------------------------------------------------------------

Status check_clock(std::int64_t now_unix, std::int64_t build_time_unix) {
  if (now_unix < build_time_unix)
    return make_error("clock.before_build_time",
                      "clock says " + std::to_string(now_unix) + ", built at " + std::to_string(build_time_unix));
  return {};
}

bool rng_ready() {
  unsigned char b;
  return getrandom(&b, 1, GRND_NONBLOCK) == 1;
}

void wait_rng() {
  unsigned char b;
  while (getrandom(&b, 1, 0) != 1 && errno == EINTR) {
  }
}

// ---- consoles -------------------------------------------------------------------------------

std::vector<std::string> parse_consoles(std::string_view text) {
  std::vector<std::string> out;
  text::for_each_line(text, [&](std::string_view raw) {
    auto w = words(raw);
    if (w.empty() || w[0].size() > 32) return;
    bool ok = true;
    for (char c : w[0]) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-');
    if (ok) out.emplace_back(w[0]);
  });
  return out;
}

namespace {
bool g_placeholder[3] = {false, false, false};
}

void reserve_stdio() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) >= 0) continue;
    int p = ::open("/", O_RDONLY | O_PATH);  // lands on the lowest free fd: this one
    if (p == fd) g_placeholder[fd] = true;
    else if (p >= 0) ::close(p);
  }
}

void ensure_stdio() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (g_placeholder[fd]) {
      ::close(fd);
      g_placeholder[fd] = false;
    }
    if (fcntl(fd, F_GETFD) >= 0) continue;
    int c = ::open("/dev/console", O_RDWR | O_NOCTTY);
    if (c < 0) c = ::open("/dev/null", O_RDWR);
    if (c < 0) return;
    if (c != fd) {
      dup2(c, fd);
      ::close(c);
    }
  }
}

// ---- power button ----------------------------------------------------------------------------

bool has_power_key(const std::uint8_t* bits, std::size_t len) {
  const std::size_t byte = KEY_POWER / 8;
  return byte < len && (bits[byte] & (1u << (KEY_POWER % 8)));
}

bool power_pressed(const std::uint8_t* data, std::size_t len) {
  for (std::size_t off = 0; off + sizeof(input_event) <= len; off += sizeof(input_event)) {
    input_event ev;
    std::memcpy(&ev, data + off, sizeof ev);
    if (ev.type == EV_KEY && ev.code == KEY_POWER && ev.value == 1) return true;
  }
  return false;
}

std::vector<UniqueFd> open_power_buttons(const std::string& dir) {
  std::vector<UniqueFd> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (std::strncmp(e->d_name, "event", 5) != 0) continue;
    UniqueFd fd(::open((dir + "/" + e->d_name).c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!fd) continue;
    std::uint8_t bits[KEY_MAX / 8 + 1] = {};
    int n = ioctl(fd.get(), EVIOCGBIT(EV_KEY, sizeof bits), bits);
    if (n > 0 && has_power_key(bits, static_cast<std::size_t>(n))) out.push_back(std::move(fd));
  }
  ::closedir(d);
  return out;
}

// ---- the end ---------------------------------------------------------------------------------

const char* to_string(Action a) {
  switch (a) {
    case Action::PowerOff: return "poweroff";
    case Action::Reboot: return "reboot";
    case Action::Halt: return "halt";
  }
  return "poweroff";
}

std::optional<Action> parse_action(std::string_view s) {
  if (s == "poweroff") return Action::PowerOff;
  if (s == "reboot") return Action::Reboot;
  if (s == "halt") return Action::Halt;
  return std::nullopt;
}

std::uint64_t pid1_kept_capabilities() {
  auto bit = [](int cap) { return std::uint64_t{1} << cap; };
  return bit(CAP_SYS_BOOT) | bit(CAP_KILL) | bit(CAP_SETUID) | bit(CAP_SETGID) | bit(CAP_SETPCAP) |
         bit(CAP_DAC_OVERRIDE);
}

std::string capability_names(std::uint64_t mask) {
  static const std::map<int, const char*> names{{CAP_CHOWN, "chown"},
                                                {CAP_DAC_OVERRIDE, "dac_override"},
                                                {CAP_DAC_READ_SEARCH, "dac_read_search"},
                                                {CAP_FOWNER, "fowner"},
                                                {CAP_KILL, "kill"},
                                                {CAP_SETGID, "setgid"},
                                                {CAP_SETUID, "setuid"},
                                                {CAP_SETPCAP, "setpcap"},
                                                {CAP_NET_ADMIN, "net_admin"},
                                                {CAP_NET_RAW, "net_raw"},
                                                {CAP_SYS_ADMIN, "sys_admin"},
                                                {CAP_SYS_BOOT, "sys_boot"},
                                                {CAP_SYS_PTRACE, "sys_ptrace"}};
  std::string out;
  for (int cap = 0; cap < 64; ++cap) {
    if (!(mask & (std::uint64_t{1} << cap))) continue;
    auto it = names.find(cap);
    out += (out.empty() ? "" : ",") + (it != names.end() ? std::string(it->second) : "cap_" + std::to_string(cap));
  }
  return out.empty() ? "none" : out;
}

Result<std::uint64_t> drop_capabilities(std::uint64_t keep) {
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2]{};
  if (::syscall(SYS_capget, &h, d) != 0)
    return make_error("init.capabilities", std::string("capget: ") + std::strerror(errno));
  const bool setpcap = d[0].effective & (1u << CAP_SETPCAP);
  // The bounding set first, while CAP_SETPCAP is still effective: nothing exec'd later
  // (and no file capability) can bring a dropped capability back.
  for (int cap = 0; setpcap && ::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; ++cap) {
    if (cap < 64 && (keep & (std::uint64_t{1} << cap))) continue;
    if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1 && ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0)
      return make_error("init.capabilities", "PR_CAPBSET_DROP " + std::to_string(cap) + ": " + std::strerror(errno));
  }
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);  // EINVAL on old kernels: nothing to clear
  const auto lo = static_cast<std::uint32_t>(keep), hi = static_cast<std::uint32_t>(keep >> 32);
  d[0].permitted &= lo;
  d[1].permitted &= hi;
  d[0].effective &= lo;
  d[1].effective &= hi;
  d[0].inheritable = d[1].inheritable = 0;
  if (::syscall(SYS_capset, &h, d) != 0)
    return make_error("init.capabilities", std::string("capset: ") + std::strerror(errno));
  __user_cap_data_struct after[2]{};
  if (::syscall(SYS_capget, &h, after) != 0)
    return make_error("init.capabilities", std::string("capget: ") + std::strerror(errno));
  const std::uint64_t eff = after[0].effective | (std::uint64_t{after[1].effective} << 32);
  const std::uint64_t perm = after[0].permitted | (std::uint64_t{after[1].permitted} << 32);
  if ((eff | perm) & ~keep)
    return make_error("init.capabilities", "capabilities left: " + capability_names((eff | perm) & ~keep));
  return eff;
}

Status disable_cad() {
  if (::reboot(RB_DISABLE_CAD) != 0 && errno != EINVAL) return make_error("init.cad", errno_text(errno));
  return {};
}

namespace {

void crash_handler(int sig) {
  // Async-signal-safe only: a preformatted line, write(), sync(), reboot().
  // reasons: init_crashed_<signal> (two decimal digits)
  char line[] = "\r\nTORGW FATAL=init_crashed_00\r\n";
  line[sizeof line - 4] = static_cast<char>('0' + sig % 10);
  line[sizeof line - 5] = static_cast<char>('0' + (sig / 10) % 10);
  ssize_t ignored = ::write(1, line, sizeof line - 1);
  (void)ignored;
  ::sync();
  ::reboot(RB_POWER_OFF);
  for (;;) pause();
}

}  // namespace

void install_crash_guard() {
  struct sigaction sa {};
  sa.sa_handler = crash_handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND | SA_NODEFER;
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) sigaction(sig, &sa, nullptr);
}

void final_reboot(Action a) {
  ::sync();
  int cmd = a == Action::Reboot ? RB_AUTOBOOT : a == Action::Halt ? RB_HALT_SYSTEM : RB_POWER_OFF;
  ::reboot(cmd);
  // Still here: reboot() failed. Exiting would panic the kernel; wait for the end.
  for (;;) pause();
}

}  // namespace torgw::init
