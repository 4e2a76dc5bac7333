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

#include "common/bytes.h"
#include "serial/serial.h"
#include "tests/support/process.h"
#include "tests/support/tempdir.h"

namespace torgw::testing {

inline std::string init_bin() { return binary_dir() + "/init/torgw-init"; }

// tor_test_network value for a list of DirAuthority values (tornet::Network).
inline std::string tor_network_value(const std::vector<std::string>& dir_authorities) {
  std::string lines;
  for (const auto& d : dir_authorities) lines += d + "\n";
  return to_base64(as_bytes(lines));
}

// A private network that does not exist: tor keeps knocking on 127.0.0.1:9 (nothing
// listens there) and never leaves loopback.
inline std::string dead_tor_network() {
  return tor_network_value(
      {"dead orport=9 no-v2 v3ident=" + std::string(40, 'A') + " 127.0.0.1:9 " + std::string(40, 'B')});
}

struct DevRun {
  TempDir dir{"dev"};
  Subprocess proc;
  std::string out_path = dir.file("stdout");
  std::string err_path = dir.file("stderr");

  // Unless the test names a network, tor is pointed at a dead private one (an authority
  // on a closed loopback port): a dev boot must never make tor reach for the real Tor
  // network from a test.
  void start(std::vector<std::string> args) {
    bool has_network = false;
    for (const auto& a : args) has_network |= a.rfind("tor_test_network=", 0) == 0;
    if (!has_network) args.insert(args.end(), {"--set", "tor_test_network=" + dead_tor_network()});
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
  // Waits until the log holds the whole value of `key`, chunked or not.
  bool wait_value(const std::string& key, std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    auto end = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto p = serial::parse_log(out());
      if (p && !p->boots.empty() && p->boots.back().get(key)) return true;
      if (std::chrono::steady_clock::now() >= end || !proc.running()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
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
