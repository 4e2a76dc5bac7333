#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/secret.h"
#include "socks/log.h"
#include "socks/relay_internal.h"
#include "socks/session.h"

namespace torgw::socks {

// ---------------------------------------------------------------------------- client side

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

}  // namespace torgw::socks
