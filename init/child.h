// Child processes of torgw-init: spawning with privilege drop, reaping (every child
// and every orphan PID 1 inherits), and supervision (restart with backoff, ordered stop
// SIGTERM -> deadline -> SIGKILL). Reusable by every stage that runs a process.
//
// The one rule for code running inside torgw-init: never waitpid() yourself. PID 1
// reaps with waitpid(-1), so a child you fork must be registered with Reaper::watch()
// right after fork() (before returning to the loop), and its exit status arrives there.
// ChildSupervisor does this for you.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/secret.h"
#include "init/loop.h"

namespace torgw::init {

// ---- users ------------------------------------------------------------------------------

struct UserIds {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups (from /etc/group), primary first
};

// Pure lookups in the text of /etc/passwd and /etc/group (the image's own files; no NSS,
// no dlopen on a minimal root). Errors: user.unknown, user.bad_passwd.
Result<UserIds> lookup_user(std::string_view name, std::string_view passwd, std::string_view group);
// Reads <root>/etc/passwd and <root>/etc/group.
Result<UserIds> lookup_user_in(std::string_view name, const std::string& root = "/");

// ---- spawning ---------------------------------------------------------------------------

struct ChildSpec {
  std::string name;               // for markers and logs: [a-z0-9_-]+
  std::vector<std::string> argv;  // argv[0]: absolute path of the executable
  std::vector<std::string> env;   // the complete environment (NAME=VALUE)
  std::optional<UserIds> user;    // run as this user (torgw::drop_privileges)
  std::string cwd = "/";
  mode_t umask = 022;
  bool die_with_parent = false;  // PR_SET_PDEATHSIG=SIGKILL (dev mode)
  // Bytes the child reads on stdin (e.g. a config holding a password: never in argv,
  // which /proc shows to everyone, never in a file). Written into a fresh pipe at every
  // launch, so restarts get them too; at most 64 KiB (one pipe buffer). Null: /dev/null.
  std::shared_ptr<const SecretBytes> stdin_secret;
  int stdout_fd = -1;  // -1: inherit ours (the console)
  int stderr_fd = -1;  // -1: inherit ours
  // Supervision.
  enum class Restart { Never, OnFailure, Always } restart = Restart::Always;
  std::chrono::milliseconds backoff_initial{1000};
  std::chrono::milliseconds backoff_max{30000};
  std::chrono::milliseconds stable_after{30000};  // a run this long resets the backoff
  int max_failures = 8;                           // consecutive short runs before giving up
  int stop_signal = 15;                           // SIGTERM
  std::chrono::milliseconds stop_timeout{10000};
};

// torgw::spawn() (common/spawn.h) of the spec: reasons spawn.exec_failed,
// spawn.drop_failed, ..., the child already reaped when it failed before exec. stdout
// and stderr default to ours (the console).
// The returned pid must be handed to Reaper::watch() before returning to the loop.
Result<pid_t> spawn(const ChildSpec& spec);

// Human form of a wait status: "exit_0", "exit_3", "signal_11", "signal_9_core".
std::string describe_status(int status);

// ---- reaping ----------------------------------------------------------------------------

class Reaper {
 public:
  using ExitFn = std::function<void(int status)>;
  // Registers for SIGCHLD on the loop. In a process that is not PID 1, also makes it a
  // child subreaper so orphaned grandchildren come back to it.
  explicit Reaper(EventLoop& loop);
  Status init();

  void watch(pid_t pid, ExitFn fn);
  void unwatch(pid_t pid);
  // Reaps everything that has exited (called on SIGCHLD; callable any time).
  void reap();
  // Blocks up to `timeout` reaping until no child is left (used by the final shutdown).
  bool reap_all(std::chrono::milliseconds timeout);

  std::uint64_t orphans_reaped() const { return orphans_; }
  std::size_t watched() const { return watched_.size(); }

 private:
  EventLoop& loop_;
  std::map<pid_t, ExitFn> watched_;
  std::uint64_t orphans_ = 0;
};

// ---- short-lived helpers -----------------------------------------------------------------

// One run of a short-lived helper child (e.g. `torgw-init --metadata-helper`) whose
// stdout PID 1 collects: spawned with the spec (its stdout_fd is replaced by a pipe),
// read on the loop up to `max_bytes`, killed (SIGKILL) at `deadline`. `done` is called
// once, on the loop, after both EOF and the exit: with the output when the helper
// exited 0, else with helper.spawn_failed, helper.timeout, helper.too_large or
// helper.exit (detail: describe_status, e.g. "signal_11"). Destroying the run (or
// starting it again) kills a helper still running (its exit is reaped and ignored), and
// its `done` is never called after that. The output may hold secrets: the caller wipes it.
class HelperRun {
 public:
  using Done = std::function<void(Result<std::string>)>;
  HelperRun(EventLoop& loop, Reaper& reaper);
  ~HelperRun();
  HelperRun(const HelperRun&) = delete;
  HelperRun& operator=(const HelperRun&) = delete;

  void start(ChildSpec spec, std::chrono::milliseconds deadline, std::size_t max_bytes, Done done);
  std::optional<pid_t> pid() const;

 private:
  struct State;
  void retire();  // kills and forgets the current run, if any
  EventLoop& loop_;
  Reaper& reaper_;
  std::unique_ptr<State> st_;
};

// ---- supervision ------------------------------------------------------------------------

class ChildSupervisor {
 public:
  struct Events {
    std::function<void(const std::string& name, pid_t pid)> started;
    // will_restart: a restart is scheduled after `delay`.
    std::function<void(const std::string& name, int status, bool will_restart, std::chrono::milliseconds delay)> exited;
    // Too many consecutive failures (or a restart that cannot exec): the caller decides
    // (torgw-init prints FATAL=<name>:restart_limit).
    std::function<void(const std::string& name, const Error& why)> gave_up;
  };

  ChildSupervisor(EventLoop& loop, Reaper& reaper);
  ~ChildSupervisor();
  ChildSupervisor(const ChildSupervisor&) = delete;
  ChildSupervisor& operator=(const ChildSupervisor&) = delete;

  Events events;

  // Starts a new child; an immediate spawn failure (missing binary, unknown user) is
  // returned and nothing is kept. Names are unique.
  Status start(ChildSpec spec);
  // Stops one child: no more restarts, stop_signal, SIGKILL to its process group after
  // stop_timeout, `done` once it is reaped (at once if it is not running).
  void stop(const std::string& name, std::function<void()> done);
  // Stops every child, one after the other, in reverse start order.
  void stop_all(std::function<void()> done);

  std::optional<pid_t> pid(const std::string& name) const;
  int starts(const std::string& name) const;  // 1 + restarts so far
  std::vector<std::string> names() const;     // in start order

 private:
  struct Child;
  void launch(Child& c);
  void on_exit(Child& c, int status);
  void stop_next(std::shared_ptr<std::vector<std::string>> left, std::function<void()> done);
  Child* find(const std::string& name) const;

  EventLoop& loop_;
  Reaper& reaper_;
  std::vector<std::unique_ptr<Child>> children_;
};

}  // namespace torgw::init
