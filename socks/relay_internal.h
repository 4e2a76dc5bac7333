// Internal to the relay (socks/relay*.cpp): the per-connection state, the pools and
// Relay::Impl, shared by the parts the relay is split into:
//   relay.cpp          setup (init), the pools and plumbing, the public Relay API
//   relay_loop.cpp     epoll loop, accept, dispatch, timers and signals
//   relay_client.cpp   the client side of the SOCKS5 handshake, refusal and linger
//   relay_backend.cpp  the backend side: connect, failover, TLS, SOCKS5, health probes
//   relay_pump.cpp     the established tunnel: copy and splice between the two sockets
// Nothing outside socks/relay*.cpp includes this header.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.h"
#include "common/secret.h"
#include "socks/log.h"
#include "socks/relay.h"
#include "socks/session.h"
#include "socks/tls.h"

namespace torgw::socks {
namespace relay_internal {

constexpr std::uint64_t kTick = 100;  // ms: timeout, health-check and stats granularity
constexpr std::uint32_t kLingerCap = 256;
constexpr std::uint32_t kFdReserve = 64 + 64;  // listener, epoll, signals, log, probes
constexpr std::size_t kMaxPipes = 1024;
constexpr int kAcceptBatch = 64;

inline std::uint64_t mono_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000;
}

// Single-writer counter updates: plain loads and stores, no locked instructions.
inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
inline void unbump(std::atomic<std::uint64_t>& c) {
  c.store(c.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

inline bool retry_errno(int e) { return e == EAGAIN || e == EWOULDBLOCK; }

enum class HKind : std::uint8_t { Listener, Signal, Wake, Probe };
struct alignas(8) Handler {
  HKind kind;
};
constexpr std::uint64_t kTagClient = 0, kTagBackend = 1, kTagHandler = 2, kTagMask = 3;

struct Backend {
  Endpoint ep;
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string name;
  bool up = true;  // optimistic until a check or an attempt says otherwise
  bool checked = false;
  std::int8_t pipelining = -1;  // reads pipelined greeting + request: -1 unknown, 0, 1
  std::string tls_path;         // tls://: "pinned:ktls" etc. of the last handshake (log once)
};

struct Probe : Handler {
  std::size_t backend = 0;
  UniqueFd fd;
  std::unique_ptr<tls::Session> tls;  // tls:// backends: the check runs over TLS
  // PipeTest: healthy; waiting to see whether it answers a pipelined request too.
  enum class St : std::uint8_t { Idle, Connecting, Tls, Greeting, PipeTest } st = St::Idle;
  std::uint64_t deadline = 0;
  std::uint64_t next = 0;
  std::uint8_t greeting[4] = {};
  std::uint8_t greeting_len = 0;
  bool pipe_test = false;
  std::uint8_t buf[16] = {};
  std::uint8_t got = 0;
};

// A slot whose pipe2() failed on replacement stays dead (r invalid): borrow_pipe skips it.
struct Pipe {
  UniqueFd r;
  UniqueFd w;
};

enum class St : std::uint8_t { ClientHandshake, BackendConnect, BackendTls, BackendHandshake, Relay, Linger };

// One direction of a tunnel: d[0] client -> backend, d[1] backend -> client.
struct Dir {
  std::uint32_t pending = 0;  // bytes the destination has not accepted yet
  std::uint32_t off = 0;      // into buf
  std::uint32_t cap = 0;      // of buf
  std::uint8_t* buf = nullptr;
  std::int32_t pipe = -1;  // the pending bytes sit in this pipe instead of buf
  bool eof = false;        // source reached EOF
  bool shut = false;       // destination half-closed
  bool bulk = false;       // recent reads filled the buffer: splice instead of copy
};

// Per-connection state that exists only until the tunnel is established.
struct Handshake {
  explicit Handshake(const socks5::ClientAuthPolicy* auth) : cs(auth) {}
  socks5::ClientSession cs;
  std::optional<socks5::BackendSession> bs;
  socks5::Address dst;
  std::uint16_t in_len = 0;
  std::uint16_t bin_len = 0;
  std::uint8_t cout_len = 0;
  std::uint8_t cout_off = 0;
  std::uint16_t bout_len = 0;
  std::uint16_t bout_off = 0;
  std::uint16_t fwd_len = 0;
  const std::uint8_t* bout = nullptr;      // into bs or an auth message
  std::uint8_t in[2048];                   // from the client: messages, then early data
  std::uint8_t bin[512];                   // from the backend
  std::uint8_t cout[32];                   // to the client
  std::uint8_t fwd[socks5::kMaxUserPass];  // client's RFC 1929 pair, re-encoded (forward)
  ~Handshake() { wipe(fwd, sizeof fwd); }
};

struct Conn {
  int fd[2] = {-1, -1};  // client, backend
  St st = St::ClientHandshake;
  bool can_read[2] = {};
  bool can_write[2] = {};
  bool rdhup[2] = {};
  bool dead = false;
  bool queued = false;
  bool lingering_shut = false;
  std::uint8_t backend = 0;
  std::uint8_t start = 0;          // first backend index for this connection
  std::uint8_t fail_reply = 0x01;  // reply if no backend works out
  std::uint64_t tried = 0;         // backends attempted (bitmask)
  Dir d[2];
  Handshake* hs = nullptr;
  // tls:// backend: the TLS session on fd[1]. In the relay phase a direction the kernel
  // encrypts (kTLS) uses the socket directly (splice included); the others go through
  // SSL_read/SSL_write.
  std::unique_ptr<tls::Session> tls;
  bool tls_kernel_tx = false;
  bool tls_kernel_rx = false;
  bool tls_read_wants_write = false;  // SSL_read must write first: resume on EPOLLOUT
  std::uint64_t id = 0;
  std::uint64_t deadline = 0;
  std::uint64_t last = 0;
  std::uint32_t idx = 0;
};

inline std::string errno_text(int e) { return std::strerror(e); }

}  // namespace relay_internal

// Only relay*.cpp include this header: the short names read as they did in one file.
using namespace relay_internal;

struct Relay::Impl {
  Config cfg;
  Options opt;
  UniqueFd ep;
  UniqueFd listen_fd;
  UniqueFd sig_fd;
  UniqueFd wake_fd;
  Handler listener_h{HKind::Listener};
  Handler sig_h{HKind::Signal};
  Handler wake_h{HKind::Wake};
  std::vector<Backend> backends;
  std::vector<std::unique_ptr<Probe>> probes;
  std::unique_ptr<tls::ClientContext> tls_ctx;  // when a backend is tls://
  std::string tls_marker;                       // last BACKEND_TLS marker value written
  std::size_t rr_next = 0;                      // round-robin position
  socks5::ClientAuthPolicy auth;
  Policy policy;
  bool tcp_listener = true;
  std::string listen_text;
  std::string unix_path;

  std::vector<Conn*> conns;
  std::vector<Conn*> free_conns;
  std::vector<Conn*> graveyard;
  std::vector<Conn*> ready;
  std::vector<Pipe> pipes;
  std::vector<std::int32_t> free_pipes;
  std::size_t pipe_cap = 0;
  bool splice_ok = true;
  // Directions in bulk mode right now. Splicing waits for cfg.splice_min_bulk of them:
  // one bulk flow is copied (see docs/socks.md, "Bulk throughput").
  std::uint32_t bulk_dirs = 0;
  std::vector<std::uint8_t*> free_blocks;
  std::unique_ptr<std::uint8_t[]> scratch;
  std::uint32_t bufsize = 0;
  std::uint32_t max_conns = 0;

  std::uint64_t now = 0;
  std::uint64_t next_tick = 0;
  std::uint64_t next_stats = 0;
  bool draining = false;
  bool stop_now = false;
  std::uint64_t drain_deadline = 0;
  bool listener_ready = false;
  std::uint64_t accept_paused_until = 0;
  std::uint64_t next_id = 1;
  Counters ctr;
  log::RateLimiter client_log{10};
  std::atomic<int> stop_requests{0};
  std::atomic<bool> stats_requested{false};

  ~Impl();
  Status init();
  // init's steps, in order.
  Status size_to_fd_limit();
  Status resolve_backends();
  Status create_tls_context();
  void set_client_policy();
  Status bind_listener();
  void describe_listener();
  Status open_event_sources();
  void create_probes();
  Status run();

  // --- plumbing
  void add_fd(int fd, std::uint64_t tag_data, std::uint32_t events);
  Conn* alloc_conn();
  void close_conn(Conn* c);
  void queue_ready(Conn* c);
  std::uint8_t* alloc_block();
  void free_block(std::uint8_t* b);
  std::int32_t borrow_pipe();
  void release_pipe(std::int32_t idx, bool dirty);
  void replace_pipe(std::int32_t idx);
  Pipe make_pipe() const;
  void stash(Dir& d, const std::uint8_t* p, std::size_t n);
  void set_bulk(Dir& d, bool on);
  void client_note(const Conn* c, const char* what, std::string_view reason);

  // --- events
  void on_accept();
  void reject_over_cap(int fd);
  void on_conn(Conn* c, int side, std::uint32_t ev);
  void client_handshake_io(Conn* c);
  bool advance_client(Conn* c);
  void handle_request(Conn* c, const socks5::Request& req);
  void start_attempt(Conn* c);
  void attempt_failed(Conn* c, int err, std::string_view why, std::uint8_t reply = 0);
  void backend_tls_io(Conn* c);
  void tls_failed(Conn* c, const tls::Failure& f);
  void note_tls_failure(Conn* c, const tls::Failure& f);
  void negotiation_tls_failed(Conn* c);
  void tls_established(std::size_t b, const tls::Session& s, bool tx, bool rx);
  ssize_t side_read(Conn* c, int side, void* buf, std::size_t n);
  ssize_t side_send(Conn* c, int side, const void* buf, std::size_t n);
  bool user_tls(const Conn* c, int i) const;
  void fail_all(Conn* c);
  int pick_backend(Conn* c);
  void backend_connect_io(Conn* c);
  void begin_backend_handshake(Conn* c);
  void backend_handshake_io(Conn* c);
  bool queue_client(Conn* c, ByteView out);
  bool flush_cout(Conn* c);
  bool flush_bout(Conn* c);
  template <class Off>
  int send_small(Conn* c, int side, const std::uint8_t* buf, std::size_t len, Off& off);
  void backend_lost(Conn* c, std::uint8_t reply, std::string_view why);
  void refuse(Conn* c, ByteView reply);
  void linger_io(Conn* c);
  void start_relay(Conn* c, std::size_t backend_consumed);
  void relay_io(Conn* c);
  bool pump(Conn* c, int i);
  enum class ReadResult : std::uint8_t { Data, Stop, Retry, Error };
  ReadResult took(Conn* c, int i, ssize_t n);
  bool flush(Conn* c, int i);
  void mark(std::size_t b, bool up, std::string_view why);

  // --- timers, signals, probes
  void tick();
  bool check_timeout(Conn* c);
  void start_drain(const char* why);
  void log_stats(const char* why);
  void on_signal();
  void on_wake();
  void start_probe(Probe* p);
  void on_probe(Probe* p, std::uint32_t ev);
  void probe_done(Probe* p, bool ok, std::string_view why);
  bool probe_send_greeting(Probe* p);
  void probe_answer(Probe* p, bool eof);
  void pipe_result(Probe* p, bool supported);
};

// Inline: called per read and write from the client, backend and pump units alike.
// Side 1 of a tls:// connection in direction i goes through OpenSSL in user space (not
// the kernel's TLS): i = 0 writes to the backend, i = 1 reads from it.
inline bool Relay::Impl::user_tls(const Conn* c, int i) const {
  if (!c->tls) return false;
  if (c->st != St::Relay) return true;  // negotiation always through OpenSSL
  return i == 0 ? !c->tls_kernel_tx : !c->tls_kernel_rx;
}

inline ssize_t Relay::Impl::side_read(Conn* c, int side, void* buf, std::size_t n) {
  if (side == 1 && user_tls(c, 1)) return c->tls->read(buf, n);
  return ::read(c->fd[side], buf, n);
}

inline ssize_t Relay::Impl::side_send(Conn* c, int side, const void* buf, std::size_t n) {
  if (side == 1 && user_tls(c, 0)) return c->tls->write(buf, n);
  return ::send(c->fd[side], buf, n, MSG_NOSIGNAL);
}

// Sends buf[off..len) to one side of a connection while it is writable, advancing off.
// 0 if all sent or the socket is full (can_write cleared), else the errno.
template <class Off>
int Relay::Impl::send_small(Conn* c, int side, const std::uint8_t* buf, std::size_t len, Off& off) {
  while (off < len) {
    if (!c->can_write[side]) return 0;
    ssize_t w = side_send(c, side, buf + off, len - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (retry_errno(errno)) {
        c->can_write[side] = false;
        return 0;
      }
      return errno;
    }
    off = static_cast<Off>(off + w);
  }
  return 0;
}

}  // namespace torgw::socks
