// Test helpers for running real peers (tor, danted, curl, our own binaries) as child
// processes. A Subprocess is killed (SIGKILL, by PID) and reaped when it goes out of
// scope, so a failing test never leaves a process behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace torgw::testing {

struct SpawnOptions {
  std::vector<std::string> env;  // extra NAME=VALUE entries on top of the parent's
  std::string stdout_path;       // empty: inherit; output also goes to stderr file below
  std::string stderr_path;       // empty: same as stdout_path (or inherit)
  std::string cwd;
  std::string stdin_data;         // written to a pipe then closed; empty: /dev/null
  bool new_process_group = true;  // so kill_group() reaches grandchildren
};

class Subprocess {
 public:
  Subprocess() = default;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  Subprocess(Subprocess&& o) noexcept;
  Subprocess& operator=(Subprocess&& o) noexcept;
  ~Subprocess();

  // Throws std::runtime_error if fork/exec fails (tests only).
  static Subprocess spawn(const std::vector<std::string>& argv, const SpawnOptions& opts = {});

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // Waits up to `timeout`; returns the raw wait status, or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // SIGTERM, then SIGKILL after `grace`; returns the wait status.
  int stop(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));

 private:
  pid_t pid_ = -1;
  bool group_ = false;
  std::optional<int> status_;
};

struct RunResult {
  int exit_code = -1;  // -1 if killed by a signal or timed out
  int term_signal = 0;
  bool timed_out = false;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs argv to completion (bounded by timeout), capturing stdout and stderr.
RunResult run(const std::vector<std::string>& argv,
              std::chrono::milliseconds timeout = std::chrono::milliseconds(30000), const SpawnOptions& opts = {});

// Absolute path of an executable on PATH (or /usr/sbin, /sbin), or empty.
std::string find_program(const std::string& name);

// Paths the build passes to every test through the environment (see cmake/torgw.cmake).
std::string source_dir();
std::string binary_dir();
std::string shared_dir();

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& content, int mode = 0644);

}  // namespace torgw::testing
