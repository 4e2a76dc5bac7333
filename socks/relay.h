// The relay: one thread, one edge-triggered epoll loop, no per-idle-connection buffers.
//
// Data path: a readable side is read into one shared scratch buffer (or, once at least
// splice_min_bulk directions are bulk, spliced into a pooled kernel pipe) and written
// straight through to the other side.
// Only what the destination did not accept is kept, per direction (a heap block or the
// pipe itself), and that direction stops reading until it drains: a client that stops
// reading costs at most one buffer_size per direction, never unbounded memory.
//
// Connection life: accept -> (socks5) ClientSession greeting/auth/request -> request
// checks and destination policy -> backend attempt(s) with failover (TCP connect,
// for a tls:// backend the TLS 1.3 handshake, BackendSession negotiation, CONNECT) -> typed reply to the client ->
// relay -> close. Refusals send their typed reply, half-close, and linger until the client closes (so the reply is not
// lost to a reset).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"
#include "socks/config.h"

namespace torgw::socks {

// Counters, readable from any thread (single writer: the loop).
struct Counters {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> active{0};       // gauge: client connections held (not lingering)
  std::atomic<std::uint64_t> relaying{0};     // gauge: tunnels in the relay phase
  std::atomic<std::uint64_t> lingering{0};    // gauge: refused clients awaiting close
  std::atomic<std::uint64_t> established{0};  // tunnels that reached the relay phase
  std::atomic<std::uint64_t> closed{0};       // tunnels that ended after relaying
  std::atomic<std::uint64_t> bytes_up{0};     // client -> backend, relayed
  std::atomic<std::uint64_t> bytes_down{0};   // backend -> client, relayed
  // Refusals and failures, by reason.
  std::atomic<std::uint64_t> rejected_cap{0};
  std::atomic<std::uint64_t> rejected_policy{0};
  std::atomic<std::uint64_t> rejected_auth{0};      // bad credentials, no acceptable method
  std::atomic<std::uint64_t> rejected_command{0};   // BIND, UDP ASSOCIATE, unknown: 0x07
  std::atomic<std::uint64_t> rejected_atyp{0};      // 0x08
  std::atomic<std::uint64_t> rejected_hostname{0};  // invalid name: 0x01
  std::atomic<std::uint64_t> malformed{0};          // closed without a reply
  std::atomic<std::uint64_t> handshake_timeout{0};
  std::atomic<std::uint64_t> client_aborted{0};         // client left before the reply
  std::atomic<std::uint64_t> backend_failed{0};         // no backend usable: 0x01/0x04/0x05
  std::atomic<std::uint64_t> backend_replied_error{0};  // backend's own non-zero reply relayed
  std::atomic<std::uint64_t> failovers{0};              // attempts moved to another backend
  std::atomic<std::uint64_t> backend_tls_failed{0};     // TLS attempts that failed (pin, cert, handshake)
  std::atomic<std::uint64_t> backend_tls_resumed{0};    // TLS handshakes that resumed a session
  std::atomic<std::uint64_t> idle_timeout{0};
  std::atomic<std::uint64_t> drain_forced{0};  // closed at the drain deadline
  std::atomic<std::uint64_t> accept_errors{0};

  // One line: "accepted=.. active=.. ..." (every counter, stable key order).
  std::string to_string() const;
};

class Relay {
 public:
  struct Options {
    // Block SIGTERM/SIGINT/SIGUSR1 in the calling thread and handle them in the loop
    // (drain, drain-now, counters). Off for in-process tests, which use request_stop().
    bool handle_signals = false;
  };

  // Binds the listener, resolves the backends, raises RLIMIT_NOFILE and sizes the
  // connection cap, creates the epoll set. Call before dropping privileges.
  // Errors: relay.bind, relay.resolve, relay.fd_limit (a configuration problem), ...
  static Result<std::unique_ptr<Relay>> create(Config cfg, Options opt);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Runs until a drain completes (SIGTERM or request_stop()) or a fatal error.
  Status run();
  // From any thread: start a graceful drain (as SIGTERM does); twice: stop now.
  void request_stop();
  // Logs the counters (as SIGUSR1 does), from any thread.
  void request_stats();

  const Counters& counters() const;
  // The bound listen address ("127.0.0.1:PORT", "unix:/path"): port 0 is resolved.
  std::string listen_address() const;
  const Config& config() const;
  // Connection cap in force (max_connections, or the automatic one).
  std::uint32_t max_connections() const;
  // Listen socket fd (for the privilege drop to chown a unix socket, and tests).
  std::string unix_path() const;

  struct Impl;

 private:
  explicit Relay(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace torgw::socks
