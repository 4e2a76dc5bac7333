// Shared by the supervisor's integration tests: a marker sink that can be parsed back,
// and a config with its directories in a temporary place the tor user can reach.
#pragma once

#include <event2/event.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "serial/serial.h"
#include "supervisor/supervisor.h"
#include "tests/support/process.h"
#include "tests/support/tempdir.h"

namespace torgw::supervisor::testing {

// Markers go to a file; values() parses it with the real marker parser.
class MarkerLog {
 public:
  explicit MarkerLog(const std::string& path)
      : path_(path), fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)), writer_({fd_}) {
    writer_.begin_boot();
  }
  ~MarkerLog() { ::close(fd_); }
  serial::MarkerWriter& writer() { return writer_; }
  std::vector<serial::Marker> markers() const {
    auto log = serial::parse_log(torgw::testing::read_file(path_));
    if (!log || log->boots.empty()) return {};
    return log->boots.back().markers;
  }
  // Values of `key`, in order.
  std::vector<std::string> values(const std::string& key) const {
    std::vector<std::string> out;
    for (const auto& m : markers())
      if (m.key == key) out.push_back(m.value);
    return out;
  }
  std::size_t count(const std::string& key) const { return values(key).size(); }
  // "KEY=VALUE" lines, for failure messages.
  std::string dump() const {
    std::string s;
    for (const auto& m : markers()) s += m.key + "=" + m.value + "\n";
    return s;
  }

 private:
  std::string path_;
  int fd_;
  serial::MarkerWriter writer_;
};

struct Loop {
  event_base* base = event_base_new();
  ~Loop() { event_base_free(base); }
};

// data_dir and run_dir under `root`, which is made traversable for the tor user.
inline SupervisorConfig test_config(const std::string& root) {
  ::chmod(root.c_str(), 0755);
  SupervisorConfig c;
  c.tor_binary = torgw::testing::find_program("tor");
  c.tor_user = ::geteuid() == 0 ? "debian-tor" : "";
  c.data_dir = root + "/data";
  c.run_dir = root + "/run";
  c.timeouts.control_connect = std::chrono::seconds(30);
  return c;
}

// The uid a process runs as (from /proc), or -1.
inline long uid_of(pid_t pid) {
  std::string s = torgw::testing::read_file("/proc/" + std::to_string(pid) + "/status");
  auto p = s.find("\nUid:");
  if (p == std::string::npos) return -1;
  return std::stol(s.substr(p + 5));
}

}  // namespace torgw::supervisor::testing
