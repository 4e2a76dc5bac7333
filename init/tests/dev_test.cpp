// torgw-init --dev, the real binary: the boot sequence minus machine duties, markers on
// stdout, FATAL -> exit 1, SIGTERM -> ordered shutdown and exit 0.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <set>
#include <thread>

#include "onion/onion.h"
#include "serial/serial.h"
#include "tests/metadata/metadata_server.h"
#include "tests/support/process.h"
#include "tests/support/tempdir.h"
#include "init/tests/dev_run.h"

using namespace torgw;
using namespace std::chrono_literals;
namespace tt = torgw::testing;

using torgw::testing::DevRun;
using torgw::testing::exit_code;
using torgw::testing::init_bin;

TEST_CASE("dev mode: markers in order, ephemeral identity marked loudly, SIGTERM exits 0") {
  DevRun r;
  tt::write_file(r.dir.file("torgw.conf"), "backend=127.0.0.1:9050\nonion_port=80\n");
  r.start({"--config", r.dir.file("torgw.conf"), "--set", "max-connections=7"});
  REQUIRE(r.wait_marker("INIT_DONE"));
  r.proc.signal(SIGTERM);
  CHECK(exit_code(r.proc.wait(30s)) == 0);
  auto b = r.boot();
  INFO(r.out());
  REQUIRE(b.markers.size() > 6);
  CHECK(b.markers[0].key == "BOOT_ID");
  CHECK(b.markers[1].key == "MARKER_VERSION");
  CHECK(b.markers[2].key == "VERSION");
  CHECK(*b.get("INIT_MODE") == "dev");
  CHECK(*b.get("CONFIG_BACKEND") == "127.0.0.1:9050");
  CHECK(*b.get("CONFIG_MAX_CONNECTIONS") == "7");
  CHECK(*b.get("CONFIG_IDENTITY") == "ephemeral");
  CHECK(*b.get("CONFIG_ORIGIN") == "backend@file,onion_port@file,max_connections@flag,tor_test_network@flag");
  CHECK(*b.get("IDENTITY_BINDING") == "ephemeral");
  CHECK(b.get("IDENTITY_WARNING"));
  REQUIRE(b.get("ONION_HOSTNAME"));
  CHECK(onion::public_key_from_address(*b.get("ONION_HOSTNAME")).ok());
  CHECK(*b.get("SHUTDOWN") == "poweroff:sigterm");
  CHECK(b.get("SHUTDOWN_DONE"));
  CHECK(b.get("FATAL") == nullptr);
  CHECK(b.problems.empty());
  // The config comes before the identity, the identity before INIT_DONE.
  auto pos = [&](const std::string& k) {
    for (std::size_t i = 0; i < b.markers.size(); ++i)
      if (b.markers[i].key == k) return i;
    return b.markers.size();
  };
  CHECK(pos("CONFIG_SOURCES") < pos("IDENTITY_BINDING"));
  CHECK(pos("IDENTITY_BINDING") < pos("INIT_DONE"));
  CHECK(pos("INIT_DONE") < pos("SHUTDOWN"));
}

TEST_CASE("dev mode: ephemeral means a new onion address every run") {
  std::set<std::string> seen;
  for (int i = 0; i < 2; ++i) {
    DevRun r;
    tt::write_file(r.dir.file("torgw.conf"), "backend=127.0.0.1:9050\n");
    r.start({"--config", r.dir.file("torgw.conf")});
    REQUIRE(r.wait_marker("INIT_DONE"));
    r.proc.signal(SIGTERM);
    CHECK(exit_code(r.proc.wait(30s)) == 0);
    seen.insert(*r.boot().get("ONION_HOSTNAME"));
  }
  CHECK(seen.size() == 2);
}

TEST_CASE("dev mode: every invalid config is FATAL=<key>:<reason>, exit 1") {
  struct Case {
    std::string file;
    std::vector<std::string> args;
    std::string fatal;
  };
  std::vector<Case> cases = {
      {"onion_port=80\n", {}, "backend:missing"},
      {"backend=10.9.9.9:1\nfrobnicate=1\n", {}, "frobnicate:unknown_key"},
      {"backend=10.9.9.9:1\n", {"--set", "onion_port=0"}, "onion_port:out_of_range"},
      {"backend=10.9.9.9:1\nbackend_mode=tcp\n", {}, "backend_mode:bad_choice"},
      {"backend=10.9.9.9:1\nthis is not a pair\n", {}, "config_file:syntax"},
      {"backend=10.9.9.9:1\nidentity=derived\n", {}, "identity:needs_snp"},
  };
  for (const auto& c : cases) {
    INFO(c.fatal);
    DevRun r;
    tt::write_file(r.dir.file("torgw.conf"), c.file);
    auto args = c.args;
    args.insert(args.begin(), {"--config", r.dir.file("torgw.conf")});
    r.start(args);
    CHECK(exit_code(r.proc.wait(30s)) == 1);
    auto b = r.boot();
    REQUIRE(b.get("FATAL"));
    CHECK(*b.get("FATAL") == c.fatal);
    CHECK(b.end == serial::BootEnd::Fatal);
    CHECK(b.get("INIT_DONE") == nullptr);
    CHECK(r.err().find("FATAL " + c.fatal) != std::string::npos);
  }
}

TEST_CASE("dev mode: secrets are redacted everywhere we print") {
  DevRun r;
  tt::write_file(r.dir.file("torgw.conf"), "backend=127.0.0.1:1\nbackend_user=alice\nbackend_password=s3cr3t-p4ss\n");
  r.start({"--config", r.dir.file("torgw.conf")});
  REQUIRE(r.wait_marker("INIT_DONE"));
  r.proc.signal(SIGTERM);
  CHECK(exit_code(r.proc.wait(30s)) == 0);
  CHECK(*r.boot().get("CONFIG_BACKEND_PASSWORD") == "redacted");
  CHECK(r.out().find("s3cr3t") == std::string::npos);
  CHECK(r.err().find("s3cr3t") == std::string::npos);
}

TEST_CASE("dev mode: cmdline > GCE > Hetzner > file through the real binary and HTTP") {
  tt::MetadataServer s;
  // backend is tighten-only (metadata may not move a pinned one: trust_dev_test.cpp);
  // the open keys show the precedence.
  s.serve_gce({{"torgw-handshake-timeout", "13"}, {"torgw-onion-port", "83"}, {"torgw-backend-mode", "passthrough"}});
  s.serve_hetzner("handshake_timeout=12\nonion_port=82\nmax_connections=12\n");
  DevRun r;
  tt::write_file(r.dir.file("torgw.conf"), "backend=127.0.0.11:1\nonion_port=81\nmax_connections=11\nidle_timeout=7\n"
                                           "handshake_timeout=11\n");
  tt::write_file(r.dir.file("cmdline"), "BOOT_IMAGE=/vmlinuz ro console=ttyS0 torgw.backend=127.0.0.14:4 "
                                        "torgw.metadata=auto torgw.metadata_url=" + s.url() + "\n");
  r.start({"--config", r.dir.file("torgw.conf"), "--cmdline", r.dir.file("cmdline")});
  REQUIRE(r.wait_marker("INIT_DONE"));
  r.proc.signal(SIGTERM);
  CHECK(exit_code(r.proc.wait(30s)) == 0);
  auto b = r.boot();
  INFO(r.out() << r.err());
  CHECK(*b.get("METADATA") == "gce:present,hetzner:present");
  CHECK(*b.get("CONFIG_SOURCES") == "flag,cmdline,gce,hetzner,file");
  CHECK(*b.get("CONFIG_BACKEND") == "127.0.0.14:4");
  CHECK(*b.get("CONFIG_HANDSHAKE_TIMEOUT") == "13");
  CHECK(*b.get("CONFIG_ONION_PORT") == "83");
  CHECK(*b.get("CONFIG_BACKEND_MODE") == "passthrough");
  CHECK(*b.get("CONFIG_MAX_CONNECTIONS") == "12");
  CHECK(*b.get("CONFIG_IDLE_TIMEOUT") == "7");
}

TEST_CASE("dev mode: a bad value or a forbidden key from metadata is FATAL") {
  for (auto [attr, value, fatal] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"torgw-onion-port", "99999", "onion_port:out_of_range"},
           {"torgw-metadata-url", "http://10.0.0.1", "metadata_url:not_allowed_from_metadata"},
           {"torgw-bogus", "1", "bogus:unknown_key"}}) {
    INFO(fatal);
    tt::MetadataServer s;
    s.serve_gce({{"torgw-backend", "127.0.0.13:3"}, {attr, value}});
    DevRun r;
    tt::write_file(r.dir.file("cmdline"), "torgw.metadata=gce torgw.metadata_url=" + s.url());
    r.start({"--config", r.dir.file("none.conf"), "--cmdline", r.dir.file("cmdline")});
    CHECK(exit_code(r.proc.wait(30s)) == 1);
    CHECK(*r.boot().get("FATAL") == fatal);
  }
}

TEST_CASE("without --dev and not PID 1: refuses with exit 2") {
  auto r = tt::run({init_bin()});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("not PID 1") != std::string::npos);
  auto u = tt::run({init_bin(), "--dev", "--bogus"});
  CHECK(u.exit_code == 2);
}
