#include "socks/socks5.h"

#include <arpa/inet.h>

#include <cstdio>
#include <cstring>

namespace torgw::socks5 {
namespace {

template <class T>
ParseResult<T> need_more() {
  return std::optional<Parsed<T>>{};
}
template <class T>
ParseResult<T> done(T v, std::size_t size) {
  return std::optional<Parsed<T>>{Parsed<T>{std::move(v), size}};
}

// ATYP + address + port, shared by requests and replies. Returns nullopt if more bytes
// are needed; otherwise the address or an error.
Result<std::optional<Address>> read_address(ByteReader& r) {
  using Out = std::optional<Address>;
  auto atyp = r.u8();
  if (!atyp) return Out{};
  Address a;
  switch (*atyp) {
    case static_cast<std::uint8_t>(AddrType::IPv4): {
      a.type = AddrType::IPv4;
      auto ip = r.take(4);
      if (!ip) return Out{};
      std::memcpy(a.ip.data(), ip->data(), 4);
      break;
    }
    case static_cast<std::uint8_t>(AddrType::IPv6): {
      a.type = AddrType::IPv6;
      auto ip = r.take(16);
      if (!ip) return Out{};
      std::memcpy(a.ip.data(), ip->data(), 16);
      break;
    }
    case static_cast<std::uint8_t>(AddrType::Domain): {
      a.type = AddrType::Domain;
      auto len = r.u8();
      if (!len) return Out{};
      if (*len == 0) return make_error("socks5.empty_domain", "domain name of length 0");
      auto name = r.take(*len);
      if (!name) return Out{};
      a.domain.assign(reinterpret_cast<const char*>(name->data()), name->size());
      break;
    }
    default: {
      char buf[8];
      std::snprintf(buf, sizeof buf, "0x%02x", *atyp);
      return make_error("socks5.bad_atyp", std::string("address type ") + buf);
    }
  }
  auto port = r.be16();
  if (!port) return Out{};
  a.port = *port;
  return Out{std::move(a)};
}

void put_address(Bytes& out, const Address& a) {
  out.push_back(static_cast<std::uint8_t>(a.type));
  switch (a.type) {
    case AddrType::IPv4: out.insert(out.end(), a.ip.begin(), a.ip.begin() + 4); break;
    case AddrType::IPv6: out.insert(out.end(), a.ip.begin(), a.ip.end()); break;
    case AddrType::Domain:
      out.push_back(static_cast<std::uint8_t>(a.domain.size()));
      out.insert(out.end(), a.domain.begin(), a.domain.end());
      break;
  }
  out.push_back(static_cast<std::uint8_t>(a.port >> 8));
  out.push_back(static_cast<std::uint8_t>(a.port & 0xff));
}

std::string hex_byte(std::uint8_t b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", b);
  return buf;
}

}  // namespace

std::string reply_name(std::uint8_t code) {
  switch (code) {
    case 0x00: return "succeeded";
    case 0x01: return "general_failure";
    case 0x02: return "not_allowed";
    case 0x03: return "network_unreachable";
    case 0x04: return "host_unreachable";
    case 0x05: return "connection_refused";
    case 0x06: return "ttl_expired";
    case 0x07: return "command_not_supported";
    case 0x08: return "address_type_not_supported";
    default: return hex_byte(code);
  }
}

Address Address::ipv4(std::uint32_t host_order, std::uint16_t port) {
  Address a;
  a.type = AddrType::IPv4;
  a.ip[0] = static_cast<std::uint8_t>(host_order >> 24);
  a.ip[1] = static_cast<std::uint8_t>(host_order >> 16);
  a.ip[2] = static_cast<std::uint8_t>(host_order >> 8);
  a.ip[3] = static_cast<std::uint8_t>(host_order);
  a.port = port;
  return a;
}

Address Address::ipv6(const std::array<std::uint8_t, 16>& ip, std::uint16_t port) {
  Address a;
  a.type = AddrType::IPv6;
  a.ip = ip;
  a.port = port;
  return a;
}

Address Address::name(std::string domain, std::uint16_t port) {
  Address a;
  a.type = AddrType::Domain;
  a.domain = std::move(domain);
  a.port = port;
  return a;
}

std::string Address::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  switch (type) {
    case AddrType::IPv4:
      ::inet_ntop(AF_INET, ip.data(), buf, sizeof buf);
      return std::string(buf) + ":" + std::to_string(port);
    case AddrType::IPv6:
      ::inet_ntop(AF_INET6, ip.data(), buf, sizeof buf);
      return "[" + std::string(buf) + "]:" + std::to_string(port);
    case AddrType::Domain: return domain + ":" + std::to_string(port);
  }
  return "?";
}

bool Greeting::offers(Method m) const {
  for (auto x : methods)
    if (x == static_cast<std::uint8_t>(m)) return true;
  return false;
}

ParseResult<Greeting> parse_greeting(ByteView in) {
  ByteReader r(in);
  auto ver = r.u8();
  if (!ver) return need_more<Greeting>();
  if (*ver != kVersion) return make_error("socks5.bad_version", "greeting version " + hex_byte(*ver));
  auto n = r.u8();
  if (!n) return need_more<Greeting>();
  if (*n == 0) return make_error("socks5.no_methods", "greeting offers no methods");
  auto m = r.take(*n);
  if (!m) return need_more<Greeting>();
  Greeting g;
  g.methods.assign(m->begin(), m->end());
  return done(std::move(g), r.offset());
}

ParseResult<UserPass> parse_userpass(ByteView in) {
  ByteReader r(in);
  auto ver = r.u8();
  if (!ver) return need_more<UserPass>();
  if (*ver != kAuthVersion) return make_error("socks5.bad_auth_version", "auth version " + hex_byte(*ver));
  auto ulen = r.u8();
  if (!ulen) return need_more<UserPass>();
  if (*ulen == 0) return make_error("socks5.empty_username", "username of length 0");
  auto user = r.take(*ulen);
  if (!user) return need_more<UserPass>();
  auto plen = r.u8();
  if (!plen) return need_more<UserPass>();
  auto pass = r.take(*plen);
  if (!pass) return need_more<UserPass>();
  return done(UserPass{as_chars(*user), as_chars(*pass)}, r.offset());
}

namespace {
// VER CMD/REP RSV ADDR: requests and replies share the layout.
template <class Out, class Make>
ParseResult<Out> parse_vcra(ByteView in, const char* what, Make make) {
  ByteReader r(in);
  auto ver = r.u8();
  if (!ver) return need_more<Out>();
  if (*ver != kVersion) return make_error("socks5.bad_version", std::string(what) + " version " + hex_byte(*ver));
  auto code = r.u8();
  if (!code) return need_more<Out>();
  auto rsv = r.u8();
  if (!rsv) return need_more<Out>();
  if (*rsv != 0) return make_error("socks5.bad_reserved", std::string(what) + " reserved byte " + hex_byte(*rsv));
  TORGW_ASSIGN_OR_RETURN(auto addr, read_address(r));
  if (!addr.has_value()) return need_more<Out>();
  return done(make(*code, std::move(*addr)), r.offset());
}
}  // namespace

ParseResult<Request> parse_request(ByteView in) {
  return parse_vcra<Request>(in, "request", [](std::uint8_t cmd, Address a) { return Request{cmd, std::move(a)}; });
}

ParseResult<ReplyMsg> parse_reply(ByteView in) {
  return parse_vcra<ReplyMsg>(in, "reply", [](std::uint8_t code, Address a) { return ReplyMsg{code, std::move(a)}; });
}

ParseResult<std::uint8_t> parse_method_choice(ByteView in) {
  if (in.empty()) return need_more<std::uint8_t>();
  if (in[0] != kVersion) return make_error("socks5.bad_version", "method choice version " + hex_byte(in[0]));
  if (in.size() < 2) return need_more<std::uint8_t>();
  return done<std::uint8_t>(in[1], 2);
}

ParseResult<std::uint8_t> parse_auth_status(ByteView in) {
  if (in.empty()) return need_more<std::uint8_t>();
  if (in[0] != kAuthVersion) return make_error("socks5.bad_auth_version", "auth status version " + hex_byte(in[0]));
  if (in.size() < 2) return need_more<std::uint8_t>();
  return done<std::uint8_t>(in[1], 2);
}

Bytes encode_greeting(const std::vector<Method>& methods) {
  Bytes out{kVersion, static_cast<std::uint8_t>(methods.size())};
  for (auto m : methods) out.push_back(static_cast<std::uint8_t>(m));
  return out;
}

Bytes encode_method_choice(Method m) { return {kVersion, static_cast<std::uint8_t>(m)}; }

Result<Bytes> encode_userpass(ByteView user, ByteView pass) {
  if (user.empty() || user.size() > 255 || pass.size() > 255)
    return make_error("socks5.credential_too_long", "username must be 1..255 bytes, password 0..255");
  Bytes out{kAuthVersion, static_cast<std::uint8_t>(user.size())};
  out.insert(out.end(), user.begin(), user.end());
  out.push_back(static_cast<std::uint8_t>(pass.size()));
  out.insert(out.end(), pass.begin(), pass.end());
  return out;
}

Bytes encode_auth_status(bool ok) { return {kAuthVersion, static_cast<std::uint8_t>(ok ? 0x00 : 0x01)}; }

Result<Bytes> encode_request(Command cmd, const Address& dst) {
  if (dst.type == AddrType::Domain && (dst.domain.empty() || dst.domain.size() > 255))
    return make_error("socks5.bad_domain", "domain must be 1..255 bytes");
  Bytes out{kVersion, static_cast<std::uint8_t>(cmd), 0x00};
  put_address(out, dst);
  return out;
}

Bytes encode_reply(std::uint8_t code, const Address& bound) {
  Bytes out{kVersion, code, 0x00};
  put_address(out, bound);
  return out;
}

std::size_t encode_reply_into(std::uint8_t code, std::uint8_t* out, std::size_t cap) {
  // VER REP RSV ATYP=1 0.0.0.0 port 0
  static constexpr std::size_t kLen = 10;
  if (cap < kLen) return 0;
  const std::uint8_t msg[kLen] = {kVersion, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0};
  std::memcpy(out, msg, kLen);
  return kLen;
}

bool valid_hostname(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok || ++label > 63) return false;
  }
  return label > 0;
}

}  // namespace torgw::socks5
