// `torgw config check|keys`, the real binary: exit codes, FATAL reasons, redaction.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "tests/support/process.h"
#include "tests/support/tempdir.h"

using namespace torgw::testing;

static std::string torgw_bin() { return binary_dir() + "/cli/torgw"; }

TEST_CASE("torgw config check: the boot's rules, offline") {
  TempDir dir("cfg");
  write_file(dir.file("ok.conf"), "backend=127.0.0.1:9050\nbackend_user=u\nbackend_password=hunter22\n");
  write_file(dir.file("bad.conf"), "backend=127.0.0.1:9050\nonion_port=0\n");
  write_file(dir.file("cmdline"), "ro quiet torgw.onion_port=81");
  write_file(dir.file("userdata"), "max_connections=9\n");

  auto ok = run({torgw_bin(), "config", "check", "--file", dir.file("ok.conf"), "--userdata", dir.file("userdata"),
                 "--cmdline", dir.file("cmdline"), "--gce", "torgw-onion-port=82", "--gce", "torgw-idle-timeout=5m",
                 "--json"});
  REQUIRE(ok.exit_code == 0);
  auto j = nlohmann::json::parse(ok.out);
  CHECK(j["valid"] == true);
  CHECK(j["markers"]["CONFIG_ONION_PORT"] == "81");  // cmdline over GCE
  CHECK(j["markers"]["CONFIG_IDLE_TIMEOUT"] == "300");
  CHECK(j["markers"]["CONFIG_MAX_CONNECTIONS"] == "9");
  CHECK(j["markers"]["CONFIG_BACKEND_PASSWORD"] == "redacted");
  CHECK(ok.out.find("hunter22") == std::string::npos);

  auto bad = run({torgw_bin(), "config", "check", "--file", dir.file("bad.conf")});
  CHECK(bad.exit_code == 1);
  CHECK(bad.out.rfind("FATAL=onion_port:out_of_range\n", 0) == 0);
  CHECK(run({torgw_bin(), "config", "check", "--gce", "torgw-bogus=1"}).out.rfind("FATAL=bogus:unknown_key", 0) == 0);
  CHECK(run({torgw_bin(), "config", "check", "--gce", "other=1"}).exit_code == 2);
  CHECK(run({torgw_bin(), "config", "check", "--file", dir.file("missing")}).exit_code == 2);
  CHECK(run({torgw_bin(), "config", "check"}).out.rfind("FATAL=backend:missing", 0) == 0);

  auto keys = run({torgw_bin(), "config", "keys"});
  CHECK(keys.exit_code == 0);
  CHECK(keys.out.find("backend_password") != std::string::npos);
  CHECK(keys.out.find("[secret]") != std::string::npos);
}
