#include <catch2/catch.hpp>

#include <string>

#include "controlport/reply.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::controlport;
using torgw::testing::FailsWith;

namespace {

std::vector<Reply> parse_ok(const std::string& s) {
  auto r = parse_replies(s);
  INFO(s);
  REQUIRE(r.ok());
  return *r;
}

std::string parse_err(const std::string& s, ParserLimits lim = {}) {
  auto r = parse_replies(s, lim);
  REQUIRE_FALSE(r.ok());
  return r.error().reason;
}

// Feeds `s` in pieces of `step` bytes and returns what came out.
std::vector<Reply> feed_in_steps(const std::string& s, std::size_t step) {
  ReplyParser p;
  std::vector<Reply> out;
  for (std::size_t i = 0; i < s.size(); i += step) REQUIRE(p.feed(std::string_view(s).substr(i, step), out).ok());
  CHECK(p.idle());
  return out;
}

}  // namespace

TEST_CASE("single-line and multi-line replies") {
  auto r = parse_ok("250 OK\r\n");
  REQUIRE(r.size() == 1);
  CHECK(r[0].code() == 250);
  CHECK(r[0].ok());
  CHECK_FALSE(r[0].async());
  CHECK(r[0].message() == "OK");
  CHECK(r[0].lines.size() == 1);
  CHECK(r[0].lines[0].kind == ' ');

  r = parse_ok("250-PROTOCOLINFO 1\r\n250-AUTH METHODS=NULL\r\n250-VERSION Tor=\"0.4.9.11\"\r\n250 OK\r\n");
  REQUIRE(r.size() == 1);
  REQUIRE(r[0].lines.size() == 4);
  CHECK(r[0].lines[0].kind == '-');
  CHECK(r[0].lines[0].text == "PROTOCOLINFO 1");
  CHECK(r[0].lines[2].text == "VERSION Tor=\"0.4.9.11\"");

  r = parse_ok("552 Unrecognized key \"x\"\r\n510 Unrecognized command \"FOO\"\r\n");
  REQUIRE(r.size() == 2);
  CHECK(r[0].code() == 552);
  CHECK_FALSE(r[0].ok());
  CHECK(r[0].summary() == "552 Unrecognized key \"x\"");
  CHECK(r[1].code() == 510);
}

TEST_CASE("data replies are dot-unescaped and may contain reply-like lines") {
  const std::string s = "250+config-text=\r\n"
                        "Log notice stdout\r\n"
                        "..leading dot\r\n"
                        "250 OK (inside data)\r\n"
                        "\r\n"
                        "650 HS_DESC (inside data)\r\n"
                        ".\r\n"
                        "250 OK\r\n";
  auto r = parse_ok(s);
  REQUIRE(r.size() == 1);
  REQUIRE(r[0].lines.size() == 2);
  CHECK(r[0].lines[0].kind == '+');
  CHECK(r[0].lines[0].text == "config-text=");
  CHECK(r[0].lines[0].data == "Log notice stdout\n.leading dot\n250 OK (inside data)\n\n650 HS_DESC (inside data)");
  CHECK(r[0].message() == "OK");

  auto empty = parse_ok("250+k=\r\n.\r\n250 OK\r\n");
  REQUIRE(empty.size() == 1);
  CHECK(empty[0].lines[0].data.empty());

  // Two data lines in one reply.
  auto two = parse_ok("250+a=\r\nx\r\n.\r\n250+b=\r\ny\r\nz\r\n.\r\n250 OK\r\n");
  REQUIRE(two[0].lines.size() == 3);
  CHECK(two[0].lines[0].data == "x");
  CHECK(two[0].lines[1].data == "y\nz");
}

TEST_CASE("asynchronous events interleave with command replies") {
  // An event between two replies, and one (old-tor style) between the lines of a reply.
  const std::string s = "650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY=\"Connecting\"\r\n"
                        "250-ServiceID=abc\r\n"
                        "650 HS_DESC CREATED x UNKNOWN UNKNOWN y\r\n"
                        "650+WARN\r\nmulti\r\nline\r\n.\r\n"
                        "250 OK\r\n"
                        "650 OK\r\n";
  auto r = parse_ok(s);
  REQUIRE(r.size() == 4);
  CHECK(r[0].async());
  CHECK(r[0].lines[0].text.rfind("STATUS_CLIENT", 0) == 0);
  CHECK(r[1].async());
  CHECK(r[1].lines[0].text.rfind("HS_DESC", 0) == 0);
  CHECK(r[2].code() == 250);
  REQUIRE(r[2].lines.size() == 2);
  CHECK(r[2].lines[0].text == "ServiceID=abc");
  CHECK(r[3].async());
  REQUIRE(r[3].lines.size() == 2);
  CHECK(r[3].lines[0].data == "multi\nline");
}

TEST_CASE("partial reads give the same replies at every split") {
  const std::string s = "250-a=1\r\n250+b=\r\n..x\r\ny\r\n.\r\n650 CIRC 1 BUILT\r\n250 OK\r\n"
                        "650-CONF_CHANGED\r\n650-SocksPort=0\r\n650 OK\r\n551 nope\r\n";
  auto whole = parse_ok(s);
  REQUIRE(whole.size() == 4);
  for (std::size_t step = 1; step <= s.size(); ++step) CHECK(feed_in_steps(s, step) == whole);

  ReplyParser p;
  std::vector<Reply> out;
  REQUIRE(p.feed("250 O", out).ok());
  CHECK(out.empty());
  CHECK_FALSE(p.idle());
  REQUIRE(p.feed("K\r", out).ok());
  CHECK(out.empty());
  REQUIRE(p.feed("\n", out).ok());
  REQUIRE(out.size() == 1);
  CHECK(p.idle());
}

TEST_CASE("lines far longer than 16 KiB are fine, up to the limit") {
  std::string big(200 * 1024, 'v');
  auto r = parse_ok("250-key=" + big + "\r\n250+data=\r\n" + big + "\r\n.\r\n250 OK\r\n");
  REQUIRE(r.size() == 1);
  CHECK(r[0].lines[0].text.size() == 4 + big.size());
  CHECK(r[0].lines[1].data == big);
  // Delivered in 1000-byte pieces, the long line is scanned once, not quadratically.
  CHECK(feed_in_steps("250 " + big + "\r\n", 1000).at(0).message() == big);

  ParserLimits lim;
  lim.max_line = 1024;
  CHECK(parse_err("250 " + std::string(2000, 'x') + "\r\n", lim) == "controlport.line_too_long");
  // Detected before the line ends, so an endless line cannot grow the buffer.
  ReplyParser p(lim);
  std::vector<Reply> out;
  CHECK_THAT(p.feed("250 " + std::string(1500, 'x'), out), FailsWith("controlport.line_too_long"));
  CHECK(p.failed());

  lim = ParserLimits{};
  lim.max_reply = 4096;
  std::string many;
  for (int i = 0; i < 100; ++i) many += "250-k=" + std::string(100, 'a') + "\r\n";
  CHECK(parse_err(many + "250 OK\r\n", lim) == "controlport.reply_too_large");
  CHECK(parse_err("250+d=\r\n" + many + ".\r\n250 OK\r\n", lim) == "controlport.reply_too_large");
}

TEST_CASE("garbage is a clear error, and the parser stays failed") {
  const std::vector<std::string> bad = {"hello\r\n",
                                        "25\r\n",
                                        "250\r\n",
                                        "2500OK\r\n",
                                        "700 x\r\n",
                                        "099 x\r\n",
                                        "25a OK\r\n",
                                        "250*OK\r\n",
                                        "\r\n",
                                        " 250 OK\r\n",
                                        std::string("\x00\x01\x02\r\n", 5)};
  for (const auto& b : bad) {
    INFO(b);
    CHECK(parse_err(b) == "controlport.bad_line");
  }
  ReplyParser p;
  std::vector<Reply> out;
  CHECK_THAT(p.feed("250 OK\r\nbogus\r\n250 OK\r\n", out), FailsWith("controlport.bad_line"));
  CHECK(out.size() == 1);  // what completed before the garbage is still delivered
  CHECK_THAT(p.feed("250 OK\r\n", out), FailsWith("controlport.bad_line"));
  CHECK(out.size() == 1);
}

TEST_CASE("truncation and line endings") {
  CHECK(parse_err("250-a\r\n") == "controlport.truncated");
  CHECK(parse_err("250+a=\r\nxx\r\n") == "controlport.truncated");
  CHECK(parse_err("250 OK") == "controlport.truncated");
  // Bare LF is accepted (CR is optional); a CR elsewhere stays in the text.
  auto r = parse_ok("250-a\n250 b\rc\r\n");
  REQUIRE(r.size() == 1);
  CHECK(r[0].lines[0].text == "a");
  CHECK(r[0].lines[1].text == "b\rc");
  CHECK(parse_ok("").empty());
}
