// The real torgw-init as PID 1 of a new PID + mount + network namespace, chrooted into
// a read-only test root built from our binaries and tor with exactly the libraries they
// load. What a VM would see, minus the kernel: in a child PID namespace, reboot() ends
// the namespace's init with SIGINT (power-off, halt) or SIGHUP (reboot), which the test
// (its parent) observes with waitpid().
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>
#include <termios.h>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "serial/serial.h"
#include "tests/metadata/metadata_server.h"
#include "tests/support/process.h"
#include "tests/support/tempdir.h"

using namespace torgw;
using namespace std::chrono_literals;
namespace tt = torgw::testing;
namespace fs = std::filesystem;

namespace {

constexpr uid_t kTorUid = 1101;
constexpr gid_t kTorGid = 1102;
constexpr uid_t kMetaUid = 1105;  // the image's torgw-meta is 102; any unused uid will do
// Fixed, because the server listens inside the namespace's own, fresh network namespace.
constexpr std::uint16_t kNsMetadataPort = 8080;
// The metadata-remote case: PID 1's namespace and a peer namespace on a veth pair.
constexpr const char* kWorldAddr = "10.79.0.1";
constexpr const char* kGuestAddr = "10.79.0.2";

bool is_root() { return geteuid() == 0; }

// Copies `host` into root at `inside`, and every shared library ldd names for it at its
// own path.
void install(const std::string& root, const std::string& host, const std::string& inside) {
  auto copy = [&](const std::string& from, const std::string& to) {
    fs::create_directories(fs::path(root + to).parent_path());
    fs::copy_file(fs::canonical(from), root + to, fs::copy_options::overwrite_existing);
    fs::permissions(root + to, fs::perms(0755));
  };
  copy(host, inside);
  auto r = tt::run({tt::find_program("ldd"), host});
  REQUIRE(r.exit_code == 0);
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    std::string path;
    auto arrow = line.find("=> ");
    if (arrow != std::string::npos) path = line.substr(arrow + 3, line.find(" (") - arrow - 3);
    else if (line.find('/') != std::string::npos) path = line.substr(line.find('/'), line.find(" (") - line.find('/'));
    if (!path.empty() && path[0] == '/' && !fs::exists(root + path)) copy(path, path);
  }
}

// Built once per run: the read-only root every namespace boots from.
struct TestRoot {
  tt::TempDir dir{"pid1root"};
  std::string path = dir.path() + "/root";

  explicit TestRoot(bool with_tor_user = true) {
    for (const char* d :
         {"sbin", "usr/sbin", "etc/torgw", "etc/test", "proc", "sys", "dev", "run", "tmp", "var/lib/tor"})
      fs::create_directories(path + "/" + d);
    tt::write_file(path + "/etc/test/screen", "");  // a pty standing in for tty0 is bound here
    install(path, tt::binary_dir() + "/init/torgw-init", "/sbin/init");
    install(path, tt::find_program("tor"), "/usr/bin/tor");  // where the image puts it
    install(path, tt::binary_dir() + "/socks/torgw-socks", "/usr/bin/torgw-socks");
    tt::write_file(path + "/etc/passwd",
                   std::string("root:x:0:0:root:/:/sbin/nologin\n") +
                       (with_tor_user ? "tor:x:" + std::to_string(kTorUid) + ":" + std::to_string(kTorGid) +
                                            "::/var/lib/tor:/sbin/nologin\n"
                                      : std::string()) +
                       "torgw-socks:x:1103:1104::/nonexistent:/sbin/nologin\n"
                       "torgw-meta:x:" +
                       std::to_string(kMetaUid) + ":" + std::to_string(kMetaUid) + "::/nonexistent:/sbin/nologin\n");
    tt::write_file(path + "/etc/group", "root:x:0:\ntor:x:" + std::to_string(kTorGid) +
                                            ":\ntorgw-socks:x:1104:\n"
                                            "torgw-meta:x:" +
                                            std::to_string(kMetaUid) + ":\n");
    tt::write_file(path + "/etc/torgw/torgw.conf",
                   "# the image's defaults\nbackend=127.0.0.1:9050\nidentity=ephemeral\n");
    auto cmdline = [&](const std::string& name, const std::string& extra) {
      const bool own_metadata = extra.find("torgw.metadata=") != std::string::npos;
      tt::write_file(path + "/etc/test/" + name, "BOOT_IMAGE=/vmlinuz ro console=ttyS0 " +
                                                     std::string(own_metadata ? "" : "torgw.metadata=off ") +
                                                     "torgw.fatal_delay=0 " + extra + "\n");
    };
    cmdline("ok", "");
    cmdline("fatal", "torgw.onion_port=0");
    cmdline("fatal-reboot", "torgw.onion_port=0 torgw.fatal_action=reboot");
    cmdline("fatal-delay", "torgw.bogus_key=1 torgw.fatal_delay=2");
    cmdline("early-reboot", "torgw.fatal_action=reboot");
    cmdline("metadata", "torgw.metadata=auto torgw.metadata_url=http://127.0.0.1:" + std::to_string(kNsMetadataPort) +
                            " torgw.metadata_attempts=10 torgw.metadata_timeout=2 torgw.onion_port=84");
    // Metadata across a veth from another namespace: a destination off loopback, so the
    // firewall's self-test has something real to be refused by.
    cmdline("metadata-remote", "torgw.metadata=gce torgw.metadata_url=http://" + std::string(kWorldAddr) + ":" +
                                   std::to_string(kNsMetadataPort) +
                                   " torgw.metadata_attempts=10 torgw.metadata_timeout=2");
  }
};

TestRoot& test_root() {
  static TestRoot r;
  return r;
}

// An image whose /etc/passwd lacks the tor user.
TestRoot& broken_root() {
  static TestRoot r(false);
  return r;
}

struct CloneArgs {
  const char* root;
  const char* cmdline;
  int out_fd;
  int null_fd;
  const char* screen;  // host path of a pty standing in for tty0, or nullptr (--no-screen)
};

int ns_init_main(void* p) {
  auto* a = static_cast<CloneArgs*>(p);
  // Our own mount tree; nothing propagates back to the host.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(90);
  // The root is read-only, as the image's erofs.
  if (mount(a->root, a->root, nullptr, MS_BIND | MS_REC, nullptr) != 0) _exit(91);
  if (mount(nullptr, a->root, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0) _exit(92);
  // Never the host's own /dev/tty0 (the namespace's devtmpfs is the host's).
  if (a->screen &&
      mount(a->screen, (std::string(a->root) + "/etc/test/screen").c_str(), nullptr, MS_BIND, nullptr) != 0)
    _exit(95);
  if (chdir(a->root) != 0 || chroot(".") != 0 || chdir("/") != 0) _exit(93);
  dup2(a->null_fd, 0);
  dup2(a->out_fd, 1);
  dup2(a->out_fd, 2);
  std::string cmd = std::string("/etc/test/") + a->cmdline;
  char* argv[] = {const_cast<char*>("/sbin/init"),
                  const_cast<char*>("--cmdline"),
                  cmd.data(),
                  const_cast<char*>("--no-ttyS0"),
                  const_cast<char*>(a->screen ? "--screen=/etc/test/screen" : "--no-screen"),
                  nullptr};
  char* envp[] = {const_cast<char*>("HOME=/"), const_cast<char*>("TERM=linux"), nullptr};
  execve("/sbin/init", argv, envp);
  _exit(94);
}

// One booted namespace: torgw-init as its PID 1, output in a host file.
struct Pid1 {
  tt::TempDir dir{"pid1"};
  std::string out_path = dir.file("console");
  pid_t pid = -1;  // host pid of the namespace's init
  std::optional<int> status;

  // `screen`: a pty's path for tty0; `console_fd`: what fd 1 and 2 are instead of the
  // capture file (e.g. that same pty, as when the kernel's console is the screen).
  explicit Pid1(const std::string& cmdline, TestRoot& root = test_root(), const char* screen = nullptr,
                int console_fd = -1) {
    int out = console_fd >= 0 ? ::fcntl(console_fd, F_DUPFD_CLOEXEC, 3)
                              : ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    REQUIRE(out >= 0);
    CloneArgs a{root.path.c_str(), cmdline.c_str(), out, null_fd, screen};
    static std::vector<char> stack(1 << 20);
    pid = clone(ns_init_main, stack.data() + stack.size(), CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | SIGCHLD, &a);
    int e = errno;
    ::close(out);
    ::close(null_fd);
    INFO(std::strerror(e));
    REQUIRE(pid > 0);
  }
  ~Pid1() {
    if (pid > 0 && !status) {
      ::kill(pid, SIGKILL);  // ends the whole namespace
      int st;
      waitpid(pid, &st, 0);
    }
  }

  std::string console() const { return tt::read_file(out_path); }
  bool wait_marker(const std::string& key, std::chrono::milliseconds limit = 60s) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (console().find("\r\nTORGW " + key + "=") != std::string::npos) return true;
      if (ended(0ms)) return console().find("\r\nTORGW " + key + "=") != std::string::npos;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  bool ended(std::chrono::milliseconds limit) {
    if (status) return true;
    auto end = std::chrono::steady_clock::now() + limit;
    do {
      int st;
      pid_t r = waitpid(pid, &st, WNOHANG);
      if (r == pid) {
        status = st;
        return true;
      }
      std::this_thread::sleep_for(10ms);
    } while (std::chrono::steady_clock::now() < end);
    return false;
  }
  // The signal the kernel ended the namespace's init with (0 if it exited or lives).
  int end_signal() const { return status && WIFSIGNALED(*status) ? WTERMSIG(*status) : 0; }
  serial::Boot boot() const {
    auto p = serial::parse_log(console());
    REQUIRE(p.ok());
    REQUIRE(p->boots.size() == 1);
    return p->boots[0];
  }
  std::string in_root(const std::string& p) const { return "/proc/" + std::to_string(pid) + "/root" + p; }
};

// Mount point -> "fstype options" from the namespace's mountinfo.
std::map<std::string, std::string> mounts_of(pid_t pid) {
  std::map<std::string, std::string> out;
  std::ifstream f("/proc/" + std::to_string(pid) + "/mountinfo");
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::vector<std::string> w;
    std::string x;
    while (in >> x) w.push_back(x);
    auto dash = std::find(w.begin(), w.end(), "-");
    if (w.size() < 7 || dash == w.end() || dash + 1 == w.end()) continue;
    out[w[4]] = *(dash + 1) + " " + w[5];
  }
  return out;
}

// Host pids whose parent is `ppid`, with their state letter.
std::map<pid_t, char> children_of(pid_t ppid) {
  std::map<pid_t, char> out;
  DIR* d = opendir("/proc");
  while (dirent* e = readdir(d)) {
    pid_t p = atoi(e->d_name);
    if (p <= 0) continue;
    std::ifstream f("/proc/" + std::string(e->d_name) + "/stat");
    std::string s;
    std::getline(f, s);
    auto close = s.rfind(')');
    if (close == std::string::npos) continue;
    char state = s[close + 2];
    pid_t parent = atoi(s.c_str() + close + 4);
    if (parent == ppid) out[p] = state;
  }
  closedir(d);
  return out;
}

// Forks `n` processes inside the namespace of `init_pid` whose parent exits at once, so
// they are orphans of the namespace's init. Each runs `body` then _exits. A fork of this
// process inherits Catch's handlers for fatal signals; an orphan gets the default ones
// back first, so a signal that reaches it never reports as this test's own failure.
template <class Body>
void spawn_orphans(pid_t init_pid, int n, Body body) {
  pid_t helper = fork();
  REQUIRE(helper >= 0);
  if (helper == 0) {
    int ns = ::open(("/proc/" + std::to_string(init_pid) + "/ns/pid").c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWPID) != 0) _exit(10);
    pid_t mid = fork();  // the first process in the namespace
    if (mid < 0) _exit(11);
    if (mid == 0) {
      for (int i = 0; i < n; ++i) {
        pid_t c = fork();
        if (c == 0) {
          for (int sig : {SIGINT, SIGILL, SIGFPE, SIGSEGV, SIGTERM, SIGABRT}) ::signal(sig, SIG_DFL);
          body(i);
          _exit(0);
        }
        if (c < 0) _exit(12);
      }
      _exit(0);  // orphans them all
    }
    int st;
    waitpid(mid, &st, 0);
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 13);
  }
  int st;
  REQUIRE(waitpid(helper, &st, 0) == helper);
  REQUIRE(WIFEXITED(st));
  REQUIRE(WEXITSTATUS(st) == 0);
}

// A pty standing in for tty0: raw (bytes as written), drained by a thread so a write
// by torgw-init never waits.
struct PtyCapture {
  int master = -1;
  int slave = -1;
  std::string path;
  std::mutex mu;
  std::string data;
  std::atomic<bool> stop{false};
  std::thread reader;

  PtyCapture() {
    master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    REQUIRE(master >= 0);
    REQUIRE(::grantpt(master) == 0);
    REQUIRE(::unlockpt(master) == 0);
    path = ::ptsname(master);
    slave = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    REQUIRE(slave >= 0);
    termios t{};
    REQUIRE(::tcgetattr(slave, &t) == 0);
    ::cfmakeraw(&t);
    REQUIRE(::tcsetattr(slave, TCSANOW, &t) == 0);
    ::fcntl(master, F_SETFL, ::fcntl(master, F_GETFL) | O_NONBLOCK);
    reader = std::thread([this] {
      char buf[4096];
      while (!stop) {
        ssize_t n = ::read(master, buf, sizeof buf);
        if (n > 0) {
          std::lock_guard<std::mutex> l(mu);
          data.append(buf, static_cast<std::size_t>(n));
        } else {
          std::this_thread::sleep_for(5ms);
        }
      }
    });
  }
  ~PtyCapture() {
    stop = true;
    reader.join();
    ::close(slave);
    ::close(master);
  }
  std::string text() {
    std::lock_guard<std::mutex> l(mu);
    return data;
  }
  bool wait_for(const std::string& what, std::chrono::milliseconds limit = 60s) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (text().find(what) != std::string::npos) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
};

std::size_t count_of(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

// Every marker line of a console's output, in order.
std::vector<std::string> marker_lines(const std::string& out) {
  std::vector<std::string> lines;
  std::istringstream in(out);
  std::string l;
  while (std::getline(in, l)) {
    while (!l.empty() && l.back() == '\r') l.pop_back();
    if (l.rfind("TORGW ", 0) == 0) lines.push_back(l);
  }
  return lines;
}

#define REQUIRE_ROOT()                                                                         \
  if (!is_root()) {                                                                            \
    TORGW_SKIP(torgw::testing::Needs::root, "PID 1 in namespaces needs root (CAP_SYS_ADMIN)"); \
  }

}  // namespace

TEST_CASE("PID 1: mounts, read-only root, tor state dir tor:tor 0700, loopback up; SIGTERM powers off") {
  REQUIRE_ROOT();
  Pid1 ns("ok");
  REQUIRE(ns.wait_marker("INIT_DONE"));
  INFO(ns.console());
  auto m = mounts_of(ns.pid);
  auto has = [&](const std::string& target, const std::string& type, std::vector<std::string> opts) {
    INFO(target << " -> " << (m.count(target) ? m[target] : "(not mounted)"));
    REQUIRE(m.count(target));
    if (!type.empty()) CHECK(m[target].rfind(type + " ", 0) == 0);
    for (auto& o : opts) CHECK(m[target].find(o) != std::string::npos);
  };
  has("/", "", {"ro"});
  has("/proc", "proc", {"nosuid", "nodev", "noexec"});
  has("/sys", "sysfs", {"ro", "nosuid", "nodev", "noexec"});
  has("/dev", "devtmpfs", {"nosuid", "noexec"});
  has("/dev/pts", "devpts", {"nosuid", "noexec"});
  has("/dev/shm", "tmpfs", {"nosuid", "nodev", "noexec"});
  has("/run", "tmpfs", {"nosuid", "nodev", "noexec"});
  has("/tmp", "tmpfs", {"nosuid", "nodev", "noexec"});
  has("/var/lib/tor", "tmpfs", {"nosuid", "nodev", "noexec"});

  struct stat st;
  REQUIRE(::stat(ns.in_root("/var/lib/tor").c_str(), &st) == 0);
  CHECK(st.st_uid == kTorUid);
  CHECK(st.st_gid == kTorGid);
  CHECK((st.st_mode & 07777) == 0700);
  // Nothing else is writable: the root refuses, the tmpfs accepts.
  CHECK(::open(ns.in_root("/etc/new").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644) < 0);
  CHECK(errno == EROFS);
  // lo is up in the namespace (its sysfs shows its own network namespace).
  auto flags = tt::read_file(ns.in_root("/sys/class/net/lo/flags"));
  CHECK((std::stoul(flags, nullptr, 16) & 0x1) == 0x1);

  auto b = ns.boot();
  CHECK(b.markers[0].key == "BOOT_ID");
  CHECK(b.markers[1].key == "MARKER_VERSION");
  CHECK(b.markers[2].key == "VERSION");
  CHECK(*b.get("INIT_MODE") == "pid1");
  CHECK(*b.get("MOUNTS") == "ok");
  CHECK(*b.get("TOR_STATE_DIR") == "tmpfs:1101:1102:0700");
  CHECK(*b.get("MODULES") == "0");
  CHECK(*b.get("NETWORK") == "none");  // only lo in a fresh network namespace
  CHECK(*b.get("CONFIG_SOURCES") == "cmdline,file");
  CHECK(*b.get("IDENTITY_BINDING") == "ephemeral");
  CHECK(b.get("ONION_HOSTNAME"));
  // The firewall, in the namespace's own network: the boot phase (metadata=off here:
  // no metadata rule), then the services phase with tor's and torgw-socks' uids. Every
  // destination is on loopback, so the self-test has nothing to be refused by.
  std::vector<std::string> fw;
  for (const auto& mk : b.markers)
    if (mk.key == "FIREWALL") fw.push_back(mk.value);
  CHECK(fw == std::vector<std::string>{"boot:9", "ready:11"});
  CHECK(*b.get("EGRESS_SELFTEST") == "no_target");
  if (auto nft = tt::find_program("nft"); !nft.empty()) {
    auto list = tt::run({tt::find_program("nsenter"), "--net=/proc/" + std::to_string(ns.pid) + "/ns/net", nft, "list",
                         "table", "inet", "torgw"});
    INFO(list.out << list.err);
    CHECK(list.out.find("flags owner") != std::string::npos);
    CHECK(list.out.find("meta skuid 1101 meta l4proto tcp accept") != std::string::npos);
    CHECK(list.out.find("meta skuid 1103 ip daddr 127.0.0.1 tcp dport 9050 accept") != std::string::npos);
  } else {
    TORGW_SKIP_IN_PART(tt::Needs::package, "nftables' nft is not installed: the table's contents are not read back");
  }
  std::fprintf(stderr, "pid1_test: INIT_DONE=%s ms after torgw-init started (mounts to identity)\n",
               b.get("INIT_DONE")->c_str());

  ::kill(ns.pid, SIGTERM);
  REQUIRE(ns.ended(60s));
  CHECK(ns.end_signal() == SIGINT);  // reboot(RB_POWER_OFF) in a child PID namespace
  auto after = ns.boot();
  CHECK(*after.get("SHUTDOWN") == "poweroff:sigterm");
  CHECK(after.get("SHUTDOWN_DONE"));
  CHECK(after.get("FATAL") == nullptr);
}

TEST_CASE("PID 1: config from GCE and Hetzner metadata served inside the namespace's network") {
  REQUIRE_ROOT();
  Pid1 ns("metadata");
  // Serve from inside the namespace's network namespace (lo only): a thread joins it,
  // brings lo up (torgw-init would too), and binds the server there. torgw-init's first
  // attempts may find nothing listening yet; its retries cover that.
  std::unique_ptr<tt::MetadataServer> server;
  std::string error;
  std::thread t([&] {
    int fd = ::open(("/proc/" + std::to_string(ns.pid) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
      error = "setns";
      return;
    }
    ::close(fd);
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) error = "lo flags";
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) error = "lo up";
    ::close(s);
    server = std::make_unique<tt::MetadataServer>(kNsMetadataPort);
    // The image's file pins backend: metadata may restate it (backend is tighten-only).
    server->serve_gce({{"torgw-backend", "127.0.0.1:9050"}, {"torgw-onion-port", "83"}});
    server->serve_hetzner("onion_port=82\nmax_connections=12\n");
  });
  t.join();
  REQUIRE(error.empty());
  bool done = ns.wait_marker("INIT_DONE");
  INFO(ns.console());
  REQUIRE(done);
  auto b = ns.boot();
  CHECK(*b.get("METADATA") == "gce:present,hetzner:present");
  CHECK(*b.get("CONFIG_SOURCES") == "cmdline,gce,hetzner,file");
  CHECK(*b.get("CONFIG_BACKEND") == "127.0.0.1:9050");  // GCE restating the image's file
  CHECK(b.get("CONFIG_ORIGIN")->find("backend@gce") != std::string::npos);
  CHECK(*b.get("CONFIG_ONION_PORT") == "84");       // cmdline over GCE and Hetzner
  CHECK(*b.get("CONFIG_MAX_CONNECTIONS") == "12");  // Hetzner over the default
  CHECK(*b.get("CONFIG_IDENTITY") == "ephemeral");  // the file
  CHECK(server->requests("/computeMetadata/v1/instance/attributes/torgw-backend") == 1);
  // PID 1 spoke no HTTP: every connection came from the helper, as torgw-meta.
  CHECK(server->client_uids() == std::set<long>{static_cast<long>(kMetaUid)});
  // After the boot PID 1 holds only what it keeps (docs/init.md), in every set.
  CHECK(*b.get("PID1_CAPABILITIES") == "dac_override,kill,setgid,setuid,setpcap,sys_boot");
  const std::string status = tt::read_file("/proc/" + std::to_string(ns.pid) + "/status");
  CHECK(status.find("CapEff:\t00000000004001e2") != std::string::npos);
  CHECK(status.find("CapBnd:\t00000000004001e2") != std::string::npos);
  ::kill(ns.pid, SIGTERM);
  REQUIRE(ns.ended(60s));
  CHECK(ns.end_signal() == SIGINT);
}

TEST_CASE("PID 1: the firewall lets root fetch metadata across a veth, refuses nobody: EGRESS_SELFTEST=blocked") {
  REQUIRE_ROOT();
  const auto ip = tt::find_program("ip");
  if (ip.empty()) TORGW_SKIP(tt::Needs::package, "iproute2's ip is not installed (scripts/setup)");
  Pid1 ns("metadata-remote");
  // A peer namespace with the metadata server, joined to PID 1's by a veth pair. PID 1's
  // first fetch attempts may find no route yet; its retries cover that.
  const std::string world = "torgw-pid1-world-" + std::to_string(::getpid());
  const std::string guest_ns = "/proc/" + std::to_string(ns.pid) + "/ns/net";
  struct Cleanup {
    std::string ip, world;
    ~Cleanup() { tt::run({ip, "netns", "del", world}); }
  } cleanup{ip, world};
  const std::string nsenter = tt::find_program("nsenter");
  for (const auto& cmd : std::vector<std::vector<std::string>>{
           {ip, "netns", "add", world},
           {ip, "-n", world, "link", "add", "vw", "type", "veth", "peer", "name", "vg"},
           {ip, "-n", world, "link", "set", "vg", "netns", std::to_string(ns.pid)},
           {ip, "-n", world, "addr", "add", std::string(kWorldAddr) + "/24", "dev", "vw"},
           {ip, "-n", world, "link", "set", "vw", "up"},
           {nsenter, "--net=" + guest_ns, ip, "addr", "add", std::string(kGuestAddr) + "/24", "dev", "vg"},
           {nsenter, "--net=" + guest_ns, ip, "link", "set", "vg", "up"},
       }) {
    auto r = tt::run(cmd);
    INFO(cmd[cmd.size() > 4 ? 4 : 0] << ": " << r.err);
    REQUIRE(r.exit_code == 0);
  }
  std::unique_ptr<tt::MetadataServer> server;
  std::thread t([&] {
    int fd = ::open(("/run/netns/" + world).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && setns(fd, CLONE_NEWNET) == 0) {
      server = std::make_unique<tt::MetadataServer>(kNsMetadataPort, kWorldAddr);
      server->serve_gce({{"torgw-backend", "127.0.0.1:9050"}});
    }
    if (fd >= 0) ::close(fd);
  });
  t.join();
  REQUIRE(server);
  bool done = ns.wait_marker("INIT_DONE");
  INFO(ns.console());
  REQUIRE(done);
  auto b = ns.boot();
  // Root fetched it through the boot phase's one rule (the metadata fetcher is PID 1).
  CHECK(*b.get("METADATA") == "gce:present");
  std::vector<std::string> fw;
  for (const auto& mk : b.markers)
    if (mk.key == "FIREWALL") fw.push_back(mk.value);
  CHECK(fw == std::vector<std::string>{"boot:10", "ready:12"});
  CHECK(*b.get("EGRESS_SELFTEST") == "blocked");
  CHECK(ns.console().find("egress self-test: nobody -> 10.79.0.1:8080 refused") != std::string::npos);
  ::kill(ns.pid, SIGTERM);
  REQUIRE(ns.ended(60s));
  CHECK(ns.end_signal() == SIGINT);
}

TEST_CASE("PID 1: 1,000 orphans are reaped, none left a zombie") {
  REQUIRE_ROOT();
  Pid1 ns("ok");
  REQUIRE(ns.wait_marker("INIT_DONE"));
  // tor and torgw-socks are init's own children: only what comes on top counts.
  const auto services = children_of(ns.pid);
  CHECK(services.size() == 2);
  auto t0 = std::chrono::steady_clock::now();
  spawn_orphans(ns.pid, 1000, [](int i) { usleep(static_cast<useconds_t>((i % 50) * 4000)); });
  auto t1 = std::chrono::steady_clock::now();
  // Every orphan was reparented to the namespace's init; wait until none is left,
  // zombie or not.
  auto end = std::chrono::steady_clock::now() + 60s;
  std::map<pid_t, char> left;
  do {
    left = children_of(ns.pid);
    for (const auto& [pid, state] : services) left.erase(pid);
    if (left.empty()) break;
    std::this_thread::sleep_for(50ms);
  } while (std::chrono::steady_clock::now() < end);
  CHECK(left.empty());
  auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  std::fprintf(stderr, "pid1_test: 1000 orphans forked in %lld ms, all reaped %lld ms later (they sleep <= 196 ms)\n",
               static_cast<long long>(ms(t1 - t0)), static_cast<long long>(ms(std::chrono::steady_clock::now() - t1)));
  // And init counted them: SIGUSR1 logs its status.
  ::kill(ns.pid, SIGUSR1);
  auto until = std::chrono::steady_clock::now() + 30s;
  while (ns.console().find("orphans reaped") == std::string::npos && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(20ms);
  CHECK(ns.console().find("orphans reaped 1000") != std::string::npos);
  ::kill(ns.pid, SIGTERM);
  REQUIRE(ns.ended(60s));
  CHECK(ns.end_signal() == SIGINT);
}

TEST_CASE("PID 1: ordered shutdown sends what remains SIGTERM before the end") {
  REQUIRE_ROOT();
  Pid1 ns("ok");
  REQUIRE(ns.wait_marker("INIT_DONE"));
  const auto services = children_of(ns.pid);  // tor and torgw-socks
  std::string flag = ns.dir.file("stray-got-term");
  // The stray says it is ready once its handler is in place: SIGTERM sent before that
  // would kill it unnoted (a CI run on a loaded machine lost that race).
  int ready[2];
  REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
  spawn_orphans(ns.pid, 1, [&](int) {
    // A stray process (as a leftover tor helper would be): note SIGTERM, then linger.
    static std::string path;
    path = flag;
    signal(SIGTERM, [](int) {
      int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd >= 0) ::close(fd);
      _exit(0);
    });
    if (::write(ready[1], "r", 1) != 1) _exit(14);
    for (;;) pause();
  });
  ::close(ready[1]);
  pollfd pfd{ready[0], POLLIN, 0};
  REQUIRE(::poll(&pfd, 1, 30000) == 1);
  char byte = 0;
  REQUIRE(::read(ready[0], &byte, 1) == 1);
  ::close(ready[0]);
  REQUIRE(children_of(ns.pid).size() == services.size() + 1);
  ::kill(ns.pid, SIGTERM);
  const bool ended = ns.ended(60s);
  INFO(ns.console());
  REQUIRE(ended);
  CHECK(ns.end_signal() == SIGINT);
  CHECK(fs::exists(flag));
}

TEST_CASE("PID 1: SIGPWR powers off, Ctrl-Alt-Del (SIGINT) reboots") {
  REQUIRE_ROOT();
  {
    Pid1 ns("ok");
    REQUIRE(ns.wait_marker("INIT_DONE"));
    ::kill(ns.pid, SIGPWR);
    REQUIRE(ns.ended(60s));
    CHECK(ns.end_signal() == SIGINT);
    CHECK(*ns.boot().get("SHUTDOWN") == "poweroff:sigpwr");
  }
  {
    Pid1 ns("ok");
    REQUIRE(ns.wait_marker("INIT_DONE"));
    ::kill(ns.pid, SIGINT);
    REQUIRE(ns.ended(60s));
    CHECK(ns.end_signal() == SIGHUP);  // reboot(RB_AUTOBOOT) in a child PID namespace
    CHECK(*ns.boot().get("SHUTDOWN") == "reboot:ctrl_alt_del");
  }
}

TEST_CASE("PID 1: a FATAL config powers off (or reboots when configured), no service started") {
  REQUIRE_ROOT();
  {
    Pid1 ns("fatal");
    REQUIRE(ns.ended(60s));
    CHECK(ns.end_signal() == SIGINT);
    auto b = ns.boot();
    INFO(ns.console());
    CHECK(*b.get("FATAL") == "onion_port:out_of_range");
    CHECK(b.get("IDENTITY_BINDING") == nullptr);
    CHECK(b.get("INIT_DONE") == nullptr);
  }
  {
    Pid1 ns("fatal-reboot");
    REQUIRE(ns.ended(60s));
    CHECK(ns.end_signal() == SIGHUP);
    CHECK(*ns.boot().get("FATAL") == "onion_port:out_of_range");
  }
}

TEST_CASE("PID 1: a machine-duty failure before the config is FATAL and honours the cmdline's fatal_action") {
  REQUIRE_ROOT();
  Pid1 ns("early-reboot", broken_root());
  REQUIRE(ns.ended(60s));
  INFO(ns.console());
  CHECK(ns.end_signal() == SIGHUP);  // reboot, as torgw.fatal_action=reboot asked
  auto b = ns.boot();
  CHECK(*b.get("FATAL") == "user.tor_missing");
  CHECK(b.markers[0].key == "BOOT_ID");  // the banner still comes first
  CHECK(b.get("MOUNTS") == nullptr);
  CHECK(b.get("CONFIG_SOURCES") == nullptr);
}

TEST_CASE("PID 1: the FATAL delay is honoured, and PID 1 stays up during it") {
  REQUIRE_ROOT();
  Pid1 ns("fatal-delay");
  REQUIRE(ns.wait_marker("FATAL"));
  auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(ns.ended(1000ms));
  REQUIRE(ns.ended(60s));
  CHECK(std::chrono::steady_clock::now() - t0 >= 1500ms);
  CHECK(ns.end_signal() == SIGINT);
  CHECK(*ns.boot().get("FATAL") == "bogus_key:unknown_key");
}

TEST_CASE("PID 1: a crash of PID 1 itself powers off with FATAL instead of panicking") {
  REQUIRE_ROOT();
  Pid1 ns("ok");
  REQUIRE(ns.wait_marker("INIT_DONE"));
  ::kill(ns.pid, SIGSEGV);  // as a fault would; delivered because PID 1 handles it
  REQUIRE(ns.ended(60s));
  CHECK(ns.end_signal() == SIGINT);
  CHECK(*ns.boot().get("FATAL") == "init_crashed_11");
}

TEST_CASE("PID 1: a crashing child is restarted") {
  REQUIRE_ROOT();
  // torgw-socks is one of torgw-init's supervised children: crash it.
  Pid1 ns("ok");
  REQUIRE(ns.wait_marker("INIT_DONE"));
  auto find_child = [&](pid_t not_this) -> pid_t {
    auto end = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < end) {
      for (auto [p, state] : children_of(ns.pid)) {
        if (p == not_this || state == 'Z') continue;
        auto comm = tt::read_file("/proc/" + std::to_string(p) + "/comm");
        if (comm == "torgw-socks\n") return p;
      }
      std::this_thread::sleep_for(50ms);
    }
    return -1;
  };
  pid_t first = find_child(-1);
  REQUIRE(first > 0);
  ::kill(first, SIGSEGV);
  REQUIRE(ns.wait_marker("CHILD_EXITED"));
  CHECK(ns.console().find("CHILD_EXITED=") != std::string::npos);
  CHECK(ns.console().find(":signal_11") != std::string::npos);
  pid_t second = find_child(first);
  CHECK(second > 0);
  ::kill(ns.pid, SIGTERM);
  REQUIRE(ns.ended(60s));
  CHECK(ns.end_signal() == SIGINT);
}

TEST_CASE("PID 1: with a screen console, every marker on the console and on the screen once; summary shows the onion") {
  REQUIRE_ROOT();
  PtyCapture screen;
  Pid1 ns("ok", test_root(), screen.path.c_str());
  REQUIRE(ns.wait_marker("INIT_DONE"));
  REQUIRE(screen.wait_for("\r\nTORGW INIT_DONE="));
  ::kill(ns.pid, SIGTERM);
  REQUIRE(ns.ended(60s));
  CHECK(ns.end_signal() == SIGINT);
  REQUIRE(screen.wait_for("\r\nTORGW SHUTDOWN_DONE=", 10s));
  const std::string console = ns.console(), tty = screen.text();
  INFO(console);
  auto b = ns.boot();
  const std::string onion = *b.get("ONION_HOSTNAME");
  // The same marker lines, in the same order, on both; none twice on either.
  const auto on_console = marker_lines(console), on_screen = marker_lines(tty);
  CHECK(on_console == on_screen);
  CHECK(on_console.size() > 20);
  for (const auto& [what, out] : {std::pair<std::string, std::string>{"console", console}, {"screen", tty}}) {
    INFO(what);
    for (const char* key :
         {"BOOT_ID", "MARKER_VERSION", "IDENTITY_BINDING", "ONION_HOSTNAME", "INIT_DONE", "SHUTDOWN", "SHUTDOWN_DONE"})
      CHECK(count_of(out, std::string("\r\nTORGW ") + key + "=") == 1);
  }
  // The summary block: on the screen only, with the onion address, cursor saved and
  // restored around it.
  CHECK(tty.find("\0337\033[1;1H") != std::string::npos);
  CHECK(tty.find(" onion: " + onion) != std::string::npos);
  CHECK(tty.find("state: shutting down (poweroff:sigterm)") != std::string::npos);
  CHECK(console.find("\0337") == std::string::npos);
  auto parsed = serial::parse_log(tty);
  REQUIRE(parsed);
  REQUIRE(parsed->boots.size() == 1);
  CHECK(parsed->boots[0].problems.empty());
}

TEST_CASE("PID 1: a screen that is the console's own tty gets each marker once, and the summary") {
  REQUIRE_ROOT();
  PtyCapture screen;
  // fd 1 and the screen are the same tty (as /dev/console and tty0 with console=tty0
  // last): no second copy.
  Pid1 ns("ok", test_root(), screen.path.c_str(), screen.slave);
  REQUIRE(screen.wait_for("\r\nTORGW INIT_DONE="));
  const std::string tty = screen.text();
  INFO(tty);
  for (const char* key : {"BOOT_ID", "MARKER_VERSION", "IDENTITY_BINDING", "ONION_HOSTNAME", "INIT_DONE"})
    CHECK(count_of(tty, std::string("\r\nTORGW ") + key + "=") == 1);
  auto parsed = serial::parse_log(tty);
  REQUIRE(parsed);
  REQUIRE(parsed->boots.size() == 1);
  const auto& b = parsed->boots[0];
  CHECK(tty.find(" onion: " + *b.get("ONION_HOSTNAME")) != std::string::npos);
  ::kill(ns.pid, SIGTERM);
  REQUIRE(ns.ended(60s));
  CHECK(ns.end_signal() == SIGINT);
}
