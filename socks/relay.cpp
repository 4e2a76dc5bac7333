#include "socks/relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "common/fd.h"
#include "common/secret.h"
#include "serial/serial.h"
#include "socks/log.h"
#include "socks/session.h"
#include "socks/tls.h"

namespace torgw::socks {
namespace {

constexpr std::uint64_t kTick = 100;  // ms: timeout, health-check and stats granularity
constexpr std::uint32_t kLingerCap = 256;
constexpr std::uint32_t kFdReserve = 64 + 64;  // listener, epoll, signals, log, probes
constexpr std::size_t kMaxPipes = 1024;
constexpr int kAcceptBatch = 64;

std::uint64_t mono_ms() {
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

bool retry_errno(int e) { return e == EAGAIN || e == EWOULDBLOCK; }

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
  int fd = -1;
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

struct Pipe {
  int r = -1;
  int w = -1;
};

enum class St : std::uint8_t { ClientHandshake, BackendConnect, BackendTls, BackendHandshake, Relay, Linger };

// One direction of a tunnel: d[0] client -> backend, d[1] backend -> client.
struct Dir {
  std::uint32_t pending = 0;  // bytes the destination has not accepted yet
  std::uint32_t off = 0;      // into buf
  std::uint32_t cap = 0;      // of buf
  std::uint8_t* buf = nullptr;
  std::int32_t pipe = -1;     // the pending bytes sit in this pipe instead of buf
  bool eof = false;           // source reached EOF
  bool shut = false;          // destination half-closed
  bool bulk = false;          // recent reads filled the buffer: splice instead of copy
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
  const std::uint8_t* bout = nullptr;  // into bs or an auth message
  std::uint8_t in[2048];               // from the client: messages, then early data
  std::uint8_t bin[512];               // from the backend
  std::uint8_t cout[32];               // to the client
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

std::string errno_text(int e) { return std::strerror(e); }

Result<sockaddr_storage> resolve(const Endpoint& ep, socklen_t& len, bool passive) {
  sockaddr_storage ss{};
  if (ep.kind == Endpoint::Kind::Unix) {
    auto* un = reinterpret_cast<sockaddr_un*>(&ss);
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, ep.path.c_str(), ep.path.size() + 1);
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + ep.path.size() + 1);
    return ss;
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* res = nullptr;
  std::string port = std::to_string(ep.port);
  int rc = ::getaddrinfo(ep.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr)
    return make_error("relay.resolve", "cannot resolve '" + ep.host + "': " + ::gai_strerror(rc));
  std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
  len = res->ai_addrlen;
  ::freeaddrinfo(res);
  return ss;
}

}  // namespace

std::string Counters::to_string() const {
  std::string o;
  auto kv = [&](const char* k, const std::atomic<std::uint64_t>& v) {
    if (!o.empty()) o += ' ';
    o += k;
    o += '=';
    o += std::to_string(v.load(std::memory_order_relaxed));
  };
  kv("accepted", accepted);
  kv("active", active);
  kv("relaying", relaying);
  kv("lingering", lingering);
  kv("established", established);
  kv("closed", closed);
  kv("bytes_up", bytes_up);
  kv("bytes_down", bytes_down);
  kv("rejected_cap", rejected_cap);
  kv("rejected_policy", rejected_policy);
  kv("rejected_auth", rejected_auth);
  kv("rejected_command", rejected_command);
  kv("rejected_atyp", rejected_atyp);
  kv("rejected_hostname", rejected_hostname);
  kv("malformed", malformed);
  kv("handshake_timeout", handshake_timeout);
  kv("client_aborted", client_aborted);
  kv("backend_failed", backend_failed);
  kv("backend_replied_error", backend_replied_error);
  kv("failovers", failovers);
  kv("backend_tls_failed", backend_tls_failed);
  kv("backend_tls_resumed", backend_tls_resumed);
  kv("idle_timeout", idle_timeout);
  kv("drain_forced", drain_forced);
  kv("accept_errors", accept_errors);
  return o;
}

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
  std::size_t rr_next = 0;  // round-robin position
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
  void stash(Dir& d, const std::uint8_t* p, std::size_t n);
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

Relay::Impl::~Impl() {
  while (!conns.empty()) close_conn(conns.back());
  for (auto* c : graveyard) delete c;
  for (auto* c : free_conns) delete c;
  for (auto* b : free_blocks) delete[] b;
  for (auto& p : pipes) {
    if (p.r >= 0) ::close(p.r);
    if (p.w >= 0) ::close(p.w);
  }
  for (auto& p : probes)
    if (p->fd >= 0) ::close(p->fd);
}

void Relay::Impl::add_fd(int fd, std::uint64_t tag_data, std::uint32_t events) {
  epoll_event e{};
  e.events = events;
  e.data.u64 = tag_data;
  ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &e);
}

Status Relay::Impl::init() {
  ::signal(SIGPIPE, SIG_IGN);
  log::set_level(cfg.log_level);

  // File descriptors: each tunnel needs two, each pooled pipe two more.
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit up = rl;
    up.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &up) == 0) rl = up;
  }
  std::uint64_t nofile = rl.rlim_cur == RLIM_INFINITY ? (1u << 20) : rl.rlim_cur;
  std::uint64_t reserve = kFdReserve + kLingerCap;
  if (cfg.max_connections == 0) {
    std::uint64_t fit = nofile > reserve + 32 ? (nofile - reserve) / 2 : 16;
    max_conns = static_cast<std::uint32_t>(std::min<std::uint64_t>(4096, fit));
  } else {
    std::uint64_t need = 2ULL * cfg.max_connections + reserve;
    if (need > nofile)
      return make_error("relay.fd_limit", "max_connections " + std::to_string(cfg.max_connections) + " needs " +
                                              std::to_string(need) + " file descriptors, the limit is " +
                                              std::to_string(nofile) + "; lower max_connections");
    max_conns = cfg.max_connections;
  }
  std::uint64_t spare = nofile - std::min<std::uint64_t>(nofile, 2ULL * max_conns + reserve);
  pipe_cap = cfg.splice ? std::min<std::size_t>(kMaxPipes, spare / 2) : 0;
  splice_ok = pipe_cap > 0;
  bufsize = cfg.buffer_size;
  scratch.reset(new std::uint8_t[bufsize]);

  // Backends.
  for (const auto& e : cfg.backends) {
    Backend b;
    b.ep = e;
    b.name = e.to_string();
    auto a = resolve(e, b.len, false);
    if (!a) return make_error("relay.resolve", "backend " + b.name + ": " + a.error().detail);
    b.addr = *a;
    backends.push_back(std::move(b));
  }

  // TLS to the backends: one client context for all tls:// backends.
  if (std::any_of(backends.begin(), backends.end(), [](const Backend& b) { return b.ep.tls; })) {
    auto ctx = tls::ClientContext::create(std::move(cfg.tls));
    if (!ctx) return make_error("relay.tls", ctx.error().to_string());
    tls_ctx = std::move(*ctx);
  }

  // Client authentication.
  auth.mode = cfg.client_auth;
  auth.verify = [this](std::string_view user, std::string_view pass) {
    bool ok = false;
    for (const auto& c : cfg.client_credentials) {
      bool u = equal_ct(as_bytes(user), as_bytes(c.user));
      bool p = equal_ct(as_bytes(pass), c.pass.view());
      ok |= u & p;
    }
    return ok;
  };
  policy = Policy(cfg.rules, cfg.deny_private);

  // Listener.
  socklen_t len = 0;
  auto la = resolve(cfg.listen, len, true);
  if (!la) return make_error("relay.bind", "listen " + cfg.listen.to_string() + ": " + la.error().detail);
  tcp_listener = cfg.listen.kind == Endpoint::Kind::Tcp;
  listen_fd.reset(::socket(la->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listen_fd) return make_error("relay.bind", "socket: " + errno_text(errno));
  if (tcp_listener) {
    int one = 1;
    ::setsockopt(listen_fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // Accepted sockets inherit TCP_NODELAY: one setsockopt here instead of one per client.
    ::setsockopt(listen_fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // SOCKS5 clients speak first: accept them only once their greeting is there, so
    // accept and the first read share one wakeup.
    int defer = 1;
    if (cfg.mode == Mode::Socks5) ::setsockopt(listen_fd.get(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof defer);
  } else {
    // Replace a stale socket from an earlier run, but never anything that is not a socket.
    struct stat st {};
    if (::lstat(cfg.listen.path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode))
        return make_error("relay.bind", "listen " + cfg.listen.to_string() + ": exists and is not a socket");
      ::unlink(cfg.listen.path.c_str());
    }
  }
  if (::bind(listen_fd.get(), reinterpret_cast<sockaddr*>(&*la), len) != 0)
    return make_error("relay.bind", "listen " + cfg.listen.to_string() + ": " + errno_text(errno));
  if (!tcp_listener) {
    unix_path = cfg.listen.path;
    if (::chmod(unix_path.c_str(), cfg.unix_mode) != 0)
      return make_error("relay.bind", "chmod " + unix_path + ": " + errno_text(errno));
  }
  if (::listen(listen_fd.get(), SOMAXCONN) != 0)
    return make_error("relay.bind", "listen " + cfg.listen.to_string() + ": " + errno_text(errno));
  if (tcp_listener) {
    sockaddr_storage bound{};
    socklen_t blen = sizeof bound;
    ::getsockname(listen_fd.get(), reinterpret_cast<sockaddr*>(&bound), &blen);
    char host[INET6_ADDRSTRLEN] = {};
    std::uint16_t port = 0;
    if (bound.ss_family == AF_INET6) {
      auto* s6 = reinterpret_cast<sockaddr_in6*>(&bound);
      ::inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
      port = ntohs(s6->sin6_port);
      listen_text = "[" + std::string(host) + "]:" + std::to_string(port);
    } else {
      auto* s4 = reinterpret_cast<sockaddr_in*>(&bound);
      ::inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
      port = ntohs(s4->sin_port);
      listen_text = std::string(host) + ":" + std::to_string(port);
    }
  } else {
    listen_text = "unix:" + unix_path;
  }

  ep.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep) return make_error("relay.epoll", errno_text(errno));
  add_fd(listen_fd.get(), reinterpret_cast<std::uint64_t>(&listener_h) | kTagHandler, EPOLLIN | EPOLLET);
  wake_fd.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  add_fd(wake_fd.get(), reinterpret_cast<std::uint64_t>(&wake_h) | kTagHandler, EPOLLIN);
  if (opt.handle_signals) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
    sig_fd.reset(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!sig_fd) return make_error("relay.signalfd", errno_text(errno));
    add_fd(sig_fd.get(), reinterpret_cast<std::uint64_t>(&sig_h) | kTagHandler, EPOLLIN);
  }

  // Health probes.
  if (cfg.effective_health_check() != HealthCheck::None) {
    for (std::size_t i = 0; i < backends.size(); ++i) {
      auto p = std::make_unique<Probe>();
      p->kind = HKind::Probe;
      p->backend = i;
      p->greeting[0] = socks5::kVersion;
      if (cfg.backend_auth == BackendAuth::Password) {
        p->greeting[1] = 1;
        p->greeting[2] = static_cast<std::uint8_t>(socks5::Method::UserPass);
        p->greeting_len = 3;
      } else if (cfg.backend_auth == BackendAuth::Forward) {
        p->greeting[1] = 2;
        p->greeting[2] = static_cast<std::uint8_t>(socks5::Method::NoAuth);
        p->greeting[3] = static_cast<std::uint8_t>(socks5::Method::UserPass);
        p->greeting_len = 4;
      } else {
        p->greeting[1] = 1;
        p->greeting[2] = static_cast<std::uint8_t>(socks5::Method::NoAuth);
        p->greeting_len = 3;
      }
      probes.push_back(std::move(p));
    }
  }
  conns.reserve(std::min<std::uint32_t>(max_conns, 1024));
  return {};
}

// ---------------------------------------------------------------------------- plumbing

Conn* Relay::Impl::alloc_conn() {
  Conn* c;
  if (!free_conns.empty()) {
    c = free_conns.back();
    free_conns.pop_back();
    *c = Conn{};
  } else {
    c = new Conn;
  }
  c->id = next_id++;
  c->last = now;
  c->idx = static_cast<std::uint32_t>(conns.size());
  conns.push_back(c);
  return c;
}

void Relay::Impl::close_conn(Conn* c) {
  if (c->dead) return;
  c->dead = true;
  for (int i = 0; i < 2; ++i) {
    if (c->fd[i] >= 0) ::close(c->fd[i]);
    c->fd[i] = -1;
    Dir& d = c->d[i];
    if (d.pipe >= 0) release_pipe(d.pipe, d.pending > 0);
    d.pipe = -1;
    if (d.buf) free_block(d.buf);
    d.buf = nullptr;
  }
  delete c->hs;
  c->hs = nullptr;
  c->tls.reset();
  if (c->st == St::Relay) {
    unbump(ctr.relaying);
    bump(ctr.closed);
  }
  if (c->st == St::Linger) unbump(ctr.lingering);
  else unbump(ctr.active);
  // Swap-remove from the sweep list.
  Conn* last = conns.back();
  conns[c->idx] = last;
  last->idx = c->idx;
  conns.pop_back();
  graveyard.push_back(c);
}

void Relay::Impl::queue_ready(Conn* c) {
  if (!c->queued) {
    c->queued = true;
    ready.push_back(c);
  }
}

std::uint8_t* Relay::Impl::alloc_block() {
  if (!free_blocks.empty()) {
    auto* b = free_blocks.back();
    free_blocks.pop_back();
    return b;
  }
  return new std::uint8_t[bufsize];
}

void Relay::Impl::free_block(std::uint8_t* b) {
  if (free_blocks.size() < 64) free_blocks.push_back(b);
  else delete[] b;
}

// A free pipe for one splice-through, or -1. It stays in the free list: a direction
// takes it out only if the destination leaves bytes in it.
std::int32_t Relay::Impl::borrow_pipe() {
  while (!free_pipes.empty() && pipes[static_cast<std::size_t>(free_pipes.back())].r < 0) free_pipes.pop_back();
  if (!free_pipes.empty()) return free_pipes.back();
  if (pipes.size() >= pipe_cap) return -1;
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    pipe_cap = pipes.size();
    return -1;
  }
  if (cfg.pipe_size != 65536) ::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(cfg.pipe_size));
  pipes.push_back(Pipe{fds[0], fds[1]});
  auto idx = static_cast<std::int32_t>(pipes.size() - 1);
  free_pipes.push_back(idx);
  return idx;
}

// Bytes nobody will read are in the pipe: replace it rather than drain it.
void Relay::Impl::replace_pipe(std::int32_t idx) {
  Pipe& p = pipes[static_cast<std::size_t>(idx)];
  ::close(p.r);
  ::close(p.w);
  p = Pipe{};
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return;  // slot stays dead; borrow skips it
  if (cfg.pipe_size != 65536) ::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(cfg.pipe_size));
  p = Pipe{fds[0], fds[1]};
}

void Relay::Impl::release_pipe(std::int32_t idx, bool dirty) {
  if (dirty) replace_pipe(idx);
  if (pipes[static_cast<std::size_t>(idx)].r >= 0) free_pipes.push_back(idx);
}

void Relay::Impl::stash(Dir& d, const std::uint8_t* p, std::size_t n) {
  if (n == 0) return;
  if (!d.buf) {
    std::size_t cap = std::max<std::size_t>(bufsize, n);
    d.buf = cap == bufsize ? alloc_block() : new std::uint8_t[cap];
    d.cap = static_cast<std::uint32_t>(cap);
    d.off = 0;
    d.pending = 0;
  } else if (d.off + d.pending + n > d.cap) {
    // Only handshake leftovers append; they are small and fit after compaction.
    std::memmove(d.buf, d.buf + d.off, d.pending);
    d.off = 0;
  }
  std::memcpy(d.buf + d.off + d.pending, p, n);
  d.pending += static_cast<std::uint32_t>(n);
}

void Relay::Impl::client_note(const Conn* c, const char* what, std::string_view reason) {
  if (!log::enabled(LogLevel::Info)) return;
  if (!client_log.allow(now)) return;
  auto sup = client_log.take_suppressed();
  if (sup)
    log::write(LogLevel::Info, "conn %llu %s: %.*s (%llu similar lines suppressed)",
               static_cast<unsigned long long>(c->id), what, static_cast<int>(reason.size()), reason.data(),
               static_cast<unsigned long long>(sup));
  else
    log::write(LogLevel::Info, "conn %llu %s: %.*s", static_cast<unsigned long long>(c->id), what,
               static_cast<int>(reason.size()), reason.data());
}

void Relay::Impl::mark(std::size_t b, bool up, std::string_view why) {
  Backend& be = backends[b];
  bool changed = be.up != up || !be.checked;
  be.checked = true;
  if (!changed) return;
  be.up = up;
  if (!up) be.pipelining = -1;  // whatever comes back may be different software
  if (up)
    log::write(LogLevel::Info, "backend %s up", be.name.c_str());
  else
    log::write(LogLevel::Warn, "backend %s down: %.*s", be.name.c_str(), static_cast<int>(why.size()), why.data());
}

// ---------------------------------------------------------------------------- accept

void Relay::Impl::on_accept() {
  listener_ready = true;
  if (draining || now < accept_paused_until) return;
  for (int i = 0; i < kAcceptBatch; ++i) {
    int fd = ::accept4(listen_fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      if (retry_errno(e)) {
        listener_ready = false;
        return;
      }
      if (e == EINTR || e == ECONNABORTED) continue;
      bump(ctr.accept_errors);
      // Out of descriptors or memory: back off briefly instead of spinning.
      accept_paused_until = now + 100;
      if (client_log.allow(now)) log::write(LogLevel::Warn, "accept: %s (pausing 100ms)", errno_text(e).c_str());
      return;
    }
    bump(ctr.accepted);
    if (ctr.active.load(std::memory_order_relaxed) >= max_conns) {
      reject_over_cap(fd);
      continue;
    }
    Conn* c = alloc_conn();
    bump(ctr.active);
    c->fd[0] = fd;
    c->can_write[0] = true;
    add_fd(fd, reinterpret_cast<std::uint64_t>(c) | kTagClient, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
    c->start = backends.size() > 1 && cfg.balance == Balance::RoundRobin
                   ? static_cast<std::uint8_t>(rr_next++ % backends.size())
                   : 0;
    if (cfg.mode == Mode::Socks5) {
      c->st = St::ClientHandshake;
      c->hs = new Handshake(&auth);
      c->deadline = now + cfg.handshake_timeout_ms;
      c->can_read[0] = true;  // the greeting is usually there already (TCP_DEFER_ACCEPT)
      client_handshake_io(c);
    } else {
      start_attempt(c);
    }
  }
  // Batch used up: come back after the other ready events.
}

void Relay::Impl::reject_over_cap(int fd) {
  bump(ctr.rejected_cap);
  if (client_log.allow(now))
    log::write(LogLevel::Warn, "connection cap %u reached: refusing a client", max_conns);
  if (cfg.mode == Mode::Passthrough || ctr.lingering.load(std::memory_order_relaxed) >= kLingerCap) {
    ::close(fd);
    return;
  }
  // Method choice "no auth" and reply 0x01 in one write, before reading anything: the
  // client reads the choice, sends its request, reads the failure.
  static const std::uint8_t kMsg[12] = {5, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0};
  ssize_t w = ::send(fd, kMsg, sizeof kMsg, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (w != static_cast<ssize_t>(sizeof kMsg)) {
    ::close(fd);
    return;
  }
  ::shutdown(fd, SHUT_WR);
  Conn* c = alloc_conn();
  bump(ctr.lingering);
  c->st = St::Linger;
  c->fd[0] = fd;
  c->lingering_shut = true;
  c->deadline = now + cfg.linger_timeout_ms;
  add_fd(fd, reinterpret_cast<std::uint64_t>(c) | kTagClient, EPOLLIN | EPOLLRDHUP | EPOLLET);
}

// ---------------------------------------------------------------------------- dispatch

void Relay::Impl::on_conn(Conn* c, int side, std::uint32_t ev) {
  if (c->dead) return;
  if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c->can_read[side] = true;
  if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c->rdhup[side] = true;
  if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) c->can_write[side] = true;
  if (side == 1 && c->tls_read_wants_write && (ev & EPOLLOUT)) {
    c->tls_read_wants_write = false;
    c->can_read[1] = true;
  }
  switch (c->st) {
    case St::ClientHandshake:
      client_handshake_io(c);
      break;
    case St::BackendConnect:
    case St::BackendTls:
    case St::BackendHandshake:
      if (side == 0) {
        // The client hung up (both directions, or reset) while we negotiate: give up.
        if (ev & (EPOLLHUP | EPOLLERR)) {
          bump(ctr.client_aborted);
          close_conn(c);
          return;
        }
        if (c->hs && c->hs->cout_len > c->hs->cout_off && !flush_cout(c)) return;
        break;
      }
      if (c->st == St::BackendConnect) backend_connect_io(c);
      else if (c->st == St::BackendTls) backend_tls_io(c);
      else backend_handshake_io(c);
      break;
    case St::Relay:
      relay_io(c);
      break;
    case St::Linger:
      linger_io(c);
      break;
  }
}

// ---------------------------------------------------------------------------- client side

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

bool Relay::Impl::flush_cout(Conn* c) {
  Handshake& h = *c->hs;
  if (send_small(c, 0, h.cout, h.cout_len, h.cout_off) != 0) {
    bump(ctr.client_aborted);
    close_conn(c);
    return false;
  }
  if (h.cout_off == h.cout_len) h.cout_off = h.cout_len = 0;
  return true;
}

bool Relay::Impl::queue_client(Conn* c, ByteView out) {
  Handshake& h = *c->hs;
  if (h.cout_off == h.cout_len) h.cout_off = h.cout_len = 0;
  std::size_t n = std::min(out.size(), sizeof h.cout - h.cout_len);
  std::memcpy(h.cout + h.cout_len, out.data(), n);
  h.cout_len = static_cast<std::uint8_t>(h.cout_len + n);
  return flush_cout(c);
}

void Relay::Impl::client_handshake_io(Conn* c) {
  Handshake& h = *c->hs;
  if (h.cout_len > h.cout_off && !flush_cout(c)) return;
  while (c->can_read[0]) {
    std::size_t space = sizeof h.in - h.in_len;
    if (space == 0) return;  // cannot happen: every message fits; see Handshake::in
    ssize_t n = ::read(c->fd[0], h.in + h.in_len, space);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (retry_errno(errno)) {
        c->can_read[0] = false;
        return;
      }
      bump(ctr.client_aborted);
      close_conn(c);
      return;
    }
    if (n == 0) {
      // EOF before a complete request: nothing is owed to a client that left.
      bump(ctr.client_aborted);
      if (h.in_len > 0) client_note(c, "closed mid-handshake", "socks5.truncated");
      close_conn(c);
      return;
    }
    h.in_len = static_cast<std::uint16_t>(h.in_len + n);
    if (static_cast<std::size_t>(n) < space && !c->rdhup[0]) c->can_read[0] = false;
    if (!advance_client(c)) return;
  }
}

// Runs the client session over the buffered input. False if the connection left the
// ClientHandshake state (closed, refused, or on to a backend).
bool Relay::Impl::advance_client(Conn* c) {
  Handshake& h = *c->hs;
  std::size_t off = 0;
  for (;;) {
    auto s = h.cs.step(ByteView(h.in + off, h.in_len - off));
    using K = socks5::ClientSession::Step::Kind;
    switch (s.kind) {
      case K::NeedMore:
        if (off > 0) {
          std::memmove(h.in, h.in + off, h.in_len - off);
          h.in_len = static_cast<std::uint16_t>(h.in_len - off);
        }
        return true;
      case K::Progress:
        off += s.consumed;
        if (s.credentials && cfg.backend_auth == BackendAuth::Forward) {
          const auto& up = *s.credentials;
          std::size_t len = 3 + up.user.size() + up.pass.size();
          h.fwd[0] = socks5::kAuthVersion;
          h.fwd[1] = static_cast<std::uint8_t>(up.user.size());
          std::memcpy(h.fwd + 2, up.user.data(), up.user.size());
          h.fwd[2 + up.user.size()] = static_cast<std::uint8_t>(up.pass.size());
          std::memcpy(h.fwd + 3 + up.user.size(), up.pass.data(), up.pass.size());
          h.fwd_len = static_cast<std::uint16_t>(len);
        }
        if (s.credentials) wipe(h.in + off - s.consumed, s.consumed);
        if (!queue_client(c, s.out_bytes())) return false;
        continue;
      case K::Request:
        off += s.consumed;
        std::memmove(h.in, h.in + off, h.in_len - off);  // what is left is early data
        h.in_len = static_cast<std::uint16_t>(h.in_len - off);
        handle_request(c, *s.request);
        return false;
      case K::Reject:
        if (s.reason == "socks5.bad_atyp") bump(ctr.rejected_atyp);
        else if (s.reason == "socks5.empty_domain") bump(ctr.rejected_hostname);
        else bump(ctr.rejected_auth);
        client_note(c, "refused", s.reason);
        refuse(c, s.out_bytes());
        return false;
      case K::Close:
        bump(ctr.malformed);
        client_note(c, "malformed, closing", s.reason);
        close_conn(c);
        return false;
    }
  }
}

void Relay::Impl::handle_request(Conn* c, const socks5::Request& req) {
  std::uint8_t rep[10];
  if (auto v = socks5::check_request(req)) {
    if (v->reply == static_cast<std::uint8_t>(socks5::Reply::CommandNotSupported)) bump(ctr.rejected_command);
    else bump(ctr.rejected_hostname);
    client_note(c, "refused", v->reason);
    refuse(c, ByteView(rep, socks5::encode_reply_into(v->reply, rep, sizeof rep)));
    return;
  }
  auto d = policy.check(req.dst);
  if (!d.allowed) {
    bump(ctr.rejected_policy);
    client_note(c, "refused by policy", d.reason);
    TORGW_LOG(LogLevel::Debug, "conn %llu denied destination %s", static_cast<unsigned long long>(c->id),
              req.dst.to_string().c_str());
    refuse(c, ByteView(rep, socks5::encode_reply_into(0x02, rep, sizeof rep)));
    return;
  }
  c->hs->dst = req.dst;
  start_attempt(c);
}

// Queues a typed refusal and lingers: the reply goes out, then a half-close, then we
// read and discard until the client closes (closing with unread input would reset the
// connection and could destroy the reply in flight).
void Relay::Impl::refuse(Conn* c, ByteView reply) {
  c->tls.reset();
  if (c->fd[1] >= 0) {
    ::close(c->fd[1]);
    c->fd[1] = -1;
  }
  if (ctr.lingering.load(std::memory_order_relaxed) >= kLingerCap) {
    ::send(c->fd[0], reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    close_conn(c);
    return;
  }
  unbump(ctr.active);
  bump(ctr.lingering);
  c->st = St::Linger;
  c->deadline = now + cfg.linger_timeout_ms;
  if (!c->hs) c->hs = new Handshake(&auth);
  c->hs->bs.reset();
  if (!queue_client(c, reply)) return;
  linger_io(c);
}

void Relay::Impl::linger_io(Conn* c) {
  if (c->hs && c->hs->cout_len > c->hs->cout_off) {
    if (!flush_cout(c)) return;
    if (c->hs->cout_len > c->hs->cout_off) return;
  }
  if (!c->lingering_shut) {
    ::shutdown(c->fd[0], SHUT_WR);
    c->lingering_shut = true;
  }
  std::size_t budget = 16 * bufsize;
  while (c->can_read[0]) {
    ssize_t n = ::read(c->fd[0], scratch.get(), bufsize);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (retry_errno(errno)) {
        c->can_read[0] = false;
        return;
      }
      close_conn(c);
      return;
    }
    if (n == 0) {
      close_conn(c);
      return;
    }
    if (static_cast<std::size_t>(n) >= budget) {
      queue_ready(c);
      return;
    }
    budget -= static_cast<std::size_t>(n);
  }
}

// ---------------------------------------------------------------------------- backend side

int Relay::Impl::pick_backend(Conn* c) {
  std::size_t n = backends.size();
  for (int pass = 0; pass < 2; ++pass) {
    for (std::size_t k = 0; k < n; ++k) {
      std::size_t b = (c->start + k) % n;
      if (c->tried & (1ULL << b)) continue;
      // First the backends believed up; then, rather than fail, the others.
      if (pass == 0 && !backends[b].up) continue;
      return static_cast<int>(b);
    }
  }
  return -1;
}

void Relay::Impl::start_attempt(Conn* c) {
  for (;;) {
    int b = pick_backend(c);
    if (b < 0) {
      fail_all(c);
      return;
    }
    c->tried |= 1ULL << b;
    c->backend = static_cast<std::uint8_t>(b);
    const Backend& be = backends[static_cast<std::size_t>(b)];
    int fd = ::socket(be.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      c->fail_reply = 0x01;
      if (client_log.allow(now)) log::write(LogLevel::Warn, "socket: %s", errno_text(errno).c_str());
      fail_all(c);
      return;
    }
    if (be.ep.kind == Endpoint::Kind::Tcp) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    int r = ::connect(fd, reinterpret_cast<const sockaddr*>(&be.addr), be.len);
    if (r == 0 || errno == EINPROGRESS) {
      c->fd[1] = fd;
      c->can_read[1] = c->can_write[1] = c->rdhup[1] = false;
      c->st = St::BackendConnect;
      c->deadline = now + cfg.connect_timeout_ms;
      add_fd(fd, reinterpret_cast<std::uint64_t>(c) | kTagBackend, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
      if (be.ep.tls) {
        // The ClientHello goes out at once, as the greeting would; the handshake runs
        // within connect_timeout, then SOCKS5 (or the relay) over TLS.
        c->tls = tls_ctx->connect(fd, be.ep.host, static_cast<std::size_t>(b));
        if (!c->tls) {
          attempt_failed(c, 0, "TLS: cannot create a session");
          return;
        }
        c->st = St::BackendTls;
        c->can_write[1] = true;
        backend_tls_io(c);
        return;
      }
      if (cfg.mode == Mode::Socks5) {
        // On loopback the TCP handshake is usually complete by now: send the greeting
        // at once. If it is not, send() says EAGAIN and EPOLLOUT resumes; if it failed,
        // send() or read() reports the error and the attempt fails over as usual.
        c->can_write[1] = true;
        begin_backend_handshake(c);
      }
      return;
    }
    int e = errno;
    ::close(fd);
    mark(static_cast<std::size_t>(b), false, errno_text(e));
    c->fail_reply = e == ECONNREFUSED ? 0x05 : 0x01;
    if (pick_backend(c) >= 0) bump(ctr.failovers);
  }
}

void Relay::Impl::attempt_failed(Conn* c, int err, std::string_view why, std::uint8_t reply) {
  mark(c->backend, false, why);
  c->tls.reset();
  if (c->fd[1] >= 0) ::close(c->fd[1]);
  c->fd[1] = -1;
  c->fail_reply = reply ? reply : err == ECONNREFUSED ? 0x05 : err == ETIMEDOUT ? 0x04 : 0x01;
  if (c->hs) {
    c->hs->bs.reset();
    c->hs->bin_len = 0;
    c->hs->bout = nullptr;
    c->hs->bout_len = c->hs->bout_off = 0;
  }
  if (pick_backend(c) >= 0) bump(ctr.failovers);
  start_attempt(c);
}

void Relay::Impl::fail_all(Conn* c) {
  bump(ctr.backend_failed);
  if (client_log.allow(now))
    log::write(LogLevel::Warn, "conn %llu: no backend could take it (%s%s)", static_cast<unsigned long long>(c->id),
               cfg.mode == Mode::Passthrough ? "closing; last error " : "reply ",
               socks5::reply_name(c->fail_reply).c_str());
  if (cfg.mode == Mode::Passthrough) {
    close_conn(c);
    return;
  }
  std::uint8_t rep[10];
  refuse(c, ByteView(rep, socks5::encode_reply_into(c->fail_reply, rep, sizeof rep)));
}

// Passthrough only: socks5 mode goes straight to begin_backend_handshake().
void Relay::Impl::backend_connect_io(Conn* c) {
  if (c->rdhup[1]) {  // EPOLLERR/EPOLLHUP: the connect failed
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0) err = ECONNRESET;
    attempt_failed(c, err, "connect: " + errno_text(err));
    return;
  }
  if (!c->can_write[1]) return;
  mark(c->backend, true, {});
  start_relay(c, 0);
}

void Relay::Impl::begin_backend_handshake(Conn* c) {
  Handshake& h = *c->hs;
  socks5::BackendSession::Options o;
  o.pipeline = cfg.backend_pipelining == Pipelining::Yes ||
               (cfg.backend_pipelining == Pipelining::Auto && backends[c->backend].pipelining == 1);
  if (cfg.backend_auth == BackendAuth::Password) o.auth_msg = cfg.backend_auth_msg.view();
  else if (cfg.backend_auth == BackendAuth::Forward && h.fwd_len > 0) o.auth_msg = ByteView(h.fwd, h.fwd_len);
  auto bs = socks5::BackendSession::make(h.dst, o);
  if (!bs) {  // cannot happen: the request was validated
    c->fail_reply = 0x01;
    fail_all(c);
    return;
  }
  h.bs.emplace(std::move(*bs));
  c->st = St::BackendHandshake;
  auto first = h.bs->first_flight();
  h.bout = first.data();
  h.bout_len = static_cast<std::uint16_t>(first.size());
  h.bout_off = 0;
  if (!flush_bout(c)) return;
  backend_handshake_io(c);
}

bool Relay::Impl::flush_bout(Conn* c) {
  Handshake& h = *c->hs;
  int e = send_small(c, 1, h.bout, h.bout_len, h.bout_off);
  if (e == 0) return true;
  // TLS 1.3: a server that refuses our (missing) client certificate says so with an
  // alert after its Finished and closes; our first write can fail on the reset before
  // we read it. The alert is still in the receive queue: read it, so the failure is
  // typed by the alert, not by the reset (socks_integration_test's mutual-TLS case).
  if (c->tls) c->tls->read_pending_alert();
  if (c->tls && c->tls->failure().sys_errno == 0 && !c->tls->failure().reason.empty() &&
      c->tls->failure().reason != "tls.io") {
    negotiation_tls_failed(c);
    return false;
  }
  if (h.bs && h.bs->committed()) backend_lost(c, 0x01, "send: " + errno_text(e));
  else attempt_failed(c, e, "send: " + errno_text(e));
  return false;
}

// The backend failed after it may have acted on the CONNECT: no retry elsewhere.
void Relay::Impl::backend_lost(Conn* c, std::uint8_t reply, std::string_view why) {
  if (!why.empty()) mark(c->backend, false, why);
  c->tls.reset();
  if (c->fd[1] >= 0) ::close(c->fd[1]);
  c->fd[1] = -1;
  c->fail_reply = reply;
  fail_all(c);
}

void Relay::Impl::backend_handshake_io(Conn* c) {
  Handshake& h = *c->hs;
  if (h.bout_off < h.bout_len && !flush_bout(c)) return;
  while (c->can_read[1]) {
    std::size_t space = sizeof h.bin - h.bin_len;
    ssize_t n = side_read(c, 1, h.bin + h.bin_len, space);
    int e = errno;
    if (n < 0 && e == EINTR) continue;
    if (n < 0 && retry_errno(e)) {
      c->can_read[1] = false;
      if (c->tls && c->tls->want_write()) c->tls_read_wants_write = true;
      return;
    }
    if (n < 0 && c->tls && c->tls->failure().sys_errno == 0 && !c->tls->failure().reason.empty()) {
      // A TLS failure after our side finished the handshake: in TLS 1.3 the server
      // rejects a (missing) client certificate only now, with an alert.
      negotiation_tls_failed(c);
      return;
    }
    if (n <= 0) {
      std::string why = n == 0 ? "closed during SOCKS5 negotiation" : "read: " + errno_text(e);
      if (h.bs->committed()) {
        backend_lost(c, 0x01, {});  // the destination may have been contacted
      } else {
        attempt_failed(c, n == 0 ? 0 : e, why);
      }
      return;
    }
    h.bin_len = static_cast<std::uint16_t>(h.bin_len + n);
    // A short read drained the socket, except through TLS: a record may remain in it.
    if (static_cast<std::size_t>(n) < space && !c->rdhup[1] && !c->tls) c->can_read[1] = false;
    std::size_t off = 0;
    for (;;) {
      auto s = h.bs->step(ByteView(h.bin + off, h.bin_len - off));
      using K = socks5::BackendSession::Step::Kind;
      if (s.kind == K::NeedMore) {
        std::memmove(h.bin, h.bin + off, h.bin_len - off);
        h.bin_len = static_cast<std::uint16_t>(h.bin_len - off);
        break;
      }
      off += s.consumed;
      if (s.kind == K::Send) {
        mark(c->backend, true, {});
        h.bout = s.out.data();
        h.bout_len = static_cast<std::uint16_t>(s.out.size());
        h.bout_off = 0;
        if (h.bs->committed()) c->deadline = now + cfg.reply_timeout_ms;
        if (!flush_bout(c)) return;
        continue;
      }
      if (s.kind == K::Done) {
        if (s.reply == 0) {
          start_relay(c, off);
          return;
        }
        // The backend's own answer about the destination: relay it faithfully.
        bump(ctr.backend_replied_error);
        TORGW_LOG(LogLevel::Debug, "conn %llu: backend replied %s", static_cast<unsigned long long>(c->id),
                  socks5::reply_name(s.reply).c_str());
        std::uint8_t rep[10];
        refuse(c, ByteView(rep, socks5::encode_reply_into(s.reply, rep, sizeof rep)));
        return;
      }
      // Fail.
      if (s.retryable) {
        attempt_failed(c, 0, s.reason);
      } else {
        backend_lost(c, 0x01, s.reason);
      }
      return;
    }
    if (h.bin_len == sizeof h.bin) {  // cannot happen: replies are shorter
      attempt_failed(c, 0, "oversized reply");
      return;
    }
  }
}

// ---------------------------------------------------------------------------- TLS

// Side 1 of a tls:// connection in direction i goes through OpenSSL in user space (not
// the kernel's TLS): i = 0 writes to the backend, i = 1 reads from it.
bool Relay::Impl::user_tls(const Conn* c, int i) const {
  if (!c->tls) return false;
  if (c->st != St::Relay) return true;  // negotiation always through OpenSSL
  return i == 0 ? !c->tls_kernel_tx : !c->tls_kernel_rx;
}

ssize_t Relay::Impl::side_read(Conn* c, int side, void* buf, std::size_t n) {
  if (side == 1 && user_tls(c, 1)) return c->tls->read(buf, n);
  return ::read(c->fd[side], buf, n);
}

ssize_t Relay::Impl::side_send(Conn* c, int side, const void* buf, std::size_t n) {
  if (side == 1 && user_tls(c, 0)) return c->tls->write(buf, n);
  return ::send(c->fd[side], buf, n, MSG_NOSIGNAL);
}

void Relay::Impl::backend_tls_io(Conn* c) {
  switch (c->tls->handshake()) {
    case tls::Session::Step::WantRead:
    case tls::Session::Step::WantWrite:
      return;  // edge-triggered: the socket said EAGAIN, its next event resumes us
    case tls::Session::Step::Failed:
      tls_failed(c, c->tls->failure());
      return;
    case tls::Session::Step::Done:
      break;
  }
  if (c->tls->resumed()) bump(ctr.backend_tls_resumed);
  c->tls_kernel_tx = c->tls->ktls_send();
  c->tls_kernel_rx = c->tls->ktls_recv();
  tls_established(c->backend, *c->tls, c->tls_kernel_tx, c->tls_kernel_rx);
  if (cfg.mode == Mode::Socks5) {
    c->can_write[1] = true;
    begin_backend_handshake(c);
  } else {
    mark(c->backend, true, {});
    start_relay(c, 0);
  }
}

// A TLS failure of the session during the SOCKS5 negotiation with the backend. With the
// greeting and request pipelined (committed) the CONNECT may have gone out, so no
// failover, but the reason is logged all the same; before that it fails over.
void Relay::Impl::negotiation_tls_failed(Conn* c) {
  const Handshake& h = *c->hs;
  if (h.bs && h.bs->committed()) {
    note_tls_failure(c, c->tls->failure());
    backend_lost(c, 0x01, "TLS: " + c->tls->failure().to_string());
  } else {
    tls_failed(c, c->tls->failure());
  }
}

// The counter and the typed log line every TLS failure of a connection gets, whether it
// fails over (tls_failed) or comes after the CONNECT may have gone out (backend_lost).
void Relay::Impl::note_tls_failure(Conn* c, const tls::Failure& f) {
  bump(ctr.backend_tls_failed);
  tls_ctx->forget(c->backend);  // whatever answers next proves its key in full
  if (client_log.allow(now))
    log::write(LogLevel::Warn, "conn %llu: backend %s: TLS failed: %s", static_cast<unsigned long long>(c->id),
               backends[c->backend].name.c_str(), f.to_string().c_str());
}

// Every TLS failure fails over like any failure before the CONNECT, and names its type
// in the log; the client gets the failure's reply if no backend takes it.
void Relay::Impl::tls_failed(Conn* c, const tls::Failure& f) {
  if (f.sys_errno != 0) {  // refused, reset before any TLS: a plain connection failure
    attempt_failed(c, f.sys_errno, "connect: " + errno_text(f.sys_errno));
    return;
  }
  note_tls_failure(c, f);
  tls::Failure copy = f;  // attempt_failed frees the session that owns f
  attempt_failed(c, 0, "TLS: " + copy.to_string(), copy.reply);
}

// Logs how a tls:// backend is reached when that changes, and writes the BACKEND_TLS
// marker (docs/serial.md) when the value changes: "pinned:ktls", "ca:userspace", ...
void Relay::Impl::tls_established(std::size_t b, const tls::Session& s, bool tx, bool rx) {
  Backend& be = backends[b];
  std::string path = tx && rx ? "ktls" : tx ? "ktls-tx" : "userspace";
  std::string value = tls_ctx->settings().auth_name() + ":" + path;
  if (be.tls_path == value) return;
  be.tls_path = value;
  log::write(LogLevel::Info, "backend %s: %s %s, %s; kernel TLS send %s, receive %s", be.name.c_str(),
             s.version().c_str(), s.cipher().c_str(), value.c_str(), tx ? "on" : "off", rx ? "on" : "off");
  if (value == tls_marker) return;
  tls_marker = value;
  if (auto m = serial::format_marker("BACKEND_TLS", value); m.ok()) (void)!::write(2, m->data(), m->size());
}

// ---------------------------------------------------------------------------- relay

void Relay::Impl::start_relay(Conn* c, std::size_t backend_consumed) {
  if (c->hs) {
    Handshake& h = *c->hs;
    if (cfg.mode == Mode::Socks5) {
      std::uint8_t rep[10];
      std::size_t rn = socks5::encode_reply_into(0, rep, sizeof rep);
      std::size_t sent = 0;
      if (h.cout_len == h.cout_off && c->can_write[0]) {
        ssize_t w = ::send(c->fd[0], rep, rn, MSG_NOSIGNAL);
        if (w > 0) sent = static_cast<std::size_t>(w);
        else if (w < 0 && !retry_errno(errno)) {
          bump(ctr.client_aborted);
          close_conn(c);
          return;
        }
      } else if (h.cout_len > h.cout_off) {
        stash(c->d[1], h.cout + h.cout_off, h.cout_len - h.cout_off);
      }
      stash(c->d[1], rep + sent, rn - sent);
      stash(c->d[1], h.bin + backend_consumed, h.bin_len - backend_consumed);
    }
    stash(c->d[0], h.in, h.in_len);
    delete c->hs;
    c->hs = nullptr;
  }
  c->st = St::Relay;
  c->last = now;
  bump(ctr.relaying);
  bump(ctr.established);
  relay_io(c);
}

void Relay::Impl::relay_io(Conn* c) {
  if (!pump(c, 0) || !pump(c, 1)) {
    close_conn(c);
    return;
  }
  if (c->d[0].shut && c->d[1].shut) close_conn(c);
}

bool Relay::Impl::flush(Conn* c, int i) {
  Dir& d = c->d[i];
  int dst = c->fd[i ^ 1];
  while (d.pending > 0) {
    ssize_t w;
    if (d.pipe >= 0) {
      w = ::splice(pipes[static_cast<std::size_t>(d.pipe)].r, nullptr, dst, nullptr, d.pending,
                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    } else {
      w = side_send(c, i ^ 1, d.buf + d.off, d.pending);
    }
    if (w < 0) {
      if (errno == EINTR) continue;
      if (retry_errno(errno)) {
        c->can_write[i ^ 1] = false;
        return true;
      }
      return false;
    }
    d.pending -= static_cast<std::uint32_t>(w);
    d.off += static_cast<std::uint32_t>(w);
    c->last = now;
  }
  if (d.pipe >= 0) {
    release_pipe(d.pipe, false);
    d.pipe = -1;
  } else if (d.buf) {
    if (d.cap == bufsize) free_block(d.buf);
    else delete[] d.buf;
    d.buf = nullptr;
    d.off = d.cap = 0;
  }
  return true;
}

// What a read (or splice) from side i returned: Data (counted), Stop (drained: wait for
// EPOLLIN; or EOF, recorded), Retry (EINTR), Error.
Relay::Impl::ReadResult Relay::Impl::took(Conn* c, int i, ssize_t n) {
  if (n > 0) {
    bump(i == 0 ? ctr.bytes_up : ctr.bytes_down, static_cast<std::uint64_t>(n));
    c->last = now;
    return ReadResult::Data;
  }
  if (n == 0) {
    c->d[i].eof = true;
    return ReadResult::Stop;
  }
  if (errno == EINTR) return ReadResult::Retry;
  if (retry_errno(errno)) {
    c->can_read[i] = false;
    return ReadResult::Stop;
  }
  return ReadResult::Error;
}

// Moves bytes from side i to side i^1 until the source is drained, the destination is
// full, or this direction's budget for this round is spent.
bool Relay::Impl::pump(Conn* c, int i) {
  Dir& d = c->d[i];
  const int src = c->fd[i], dst = c->fd[i ^ 1];
  const int o = i ^ 1;
  if (d.pending > 0) {
    if (!c->can_write[o]) return true;
    if (!flush(c, i)) return false;
    if (d.pending > 0) return true;
  }
  std::size_t budget = 16 * static_cast<std::size_t>(bufsize);
  while (!d.eof && c->can_read[i] && c->can_write[o]) {
    if (budget == 0) {
      queue_ready(c);
      break;
    }
    // Zero-copy needs plain sockets (or kTLS) at both ends of this direction.
    if (d.bulk && splice_ok && !user_tls(c, i)) {
      std::int32_t pi = borrow_pipe();
      if (pi >= 0) {
        Pipe& p = pipes[static_cast<std::size_t>(pi)];
        ssize_t n = ::splice(src, nullptr, p.w, nullptr, bufsize, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {  // not spliceable here: copy from now on
          splice_ok = false;
          continue;
        }
        if (n < 0 && errno == EIO && i == 1 && c->tls) {
          // kTLS receive met a record that is not application data (a TLS 1.3
          // KeyUpdate or NewSessionTicket): OpenSSL reads this one and the rest.
          c->tls_kernel_rx = false;
          continue;
        }
        ReadResult rr = took(c, i, n);
        if (rr == ReadResult::Retry) continue;
        if (rr == ReadResult::Stop) break;
        if (rr == ReadResult::Error) return false;
        ssize_t w = ::splice(p.r, nullptr, dst, nullptr, static_cast<std::size_t>(n), SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (w < 0) {
          if (!retry_errno(errno)) {
            replace_pipe(pi);  // still in the free list; borrow skips it if dead
            return false;
          }
          w = 0;
        }
        if (w < n) {
          // The destination is full: this direction keeps the pipe as its backlog.
          free_pipes.pop_back();
          d.pipe = pi;
          d.pending = static_cast<std::uint32_t>(n - w);
          c->can_write[o] = false;
          break;
        }
        if (static_cast<std::size_t>(n) < bufsize / 4) d.bulk = false;
        budget -= std::min(budget, static_cast<std::size_t>(n));
        continue;
      }
    }
    ssize_t n = side_read(c, i, scratch.get(), bufsize);
    if (n < 0 && errno == EIO && i == 1 && c->tls && c->tls_kernel_rx) {
      c->tls_kernel_rx = false;  // a control record under kTLS receive: see above
      continue;
    }
    if (n < 0 && i == 1 && c->tls && retry_errno(errno) && c->tls->want_write()) c->tls_read_wants_write = true;
    ReadResult rr = took(c, i, n);
    if (rr == ReadResult::Retry) continue;
    if (rr == ReadResult::Stop) break;
    if (rr == ReadResult::Error) return false;
    if (static_cast<std::size_t>(n) == bufsize) d.bulk = true;
    // A short read drained the socket (EPOLLET re-arms), except through user-space TLS,
    // which returns one record at a time: read on until it says EAGAIN.
    else if (!c->rdhup[i] && !(i == 1 && user_tls(c, 1))) c->can_read[i] = false;
    ssize_t w = side_send(c, o, scratch.get(), static_cast<std::size_t>(n));
    if (w < 0) {
      if (!retry_errno(errno)) return false;
      w = 0;
    }
    if (w < n) {
      stash(d, scratch.get() + w, static_cast<std::size_t>(n - w));
      c->can_write[o] = false;
      break;
    }
    budget -= std::min(budget, static_cast<std::size_t>(n));
  }
  if (d.eof && d.pending == 0 && !d.shut) {
    // If the other direction is done too, relay_io() closes both sockets right away and
    // close() sends the FIN: skip the extra syscall.
    if (!c->d[o].shut) {
      if (o == 1 && c->tls) c->tls->close_notify();  // the TLS way to say EOF, then the FIN
      ::shutdown(dst, SHUT_WR);
    }
    d.shut = true;
  }
  return true;
}

// ---------------------------------------------------------------------------- timers

bool Relay::Impl::check_timeout(Conn* c) {
  switch (c->st) {
    case St::ClientHandshake:
      if (now < c->deadline) return false;
      bump(ctr.handshake_timeout);
      client_note(c, "handshake timeout", "socks5.timeout");
      close_conn(c);
      return true;
    case St::BackendConnect:
    case St::BackendTls:
    case St::BackendHandshake:
      if (now < c->deadline) return false;
      if (c->st == St::BackendTls) {  // a silent or stalling TLS peer: never a hang
        attempt_failed(c, ETIMEDOUT, "TLS handshake timed out");
        return c->dead;
      }
      if (c->hs && c->hs->bs && c->hs->bs->committed()) {
        backend_lost(c, 0x04, {});  // it took the CONNECT but did not answer in time
        return c->dead;
      }
      attempt_failed(c, ETIMEDOUT, "timed out");
      return c->dead;
    case St::Relay:
      if (cfg.idle_timeout_ms == 0 || now - c->last < cfg.idle_timeout_ms) return false;
      bump(ctr.idle_timeout);
      TORGW_LOG(LogLevel::Debug, "conn %llu idle, closing", static_cast<unsigned long long>(c->id));
      close_conn(c);
      return true;
    case St::Linger:
      if (now < c->deadline) return false;
      close_conn(c);
      return true;
  }
  return false;
}

void Relay::Impl::log_stats(const char* why) {
  std::string b;
  for (const auto& be : backends) {
    if (!b.empty()) b += ',';
    b += be.name + (be.up ? "/up" : "/down");
  }
  log::write(LogLevel::Info, "stats (%s): %s backends=%s", why, ctr.to_string().c_str(), b.c_str());
}

void Relay::Impl::start_drain(const char* why) {
  if (draining) {
    log::write(LogLevel::Warn, "%s again: closing %zu connections now", why, conns.size());
    stop_now = true;
    return;
  }
  draining = true;
  drain_deadline = now + cfg.drain_timeout_ms;
  ::epoll_ctl(ep.get(), EPOLL_CTL_DEL, listen_fd.get(), nullptr);
  listen_fd.reset();
  if (!unix_path.empty()) ::unlink(unix_path.c_str());
  log::write(LogLevel::Info, "%s: draining %zu connections (deadline %ums)", why, conns.size(), cfg.drain_timeout_ms);
}

void Relay::Impl::on_signal() {
  signalfd_siginfo si{};
  while (::read(sig_fd.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    if (si.ssi_signo == SIGUSR1) log_stats("SIGUSR1");
    else start_drain(si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
  }
}

void Relay::Impl::on_wake() {
  std::uint64_t v;
  while (::read(wake_fd.get(), &v, sizeof v) == static_cast<ssize_t>(sizeof v)) {
  }
  int stops = stop_requests.exchange(0);
  for (int i = 0; i < stops; ++i) start_drain("stop requested");
  if (stats_requested.exchange(false)) log_stats("requested");
}

void Relay::Impl::tick() {
  for (std::size_t k = 0; k < conns.size();) {
    Conn* c = conns[k];
    if (!check_timeout(c)) ++k;
  }
  for (auto& p : probes) {
    if (p->st == Probe::St::Idle && now >= p->next) start_probe(p.get());
    else if (p->st == Probe::St::PipeTest && now >= p->deadline) pipe_result(p.get(), false);
    else if (p->st != Probe::St::Idle && now >= p->deadline) probe_done(p.get(), false, "health check timed out");
  }
  if (cfg.stats_interval_ms > 0 && now >= next_stats) {
    if (next_stats != 0) log_stats("periodic");
    next_stats = now + cfg.stats_interval_ms;
  }
  if (listener_ready && !draining && now >= accept_paused_until) on_accept();
}

// ---------------------------------------------------------------------------- probes

void Relay::Impl::start_probe(Probe* p) {
  const Backend& be = backends[p->backend];
  int fd = ::socket(be.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    p->next = now + cfg.health_interval_ms;
    return;
  }
  int r = ::connect(fd, reinterpret_cast<const sockaddr*>(&be.addr), be.len);
  if (r != 0 && errno != EINPROGRESS) {
    int e = errno;
    ::close(fd);
    p->fd = -1;
    probe_done(p, false, "health check: connect: " + errno_text(e));
    return;
  }
  p->fd = fd;
  p->st = Probe::St::Connecting;
  p->got = 0;
  // Learn once whether the backend reads a request pipelined behind the greeting.
  p->pipe_test = cfg.backend_pipelining == Pipelining::Auto && cfg.backend_auth == BackendAuth::None &&
                 cfg.effective_health_check() == HealthCheck::Socks5 && be.pipelining < 0;
  p->deadline = now + cfg.connect_timeout_ms;
  add_fd(fd, reinterpret_cast<std::uint64_t>(p) | kTagHandler, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
}

void Relay::Impl::on_probe(Probe* p, std::uint32_t ev) {
  if (p->fd < 0) return;
  if (p->st == Probe::St::Connecting) {
    if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      probe_done(p, false, "health check: connect: " + errno_text(err));
      return;
    }
    if (backends[p->backend].ep.tls) {
      // A tls:// backend is healthy once it proves its key (and answers the greeting).
      p->tls = tls_ctx->connect(p->fd, backends[p->backend].ep.host, p->backend);
      if (!p->tls) {
        probe_done(p, false, "health check: TLS: cannot create a session");
        return;
      }
      p->st = Probe::St::Tls;
    } else if (cfg.effective_health_check() == HealthCheck::Connect) {
      probe_done(p, true, {});
      return;
    } else if (!probe_send_greeting(p)) {
      return;
    }
  }
  if (p->st == Probe::St::Tls) {
    switch (p->tls->handshake()) {
      case tls::Session::Step::WantRead:
      case tls::Session::Step::WantWrite:
        return;
      case tls::Session::Step::Failed:
        tls_ctx->forget(p->backend);
        probe_done(p, false, "health check: TLS: " + p->tls->failure().to_string());
        return;
      case tls::Session::Step::Done:
        break;
    }
    tls_established(p->backend, *p->tls, p->tls->ktls_send(), p->tls->ktls_recv());
    if (cfg.effective_health_check() == HealthCheck::Connect) {
      probe_done(p, true, {});
      return;
    }
    if (!probe_send_greeting(p)) return;
  }
  bool eof = false;
  while (p->got < sizeof p->buf) {
    ssize_t n = p->tls ? p->tls->read(p->buf + p->got, sizeof p->buf - p->got)
                       : ::read(p->fd, p->buf + p->got, sizeof p->buf - p->got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && retry_errno(errno)) break;
    if (n < 0 && p->tls && !p->tls->failure().reason.empty() && p->tls->failure().sys_errno == 0) {
      probe_done(p, false, "health check: TLS: " + p->tls->failure().to_string());
      return;
    }
    if (n <= 0) {
      eof = true;
      break;
    }
    p->got = static_cast<std::uint8_t>(p->got + n);
  }
  probe_answer(p, eof);
}

bool Relay::Impl::probe_send_greeting(Probe* p) {
  // The pipelining test rides on the greeting: a CONNECT to 0.0.0.0 port 0, which
  // reaches nothing. A server that reads pipelined input answers it (dante: 0x08,
  // tor: 0x01, torgw-socks: 0x02); one that does not (microsocks) never answers.
  std::uint8_t msg[4 + 10];
  std::memcpy(msg, p->greeting, p->greeting_len);
  std::size_t n = p->greeting_len;
  if (p->pipe_test) {
    static const std::uint8_t kBogus[10] = {socks5::kVersion, 1, 0, 1, 0, 0, 0, 0, 0, 0};
    std::memcpy(msg + n, kBogus, sizeof kBogus);
    n += sizeof kBogus;
  }
  ssize_t w = p->tls ? p->tls->write(msg, n) : ::send(p->fd, msg, n, MSG_NOSIGNAL);
  if (w != static_cast<ssize_t>(n)) {
    probe_done(p, false, "health check: send failed");
    return false;
  }
  p->st = Probe::St::Greeting;
  return true;
}

void Relay::Impl::probe_answer(Probe* p, bool eof) {
  if (p->st == Probe::St::Greeting && p->got >= 2) {
    bool offered = false;
    for (int k = 0; k < p->greeting[1]; ++k) offered |= p->buf[1] == p->greeting[2 + k];
    if (p->buf[0] != socks5::kVersion) {
      probe_done(p, false, "health check: not a SOCKS5 server");
      return;
    }
    if (!offered) {
      probe_done(p, false, "health check: no acceptable authentication method");
      return;
    }
    if (!p->pipe_test) {
      probe_done(p, true, {});
      return;
    }
    mark(p->backend, true, {});
    p->st = Probe::St::PipeTest;
    p->deadline = now + std::min<std::uint32_t>(cfg.connect_timeout_ms, 1000);
  }
  if (p->st == Probe::St::PipeTest && (p->got >= 4 || eof)) {
    pipe_result(p, p->got >= 4 && p->buf[2] == socks5::kVersion);
    return;
  }
  if (eof) probe_done(p, false, "health check: closed before answering the greeting");
}

void Relay::Impl::pipe_result(Probe* p, bool supported) {
  Backend& be = backends[p->backend];
  if (be.pipelining != (supported ? 1 : 0))
    log::write(LogLevel::Info, "backend %s %s pipelined requests%s", be.name.c_str(),
               supported ? "reads" : "does not read", supported ? ": sending greeting and CONNECT together" : "");
  be.pipelining = supported ? 1 : 0;
  probe_done(p, true, {});
}

void Relay::Impl::probe_done(Probe* p, bool ok, std::string_view why) {
  p->tls.reset();
  if (p->fd >= 0) ::close(p->fd);
  p->fd = -1;
  p->st = Probe::St::Idle;
  p->next = now + cfg.health_interval_ms;
  mark(p->backend, ok, why);
}

// ---------------------------------------------------------------------------- loop

Status Relay::Impl::run() {
  now = mono_ms();
  log::write(LogLevel::Info, "listening on %s, mode %s, %zu backend(s), max %u connections", listen_text.c_str(),
             cfg.mode == Mode::Socks5 ? "socks5" : "passthrough", backends.size(), max_conns);
  for (auto& p : probes) start_probe(p.get());
  next_tick = now + kTick;
  epoll_event events[256];
  for (;;) {
    bool want_accept = listener_ready && !draining && now >= accept_paused_until;
    int timeout = 0;
    if (ready.empty() && !want_accept) timeout = static_cast<int>(next_tick > now ? next_tick - now : 0);
    int n = ::epoll_wait(ep.get(), events, 256, timeout);
    if (n < 0 && errno != EINTR) return make_error("relay.epoll", errno_text(errno));
    now = mono_ms();
    for (int k = 0; k < n; ++k) {
      std::uint64_t data = events[k].data.u64;
      std::uint32_t ev = events[k].events;
      std::uint64_t tag = data & kTagMask;
      if (tag == kTagHandler) {
        auto* h = reinterpret_cast<Handler*>(data & ~kTagMask);
        switch (h->kind) {
          case HKind::Listener: on_accept(); break;
          case HKind::Signal: on_signal(); break;
          case HKind::Wake: on_wake(); break;
          case HKind::Probe: on_probe(static_cast<Probe*>(h), ev); break;
        }
      } else {
        on_conn(reinterpret_cast<Conn*>(data & ~kTagMask), static_cast<int>(tag), ev);
      }
    }
    if (!ready.empty()) {
      std::vector<Conn*> batch;
      batch.swap(ready);
      for (Conn* c : batch) {
        c->queued = false;
        if (c->dead) continue;
        if (c->st == St::Relay) relay_io(c);
        else if (c->st == St::Linger) linger_io(c);
      }
    }
    if (want_accept && listener_ready && !draining && now >= accept_paused_until) on_accept();
    for (Conn* c : graveyard) {
      if (free_conns.size() < 1024) free_conns.push_back(c);
      else delete c;
    }
    graveyard.clear();
    if (now >= next_tick) {
      tick();
      next_tick = now + kTick;
      for (Conn* c : graveyard) {
        if (free_conns.size() < 1024) free_conns.push_back(c);
        else delete c;
      }
      graveyard.clear();
    }
    if (draining) {
      if (conns.empty()) break;
      if (stop_now || now >= drain_deadline) {
        std::size_t left = conns.size();
        while (!conns.empty()) {
          bump(ctr.drain_forced);
          close_conn(conns.back());
        }
        log::write(LogLevel::Warn, "drain deadline: closed %zu connections", left);
        break;
      }
    }
  }
  log_stats("exit");
  return {};
}

// ---------------------------------------------------------------------------- Relay

Relay::Relay(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Relay::~Relay() = default;

Result<std::unique_ptr<Relay>> Relay::create(Config cfg, Options opt) {
  auto impl = std::make_unique<Impl>();
  impl->cfg = std::move(cfg);
  impl->opt = opt;
  TORGW_TRY(impl->init());
  return std::unique_ptr<Relay>(new Relay(std::move(impl)));
}

Status Relay::run() { return impl_->run(); }

void Relay::request_stop() {
  impl_->stop_requests.fetch_add(1);
  std::uint64_t one = 1;
  (void)!::write(impl_->wake_fd.get(), &one, sizeof one);
}

void Relay::request_stats() {
  impl_->stats_requested.store(true);
  std::uint64_t one = 1;
  (void)!::write(impl_->wake_fd.get(), &one, sizeof one);
}

const Counters& Relay::counters() const { return impl_->ctr; }
std::string Relay::listen_address() const { return impl_->listen_text; }
const Config& Relay::config() const { return impl_->cfg; }
std::uint32_t Relay::max_connections() const { return impl_->max_conns; }
std::string Relay::unix_path() const { return impl_->unix_path; }

}  // namespace torgw::socks
