// torgw-socks' syscall allowlist, in forked children: what the relay does still works,
// and anything else kills the process with SIGSYS at once.
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <string>

#include "socks/privdrop.h"

using namespace torgw;

namespace {

// Runs `body` in a child under the filter; its wait status.
int under_filter(const std::function<int()>& body) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(90);
    if (!socks::install_syscall_filter().ok()) ::_exit(91);
    ::_exit(body());
  }
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  return st;
}

bool killed_by_sigsys(int st) { return WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS; }

std::string seccomp_line(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("Seccomp:", 0) == 0) return line;
  return {};
}

}  // namespace

#define NEED_FILTER()                                                                                       \
  do {                                                                                                      \
    if (!socks::syscall_filter_supported())                                                                 \
      TORGW_SKIP(torgw::testing::Needs::sanitizer, "the filter is off in sanitizer builds (LSan ptraces)"); \
  } while (0)

TEST_CASE("seccomp: the relay's own syscalls pass, and the filter is in mode 2") {
  NEED_FILTER();
  int ready[2], go[2];
  REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
  std::string seen;
  int st = 0;
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || !socks::install_syscall_filter().ok()) ::_exit(90);
    char c = 'r';
    if (::write(ready[1], &c, 1) != 1 || ::read(go[0], &c, 1) != 1) ::_exit(91);
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) ::_exit(11);
    if (::write(p[1], "x", 1) != 1) ::_exit(12);
    for (int family : {AF_INET, AF_INET6, AF_UNIX}) {
      int s = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (s < 0) ::_exit(13);
      ::close(s);
    }
    std::string big(1 << 20, 'x');  // malloc's mmap path
    ::_exit(big.size() == (1u << 20) ? 0 : 14);
  }
  // The parent reads /proc/<child>/status: the child may not open files any more.
  char c;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  seen = seccomp_line(pid);
  REQUIRE(::write(go[1], "g", 1) == 1);
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  for (int fd : {ready[0], ready[1], go[0], go[1]}) ::close(fd);
  CHECK(seen == "Seccomp:\t2");
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
}

TEST_CASE("seccomp: anything else kills the process with SIGSYS") {
  NEED_FILTER();
  CHECK(killed_by_sigsys(under_filter([] {
    char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
    ::execve("/bin/true", argv, nullptr);
    return 0;
  })));
  CHECK(killed_by_sigsys(under_filter([] { return ::open("/etc/hostname", O_RDONLY) >= 0 ? 0 : 1; })));
  CHECK(killed_by_sigsys(under_filter([] { return ::socket(AF_NETLINK, SOCK_RAW, 0) >= 0 ? 0 : 1; })));
  CHECK(killed_by_sigsys(under_filter([] { return ::socket(AF_PACKET, SOCK_RAW, 0) >= 0 ? 0 : 1; })));
  CHECK(killed_by_sigsys(under_filter([] { return static_cast<int>(::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr)); })));
  CHECK(killed_by_sigsys(under_filter([] { return ::fork() >= 0 ? 0 : 1; })));
  CHECK(killed_by_sigsys(under_filter([] { return ::setuid(0); })));
}
