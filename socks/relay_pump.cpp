#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "socks/relay_internal.h"
#include "socks/session.h"
#include "socks/tls.h"

namespace torgw::socks {

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
      w = ::splice(pipes[static_cast<std::size_t>(d.pipe)].r.get(), nullptr, dst, nullptr, d.pending,
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
    // Zero-copy needs plain sockets (or kTLS) at both ends of this direction, and pays
    // only once several flows are bulk: spliced pages reach the reader cache-cold, while
    // a copy hands it lines the relay just wrote (docs/socks.md, "Bulk throughput").
    if (d.bulk && splice_ok && bulk_dirs >= cfg.splice_min_bulk && !user_tls(c, i)) {
      std::int32_t pi = borrow_pipe();
      if (pi >= 0) {
        Pipe& p = pipes[static_cast<std::size_t>(pi)];
        ssize_t n = ::splice(src, nullptr, p.w.get(), nullptr, bufsize, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
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
        ssize_t w = ::splice(p.r.get(), nullptr, dst, nullptr, static_cast<std::size_t>(n),
                             SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
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
        if (static_cast<std::size_t>(n) < bufsize / 4) set_bulk(d, false);
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
    if (static_cast<std::size_t>(n) == bufsize) set_bulk(d, true);
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

}  // namespace torgw::socks
