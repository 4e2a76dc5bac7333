#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "socks/log.h"
#include "socks/relay_internal.h"

namespace torgw::socks {

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
  if (client_log.allow(now)) log::write(LogLevel::Warn, "connection cap %u reached: refusing a client", max_conns);
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
    case St::ClientHandshake: client_handshake_io(c); break;
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
    case St::Relay: relay_io(c); break;
    case St::Linger: linger_io(c); break;
  }
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

}  // namespace torgw::socks
