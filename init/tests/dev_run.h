// Runs the real torgw-init --dev with its stdout (the markers) and stderr in files, for
// tests that watch a boot happen.
#pragma once

#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "serial/serial.h"
#include "tests/support/process.h"
#include "tests/support/tempdir.h"

namespace torgw::testing {

inline std::string init_bin() { return binary_dir() + "/init/torgw-init"; }

struct DevRun {
  TempDir dir{"dev"};
  Subprocess proc;
  std::string out_path = dir.file("stdout");
  std::string err_path = dir.file("stderr");

  void start(std::vector<std::string> args) {
    args.insert(args.begin(), {init_bin(), "--dev"});
    SpawnOptions o;
    o.stdout_path = out_path;
    o.stderr_path = err_path;
    proc = Subprocess::spawn(args, o);
  }
  std::string out() const { return read_file(out_path); }
  std::string err() const { return read_file(err_path); }
  bool wait_marker(const std::string& key, std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (out().find("\r\nTORGW " + key + "=") != std::string::npos) return true;
      if (!proc.running()) return out().find("\r\nTORGW " + key + "=") != std::string::npos;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  serial::Boot boot() const {
    auto p = serial::parse_log(out());
    REQUIRE(p.ok());
    REQUIRE(p->boots.size() == 1);
    return p->boots[0];
  }
};

inline int exit_code(std::optional<int> st) {
  REQUIRE(st);
  REQUIRE(WIFEXITED(*st));
  return WEXITSTATUS(*st);
}

}  // namespace torgw::testing
