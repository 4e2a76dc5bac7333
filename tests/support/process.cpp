#include "tests/support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include "tests/support/tempdir.h"

namespace torgw::testing {

Subprocess::Subprocess(Subprocess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), group_(o.group_), status_(std::exchange(o.status_, std::nullopt)) {}

Subprocess& Subprocess::operator=(Subprocess&& o) noexcept {
  if (this != &o) {
    if (pid_ > 0 && !status_) stop(std::chrono::milliseconds(0));
    pid_ = std::exchange(o.pid_, -1);
    group_ = o.group_;
    status_ = std::exchange(o.status_, std::nullopt);
  }
  return *this;
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !status_) stop(std::chrono::milliseconds(0));
}

Subprocess Subprocess::spawn(const std::vector<std::string>& argv, const SpawnOptions& opts) {
  if (argv.empty()) throw std::runtime_error("spawn: empty argv");
  int in_pipe[2] = {-1, -1};
  if (!opts.stdin_data.empty() && ::pipe2(in_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  // Report exec failure through a CLOEXEC pipe so spawn() throws instead of the child
  // silently exiting 127.
  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");

  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    if (opts.new_process_group) ::setpgid(0, 0);
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (!opts.cwd.empty() && ::chdir(opts.cwd.c_str()) != 0) _exit(126);
    int in = in_pipe[0] >= 0 ? in_pipe[0] : ::open("/dev/null", O_RDONLY);
    ::dup2(in, 0);
    if (!opts.stdout_path.empty()) {
      int fd = ::open(opts.stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) ::dup2(fd, 1);
      const std::string& errp = opts.stderr_path.empty() ? opts.stdout_path : opts.stderr_path;
      int efd = errp == opts.stdout_path ? fd : ::open(errp.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (efd >= 0) ::dup2(efd, 2);
    } else if (!opts.stderr_path.empty()) {
      int efd = ::open(opts.stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (efd >= 0) ::dup2(efd, 2);
    }
    for (const auto& e : opts.env) ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    int e = errno;
    (void)!::write(err_pipe[1], &e, sizeof e);
    _exit(127);
  }
  ::close(err_pipe[1]);
  if (in_pipe[0] >= 0) {
    ::close(in_pipe[0]);
    const char* p = opts.stdin_data.data();
    std::size_t left = opts.stdin_data.size();
    while (left > 0) {
      ssize_t n = ::write(in_pipe[1], p, left);
      if (n <= 0) break;
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    ::close(in_pipe[1]);
  }
  int child_errno = 0;
  ssize_t n = ::read(err_pipe[0], &child_errno, sizeof child_errno);
  ::close(err_pipe[0]);
  Subprocess s;
  s.pid_ = pid;
  s.group_ = opts.new_process_group;
  if (n == sizeof child_errno) {
    s.wait(std::chrono::milliseconds(1000));
    throw std::runtime_error("exec " + argv[0] + ": " + std::strerror(child_errno));
  }
  return s;
}

bool Subprocess::running() {
  if (pid_ <= 0 || status_) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = st;
    return false;
  }
  return true;
}

void Subprocess::signal(int sig) {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

std::optional<int> Subprocess::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  if (pid_ <= 0) return std::nullopt;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = st;
      return status_;
    }
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int Subprocess::stop(std::chrono::milliseconds grace) {
  if (status_) return *status_;
  if (pid_ <= 0) return -1;
  if (grace.count() > 0) {
    ::kill(pid_, SIGTERM);
    if (auto st = wait(grace)) {
      if (group_) ::kill(-pid_, SIGKILL);
      return *st;
    }
  }
  ::kill(pid_, SIGKILL);
  if (group_) ::kill(-pid_, SIGKILL);
  auto st = wait(std::chrono::milliseconds(10000));
  return st.value_or(-1);
}

RunResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout, const SpawnOptions& base) {
  TempDir dir("run");
  SpawnOptions opts = base;
  opts.stdout_path = dir.path() + "/out";
  opts.stderr_path = dir.path() + "/err";
  RunResult r;
  auto p = Subprocess::spawn(argv, opts);
  auto st = p.wait(timeout);
  if (!st) {
    r.timed_out = true;
    p.stop(std::chrono::milliseconds(0));
  } else if (WIFEXITED(*st)) {
    r.exit_code = WEXITSTATUS(*st);
  } else if (WIFSIGNALED(*st)) {
    r.term_signal = WTERMSIG(*st);
  }
  r.out = read_file(opts.stdout_path);
  r.err = read_file(opts.stderr_path);
  return r;
}

std::string find_program(const std::string& name) {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/sbin:/sbin:/usr/bin:/bin";
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    std::string p = dir + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return {};
}

static std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

std::string source_dir() { return env_or("TORGW_SOURCE_DIR", "."); }
std::string binary_dir() { return env_or("TORGW_BINARY_DIR", "."); }
std::string shared_dir() { return env_or("TORGW_SHARED_DIR", source_dir() + "/../shared"); }

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& content, int mode) {
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error("cannot write " + path);
    f << content;
  }
  ::chmod(path.c_str(), static_cast<mode_t>(mode));
}

}  // namespace torgw::testing
