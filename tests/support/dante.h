// Debian's danted as a SOCKS5 backend exit node for tests. It binds its outgoing
// sockets to its `external:` address, so it gets a loopback address of its own
// (127.0.0.5) rather than 127.0.0.1.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include "tests/support/net.h"
#include "tests/support/process.h"
#include "tests/support/tempdir.h"

namespace torgw::testing {

class Dante {
 public:
  explicit Dante(const TempDir& dir) : port_(free_tcp_port()) {
    using namespace std::chrono_literals;
    std::string conf = dir.file("danted-" + std::to_string(port_) + ".conf");
    log_ = dir.file("danted-" + std::to_string(port_) + ".log");
    write_file(conf, "logoutput: stderr\n"
                     "internal: 127.0.0.5 port = " +
                         std::to_string(port_) +
                         "\n"
                         "external: 127.0.0.5\n"
                         "clientmethod: none\nsocksmethod: none\n"
                         "user.privileged: root\nuser.unprivileged: nobody\n"
                         "client pass {\n  from: 0.0.0.0/0 to: 0.0.0.0/0\n  log: error\n}\n"
                         "socks pass {\n  from: 0.0.0.0/0 to: 0.0.0.0/0\n  command: connect\n  log: error\n}\n");
    SpawnOptions o;
    o.stdout_path = log_;
    proc_ = Subprocess::spawn({find_program("danted"), "-f", conf, "-N", "2"}, o);
    REQUIRE(wait_for_tcp("127.0.0.5", port_, 20s));
  }
  std::string endpoint() const { return "127.0.0.5:" + std::to_string(port_); }
  const std::string& log() const { return log_; }
  Subprocess& proc() { return proc_; }

 private:
  std::uint16_t port_;
  std::string log_;
  Subprocess proc_;
};

}  // namespace torgw::testing
