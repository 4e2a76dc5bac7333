#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/fd.h"

namespace torgw::testing {

// A TCP port on 127.0.0.1 that was free a moment ago (bind to 0, read, close). Tests
// that start several servers take ports one by one from this; races with other tests
// are possible but rare, and a server failing to bind fails loudly.
std::uint16_t free_tcp_port();

// A listening TCP socket on 127.0.0.1 (blocking, SO_REUSEADDR); *port 0 (or no port)
// picks a free one, and the bound port is written back. Throws if bind/listen fail.
UniqueFd listen_loopback(std::uint16_t* port = nullptr, int backlog = 1024);

// Blocking connect to host:port (IPv4 literal); invalid fd on failure.
UniqueFd connect_tcp(const std::string& host, std::uint16_t port);
UniqueFd connect_unix(const std::string& path);

// Polls until something accepts on host:port, or the timeout passes.
bool wait_for_tcp(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout);
bool wait_for_unix(const std::string& path, std::chrono::milliseconds timeout);

// Blocking helpers with a deadline; return false on error/timeout/EOF.
bool write_all(int fd, const void* data, std::size_t n);
bool read_exact(int fd, void* data, std::size_t n, std::chrono::milliseconds timeout);
// Reads until EOF or timeout; returns what arrived.
std::string read_until_eof(int fd, std::chrono::milliseconds timeout);

}  // namespace torgw::testing
