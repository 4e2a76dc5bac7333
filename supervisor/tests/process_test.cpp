// spawn_with_pidfd(): what tor's child gets (and does not get), checked from inside the child,
// and its exit seen through the pidfd.
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "supervisor/process.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::supervisor;
using torgw::testing::FailsWith;

namespace {

// Runs a shell snippet through spawn_with_pidfd() and returns its stdout+stderr and wait status.
std::pair<std::string, int> sh(const std::string& script, std::optional<Credentials> creds = std::nullopt,
                               std::vector<std::string> env = {"PATH=/usr/bin:/bin"}) {
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  SpawnSpec s;
  s.path = "/bin/sh";
  s.argv = {"sh", "-c", script};
  s.env = std::move(env);
  s.stdout_fd = s.stderr_fd = p[1];
  s.creds = creds;
  auto c = spawn_with_pidfd(s);
  ::close(p[1]);
  REQUIRE(c.ok());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(p[0]);
  pollfd pf{c->pidfd.get(), POLLIN, 0};
  REQUIRE(::poll(&pf, 1, 10000) == 1);  // the pidfd says when it exited
  auto st = try_reap(*c);
  REQUIRE(st);
  return {out, *st};
}

}  // namespace

TEST_CASE("spawn: clean environment, no inherited fds, own process group") {
  int leak = ::open("/dev/null", O_RDONLY);  // not CLOEXEC: must still not reach the child
  REQUIRE(leak >= 3);
  auto [out, st] = sh("echo env=$(env | sort | tr '\\n' ' '); ls /proc/self/fd | tr '\\n' ' '; echo; "
                      "echo pgid=$(ps -o pgid= -p $$ | tr -d ' ') pid=$$; exit 3");
  ::close(leak);
  CHECK(describe_status(st) == "exited 3");
  INFO(out);
  CHECK(out.rfind("env=PATH=/usr/bin:/bin PWD=/\n", 0) == 0);  // nothing inherited
  // Only 0, 1, 2 (and ls's own directory fd).
  auto fds = out.substr(out.find('\n') + 1);
  fds = fds.substr(0, fds.find('\n'));
  INFO(fds);
  std::size_t count = 0;
  for (char ch : fds) count += ch == ' ';
  CHECK(count <= 4);
  auto pg = out.find("pgid=");
  REQUIRE(pg != std::string::npos);
  auto pgid = out.substr(pg + 5, out.find(' ', pg) - pg - 5);
  auto pid = out.substr(out.find("pid=") + 4);
  while (!pid.empty() && pid.back() == '\n') pid.pop_back();
  CHECK(pgid == pid);
}

TEST_CASE("spawn: exec and privilege-drop failures are errors, not silent children") {
  SpawnSpec s;
  s.path = "/nonexistent/tor";
  s.argv = {"tor"};
  auto c = spawn_with_pidfd(s);
  REQUIRE_FALSE(c.ok());
  CHECK_THAT(c, FailsWith("process.spawn_failed"));
  CHECK(c.error().detail.find("execve") != std::string::npos);
  s.path = "relative";
  CHECK_FALSE(spawn_with_pidfd(s).ok());
  s.path = "/bin/true";
  s.cwd = "/nonexistent-dir";
  auto d = spawn_with_pidfd(s);
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().detail.find("chdir") != std::string::npos);
  if (::geteuid() != 0) {
    s.cwd = "/";
    s.creds = Credentials{0, 0, {}};
    auto e = spawn_with_pidfd(s);
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().detail.find("setgroups") != std::string::npos);
  }
}

TEST_CASE("spawn: drops to the tor user before exec (root only)") {
  if (::geteuid() != 0) {
    TORGW_SKIP(torgw::testing::Needs::root, "needs root to switch users");
  }
  auto u = lookup_user("debian-tor");
  if (!u) u = lookup_user("nobody");
  REQUIRE(u.ok());
  auto [out, st] = sh("id -u; id -g; id -G; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status | tr -s '\\t' ' '", *u);
  CHECK(describe_status(st) == "exited 0");
  std::string uid = std::to_string(u->uid), gid = std::to_string(u->gid);
  CHECK(out.rfind(uid + "\n" + gid + "\n" + gid + "\n", 0) == 0);  // no supplementary groups
  CHECK(out.find("CapEff: 0000000000000000") != std::string::npos);
  CHECK_THAT(lookup_user("no-such-user-torgw"), FailsWith("process.no_such_user"));
}
