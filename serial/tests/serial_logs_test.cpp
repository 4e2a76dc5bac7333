// The marker parser against hand-made serial logs (serial/tests/logs/): firmware and
// kernel output interleaved before, between and after markers, several boots in one
// log, a log cut off mid-boot, and a marker line torn by a kernel message.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "serial/serial.h"

using namespace torgw::serial;

namespace {

std::string log_file(const std::string& name) {
  const char* src = std::getenv("TORGW_SOURCE_DIR");
  std::ifstream f(std::string(src ? src : ".") + "/serial/tests/logs/" + name, std::ios::binary);
  REQUIRE(f);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("hand-made log: one GCE boot among firmware and kernel lines") {
  auto p = parse_log(log_file("gce_one_boot.log"));
  REQUIRE(p.ok());
  REQUIRE(p->boots.size() == 1);
  const Boot& b = p->boots[0];
  INFO(b.problems.size());
  CHECK(b.problems.empty());
  CHECK(b.complete());
  CHECK(b.end == BootEnd::Ready);
  CHECK(b.boot_id == "3f1c0a9be2d84c5f9a0b7c6d5e4f3a21");
  CHECK(*b.get("NETWORK") == "ens4:10.128.0.5");
  CHECK(*b.get("ATTESTATION_REPORT") == std::string(600, 'A') + std::string(400, 'B'));
  CHECK(*b.get("TOR_BOOTSTRAP") == "100");
  // BOOT_ID right after "Run /sbin/init as init process" with no newline in between.
  CHECK(b.markers[0].key == "BOOT_ID");
  CHECK(b.markers[2].key == "VERSION");
  CHECK(p->problems.empty());
}

TEST_CASE("hand-made log: three boots, the last one truncated, never merged") {
  auto p = parse_log(log_file("three_boots_truncated.log"));
  REQUIRE(p.ok());
  REQUIRE(p->boots.size() == 3);
  CHECK(p->boots[0].end == BootEnd::Ready);
  CHECK(p->boots[1].end == BootEnd::Fatal);
  CHECK(*p->boots[1].get("FATAL") == "onion_port:out_of_range");
  const Boot& last = p->boots[2];
  CHECK(last.end == BootEnd::Incomplete);
  CHECK_FALSE(last.complete());
  CHECK(last.get("ATTESTATION_REPORT") == nullptr);     // half a report is no report
  CHECK(*last.get("ONION_HOSTNAME") == "third.onion");  // not the first boot's
  CHECK(last.get("READY") == nullptr);
  // The scraper's choice: the last complete boot is the FATAL one, not the first.
  const Boot* chosen = last_complete_boot(*p);
  REQUIRE(chosen);
  CHECK(chosen->boot_id == p->boots[1].boot_id);
  CHECK(chosen->get("ONION_HOSTNAME") == nullptr);
}

TEST_CASE("hand-made log: a marker line torn by a kernel message is a problem, not a value") {
  auto p = parse_log(log_file("torn_marker.log"));
  REQUIRE(p.ok());
  REQUIRE(p->boots.size() == 1);
  const Boot& b = p->boots[0];
  CHECK(b.get("ONION_HOSTNAME") == nullptr);
  CHECK_FALSE(b.problems.empty());
  CHECK_FALSE(b.complete());
}
