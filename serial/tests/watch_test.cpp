// The incremental follower of `torgw serial watch`: any split of a log into pieces must
// give the same newest boot as parsing the whole text at once; reboots drop the older
// boot; overlong and binary lines are counted, never kept.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "serial/serial.h"

using namespace torgw::serial;

namespace {

std::string marker(const std::string& k, const std::string& v) { return *format_marker(k, v); }

const std::string kId1 = "0123456789abcdef0123456789abcdef";
const std::string kId2 = "fedcba9876543210fedcba9876543210";

std::string boot(const std::string& id, const std::string& tail) {
  return marker("BOOT_ID", id) + marker("MARKER_VERSION", "1") + "[    1.234567] virtio_net: eth0 up\n" +
         marker("SNP", "absent") + "[    2.000001] random: crng init done\r\n" + marker("TOR_BOOTSTRAP", "45") + tail;
}

WatchState feed_in_pieces(std::string_view text, std::size_t piece) {
  WatchState s;
  for (std::size_t i = 0; i < text.size(); i += piece) watch_feed(s, text.substr(i, piece));
  return s;
}

}  // namespace

TEST_CASE("watch: every piece size gives the whole-log parse of the newest boot") {
  const std::string log = "BIOS noise\n" + boot(kId1, marker("FATAL", "config:backend:missing")) +
                          boot(kId2, marker("TOR_BOOTSTRAP", "100") + marker("READY", "true"));
  auto whole = parse_log(log);
  REQUIRE(whole.ok());
  const Boot& want = whole->boots.back();
  for (std::size_t piece = 1; piece <= log.size(); ++piece) {
    INFO("piece " << piece);
    auto s = feed_in_pieces(log, piece);
    auto p = watch_progress(s);
    REQUIRE(p.have_boot);
    CHECK(p.boot.boot_id == kId2);
    CHECK(p.boot.values == want.values);
    CHECK(p.boot.end == BootEnd::Ready);
    CHECK(p.boot.complete());
    CHECK(p.stage == "READY");
    CHECK(p.tor_bootstrap == 100);
    CHECK(s.boots == 2);
  }
}

TEST_CASE("watch: a boot in progress, a torn line waiting for its end") {
  const std::string log = boot(kId1, "");
  const std::string torn = marker("TOR_BOOTSTRAP", "85");
  WatchState s;
  watch_feed(s, log);
  watch_feed(s, torn.substr(0, 12));  // "\r\nTORGW TOR_"
  auto p = watch_progress(s);
  REQUIRE(p.have_boot);
  CHECK(p.boot.end == BootEnd::Incomplete);
  CHECK(p.stage == "TOR_BOOTSTRAP");
  CHECK(p.tor_bootstrap == 45);
  watch_feed(s, torn.substr(12));
  CHECK(watch_progress(s).tor_bootstrap == 85);
}

TEST_CASE("watch: a reboot drops the older boot, even a FATAL one") {
  WatchState s;
  watch_feed(s, boot(kId1, marker("FATAL", "tor.exited")));
  auto p = watch_progress(s);
  CHECK(p.boot.end == BootEnd::Fatal);
  CHECK(*p.boot.get("FATAL") == "tor.exited");
  watch_feed(s, marker("BOOT_ID", kId2));
  p = watch_progress(s);
  CHECK(p.boot.boot_id == kId2);
  CHECK(p.boot.end == BootEnd::Incomplete);
  CHECK(p.boot.get("FATAL") == nullptr);
}

TEST_CASE("watch: garbage, binary bytes and overlong lines are counted, not kept") {
  WatchState s;
  watch_feed(s, std::string("\0\x01\x02\xff\xfe garbage", 13));
  watch_feed(s, std::string(kMaxWatchLine + 10, 'x'));  // no newline yet: dropped, skipping to it
  watch_feed(s, std::string(100, 'y') + "\n");
  CHECK(s.dropped_lines == 1);
  CHECK(s.partial.size() <= kMaxWatchLine);
  CHECK(s.binary_bytes == 3);
  CHECK_FALSE(watch_progress(s).have_boot);
  // A marker line after the garbage still counts.
  watch_feed(s, boot(kId1, marker("READY", "true")));
  auto p = watch_progress(s);
  CHECK(p.have_boot);
  CHECK(p.boot.complete());
  // Markers before any BOOT_ID (a watch started mid-boot) are not a boot.
  WatchState mid;
  watch_feed(mid, marker("TOR_BOOTSTRAP", "10"));
  CHECK_FALSE(watch_progress(mid).have_boot);
}

TEST_CASE("watch: the hand-made logs, one byte at a time") {
  for (const char* name : {"gce_one_boot.log", "three_boots_truncated.log", "torn_marker.log"}) {
    INFO(name);
    const char* src = std::getenv("TORGW_SOURCE_DIR");
    std::ifstream f(std::string(src ? src : ".") + "/serial/tests/logs/" + name, std::ios::binary);
    REQUIRE(f);
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string text = ss.str();
    auto whole = parse_log(text);
    REQUIRE(whole.ok());
    auto s = feed_in_pieces(text, 1);
    auto p = watch_progress(s);
    if (whole->boots.empty()) {
      CHECK_FALSE(p.have_boot);
      continue;
    }
    REQUIRE(p.have_boot);
    const Boot& last = whole->boots.back();
    CHECK(p.boot.boot_id == last.boot_id);
    CHECK(p.boot.values == last.values);
    CHECK(p.boot.end == last.end);
  }
}
