// Destination policy: the built-in private ranges, the ways a hostile client disguises
// them, and operator rules.
#include <catch2/catch.hpp>

#include <string>

#include "socks/policy.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::socks;
using socks5::Address;
using torgw::testing::FailsWith;

namespace {

Address v4(const char* text, std::uint16_t port = 80) {
  auto ip = parse_ip(text);
  REQUIRE(ip);
  REQUIRE(ip->v4);
  Address a;
  a.type = socks5::AddrType::IPv4;
  std::copy(ip->b.begin(), ip->b.begin() + 4, a.ip.begin());
  a.port = port;
  return a;
}
Address v6(const char* text, std::uint16_t port = 80) {
  auto ip = parse_ip(text);
  REQUIRE(ip);
  REQUIRE_FALSE(ip->v4);
  return Address::ipv6(ip->b, port);
}
Address name(const char* n) { return Address::name(n, 80); }

std::string denied(const Policy& p, const Address& a) {
  auto d = p.check(a);
  return d.allowed ? "allowed" : std::string(d.reason);
}

}  // namespace

TEST_CASE("default policy: private IPv4 ranges") {
  Policy p;
  CHECK(denied(p, v4("127.0.0.1")) == "policy.loopback");
  CHECK(denied(p, v4("127.255.255.254")) == "policy.loopback");
  CHECK(denied(p, v4("10.0.0.1")) == "policy.private");
  CHECK(denied(p, v4("172.16.0.1")) == "policy.private");
  CHECK(denied(p, v4("172.31.255.255")) == "policy.private");
  CHECK(denied(p, v4("192.168.1.1")) == "policy.private");
  CHECK(denied(p, v4("169.254.169.254")) == "policy.link_local");
  CHECK(denied(p, v4("100.64.0.1")) == "policy.cgnat");
  CHECK(denied(p, v4("100.127.255.255")) == "policy.cgnat");
  CHECK(denied(p, v4("224.0.0.1")) == "policy.multicast");
  CHECK(denied(p, v4("239.255.255.250")) == "policy.multicast");
  CHECK(denied(p, v4("0.0.0.0")) == "policy.this_network");
  CHECK(denied(p, v4("255.255.255.255")) == "policy.reserved");
  CHECK(denied(p, v4("240.0.0.1")) == "policy.reserved");
  // Just outside the ranges.
  for (const char* ok : {"172.15.255.255", "172.32.0.0", "100.63.255.255", "100.128.0.0", "169.253.255.255", "11.0.0.0",
                         "9.255.255.255", "192.167.255.255", "223.255.255.255", "1.1.1.1", "8.8.8.8"})
    CHECK(denied(p, v4(ok)) == "allowed");
}

TEST_CASE("default policy: IPv6 ranges and embedded IPv4") {
  Policy p;
  CHECK(denied(p, v6("::1")) == "policy.loopback");
  CHECK(denied(p, v6("::")) == "policy.unspecified");
  CHECK(denied(p, v6("fe80::1")) == "policy.link_local");
  CHECK(denied(p, v6("febf::1")) == "policy.link_local");
  CHECK(denied(p, v6("fec0::1")) == "policy.site_local");
  CHECK(denied(p, v6("fc00::1")) == "policy.ula");
  CHECK(denied(p, v6("fd12:3456::1")) == "policy.ula");
  CHECK(denied(p, v6("ff02::1")) == "policy.multicast");
  CHECK(denied(p, v6("64:ff9b:1::1")) == "policy.nat64_local");
  // IPv4 hidden in IPv6.
  CHECK(denied(p, v6("::ffff:127.0.0.1")) == "policy.loopback");
  CHECK(denied(p, v6("::ffff:169.254.169.254")) == "policy.link_local");
  CHECK(denied(p, v6("::10.0.0.1")) == "policy.private");
  CHECK(denied(p, v6("64:ff9b::192.168.0.1")) == "policy.private");
  CHECK(denied(p, v6("::ffff:8.8.8.8")) == "allowed");
  CHECK(denied(p, v6("2001:4860:4860::8888")) == "allowed");
  CHECK(denied(p, v6("fbff::1")) == "allowed");
}

TEST_CASE("default policy: names that are addresses in disguise") {
  Policy p;
  for (const char* n :
       {"127.0.0.1", "127.1", "127.0.1", "0x7f000001", "0x7f.0.0.1", "0177.0.0.1", "2130706433", "017700000001",
        "127.0.0.1.", "LOCALHOST", "localhost", "localhost.", "foo.localhost", "a.b.LocalHost"})
    CHECK(denied(p, name(n)) == "policy.loopback");
  CHECK(denied(p, name("169.254.169.254")) == "policy.link_local");
  CHECK(denied(p, name("2852039166")) == "policy.link_local");  // 169.254.169.254
  CHECK(denied(p, name("10.1")) == "policy.private");
  CHECK(denied(p, name("0")) == "policy.this_network");
  for (const char* ok : {"example.com", "localhost.example.com", "127.0.0.1.nip.io", "0x7g.0.0.1", "1.2.3.4.5",
                         "256.0.0.1", "4294967296", "08.0.0.1", "notlocalhost"})
    CHECK(denied(p, name(ok)) == "allowed");
}

TEST_CASE("numeric_host follows inet_aton") {
  auto t = [](const char* s) {
    auto ip = numeric_host(s);
    return ip ? ip->to_string() : std::string("-");
  };
  CHECK(t("1.2.3.4") == "1.2.3.4");
  CHECK(t("1.2.772") == "1.2.3.4");
  CHECK(t("1.131844") == "1.2.3.4");
  CHECK(t("16909060") == "1.2.3.4");
  CHECK(t("0x01020304") == "1.2.3.4");
  CHECK(t("01.02.03.04") == "1.2.3.4");
  CHECK(t("0xff.0xff.0xff.0xff") == "255.255.255.255");
  CHECK(t("4294967295") == "255.255.255.255");
  CHECK(t("[::1]") == "::1");
  CHECK(t("fe80::1%eth0") == "fe80::1");
  CHECK(t("1.2.3.256") == "-");
  CHECK(t("1.2.65536") == "-");
  CHECK(t("1.16777216") == "-");
  CHECK(t("1..2") == "-");
  CHECK(t(".1") == "-");
  CHECK(t("") == "-");
  CHECK(t("09") == "-");
  CHECK(t("[1.2.3.4]") == "-");
  CHECK(t("1.2.3.4.5") == "-");
}

TEST_CASE("parse_cidr") {
  auto c = parse_cidr("10.0.0.0/8");
  REQUIRE(c.ok());
  CHECK(c->to_string() == "10.0.0.0/8");
  CHECK(c->contains(*parse_ip("10.255.0.1")));
  CHECK_FALSE(c->contains(*parse_ip("11.0.0.1")));
  CHECK_FALSE(c->contains(*parse_ip("::ffff:10.0.0.1")));  // families do not mix
  CHECK(parse_cidr("2001:db8::/32")->contains(*parse_ip("2001:db8:ffff::1")));
  CHECK(parse_cidr("1.2.3.4")->prefix == 32);
  CHECK(parse_cidr("::1")->prefix == 128);
  CHECK(parse_cidr("0.0.0.0/0")->contains(*parse_ip("200.1.1.1")));
  CHECK(parse_cidr("10.0.0.0/9")->contains(*parse_ip("10.127.0.1")));
  CHECK_FALSE(parse_cidr("10.0.0.0/9")->contains(*parse_ip("10.128.0.1")));
  for (const char* bad : {"10.0.0.1/8", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "x/8", "",
                          "/8", "10.0.0.0/0008"}) {
    INFO(bad);
    auto r = parse_cidr(bad);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r, FailsWith("policy.bad_cidr"));
  }
  CHECK(parse_cidr("10.0.0.1/8").error().detail.find("10.0.0.0/8") != std::string::npos);
}

TEST_CASE("operator rules: first match wins, then the built-in ranges") {
  std::vector<PolicyRule> rules;
  rules.push_back(*parse_rule(true, "10.1.0.0/16"));
  rules.push_back(*parse_rule(false, "10.0.0.0/8"));  // redundant with the built-ins
  rules.push_back(*parse_rule(false, "203.0.113.0/24"));
  rules.push_back(*parse_rule(false, "*.internal.example"));
  rules.push_back(*parse_rule(false, "blocked.example"));
  rules.push_back(*parse_rule(true, "localhost"));
  Policy p(rules, true);
  CHECK(denied(p, v4("10.1.2.3")) == "allowed");
  CHECK(denied(p, name("10.1.2.3")) == "allowed");
  CHECK(denied(p, v6("::ffff:10.1.2.3")) == "allowed");
  CHECK(denied(p, v4("10.2.0.1")) == "policy.rule");
  CHECK(denied(p, v4("203.0.113.9")) == "policy.rule");
  CHECK(denied(p, name("a.internal.example")) == "policy.rule");
  CHECK(denied(p, name("A.B.INTERNAL.EXAMPLE.")) == "policy.rule");
  CHECK(denied(p, name("internal.example")) == "allowed");
  CHECK(denied(p, name("blocked.example")) == "policy.rule");
  CHECK(denied(p, name("x.blocked.example")) == "allowed");
  CHECK(denied(p, name("localhost")) == "allowed");
  CHECK(denied(p, v4("192.168.0.1")) == "policy.private");
}

TEST_CASE("deny_private = no leaves only the operator's rules") {
  Policy p({*parse_rule(false, "0.0.0.0/0"), *parse_rule(false, "::/0")}, false);
  CHECK(denied(p, v4("127.0.0.1")) == "policy.rule");
  CHECK(denied(p, name("example.com")) == "allowed");
  Policy open({}, false);
  CHECK(denied(open, v4("127.0.0.1")) == "allowed");
  CHECK(denied(open, name("localhost")) == "allowed");
}

TEST_CASE("parse_rule rejects nonsense") {
  for (const char* bad : {"", "10.0.0.0/33", "exa mple.com", "*.", "*", "a..b", "**.x", "1.2.3.4/8"}) {
    INFO(bad);
    auto r = parse_rule(false, bad);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r, FailsWith("policy.bad_rule"));
  }
  CHECK(parse_rule(true, "Example.COM.")->domain == "example.com");
  CHECK(parse_rule(true, "*.Example.com")->kind == PolicyRule::Kind::DomainSuffix);
}
