// spawn() and drop_privileges(): what the child gets and does not get, checked from
// inside real children.
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/spawn.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using torgw::testing::FailsWith;

namespace {

struct Finished {
  std::string out;  // stdout and stderr
  int status = -1;
};

// Spawns `spec` with stdout and stderr on a pipe, reads until EOF and reaps the child.
Finished run(SpawnSpec spec) {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  spec.stdout_fd = spec.stderr_fd = fds[1];
  auto pid = spawn(spec);
  ::close(fds[1]);
  if (!pid) ::close(fds[0]);
  REQUIRE(pid.ok());
  Finished f;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) f.out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  REQUIRE(::waitpid(*pid, &f.status, 0) == *pid);
  return f;
}

SpawnSpec shell(const std::string& script) {
  SpawnSpec s;
  s.argv = {"/bin/sh", "-c", script};
  s.env = {"PATH=/usr/bin:/bin"};
  return s;
}

Credentials nobody(std::vector<gid_t> extra_groups = {}) {
  passwd* pw = ::getpwnam("nobody");
  REQUIRE(pw != nullptr);
  Credentials c{pw->pw_uid, pw->pw_gid, {pw->pw_gid}};
  c.groups.insert(c.groups.end(), extra_groups.begin(), extra_groups.end());
  return c;
}

bool exited_with(int status, int code) { return WIFEXITED(status) && WEXITSTATUS(status) == code; }

}  // namespace

TEST_CASE("spawn: a failure before exec is an error naming the step, the child already reaped") {
  SpawnSpec s;
  s.argv = {"/nonexistent/binary", "arg"};
  auto r = spawn(s);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r, FailsWith("spawn.exec_failed"));
  CHECK(r.error().detail == std::string("/nonexistent/binary: execve: ") + std::strerror(ENOENT));

  s = shell("true");
  s.cwd = "/nonexistent-dir";
  r = spawn(s);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r, FailsWith("spawn.chdir_failed"));
  CHECK(r.error().detail == std::string("/bin/sh: chdir: ") + std::strerror(ENOENT));
  errno = 0;
  CHECK(::waitpid(-1, nullptr, WNOHANG) == -1);
  CHECK(errno == ECHILD);  // both children were reaped inside spawn()

  s.argv = {"relative/sh"};
  CHECK_THAT(spawn(s), FailsWith("spawn.bad_argv"));
  s.argv.clear();
  s.path = "/bin/sh";
  CHECK_THAT(spawn(s), FailsWith("spawn.bad_argv"));
}

TEST_CASE("spawn: path and argv[0] may differ") {
  SpawnSpec s;
  s.path = "/bin/sh";
  s.argv = {"renamed", "-c", "echo $0"};
  auto f = run(s);
  CHECK(exited_with(f.status, 0));
  CHECK(f.out == "renamed\n");
}

TEST_CASE("spawn: the environment is exactly the one given") {
  SpawnSpec s;
  s.argv = {"/usr/bin/env"};
  s.env = {"A=1", "B=two words", "EMPTY="};
  REQUIRE(::setenv("TORGW_SPAWN_TEST_PARENT_ONLY", "leak", 1) == 0);
  auto f = run(s);
  ::unsetenv("TORGW_SPAWN_TEST_PARENT_ONLY");
  CHECK(exited_with(f.status, 0));
  CHECK(f.out == "A=1\nB=two words\nEMPTY=\n");
  s.env.clear();
  CHECK(run(s).out.empty());
}

TEST_CASE("spawn: fds above 2 are closed, stdin is /dev/null, signals and session are fresh") {
  const int leak = ::open("/dev/null", O_RDONLY);  // not CLOEXEC: spawn must close it anyway
  REQUIRE(leak >= 3);
  const int high = ::fcntl(leak, F_DUPFD, 200);
  REQUIRE(high >= 200);
  // The parent blocks and ignores signals, as PID 1 does for those it reads via signalfd.
  sigset_t usr1, old_mask;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  REQUIRE(::sigprocmask(SIG_BLOCK, &usr1, &old_mask) == 0);
  auto old_usr2 = ::signal(SIGUSR2, SIG_IGN);
  const std::string probe = "for fd in 0 1 2 " + std::to_string(leak) + " " + std::to_string(high) +
                            "; do [ -e /proc/self/fd/$fd ] && echo $fd open || echo $fd closed; done; "
                            "readlink /proc/self/fd/0; grep -E '^(SigBlk|SigIgn|NoNewPrivs)' /proc/self/status; "
                            "echo sid=$(cut -d' ' -f6 /proc/$$/stat) pid=$$";
  auto f = run(shell(probe));
  ::signal(SIGUSR2, old_usr2);
  ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  ::close(high);
  ::close(leak);
  INFO(f.out);
  CHECK(exited_with(f.status, 0));
  CHECK(f.out.rfind("0 open\n1 open\n2 open\n" + std::to_string(leak) + " closed\n" + std::to_string(high) +
                        " closed\n/dev/null\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\nNoNewPrivs:\t1\n",
                    0) == 0);
  auto sid = f.out.find("sid=");
  auto pid = f.out.find(" pid=");
  REQUIRE(sid != std::string::npos);
  REQUIRE(pid != std::string::npos);
  CHECK(f.out.substr(sid + 4, pid - sid - 4) + "\n" == f.out.substr(pid + 5));  // a session leader
}

TEST_CASE("spawn: stdin_secret is delivered whole, then EOF; more than a pipe buffer is refused") {
  auto s = shell("cat; echo '|eof'");
  const std::string text("backend_credential = u:p\n\0binary\xff", 34);
  auto secret = SecretBytes::copy_of({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
  s.stdin_secret = &secret;
  auto f = run(s);
  CHECK(exited_with(f.status, 0));
  CHECK(f.out == text + "|eof\n");

  SecretBytes full(65536);
  full.data()[65535] = 'z';
  s = shell("cat");
  s.stdin_secret = &full;
  f = run(s);
  CHECK(f.out.size() == 65536);
  CHECK(f.out.back() == 'z');

  SecretBytes too_large(65537);
  s.stdin_secret = &too_large;
  auto r = spawn(s);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r, FailsWith("spawn.stdin_too_large"));
}

TEST_CASE("spawn: umask as given, else the parent's") {
  auto s = shell("umask");
  s.umask = 027;
  CHECK(run(s).out == "0027\n");
  const mode_t old = ::umask(077);
  s.umask.reset();
  auto f = run(s);
  ::umask(old);
  CHECK(f.out == "0077\n");
}

TEST_CASE("spawn: drops to the given user, groups exactly as given, no capability left (root only)") {
  if (::geteuid() != 0) {
    TORGW_SKIP(torgw::testing::Needs::root, "switching users needs root");
  }
  auto s = shell("id -u; id -g; id -G; grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status");
  s.creds = nobody({4242});
  auto f = run(s);
  INFO(f.out);
  CHECK(exited_with(f.status, 0));
  const std::string uid = std::to_string(s.creds->uid), gid = std::to_string(s.creds->gid);
  CHECK(f.out == uid + "\n" + gid + "\n" + gid + " 4242\n" +
                     "CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"
                     "CapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\n");
}

TEST_CASE("spawn: the child dies with its parent, also across the privilege drop") {
  // A middle process spawns a sleeper (as nobody when we are root: the uid change in
  // between clears the death signal), reports its pid, then exits: the sleeper must go.
  const bool root = ::geteuid() == 0;
  if (!root) TORGW_SKIP_IN_PART(torgw::testing::Needs::root, "the drop to another user needs root");
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t middle = ::fork();
  REQUIRE(middle >= 0);
  if (middle == 0) {
    SpawnSpec s;
    s.argv = {"/bin/sleep", "60"};
    if (root) s.creds = nobody();
    s.die_with_parent = true;
    auto pid = spawn(s);
    pid_t sleeper = pid ? *pid : -1;
    (void)!::write(fds[1], &sleeper, sizeof sleeper);
    _exit(0);
  }
  ::close(fds[1]);
  pid_t sleeper = -1;
  REQUIRE(::read(fds[0], &sleeper, sizeof sleeper) == sizeof sleeper);
  ::close(fds[0]);
  REQUIRE(::waitpid(middle, nullptr, 0) == middle);
  REQUIRE(sleeper > 0);
  // The sleeper was reparented to init (or a subreaper): gone or a zombie within 10 s.
  bool gone = false;
  for (int i = 0; i < 500 && !gone; ++i) {
    char state = 0;
    if (FILE* stat = std::fopen(("/proc/" + std::to_string(sleeper) + "/stat").c_str(), "r")) {
      gone = std::fscanf(stat, "%*d (%*[^)]) %c", &state) != 1 || state == 'Z';
      std::fclose(stat);
    } else {
      gone = true;
    }
    if (!gone) ::usleep(20000);
  }
  if (!gone) ::kill(sleeper, SIGKILL);
  CHECK(gone);
}

TEST_CASE("drop_privileges: in this process, for good (root only for the drop itself)") {
  // In a forked child, so this test process keeps its ids.
  auto in_child = [](const Credentials& c) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      SpawnStep step = drop_privileges(c);
      // Exit code: the failed step, or 100 if a user other than root could have root back.
      if (step == SpawnStep::none && c.uid != 0 && (::setuid(0) == 0 || ::setgid(0) == 0)) _exit(100);
      _exit(static_cast<int>(step));
    }
    int status;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    return static_cast<SpawnStep>(WEXITSTATUS(status));
  };
  if (::geteuid() != 0) {
    CHECK(in_child(Credentials{0, 0, {}}) == SpawnStep::setgroups);
    TORGW_SKIP(torgw::testing::Needs::root, "dropping from root needs root");
  }
  CHECK(in_child(nobody()) == SpawnStep::none);
  CHECK(in_child(Credentials{0, 0, {0}}) == SpawnStep::none);  // root stays root
  CHECK(describe_failure(SpawnStep::root_regainable, 0) == "root could be regained");
  CHECK(describe_failure(SpawnStep::setgroups, EPERM) == std::string("setgroups: ") + std::strerror(EPERM));
}
