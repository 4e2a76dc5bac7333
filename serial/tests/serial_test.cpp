#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "serial/serial.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::serial;
using torgw::testing::FailsWith;

namespace {

const std::string kId1 = "0123456789abcdef0123456789abcdef";
const std::string kId2 = "fedcba9876543210fedcba9876543210";

std::string m(const std::string& k, const std::string& v) { return *format_marker(k, v); }

std::string boot(const std::string& id, const std::string& body, bool ready = true) {
  return m("BOOT_ID", id) + m("MARKER_VERSION", "1") + body + (ready ? m("READY", "true") : "");
}

}  // namespace

TEST_CASE("format_marker produces the exact wire format") {
  CHECK(m("SNP", "absent") == "\r\nTORGW SNP=absent\r\n");
  CHECK_THAT(format_marker("lower", "x"), FailsWith("serial.bad_key"));
  CHECK_THAT(format_marker("A-B", "x"), FailsWith("serial.bad_key"));
  CHECK_THAT(format_marker("", "x"), FailsWith("serial.bad_key"));
  CHECK_THAT(format_marker(std::string(65, 'A'), "x"), FailsWith("serial.bad_key"));
  CHECK_THAT(format_marker("K", "has space"), FailsWith("serial.bad_value"));
  CHECK_THAT(format_marker("K", ""), FailsWith("serial.bad_value"));
  CHECK_THAT(format_marker("K", "tab\t"), FailsWith("serial.bad_value"));
  CHECK_THAT(format_marker("K", std::string(513, 'a')), FailsWith("serial.bad_value"));
  CHECK(format_marker("K", std::string(512, 'a')).ok());
  CHECK(sanitize_value("tor exited: code 1\n") == "tor_exited:_code_1_");
  CHECK(sanitize_value("") == "_");
}

TEST_CASE("format_chunked splits into 1-based KEY.i/n lines") {
  auto lines = format_chunked("REPORT", "abcdefghij", 4);
  REQUIRE(lines.ok());
  REQUIRE(lines->size() == 3);
  CHECK((*lines)[0] == "\r\nTORGW REPORT.1/3=abcd\r\n");
  CHECK((*lines)[2] == "\r\nTORGW REPORT.3/3=ij\r\n");
  auto one = format_chunked("SHORT", "x");
  REQUIRE(one.ok());
  CHECK((*one)[0] == "\r\nTORGW SHORT.1/1=x\r\n");
  CHECK_FALSE(format_chunked("K", "a b").ok());
  CHECK_FALSE(format_chunked("K", "").ok());
  CHECK_FALSE(format_chunked("K", "abc", 0).ok());
}

TEST_CASE("new_boot_id is 128 random bits in hex") {
  auto a = new_boot_id();
  auto b = new_boot_id();
  CHECK(a.size() == 32);
  CHECK(a != b);
  CHECK(a.find_first_not_of("0123456789abcdef") == std::string::npos);
}

TEST_CASE("MarkerWriter writes each marker with one write per fd") {
  int p[2];
  REQUIRE(::pipe(p) == 0);
  MarkerWriter w({p[1]});
  auto id = w.begin_boot();
  CHECK(w.emit("SNP", "absent"));
  CHECK_FALSE(w.emit("bad key", "x"));
  CHECK(w.emit_chunked("BLOB", std::string(1000, 'Z')));
  w.fatal("config: backend missing");
  ::close(p[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(p[0]);
  auto parsed = parse_log(out);
  REQUIRE(parsed.ok());
  REQUIRE(parsed->boots.size() == 1);
  const auto& b = parsed->boots[0];
  CHECK(b.boot_id == id);
  CHECK(b.end == BootEnd::Fatal);
  CHECK(b.complete());
  CHECK(*b.get("BLOB") == std::string(1000, 'Z'));
  CHECK(*b.get("FATAL") == "config:_backend_missing");
}

TEST_CASE("parser tolerates kernel output, CRLF and missing CR") {
  std::string log = "[    0.000000] Linux version 6.1.0\r\n"
                    "some early printk without newline handling\n" +
                    boot(kId1, "[    1.2] virtio_net: probe\r\n" + m("SNP", "absent") +
                                   "\nTORGW VERSION=0.1.0\n" +  // bare LF, no CR
                                   "random TORGW SNP=present in the middle of a line\n") +
                    "[    9.9] reboot: Power down\r\n";
  auto p = parse_log(log);
  REQUIRE(p.ok());
  REQUIRE(p->boots.size() == 1);
  const auto& b = p->boots[0];
  CHECK(b.complete());
  CHECK(b.end == BootEnd::Ready);
  CHECK(*b.get("SNP") == "absent");
  CHECK(*b.get("VERSION") == "0.1.0");
  CHECK(b.marker_version == 1);
  CHECK(last_complete_boot(*p) == &b);
}

TEST_CASE("several boots: the last complete one wins, an incomplete tail is reported") {
  std::string log = boot(kId1, m("ONION_HOSTNAME", "aaa.onion")) + boot(kId2, m("ONION_HOSTNAME", "bbb.onion")) +
                    boot("00000000000000000000000000000003", m("ONION_HOSTNAME", "ccc.onion"), false);
  auto p = parse_log(log);
  REQUIRE(p.ok());
  REQUIRE(p->boots.size() == 3);
  CHECK(p->boots[2].end == BootEnd::Incomplete);
  CHECK_FALSE(p->boots[2].complete());
  auto last = last_complete_boot(*p);
  REQUIRE(last);
  CHECK(last->boot_id == kId2);
  CHECK(*last->get("ONION_HOSTNAME") == "bbb.onion");  // never merged with the next boot
}

TEST_CASE("chunks are reassembled in any order; a missing chunk makes the boot incomplete") {
  auto lines = *format_chunked("ATTESTATION_REPORT", std::string(700, 'Q') + "END", 256);
  REQUIRE(lines.size() == 3);
  auto p = parse_log(boot(kId1, lines[2] + "[ 3.0] noise\n" + lines[0] + lines[1]));
  REQUIRE(p.ok());
  CHECK(p->boots[0].complete());
  CHECK(*p->boots[0].get("ATTESTATION_REPORT") == std::string(700, 'Q') + "END");

  auto q = parse_log(boot(kId1, lines[0] + lines[2]));
  REQUIRE(q.ok());
  CHECK_FALSE(q->boots[0].complete());
  CHECK(q->boots[0].get("ATTESTATION_REPORT") == nullptr);
  REQUIRE(q->boots[0].problems.size() == 1);
  CHECK(q->boots[0].problems[0] == "ATTESTATION_REPORT: chunk 2/3 missing");
}

TEST_CASE("conflicting chunks and count changes are problems") {
  auto p = parse_log(boot(kId1, "\r\nTORGW X.1/2=aa\r\n\r\nTORGW X.1/2=bb\r\n\r\nTORGW X.2/2=cc\r\n"));
  REQUIRE(p.ok());
  CHECK_FALSE(p->boots[0].complete());
  auto q = parse_log(boot(kId1, "\r\nTORGW X.1/2=aa\r\n\r\nTORGW X.2/3=bb\r\n"));
  REQUIRE(q.ok());
  CHECK_FALSE(q->boots[0].complete());
}

TEST_CASE("a log cut in the middle of a marker is truncated, not trusted") {
  std::string full = boot(kId1, m("ONION_HOSTNAME", "abcdef.onion"));
  // Cut right after READY's value but before its line end.
  std::string cut = full.substr(0, full.size() - 2);
  auto p = parse_log(cut);
  REQUIRE(p.ok());
  CHECK_FALSE(p->boots[0].complete());
  CHECK(p->boots[0].get("READY") == nullptr);
  CHECK(last_complete_boot(*p) == nullptr);
}

TEST_CASE("malformed marker lines are problems, never values") {
  const char* bad[] = {
      "TORGW NOEQUALS", "TORGW lower=x",  "TORGW K=has space", "TORGW K=",      "TORGW K.0/1=x", "TORGW K.2/1=x",
      "TORGW K.1/0=x",  "TORGW K.01/2=x", "TORGW K.1=x",       "TORGW K.a/b=x", "TORGW =x",      "TORGW K.1/5000=x",
  };
  for (const char* line : bad) {
    INFO(line);
    auto p = parse_log(boot(kId1, std::string(line) + "\r\n"));
    REQUIRE(p.ok());
    CHECK_FALSE(p->boots[0].complete());
    CHECK(p->boots[0].get("K") == nullptr);
  }
}

TEST_CASE("BOOT_ID and MARKER_VERSION rules") {
  auto p = parse_log(m("SNP", "absent") + m("BOOT_ID", "XYZ") + m("READY", "true"));
  REQUIRE(p.ok());
  CHECK(p->boots.empty());
  CHECK(p->problems.size() == 3);  // SNP before boot, bad id, READY before boot

  auto q = parse_log(m("BOOT_ID", kId1) + m("MARKER_VERSION", "2") + m("READY", "true"));
  REQUIRE(q.ok());
  CHECK_FALSE(q->boots[0].complete());

  auto r = parse_log(m("BOOT_ID", kId1) + m("SNP", "absent") + m("MARKER_VERSION", "1") + m("READY", "true"));
  REQUIRE(r.ok());
  CHECK_FALSE(r->boots[0].complete());
}

TEST_CASE("FATAL after READY ends the boot as fatal") {
  auto p = parse_log(boot(kId1, "") + m("FATAL", "tor_restart_limit"));
  REQUIRE(p.ok());
  CHECK(p->boots[0].end == BootEnd::Fatal);
  CHECK(p->boots[0].complete());
}

TEST_CASE("oversized logs are refused") {
  std::string big(kMaxLogBytes + 1, 'x');
  CHECK_THAT(parse_log(big), FailsWith("serial.log_too_large"));
}
