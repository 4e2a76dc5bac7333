// A blocking SOCKS5 client for tests of torgw-socks: raw bytes on purpose, so tests can
// send exactly what a hostile or broken client would. Used by socks/tests (in-process)
// and tests/socks (real peers).
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <string>

#include "common/bytes.h"
#include "common/fd.h"
#include "tests/support/net.h"

namespace torgw::testing::socks {

inline Bytes B(std::initializer_list<int> v) {
  Bytes b;
  for (int x : v) b.push_back(static_cast<std::uint8_t>(x));
  return b;
}

// CONNECT (or another command) to a domain name.
inline Bytes name_request(const std::string& host, std::uint16_t port, int cmd = 1) {
  Bytes rq = B({5, cmd, 0, 3, static_cast<int>(host.size())});
  rq.insert(rq.end(), host.begin(), host.end());
  rq.push_back(static_cast<std::uint8_t>(port >> 8));
  rq.push_back(static_cast<std::uint8_t>(port));
  return rq;
}

// CONNECT (or another command) to an IPv4 literal "a.b.c.d".
inline Bytes ipv4_request(const std::string& ip, std::uint16_t port, int cmd = 1) {
  unsigned a, b, c, d;
  REQUIRE(std::sscanf(ip.c_str(), "%u.%u.%u.%u", &a, &b, &c, &d) == 4);
  return B({5, cmd, 0, 1, static_cast<int>(a), static_cast<int>(b), static_cast<int>(c), static_cast<int>(d), port >> 8,
            port & 0xff});
}

struct Client {
  UniqueFd fd;
  Bytes method;    // the server's method choice (empty: closed before it)
  int reply = -1;  // the CONNECT reply code (-1: closed before it)
};

// Greeting (+ RFC 1929 message if the server picks it) + request; reads the reply.
inline Client handshake(UniqueFd fd, const Bytes& request, const Bytes& greeting = B({5, 1, 0}),
                        const Bytes& auth = {}) {
  using namespace std::chrono_literals;
  Client c;
  c.fd = std::move(fd);
  REQUIRE(c.fd.valid());
  REQUIRE(write_all(c.fd.get(), greeting.data(), greeting.size()));
  c.method.resize(2);
  if (!read_exact(c.fd.get(), c.method.data(), 2, 20s)) {
    c.method.clear();
    return c;
  }
  if (c.method[1] == 0xff) return c;
  if (c.method[1] == 2) {
    REQUIRE(write_all(c.fd.get(), auth.data(), auth.size()));
    std::uint8_t st[2];
    if (!read_exact(c.fd.get(), st, 2, 20s) || st[1] != 0) return c;
  }
  REQUIRE(write_all(c.fd.get(), request.data(), request.size()));
  std::uint8_t rep[10];
  if (!read_exact(c.fd.get(), rep, 10, 30s)) return c;
  CHECK(rep[0] == 5);
  CHECK(rep[2] == 0);
  CHECK(rep[3] == 1);  // torgw-socks never discloses the backend's bound address
  c.reply = rep[1];
  return c;
}

inline Client connect_via(std::uint16_t port, const Bytes& request, const Bytes& greeting = B({5, 1, 0}),
                          const Bytes& auth = {}) {
  return handshake(connect_tcp("127.0.0.1", port), request, greeting, auth);
}

inline bool echo_roundtrip(int fd, const std::string& msg) {
  using namespace std::chrono_literals;
  if (!write_all(fd, msg.data(), msg.size())) return false;
  std::string back(msg.size(), '\0');
  return read_exact(fd, back.data(), back.size(), 20s) && back == msg;
}

// True if the peer closes without sending a byte (within t).
inline bool closed_silently(int fd, std::chrono::milliseconds t = std::chrono::seconds(10)) {
  return read_until_eof(fd, t).empty();
}

}  // namespace torgw::testing::socks
