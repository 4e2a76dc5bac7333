#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "serial/serial.h"
#include "socks/log.h"
#include "socks/relay_internal.h"
#include "socks/session.h"
#include "socks/tls.h"

namespace torgw::socks {

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

void Relay::Impl::backend_tls_io(Conn* c) {
  switch (c->tls->handshake()) {
    case tls::Session::Step::WantRead:
    case tls::Session::Step::WantWrite: return;  // edge-triggered: the socket said EAGAIN, its next event resumes us
    case tls::Session::Step::Failed: tls_failed(c, c->tls->failure()); return;
    case tls::Session::Step::Done: break;
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

// ---------------------------------------------------------------------------- probes

void Relay::Impl::start_probe(Probe* p) {
  const Backend& be = backends[p->backend];
  UniqueFd fd(::socket(be.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    p->next = now + cfg.health_interval_ms;
    return;
  }
  int r = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&be.addr), be.len);
  if (r != 0 && errno != EINPROGRESS) {
    int e = errno;
    fd.reset();
    probe_done(p, false, "health check: connect: " + errno_text(e));
    return;
  }
  p->fd = std::move(fd);
  p->st = Probe::St::Connecting;
  p->got = 0;
  // Learn once whether the backend reads a request pipelined behind the greeting.
  p->pipe_test = cfg.backend_pipelining == Pipelining::Auto && cfg.backend_auth == BackendAuth::None &&
                 cfg.effective_health_check() == HealthCheck::Socks5 && be.pipelining < 0;
  p->deadline = now + cfg.connect_timeout_ms;
  add_fd(p->fd.get(), reinterpret_cast<std::uint64_t>(p) | kTagHandler, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
}

void Relay::Impl::on_probe(Probe* p, std::uint32_t ev) {
  if (!p->fd) return;
  if (p->st == Probe::St::Connecting) {
    if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(p->fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      probe_done(p, false, "health check: connect: " + errno_text(err));
      return;
    }
    if (backends[p->backend].ep.tls) {
      // A tls:// backend is healthy once it proves its key (and answers the greeting).
      p->tls = tls_ctx->connect(p->fd.get(), backends[p->backend].ep.host, p->backend);
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
      case tls::Session::Step::WantWrite: return;
      case tls::Session::Step::Failed:
        tls_ctx->forget(p->backend);
        probe_done(p, false, "health check: TLS: " + p->tls->failure().to_string());
        return;
      case tls::Session::Step::Done: break;
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
                       : ::read(p->fd.get(), p->buf + p->got, sizeof p->buf - p->got);
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
  ssize_t w = p->tls ? p->tls->write(msg, n) : ::send(p->fd.get(), msg, n, MSG_NOSIGNAL);
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
  p->tls.reset();  // the session before the socket it runs on
  p->fd.reset();
  p->st = Probe::St::Idle;
  p->next = now + cfg.health_interval_ms;
  mark(p->backend, ok, why);
}

}  // namespace torgw::socks
