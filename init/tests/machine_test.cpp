#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include <fcntl.h>
#include <linux/input.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "init/child.h"
#include "init/machine.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::init;
using torgw::testing::FailsWith;

TEST_CASE("early mounts: every duty, hardened flags, tor state dir owned by tor, mode 0700") {
  auto m = early_mounts(101, 202);
  std::vector<std::string> targets;
  for (auto& s : m) targets.push_back(s.target);
  CHECK(targets == std::vector<std::string>{"/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/run", "/tmp",
                                            "/sys/kernel/config", "/var/lib/tor"});
  for (auto& s : m) {
    INFO(s.target);
    CHECK((s.flags & MS_NOSUID));
    if (s.fstype == "tmpfs") CHECK((s.flags & (MS_NODEV | MS_NOEXEC)) == (MS_NODEV | MS_NOEXEC));
    CHECK(s.optional == (s.target == "/sys/kernel/config"));
    // A fresh devtmpfs has neither: the kernel's instance is empty but for device nodes.
    CHECK(s.create == (s.target == "/dev/pts" || s.target == "/dev/shm"));
  }
  const auto& tor = m.back();
  CHECK(tor.fstype == "tmpfs");
  CHECK(tor.data.find("mode=0700") != std::string::npos);
  CHECK(tor.data.find("uid=101") != std::string::npos);
  CHECK(tor.data.find("gid=202") != std::string::npos);
}

TEST_CASE("module list: absolute .ko paths, comments; anything else is an error") {
  auto ok = parse_module_list("# SEV-SNP guest\n/lib/modules/6.1/sev-guest.ko\n\n  /lib/modules/6.1/gve.ko  \r\n");
  REQUIRE(ok.ok());
  CHECK(*ok == std::vector<std::string>{"/lib/modules/6.1/sev-guest.ko", "/lib/modules/6.1/gve.ko"});
  CHECK(parse_module_list("").value().empty());
  CHECK_THAT(parse_module_list("sev-guest.ko"), FailsWith("modules.syntax"));
  CHECK_THAT(parse_module_list("/a/b c.ko"), FailsWith("modules.syntax"));
  CHECK_THAT(parse_module_list("/a/b.so"), FailsWith("modules.syntax"));
  CHECK(parse_module_list("/ok.ko\n/bad").error().detail.find("line 2") != std::string::npos);
  CHECK_THAT(load_modules({"/nonexistent/x.ko"}), FailsWith("modules.load_failed"));
}

TEST_CASE("resolv.conf from the kernel's DHCP answer") {
  std::string pnp = "#PROTO: DHCP\ndomain c.project.internal\nnameserver 169.254.169.254\nnameserver 0.0.0.0\n"
                    "bootserver 10.128.0.1\n";
  auto rc = resolv_conf_from_pnp(pnp);
  CHECK(rc.find("nameserver 169.254.169.254\n") != std::string::npos);
  CHECK(rc.find("0.0.0.0") == std::string::npos);
  CHECK(rc.find("search c.project.internal\n") != std::string::npos);
  CHECK(resolv_conf_from_pnp("#PROTO: DHCP\nnameserver 0.0.0.0\n").empty());
  CHECK(resolv_conf_from_pnp("nameserver not-an-ip\nnameserver 1.2.3.4; rm -rf /\n").empty());
  CHECK(resolv_conf_from_pnp("domain bad;name\nnameserver 1.1.1.1\n").find("search") == std::string::npos);
  CHECK(resolv_conf_from_pnp("").empty());
  // Found by the fuzzer: bytes after an embedded NUL must not ride along.
  CHECK(resolv_conf_from_pnp(std::string("nameserver 0.0.0.1\0\0\0(.1\n", 26)).empty());
  CHECK(resolv_conf_from_pnp("nameserver 010.1.1.1\n").find("010") == std::string::npos);
}

TEST_CASE("/proc/consoles parsing") {
  CHECK(parse_consoles("ttyS0                -W- (EC p a)    4:64\ntty0                 -WU (E  p  )    4:1\n") ==
        std::vector<std::string>{"ttyS0", "tty0"});
  CHECK(parse_consoles("").empty());
  CHECK(parse_consoles("../../etc -W-\n").empty());
}

TEST_CASE("power button: capability bitmap and KEY_POWER presses") {
  std::uint8_t bits[KEY_MAX / 8 + 1] = {};
  CHECK_FALSE(has_power_key(bits, sizeof bits));
  bits[KEY_POWER / 8] |= 1u << (KEY_POWER % 8);
  CHECK(has_power_key(bits, sizeof bits));
  CHECK_FALSE(has_power_key(bits, KEY_POWER / 8));  // bitmap too short

  input_event evs[3] = {};
  evs[0].type = EV_KEY;
  evs[0].code = KEY_POWER;
  evs[0].value = 0;  // release
  evs[1].type = EV_SYN;
  evs[2].type = EV_KEY;
  evs[2].code = KEY_A;
  evs[2].value = 1;
  auto* raw = reinterpret_cast<const std::uint8_t*>(evs);
  CHECK_FALSE(power_pressed(raw, sizeof evs));
  evs[0].value = 1;
  CHECK(power_pressed(raw, sizeof evs));
  CHECK_FALSE(power_pressed(raw, sizeof(input_event) - 1));  // partial record ignored
  CHECK_FALSE(power_pressed(nullptr, 0));
}

TEST_CASE("clock check against the build time") {
  CHECK(check_clock(1700000000, 1600000000).ok());
  CHECK(check_clock(1600000000, 1600000000).ok());
  CHECK_THAT(check_clock(0, 1600000000), FailsWith("clock.before_build_time"));
  CHECK(rng_ready());  // any test machine is long past CRNG init
}

TEST_CASE("fatal actions") {
  CHECK(parse_action("poweroff") == Action::PowerOff);
  CHECK(parse_action("reboot") == Action::Reboot);
  CHECK(parse_action("halt") == Action::Halt);
  CHECK_FALSE(parse_action("explode"));
  for (auto a : {Action::PowerOff, Action::Reboot, Action::Halt}) CHECK(parse_action(to_string(a)) == a);
}

TEST_CASE("users from the image's passwd and group, without NSS") {
  const char* passwd = "root:x:0:0:root:/root:/sbin/nologin\n"
                       "tor:x:101:102::/var/lib/tor:/sbin/nologin\n"
                       "torgw-socks:x:103:104::/nonexistent:/sbin/nologin\n"
                       "broken:x:abc:1::/:/x\n";
  const char* group = "root:x:0:\ntor:x:102:\ntorgw-socks:x:104:\ncontrol:x:110:tor,other\n";
  auto tor = lookup_user("tor", passwd, group);
  REQUIRE(tor.ok());
  CHECK(tor->uid == 101);
  CHECK(tor->gid == 102);
  CHECK(tor->groups == std::vector<gid_t>{102, 110});
  auto s = lookup_user("torgw-socks", passwd, group);
  REQUIRE(s.ok());
  CHECK(s->groups == std::vector<gid_t>{104});
  CHECK_THAT(lookup_user("nobody", passwd, group), FailsWith("user.unknown"));
  CHECK_THAT(lookup_user("broken", passwd, group), FailsWith("user.bad_passwd"));
  CHECK_THAT(lookup_user("tor", "", ""), FailsWith("user.unknown"));
  CHECK_THAT(lookup_user("to", passwd, group), FailsWith("user.unknown"));
}

TEST_CASE("wait status descriptions") {
  CHECK(describe_status(0) == "exit_0");
  CHECK(describe_status(3 << 8) == "exit_3");
  CHECK(describe_status(SIGKILL) == "signal_9");
  CHECK(describe_status(SIGSEGV | 0x80) == "signal_11_core");
}

TEST_CASE("mount_all creates mount points inside a fresh filesystem and skips optional ones") {
  if (geteuid() != 0) {
    TORGW_SKIP(torgw::testing::Needs::root, "mounting needs root");
  }
  char tmpl[] = "/tmp/torgw-mount-XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  const std::string base = tmpl;
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // A private mount namespace: nothing here reaches the host.
    if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(10);
    if (mount("tmpfs", base.c_str(), "tmpfs", 0, "mode=0755") != 0) _exit(11);  // empty, like a fresh devtmpfs
    std::vector<MountSpec> specs = {
        {"tmpfs", base + "/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777", false, true},
        {"tmpfs", base + "/absent", "tmpfs", 0, "", true, false},
        {"tmpfs", base + "/state", "tmpfs", 0, "mode=0700,uid=4242,gid=4343", false, false},
    };
    if (::mkdir((base + "/state").c_str(), 0755) != 0) _exit(12);
    if (!mount_all(specs).ok()) _exit(13);
    struct stat st;
    if (::stat((base + "/shm").c_str(), &st) != 0 || (st.st_mode & 07777) != 01777) _exit(14);
    if (::stat((base + "/absent").c_str(), &st) == 0) _exit(15);
    if (!check_dir(base + "/state", 4242, 4343, 0700).ok()) _exit(16);
    if (check_dir(base + "/state", 4242, 4343, 0755).ok()) _exit(17);
    if (check_dir(base + "/state", 0, 0, 0700).error().reason != "mount.state_dir_owner") _exit(18);
    // A missing, non-optional mount point is an error naming it.
    auto e = mount_all({{"tmpfs", base + "/nope", "tmpfs", 0, "", false, false}});
    if (e || e.error().reason.find("nope") == std::string::npos) _exit(19);
    _exit(0);
  }
  int st;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  ::rmdir(tmpl);
  REQUIRE(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
}

TEST_CASE("stdio: holes are reserved early, then filled with a console or /dev/null") {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(0);
    ::close(2);
    reserve_stdio();
    int other = ::open("/dev/null", O_RDONLY | O_CLOEXEC);  // must not land on 0 or 2
    if (other <= 2) _exit(10);
    ensure_stdio();
    // 0 and 2 are now real files (console or /dev/null), not O_PATH placeholders.
    char c;
    if (::read(0, &c, 0) < 0) _exit(11);
    if (::write(2, "", 0) < 0) _exit(12);
    _exit(0);
  }
  int st;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  REQUIRE(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
}

TEST_CASE("drop_capabilities: PID 1 keeps exactly its list, in every set, the bounding set included") {
  if (::geteuid() != 0) TORGW_SKIP(torgw::testing::Needs::root, "dropping capabilities one holds needs root");
  // In a child: the test process keeps its own.
  int pfd[2];
  REQUIRE(::pipe(pfd) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(pfd[0]);
    auto r = drop_capabilities(pid1_kept_capabilities());
    std::string out = r ? capability_names(*r) : r.error().to_string();
    char buf[4096];
    int fd = ::open("/proc/self/status", O_RDONLY);
    ssize_t n = fd >= 0 ? ::read(fd, buf, sizeof buf - 1) : -1;
    out += "\n" + std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    ssize_t w = ::write(pfd[1], out.data(), out.size());
    ::_exit(w > 0 && r ? 0 : 1);
  }
  ::close(pfd[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pfd[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(pfd[0]);
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  INFO(out);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
  CHECK(out.rfind("dac_override,kill,setgid,setuid,setpcap,sys_boot\n", 0) == 0);
  // <linux/capability.h>: DAC_OVERRIDE 1, KILL 5, SETGID 6, SETUID 7, SETPCAP 8,
  // SYS_BOOT 22 -> 0x4001e2 (python3 -c 'print(hex(2|32|64|128|256|1<<22))').
  for (const char* f : {"CapEff:\t00000000004001e2", "CapPrm:\t00000000004001e2", "CapBnd:\t00000000004001e2",
                        "CapInh:\t0000000000000000", "CapAmb:\t0000000000000000"})
    CHECK(out.find(f) != std::string::npos);
}

TEST_CASE("capability_names: known names, others by number") {
  CHECK(capability_names(0) == "none");
  CHECK(capability_names((1ull << 22) | (1ull << 5)) == "kill,sys_boot");
  CHECK(capability_names(1ull << 40) == "cap_40");
}
