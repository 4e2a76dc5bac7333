// Destination policy for socks5 mode: which CONNECT targets torgw-socks refuses (reply
// 0x02) before any backend sees them.
//
// The exit node resolves names, so this policy can only judge what the client wrote:
// IP literals (ATYP 1/4), and names that a resolver would treat as IP literals anyway
// ("127.1", "0x7f000001", "2130706433." all mean 127.0.0.1 to glibc) or that are
// loopback by definition ("localhost", "*.localhost"). IPv4-mapped, IPv4-compatible and
// NAT64 IPv6 addresses are judged by the IPv4 address they embed. The exit node must
// still enforce its own policy on what names resolve to.
//
// Evaluation: the operator's allow/deny rules in order, first match wins; then (unless
// disabled) the built-in private ranges are denied; everything else is allowed.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "socks/socks5.h"

namespace torgw::socks {

// An IPv4 or IPv6 address; IPv4 uses bytes 0..3.
struct IpAddr {
  bool v4 = true;
  std::array<std::uint8_t, 16> b{};
  std::string to_string() const;
  friend bool operator==(const IpAddr&, const IpAddr&) = default;
};

struct Cidr {
  IpAddr net;
  std::uint8_t prefix = 0;
  bool contains(const IpAddr& a) const;
  std::string to_string() const;
};

// "10.0.0.0/8", "fe80::/10", or a bare address (a /32 or /128). Host bits must be zero.
// Errors: policy.bad_cidr.
Result<Cidr> parse_cidr(std::string_view text);

// Strict textual IPv4 (dotted quad) or IPv6 (inet_pton).
std::optional<IpAddr> parse_ip(std::string_view text);

// What a resolver would read as a numeric address: inet_aton forms (1-4 parts, each
// decimal, 0-octal or 0x-hex; "127.1", "0x7f.0.0.1", "2130706433"), one trailing dot
// allowed, plus bracketed or bare IPv6 text. nullopt for real names.
std::optional<IpAddr> numeric_host(std::string_view name);

// For IPv6 addresses that embed an IPv4 one (::ffff:a.b.c.d, ::a.b.c.d, 64:ff9b::a.b.c.d)
// the IPv4 address; the address itself otherwise.
IpAddr normalize(const IpAddr& a);

struct PolicyRule {
  bool allow = false;
  enum class Kind : std::uint8_t { Net, Domain, DomainSuffix } kind = Kind::Net;
  Cidr net;
  std::string domain;  // lower case, no trailing dot; for DomainSuffix without the "*."
  std::string text;    // as written, for messages
};

// "10.1.0.0/16", "2001:db8::/32", "example.com" (exactly that name) or "*.example.com"
// (any name under it, not the name itself). Errors: policy.bad_rule.
Result<PolicyRule> parse_rule(bool allow, std::string_view text);

struct Decision {
  bool allowed = true;
  // Why denied: "policy.rule" (an operator deny rule) or "policy.<range>" for the
  // built-in ranges (loopback, private, link_local, cgnat, ula, multicast, ...).
  std::string_view reason;
};

class Policy {
 public:
  Policy() = default;
  Policy(std::vector<PolicyRule> rules, bool deny_private) : rules_(std::move(rules)), deny_private_(deny_private) {}

  Decision check(const socks5::Address& dst) const;
  const std::vector<PolicyRule>& rules() const { return rules_; }
  bool deny_private() const { return deny_private_; }

 private:
  std::vector<PolicyRule> rules_;
  bool deny_private_ = true;
};

// The built-in range an address falls in ("loopback", "private", ...), or empty.
std::string_view private_range(const IpAddr& a);

}  // namespace torgw::socks
