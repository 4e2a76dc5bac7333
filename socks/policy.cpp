#include "socks/policy.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace torgw::socks {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// One inet_aton part: decimal, 0-prefixed octal or 0x-prefixed hex; nullopt if invalid
// or larger than 32 bits.
std::optional<std::uint64_t> aton_part(std::string_view p) {
  if (p.empty()) return std::nullopt;
  unsigned base = 10;
  if (p.size() >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
    base = 16;
    p.remove_prefix(2);
    if (p.empty()) return std::uint64_t{0};  // glibc accepts "0x" as 0
  } else if (p.size() >= 2 && p[0] == '0') {
    base = 8;
    p.remove_prefix(1);
  }
  std::uint64_t v = 0;
  for (char c : p) {
    unsigned d;
    if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = static_cast<unsigned>(c - 'A' + 10);
    else return std::nullopt;
    if (d >= base) return std::nullopt;
    v = v * base + d;
    if (v > 0xffffffffULL) return std::nullopt;
  }
  return v;
}

IpAddr v4_from(std::uint32_t host_order) {
  IpAddr a;
  a.v4 = true;
  a.b[0] = static_cast<std::uint8_t>(host_order >> 24);
  a.b[1] = static_cast<std::uint8_t>(host_order >> 16);
  a.b[2] = static_cast<std::uint8_t>(host_order >> 8);
  a.b[3] = static_cast<std::uint8_t>(host_order);
  return a;
}

bool in(const IpAddr& a, std::initializer_list<std::uint8_t> net, unsigned prefix, bool v4) {
  if (a.v4 != v4) return false;
  std::array<std::uint8_t, 16> n{};
  std::copy(net.begin(), net.end(), n.begin());
  Cidr c{IpAddr{v4, n}, static_cast<std::uint8_t>(prefix)};
  return c.contains(a);
}

bool domain_matches(const PolicyRule& r, std::string_view name) {
  if (r.kind == PolicyRule::Kind::Domain) return name == r.domain;
  // "*.example.com": strictly below example.com.
  return name.size() > r.domain.size() + 1 && name.ends_with(r.domain) &&
         name[name.size() - r.domain.size() - 1] == '.';
}

}  // namespace

std::string IpAddr::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  ::inet_ntop(v4 ? AF_INET : AF_INET6, b.data(), buf, sizeof buf);
  return buf;
}

bool Cidr::contains(const IpAddr& a) const {
  if (a.v4 != net.v4) return false;
  unsigned full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(a.b.data(), net.b.data(), full) != 0) return false;
  if (rest == 0) return true;
  auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a.b[full] & mask) == (net.b[full] & mask);
}

std::string Cidr::to_string() const { return net.to_string() + "/" + std::to_string(prefix); }

std::optional<IpAddr> parse_ip(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = 0;
  IpAddr a;
  if (::inet_pton(AF_INET, buf, a.b.data()) == 1) {
    a.v4 = true;
    return a;
  }
  if (::inet_pton(AF_INET6, buf, a.b.data()) == 1) {
    a.v4 = false;
    return a;
  }
  return std::nullopt;
}

Result<Cidr> parse_cidr(std::string_view text) {
  auto slash = text.find('/');
  auto addr_text = text.substr(0, slash);
  auto ip = parse_ip(addr_text);
  if (!ip) return make_error("policy.bad_cidr", "not an IP address: '" + std::string(addr_text) + "'");
  unsigned max = ip->v4 ? 32 : 128;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    auto p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 || !std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return make_error("policy.bad_cidr", "bad prefix length in '" + std::string(text) + "'");
    prefix = static_cast<unsigned>(std::stoul(std::string(p)));
    if (prefix > max)
      return make_error("policy.bad_cidr",
                        "prefix length > " + std::to_string(max) + " in '" + std::string(text) + "'");
  }
  Cidr c{*ip, static_cast<std::uint8_t>(prefix)};
  // Host bits set usually means a typo ("10.0.0.1/8"); refuse rather than guess.
  Cidr exact = c;
  for (unsigned i = prefix; i < max; ++i) exact.net.b[i / 8] &= static_cast<std::uint8_t>(~(0x80u >> (i % 8)));
  if (exact.net != c.net)
    return make_error("policy.bad_cidr",
                      "host bits set in '" + std::string(text) + "' (did you mean " + exact.to_string() + "?)");
  return c;
}

std::optional<IpAddr> numeric_host(std::string_view name) {
  if (name.size() >= 2 && name.front() == '[' && name.back() == ']') {
    auto ip = parse_ip(name.substr(1, name.size() - 2));
    if (ip && !ip->v4) return ip;
    return std::nullopt;
  }
  if (name.find(':') != std::string_view::npos) {
    auto pct = name.find('%');  // scope id: "fe80::1%eth0"
    auto ip = parse_ip(name.substr(0, pct));
    if (ip && !ip->v4) return ip;
    return std::nullopt;
  }
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty()) return std::nullopt;
  std::uint64_t parts[4];
  std::size_t n = 0;
  while (true) {
    auto dot = name.find('.');
    if (n == 4) return std::nullopt;
    auto v = aton_part(name.substr(0, dot));
    if (!v) return std::nullopt;
    parts[n++] = *v;
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
  }
  std::uint64_t addr = 0;
  switch (n) {
    case 1: addr = parts[0]; break;
    case 2:
      if (parts[0] > 0xff || parts[1] > 0xffffff) return std::nullopt;
      addr = parts[0] << 24 | parts[1];
      break;
    case 3:
      if (parts[0] > 0xff || parts[1] > 0xff || parts[2] > 0xffff) return std::nullopt;
      addr = parts[0] << 24 | parts[1] << 16 | parts[2];
      break;
    case 4:
      for (auto p : parts)
        if (p > 0xff) return std::nullopt;
      addr = parts[0] << 24 | parts[1] << 16 | parts[2] << 8 | parts[3];
      break;
  }
  return v4_from(static_cast<std::uint32_t>(addr));
}

IpAddr normalize(const IpAddr& a) {
  if (a.v4) return a;
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static constexpr std::uint8_t kCompat[12] = {};
  static constexpr std::uint8_t kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  auto embedded = [&] {
    IpAddr v;
    v.v4 = true;
    std::memcpy(v.b.data(), a.b.data() + 12, 4);
    return v;
  };
  if (std::memcmp(a.b.data(), kMapped, 12) == 0 || std::memcmp(a.b.data(), kNat64, 12) == 0) return embedded();
  if (std::memcmp(a.b.data(), kCompat, 12) == 0) {
    // ::a.b.c.d, but not :: and ::1 themselves.
    bool tiny = a.b[12] == 0 && a.b[13] == 0 && a.b[14] == 0 && a.b[15] <= 1;
    if (!tiny) return embedded();
  }
  return a;
}

namespace {
// The deny reason ("policy.<range>") for an address in a built-in range, or empty.
std::string_view private_reason(const IpAddr& raw) {
  IpAddr a = normalize(raw);
  if (a.v4) {
    if (in(a, {0}, 8, true)) return "policy.this_network";
    if (in(a, {127}, 8, true)) return "policy.loopback";
    if (in(a, {10}, 8, true) || in(a, {172, 16}, 12, true) || in(a, {192, 168}, 16, true)) return "policy.private";
    if (in(a, {100, 64}, 10, true)) return "policy.cgnat";
    if (in(a, {169, 254}, 16, true)) return "policy.link_local";
    if (in(a, {224}, 4, true)) return "policy.multicast";
    if (in(a, {240}, 4, true)) return "policy.reserved";  // incl. 255.255.255.255
    return {};
  }
  if (in(a, {}, 128, false)) return "policy.unspecified";
  if (in(a, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, false)) return "policy.loopback";
  if (in(a, {0xfe, 0x80}, 10, false)) return "policy.link_local";
  if (in(a, {0xfe, 0xc0}, 10, false)) return "policy.site_local";
  if (in(a, {0xfc}, 7, false)) return "policy.ula";
  if (in(a, {0xff}, 8, false)) return "policy.multicast";
  if (in(a, {0, 0x64, 0xff, 0x9b, 0, 1}, 48, false)) return "policy.nat64_local";
  return {};
}
}  // namespace

std::string_view private_range(const IpAddr& a) {
  auto r = private_reason(a);
  return r.empty() ? r : r.substr(7);
}

Result<PolicyRule> parse_rule(bool allow, std::string_view text) {
  PolicyRule r;
  r.allow = allow;
  r.text = std::string(text);
  if (text.empty()) return make_error("policy.bad_rule", "empty rule");
  bool looks_ip = text.find(':') != std::string_view::npos || text.find('/') != std::string_view::npos ||
                  parse_ip(text).has_value();
  if (looks_ip) {
    auto c = parse_cidr(text);
    if (!c) return make_error("policy.bad_rule", c.error().detail);
    r.kind = PolicyRule::Kind::Net;
    r.net = *c;
    return r;
  }
  std::string_view name = text;
  if (name.starts_with("*.")) {
    r.kind = PolicyRule::Kind::DomainSuffix;
    name.remove_prefix(2);
  } else {
    r.kind = PolicyRule::Kind::Domain;
  }
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (!socks5::valid_hostname(name))
    return make_error("policy.bad_rule", "'" + std::string(text) + "' is neither a CIDR nor a hostname pattern");
  r.domain = lower(name);
  return r;
}

Decision Policy::check(const socks5::Address& dst) const {
  std::optional<IpAddr> ip;
  std::string name;
  switch (dst.type) {
    case socks5::AddrType::IPv4:
      ip = IpAddr{true, {}};
      std::memcpy(ip->b.data(), dst.ip.data(), 4);
      break;
    case socks5::AddrType::IPv6: ip = IpAddr{false, dst.ip}; break;
    case socks5::AddrType::Domain:
      ip = numeric_host(dst.domain);
      if (!ip) {
        name = lower(dst.domain);
        if (!name.empty() && name.back() == '.') name.pop_back();
      }
      break;
  }
  std::optional<IpAddr> norm;
  if (ip) norm = normalize(*ip);

  for (const auto& r : rules_) {
    bool match = false;
    if (r.kind == PolicyRule::Kind::Net) {
      match = ip && (r.net.contains(*ip) || r.net.contains(*norm));
    } else {
      match = !ip && domain_matches(r, name);
    }
    if (match) return r.allow ? Decision{true, {}} : Decision{false, "policy.rule"};
  }
  if (deny_private_) {
    if (ip) {
      auto reason = private_reason(*ip);
      if (!reason.empty()) return {false, reason};
    } else if (name == "localhost" || name.ends_with(".localhost")) {
      return {false, "policy.loopback"};
    }
  }
  return {true, {}};
}

}  // namespace torgw::socks
