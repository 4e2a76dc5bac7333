// RFC 1928 / 1929 wire format: every field, every reply code, every malformed prefix.
#include <catch2/catch.hpp>

#include <string>

#include "socks/socks5.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::socks5;
using torgw::testing::FailsWith;

namespace {

Bytes B(std::initializer_list<int> v) {
  Bytes b;
  for (int x : v) b.push_back(static_cast<std::uint8_t>(x));
  return b;
}

Bytes cat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Bytes domain_request(std::uint8_t cmd, const std::string& name, std::uint16_t port) {
  Bytes b = B({5, cmd, 0, 3, static_cast<int>(name.size())});
  b.insert(b.end(), name.begin(), name.end());
  b.push_back(static_cast<std::uint8_t>(port >> 8));
  b.push_back(static_cast<std::uint8_t>(port));
  return b;
}

// Every strict prefix of a valid message must parse as "need more", never as an error
// or a message, and the full message must parse to exactly its own length.
template <class F>
void every_prefix_needs_more(const Bytes& msg, F parse) {
  for (std::size_t n = 0; n < msg.size(); ++n) {
    INFO("prefix length " << n << " of " << msg.size());
    auto r = parse(ByteView(msg.data(), n));
    REQUIRE(r.ok());
    REQUIRE_FALSE(r->has_value());
  }
  auto r = parse(ByteView(msg));
  REQUIRE(r.ok());
  REQUIRE(r->has_value());
  REQUIRE((*r)->size == msg.size());
}

}  // namespace

TEST_CASE("greeting: fields and methods") {
  auto r = parse_greeting(B({5, 3, 0, 2, 0x80}));
  REQUIRE(r.ok());
  REQUIRE(r->has_value());
  const auto& g = (*r)->value;
  CHECK(g.methods == B({0, 2, 0x80}));
  CHECK(g.offers(Method::NoAuth));
  CHECK(g.offers(Method::UserPass));
  CHECK_FALSE(g.offers(Method::GssApi));
  CHECK((*r)->size == 5);
}

TEST_CASE("greeting: 255 methods, trailing pipelined bytes are not consumed") {
  Bytes msg = B({5, 255});
  for (int i = 0; i < 255; ++i) msg.push_back(static_cast<std::uint8_t>(i));
  every_prefix_needs_more(msg, parse_greeting);
  auto r = parse_greeting(cat(msg, B({5, 1, 0, 1})));
  REQUIRE(r.ok());
  CHECK((*r)->size == 257);
  CHECK((*r)->value.methods.size() == 255);
}

TEST_CASE("greeting: malformed") {
  SECTION("wrong version: SOCKS4, HTTP, TLS, zero") {
    for (int v : {4, int{'G'}, 0x16, 0, 6, 0xff}) {
      auto r = parse_greeting(B({v, 1, 0}));
      REQUIRE_FALSE(r.ok());
      CHECK_THAT(r, FailsWith("socks5.bad_version"));
      // The version alone already decides.
      auto one = parse_greeting(B({v}));
      REQUIRE_FALSE(one.ok());
    }
  }
  SECTION("zero methods") {
    auto r = parse_greeting(B({5, 0}));
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r, FailsWith("socks5.no_methods"));
  }
  SECTION("truncated at each byte") { every_prefix_needs_more(B({5, 2, 0, 2}), parse_greeting); }
}

TEST_CASE("userpass: fields, lengths, truncation") {
  Bytes msg = B({1, 5, 'a', 'l', 'i', 'c', 'e', 3, 'p', 'w', '#'});
  every_prefix_needs_more(msg, parse_userpass);
  auto r = parse_userpass(msg);
  CHECK((*r)->value.user == "alice");
  CHECK((*r)->value.pass == "pw#");

  SECTION("maximum lengths") {
    Bytes big = B({1, 255});
    big.insert(big.end(), 255, 'u');
    big.push_back(255);
    big.insert(big.end(), 255, 'p');
    every_prefix_needs_more(big, parse_userpass);
    auto rb = parse_userpass(big);
    CHECK((*rb)->value.user.size() == 255);
    CHECK((*rb)->value.pass.size() == 255);
  }
  SECTION("empty password is tolerated") {
    auto e = parse_userpass(B({1, 1, 'u', 0}));
    REQUIRE(e->has_value());
    CHECK((*e)->value.pass.empty());
  }
  SECTION("wrong sub-negotiation version") {
    for (int v : {0, 2, 5}) {
      auto bad = parse_userpass(B({v, 1, 'u', 1, 'p'}));
      REQUIRE_FALSE(bad.ok());
      CHECK_THAT(bad, FailsWith("socks5.bad_auth_version"));
    }
  }
  SECTION("empty username") {
    auto bad = parse_userpass(B({1, 0, 1, 'p'}));
    REQUIRE_FALSE(bad.ok());
    CHECK_THAT(bad, FailsWith("socks5.empty_username"));
  }
}

TEST_CASE("request: every address type and field") {
  SECTION("IPv4") {
    Bytes msg = B({5, 1, 0, 1, 93, 184, 216, 34, 0x01, 0xbb});
    every_prefix_needs_more(msg, parse_request);
    auto r = parse_request(msg);
    const auto& q = (*r)->value;
    CHECK(q.command == 1);
    CHECK(q.dst.type == AddrType::IPv4);
    CHECK(q.dst.port == 443);
    CHECK(q.dst.to_string() == "93.184.216.34:443");
    CHECK(q.dst == Address::ipv4(0x5db8d822, 443));
  }
  SECTION("IPv6") {
    Bytes msg = B({5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80});
    every_prefix_needs_more(msg, parse_request);
    auto r = parse_request(msg);
    CHECK((*r)->value.dst.type == AddrType::IPv6);
    CHECK((*r)->value.dst.to_string() == "[2001:db8::1]:80");
  }
  SECTION("domain, incl. the maximum length 255") {
    Bytes msg = domain_request(1, "example.com", 8080);
    every_prefix_needs_more(msg, parse_request);
    auto r = parse_request(msg);
    CHECK((*r)->value.dst.domain == "example.com");
    CHECK((*r)->value.dst.port == 8080);
    CHECK((*r)->value.dst.to_string() == "example.com:8080");
    std::string longest(255, 'a');
    Bytes big = domain_request(1, longest, 1);
    every_prefix_needs_more(big, parse_request);
    CHECK((*parse_request(big))->value.dst.domain.size() == 255);
  }
  SECTION("commands are reported raw, whatever they are") {
    for (int cmd : {1, 2, 3, 0, 4, 0xff}) {
      auto r = parse_request(B({5, cmd, 0, 1, 1, 2, 3, 4, 0, 1}));
      REQUIRE(r->has_value());
      CHECK((*r)->value.command == cmd);
    }
  }
  SECTION("trailing early data is left for the caller") {
    auto r = parse_request(cat(B({5, 1, 0, 1, 1, 2, 3, 4, 0, 1}), B({'G', 'E', 'T'})));
    CHECK((*r)->size == 10);
  }
}

TEST_CASE("request: malformed") {
  SECTION("wrong version") {
    auto r = parse_request(B({4, 1, 0, 1, 1, 2, 3, 4, 0, 1}));
    CHECK_THAT(r, FailsWith("socks5.bad_version"));
  }
  SECTION("reserved byte not zero") {
    auto r = parse_request(B({5, 1, 1, 1, 1, 2, 3, 4, 0, 1}));
    CHECK_THAT(r, FailsWith("socks5.bad_reserved"));
  }
  SECTION("unknown address type") {
    for (int atyp : {0, 2, 5, 0xff}) {
      auto r = parse_request(B({5, 1, 0, atyp, 1, 2, 3, 4, 0, 1}));
      REQUIRE_FALSE(r.ok());
      CHECK_THAT(r, FailsWith("socks5.bad_atyp"));
      // Decided as soon as the ATYP byte arrives.
      CHECK_FALSE(parse_request(B({5, 1, 0, atyp})).ok());
    }
  }
  SECTION("domain of length zero") {
    auto r = parse_request(B({5, 1, 0, 3, 0, 0, 80}));
    CHECK_THAT(r, FailsWith("socks5.empty_domain"));
  }
  SECTION("a domain length claiming more than is there waits, never overreads") {
    Bytes msg = B({5, 1, 0, 3, 200, 'a', 'b'});
    auto r = parse_request(msg);
    REQUIRE(r.ok());
    CHECK_FALSE(r->has_value());
  }
}

TEST_CASE("backend side: method choice, auth status, reply") {
  every_prefix_needs_more(B({5, 0}), parse_method_choice);
  CHECK((*parse_method_choice(B({5, 0xff})))->value == 0xff);
  CHECK_THAT(parse_method_choice(B({4, 0})), FailsWith("socks5.bad_version"));

  every_prefix_needs_more(B({1, 0}), parse_auth_status);
  CHECK((*parse_auth_status(B({1, 1})))->value == 1);
  CHECK_THAT(parse_auth_status(B({5, 0})), FailsWith("socks5.bad_auth_version"));

  for (int code = 0; code <= 8; ++code) {
    Bytes msg = B({5, code, 0, 1, 10, 0, 0, 1, 0x04, 0x38});
    every_prefix_needs_more(msg, parse_reply);
    auto r = parse_reply(msg);
    CHECK((*r)->value.code == code);
    CHECK((*r)->value.bound.to_string() == "10.0.0.1:1080");
  }
  auto d = parse_reply(domain_request(0, "exit.example", 9));
  CHECK((*d)->value.bound.domain == "exit.example");
  CHECK_THAT(parse_reply(B({5, 0, 7, 1, 0, 0, 0, 0, 0, 0})), FailsWith("socks5.bad_reserved"));
  CHECK_THAT(parse_reply(B({5, 0, 0, 9})), FailsWith("socks5.bad_atyp"));
}

TEST_CASE("every reply code has a name") {
  CHECK(reply_name(0) == "succeeded");
  CHECK(reply_name(1) == "general_failure");
  CHECK(reply_name(2) == "not_allowed");
  CHECK(reply_name(3) == "network_unreachable");
  CHECK(reply_name(4) == "host_unreachable");
  CHECK(reply_name(5) == "connection_refused");
  CHECK(reply_name(6) == "ttl_expired");
  CHECK(reply_name(7) == "command_not_supported");
  CHECK(reply_name(8) == "address_type_not_supported");
  CHECK(reply_name(0x2a) == "0x2a");
}

TEST_CASE("encoders round-trip through the parsers") {
  auto g = encode_greeting({Method::NoAuth, Method::UserPass});
  CHECK(g == B({5, 2, 0, 2}));
  CHECK(encode_method_choice(Method::NoAcceptable) == B({5, 0xff}));
  CHECK(encode_auth_status(true) == B({1, 0}));
  CHECK(encode_auth_status(false) == B({1, 1}));

  auto up = encode_userpass(as_bytes("bob"), as_bytes("secret"));
  REQUIRE(up.ok());
  auto pu = parse_userpass(*up);
  CHECK((*pu)->value.user == "bob");
  CHECK((*pu)->value.pass == "secret");
  CHECK_FALSE(encode_userpass(as_bytes(""), as_bytes("x")).ok());
  CHECK_FALSE(encode_userpass(as_bytes(std::string(256, 'u')), as_bytes("x")).ok());
  CHECK_FALSE(encode_userpass(as_bytes("u"), as_bytes(std::string(256, 'p'))).ok());

  for (const auto& a : {Address::ipv4(0x01020304, 1), Address::name("a.example", 65535),
                        Address::ipv6({0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9}, 22)}) {
    auto req = encode_request(Command::Connect, a);
    REQUIRE(req.ok());
    auto back = parse_request(*req);
    CHECK((*back)->value.dst == a);
    CHECK((*back)->value.command == 1);
  }
  CHECK_THAT(encode_request(Command::Connect, Address::name("", 1)), FailsWith("socks5.bad_domain"));
  CHECK_THAT(encode_request(Command::Connect, Address::name(std::string(256, 'a'), 1)), FailsWith("socks5.bad_domain"));

  for (int code = 0; code <= 8; ++code) {
    auto rep = encode_reply(static_cast<std::uint8_t>(code));
    std::uint8_t buf[10];
    REQUIRE(encode_reply_into(static_cast<std::uint8_t>(code), buf, sizeof buf) == 10);
    CHECK(Bytes(buf, buf + 10) == rep);
    CHECK((*parse_reply(rep))->value.code == code);
  }
  std::uint8_t small[9];
  CHECK(encode_reply_into(0, small, sizeof small) == 0);
}

TEST_CASE("hostnames the relay passes on") {
  for (const char* ok : {"example.com", "example.com.", "a", "xn--bcher-kva.example", "_dmarc.example.org", "a-b.c-d",
                         "1.2.3.4", "0x7f.1"})
    CHECK(valid_hostname(ok));
  std::string label63(63, 'a'), label64(64, 'a');
  CHECK(valid_hostname(label63 + ".com"));
  CHECK_FALSE(valid_hostname(label64 + ".com"));
  std::string long_name;
  while (long_name.size() < 250) long_name += "abcdefghi.";
  long_name += "ab";
  CHECK(long_name.size() == 252);
  CHECK(valid_hostname(long_name));
  CHECK_FALSE(valid_hostname(long_name + "cd"));
  for (const char* bad : {"", ".", "..", "a..b", ".a", "a b", "a\tb", "exa%mple", "a/b", "user@host", "::1", "[::1]",
                          "caf\xc3\xa9.example", "a\nb", "a.b.."})
    CHECK_FALSE(valid_hostname(bad));
  CHECK_FALSE(valid_hostname(std::string("a\0b", 3)));
}
