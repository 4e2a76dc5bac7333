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
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "common/fd.h"
#include "common/secret.h"
#include "socks/log.h"
#include "socks/relay_internal.h"
#include "socks/session.h"
#include "socks/tls.h"

namespace torgw::socks {
namespace {

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

Relay::Impl::~Impl() {
  while (!conns.empty()) close_conn(conns.back());
  for (auto* c : graveyard) delete c;
  for (auto* c : free_conns) delete c;
  for (auto* b : free_blocks) delete[] b;
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
  TORGW_TRY(size_to_fd_limit());
  bufsize = cfg.buffer_size;
  scratch.reset(new std::uint8_t[bufsize]);
  TORGW_TRY(resolve_backends());
  TORGW_TRY(create_tls_context());
  set_client_policy();
  TORGW_TRY(bind_listener());
  describe_listener();
  TORGW_TRY(open_event_sources());
  create_probes();
  conns.reserve(std::min<std::uint32_t>(max_conns, 1024));
  return {};
}

// File descriptors: each tunnel needs two, each pooled pipe two more.
Status Relay::Impl::size_to_fd_limit() {
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
  return {};
}

Status Relay::Impl::resolve_backends() {
  for (const auto& e : cfg.backends) {
    Backend b;
    b.ep = e;
    b.name = e.to_string();
    auto a = resolve(e, b.len, false);
    if (!a) return make_error("relay.resolve", "backend " + b.name + ": " + a.error().detail);
    b.addr = *a;
    backends.push_back(std::move(b));
  }
  return {};
}

// TLS to the backends: one client context for all tls:// backends.
Status Relay::Impl::create_tls_context() {
  if (std::any_of(backends.begin(), backends.end(), [](const Backend& b) { return b.ep.tls; })) {
    auto ctx = tls::ClientContext::create(std::move(cfg.tls));
    if (!ctx) return make_error("relay.tls", ctx.error().to_string());
    tls_ctx = std::move(*ctx);
  }
  return {};
}

// Client authentication and the destination policy.
void Relay::Impl::set_client_policy() {
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
}

Status Relay::Impl::bind_listener() {
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
  return {};
}

// listen_text: the bound address (the kernel's port for port 0), for the log and tests.
void Relay::Impl::describe_listener() {
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
}

// The epoll set: listener, wake-up eventfd, and the signals when the relay owns them.
Status Relay::Impl::open_event_sources() {
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
  return {};
}

// One health probe per backend, its greeting offering what backend_auth allows.
void Relay::Impl::create_probes() {
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
    set_bulk(d, false);
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
  while (!free_pipes.empty() && !pipes[static_cast<std::size_t>(free_pipes.back())].r) free_pipes.pop_back();
  if (!free_pipes.empty()) return free_pipes.back();
  if (pipes.size() >= pipe_cap) return -1;
  Pipe p = make_pipe();
  if (!p.r) {
    pipe_cap = pipes.size();
    return -1;
  }
  pipes.push_back(std::move(p));
  auto idx = static_cast<std::int32_t>(pipes.size() - 1);
  free_pipes.push_back(idx);
  return idx;
}

// Bytes nobody will read are in the pipe: replace it rather than drain it.
void Relay::Impl::replace_pipe(std::int32_t idx) {
  Pipe& p = pipes[static_cast<std::size_t>(idx)];
  p = Pipe{};       // close the old pair before opening the new one: never two at once
  p = make_pipe();  // on failure the slot stays dead; borrow skips it
}

// A non-blocking pipe of cfg.pipe_size bytes; both ends invalid if pipe2() fails.
Pipe Relay::Impl::make_pipe() const {
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return {};
  Pipe p{UniqueFd(fds[0]), UniqueFd(fds[1])};
  if (cfg.pipe_size != 65536) ::fcntl(p.w.get(), F_SETPIPE_SZ, static_cast<int>(cfg.pipe_size));
  return p;
}

void Relay::Impl::release_pipe(std::int32_t idx, bool dirty) {
  if (dirty) replace_pipe(idx);
  if (pipes[static_cast<std::size_t>(idx)].r) free_pipes.push_back(idx);
}

void Relay::Impl::set_bulk(Dir& d, bool on) {
  if (d.bulk == on) return;
  d.bulk = on;
  if (on) ++bulk_dirs;
  else --bulk_dirs;
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
  if (up) log::write(LogLevel::Info, "backend %s up", be.name.c_str());
  else log::write(LogLevel::Warn, "backend %s down: %.*s", be.name.c_str(), static_cast<int>(why.size()), why.data());
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
