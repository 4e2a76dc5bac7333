// SOCKS5 wire format (RFC 1928, RFC 1929 username/password), as pure functions and
// sans-I/O state machines: bytes in, a decision and bytes to send out. No sockets here,
// so every path is unit-testable and fuzzable; the relay (socks/relay.h) only moves bytes.
//
// Every byte on the client side comes from anonymous onion clients: each parser bounds
// every length by what the input holds, never trusts a length field, and reports
// malformed input as an Error with a stable reason token ("socks5.bad_version", ...).
//
// Incremental parsing: a parser returns
//   - an Error         : the bytes can never become a valid message (close the peer),
//   - std::nullopt     : a valid prefix, more bytes needed,
//   - Parsed<T>        : a complete message and how many bytes it used (the rest is the
//                        next message; clients may pipeline).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"

namespace torgw::socks5 {

inline constexpr std::uint8_t kVersion = 0x05;
inline constexpr std::uint8_t kAuthVersion = 0x01;  // RFC 1929 sub-negotiation version

enum class Method : std::uint8_t {
  NoAuth = 0x00,
  GssApi = 0x01,
  UserPass = 0x02,
  NoAcceptable = 0xFF,
};

enum class Command : std::uint8_t {
  Connect = 0x01,
  Bind = 0x02,
  UdpAssociate = 0x03,
};

enum class AddrType : std::uint8_t {
  IPv4 = 0x01,
  Domain = 0x03,
  IPv6 = 0x04,
};

enum class Reply : std::uint8_t {
  Succeeded = 0x00,
  GeneralFailure = 0x01,
  NotAllowed = 0x02,
  NetworkUnreachable = 0x03,
  HostUnreachable = 0x04,
  ConnectionRefused = 0x05,
  TtlExpired = 0x06,
  CommandNotSupported = 0x07,
  AddrTypeNotSupported = 0x08,
};

// Short lower-case name of a reply code ("succeeded", "refused", ...; "0x2a" if unknown).
std::string reply_name(std::uint8_t code);

// Largest messages, so callers can size fixed buffers.
inline constexpr std::size_t kMaxGreeting = 2 + 255;
inline constexpr std::size_t kMaxUserPass = 3 + 255 + 255;
inline constexpr std::size_t kMaxRequest = 4 + 1 + 255 + 2;
inline constexpr std::size_t kMaxReply = kMaxRequest;

template <class T>
struct Parsed {
  T value;
  std::size_t size = 0;  // bytes of input the message used
};
template <class T>
using ParseResult = Result<std::optional<Parsed<T>>>;

// Destination address as sent by the client: an IP literal or a domain name (raw bytes,
// not yet validated as a hostname: see valid_hostname()).
struct Address {
  AddrType type = AddrType::IPv4;
  std::array<std::uint8_t, 16> ip{};  // IPv4 in the first 4 bytes
  std::string domain;                 // AddrType::Domain only, 1..255 bytes
  std::uint16_t port = 0;

  static Address ipv4(std::uint32_t host_order, std::uint16_t port);
  static Address ipv6(const std::array<std::uint8_t, 16>& ip, std::uint16_t port);
  static Address name(std::string domain, std::uint16_t port);
  // "1.2.3.4:80", "[::1]:443", "example.com:80" (for logs and tests).
  std::string to_string() const;
  friend bool operator==(const Address&, const Address&) = default;
};

struct Greeting {
  std::vector<std::uint8_t> methods;  // as offered, 1..255 entries
  bool offers(Method m) const;
};

// RFC 1929 credentials: views into the parsed input (the caller decides whether they are
// secrets to copy into SecretBytes or isolation tokens).
struct UserPass {
  std::string_view user;  // 1..255 bytes
  std::string_view pass;  // 0..255 bytes (RFC 1929 says 1..255; empty is tolerated)
};

struct Request {
  std::uint8_t command = 0;  // raw: the relay answers anything but CONNECT with 0x07
  Address dst;
};

struct ReplyMsg {
  std::uint8_t code = 0;
  Address bound;
};

// ---- client -> server (what torgw-socks parses from onion clients) -----------------
// Errors: socks5.bad_version, socks5.no_methods.
ParseResult<Greeting> parse_greeting(ByteView in);
// Errors: socks5.bad_auth_version, socks5.empty_username.
ParseResult<UserPass> parse_userpass(ByteView in);
// Errors: socks5.bad_version, socks5.bad_reserved, socks5.bad_atyp (reply 0x08 is due),
// socks5.empty_domain.
ParseResult<Request> parse_request(ByteView in);

// ---- server -> client (what torgw-socks parses from its backend) ---------------------
// Errors: socks5.bad_version.
ParseResult<std::uint8_t> parse_method_choice(ByteView in);
// Errors: socks5.bad_auth_version. Value: the status byte (0 = success).
ParseResult<std::uint8_t> parse_auth_status(ByteView in);
// Errors: socks5.bad_version, socks5.bad_reserved, socks5.bad_atyp, socks5.empty_domain.
ParseResult<ReplyMsg> parse_reply(ByteView in);

// ---- encoders ------------------------------------------------------------------------
Bytes encode_greeting(const std::vector<Method>& methods);
Bytes encode_method_choice(Method m);
// Errors: socks5.credential_too_long (user must be 1..255, password 0..255 bytes).
Result<Bytes> encode_userpass(ByteView user, ByteView pass);
Bytes encode_auth_status(bool ok);
// Errors: socks5.bad_domain (empty or longer than 255 bytes).
Result<Bytes> encode_request(Command cmd, const Address& dst);
// A reply with the given code and bound address (0.0.0.0:0 unless given).
Bytes encode_reply(std::uint8_t code, const Address& bound = Address{});

// Appends to a caller-owned fixed buffer; returns bytes written (0 if it does not fit).
std::size_t encode_reply_into(std::uint8_t code, std::uint8_t* out, std::size_t cap);

// A hostname the relay is willing to pass on to its backend: 1..253 characters (one
// trailing dot allowed), dot-separated labels of 1..63 characters from [A-Za-z0-9_-].
// Anything else (controls, spaces, '%', '/', '@', empty labels, raw UTF-8) is refused:
// it cannot name a reachable host and it must not reach the backend's logs.
bool valid_hostname(std::string_view name);

}  // namespace torgw::socks5
