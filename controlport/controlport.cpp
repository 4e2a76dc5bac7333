#include "controlport/controlport.h"
#include "controlport/testing.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>

#include "common/bytes.h"
#include "common/fd.h"

namespace torgw::controlport {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// ---- Endpoint ----------------------------------------------------------------------

Endpoint Endpoint::unix_socket(std::string path) {
  Endpoint e;
  e.is_unix = true;
  e.path = std::move(path);
  return e;
}

Endpoint Endpoint::tcp(std::string host, std::uint16_t port) {
  Endpoint e;
  e.is_unix = false;
  e.host = std::move(host);
  e.port = port;
  return e;
}

Result<Endpoint> Endpoint::parse(std::string_view s) {
  if (s.rfind("unix:", 0) == 0) {
    std::string_view p = s.substr(5);
    if (p.empty() || p.front() != '/' || p.size() >= sizeof(sockaddr_un{}.sun_path))
      return make_error("controlport.bad_endpoint", "unix socket path must be absolute and < 108 bytes");
    return unix_socket(std::string(p));
  }
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    return make_error("controlport.bad_endpoint", "expected unix:/path or HOST:PORT");
  std::string host(s.substr(0, colon));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::uint32_t port = 0;
  auto ps = s.substr(colon + 1);
  auto [p, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), port);
  if (ps.empty() || ec != std::errc() || p != ps.data() + ps.size() || port == 0 || port > 65535)
    return make_error("controlport.bad_endpoint", "bad port");
  if (host == "localhost") host = "127.0.0.1";
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, host.c_str(), &a4) != 1 && inet_pton(AF_INET6, host.c_str(), &a6) != 1)
    return make_error("controlport.bad_endpoint", "host must be an IP literal or localhost");
  return tcp(std::move(host), static_cast<std::uint16_t>(port));
}

std::string Endpoint::to_string() const {
  if (is_unix) return "unix:" + path;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

// ---- Connection --------------------------------------------------------------------

// libevent writes with write()/writev(): a peer that has closed would kill the process
// with SIGPIPE. A process that talks to tor must ignore it (PID 1 does anyway); if
// nobody chose a disposition, we do.
static void ignore_sigpipe_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction cur {};
    if (::sigaction(SIGPIPE, nullptr, &cur) == 0 && cur.sa_handler == SIG_DFL) ::signal(SIGPIPE, SIG_IGN);
  });
}

Connection::Connection(event_base* base, ConnectOptions opts)
    : base_(base), opts_(opts), retry_timer_(base), timeout_timer_(base), parser_(opts.limits) {
  ignore_sigpipe_once();
}

Connection::~Connection() = default;

bool Connection::connected() const { return up_; }

void Connection::teardown() {
  bev_.reset();
  retry_timer_.cancel();
  timeout_timer_.cancel();
  up_ = false;
  connecting_ = false;
}

void Connection::close() {
  teardown();
  pending_.clear();
  connect_done_ = nullptr;
  parser_ = ReplyParser(opts_.limits);
}

void Connection::connect(const Endpoint& ep, StatusCallback done) {
  close();
  endpoint_ = ep;
  connect_done_ = std::move(done);
  connecting_ = true;
  connect_deadline_ = Clock::now() + opts_.timeout;
  retry_delay_ = opts_.retry_initial;
  last_errno_ = 0;
  attempt_connect();
}

void Connection::attempt_connect() {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_UNIX;
  if (endpoint_.is_unix) {
    auto* sun = reinterpret_cast<sockaddr_un*>(&ss);
    sun->sun_family = AF_UNIX;
    if (endpoint_.path.size() >= sizeof sun->sun_path) {
      connect_failed_attempt(ENAMETOOLONG);
      return;
    }
    std::memcpy(sun->sun_path, endpoint_.path.c_str(), endpoint_.path.size() + 1);
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + endpoint_.path.size() + 1);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET, endpoint_.host.c_str(), &s4->sin_addr) == 1) {
      family = s4->sin_family = AF_INET;
      s4->sin_port = htons(endpoint_.port);
      len = sizeof *s4;
    } else if (inet_pton(AF_INET6, endpoint_.host.c_str(), &s6->sin6_addr) == 1) {
      family = s6->sin6_family = AF_INET6;
      s6->sin6_port = htons(endpoint_.port);
      len = sizeof *s6;
    } else {
      connect_failed_attempt(EINVAL);
      return;
    }
  }
  // Our own socket so it is close-on-exec: PID 1 forks tor and must not leak it.
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    connect_failed_attempt(errno);
    return;
  }
  if (family != AF_UNIX) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  bev_ = event::BufferEvent(
      base_, fd, [this] { on_readable(); }, [this](short what) { on_stream_event(what); });
  if (!bev_) {
    connect_failed_attempt(ENOMEM);
    return;
  }
  // An immediate failure may already have run the event callback (which handles it,
  // and whose callback may even have destroyed us): act only if that did not happen.
  auto alive = lifetime_.guard();
  bufferevent* attempt = bev_.get();
  if (!bev_.connect(reinterpret_cast<sockaddr*>(&ss), static_cast<int>(len)) && alive.alive() &&
      bev_.get() == attempt) {
    connect_failed_attempt(errno ? errno : ECONNREFUSED);
    return;
  }
}

void Connection::connect_failed_attempt(int err) {
  last_errno_ = err;
  bev_.reset();
  auto now = Clock::now();
  if (now >= connect_deadline_) {
    connecting_ = false;
    auto done = std::move(connect_done_);
    connect_done_ = nullptr;
    if (done)
      done(make_error("controlport.connect_failed", endpoint_.to_string() + ": " + std::strerror(err) +
                                                        " (gave up after " + std::to_string(opts_.timeout.count()) +
                                                        " ms)"));
    return;
  }
  auto left = std::chrono::duration_cast<milliseconds>(connect_deadline_ - now);
  auto wait = std::min(retry_delay_, left);
  retry_delay_ = std::min(retry_delay_ * 2, opts_.retry_max);
  retry_timer_.start(wait, [this] { attempt_connect(); });
}

void Connection::connected_ok() {
  connecting_ = false;
  up_ = true;
  bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
  auto done = std::move(connect_done_);
  connect_done_ = nullptr;
  if (done) done(Status{});
}

void Connection::on_stream_event(short what) {
  if (connecting_) {
    if (what & BEV_EVENT_CONNECTED) connected_ok();
    else connect_failed_attempt(errno ? errno : ECONNREFUSED);
    return;
  }
  if (what & BEV_EVENT_EOF) {
    // Replies that arrived with the EOF are delivered first (e.g. 514 then close).
    auto alive = lifetime_.guard();
    on_readable();
    if (!alive.alive() || !up_) return;
    fail(make_error("controlport.closed", "tor closed the control connection"));
  } else if (what & BEV_EVENT_ERROR) {
    fail(make_error("controlport.io_error", std::strerror(errno)));
  }
}

void Connection::on_readable() {
  if (!bev_) return;
  evbuffer* in = bufferevent_get_input(bev_.get());
  std::vector<Reply> replies;
  Status st;
  char buf[16384];
  for (;;) {
    int n = evbuffer_remove(in, buf, sizeof buf);
    if (n <= 0) break;
    st = parser_.feed(std::string_view(buf, static_cast<std::size_t>(n)), replies);
    if (!st) break;
  }
  auto alive = lifetime_.guard();
  for (auto& r : replies) {
    if (r.async()) {
      if (on_event_) on_event_(r);
    } else {
      if (pending_.empty()) {
        fail(make_error("controlport.unexpected_reply", r.summary()));
        return;
      }
      auto cb = std::move(pending_.front().cb);
      pending_.pop_front();
      arm_command_timer();
      if (cb) cb(std::move(r));
    }
    if (!alive.alive() || !up_) return;
  }
  if (!st) fail(st.error());
}

void Connection::fail(Error e) {
  teardown();
  parser_ = ReplyParser(opts_.limits);
  auto alive = lifetime_.guard();
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& p : pending) {
    if (p.cb) p.cb(e);
    if (!alive.alive()) return;
  }
  if (on_close_) on_close_(e);
}

void Connection::arm_command_timer() {
  timeout_timer_.cancel();
  if (pending_.empty()) return;
  auto left = std::chrono::duration_cast<milliseconds>(pending_.front().deadline - Clock::now());
  timeout_timer_.start(left, [this] { on_command_timeout(); });
}

void Connection::on_command_timeout() {
  fail(make_error("controlport.timeout", "no reply within " + std::to_string(opts_.command_timeout.count()) + " ms"));
}

Status Connection::enqueue(ReplyCallback cb) {
  pending_.push_back(Pending{std::move(cb), Clock::now() + opts_.command_timeout});
  if (pending_.size() == 1) arm_command_timer();
  return {};
}

static bool safe_line(std::string_view line) {
  return !line.empty() && line.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

Status Connection::command(std::string_view line, ReplyCallback cb) {
  if (!up_) return make_error("controlport.not_connected");
  if (!safe_line(line)) return make_error("controlport.bad_argument", "command line empty or with CR/LF/NUL");
  evbuffer* out = bufferevent_get_output(bev_.get());
  evbuffer_add(out, line.data(), line.size());
  evbuffer_add(out, "\r\n", 2);
  return enqueue(std::move(cb));
}

Status Connection::command_secret(SecretBytes line, ReplyCallback cb) {
  if (!up_) return make_error("controlport.not_connected");
  if (!safe_line(std::string_view(reinterpret_cast<const char*>(line.data()), line.size())))
    return make_error("controlport.bad_argument", "command line empty or with CR/LF/NUL");
  // The evbuffer references the locked buffer instead of copying it; the buffer is
  // wiped and freed once the bytes have been written.
  auto* holder = new SecretBytes(std::move(line));
  evbuffer* out = bufferevent_get_output(bev_.get());
  if (evbuffer_add_reference(
          out, holder->data(), holder->size(),
          [](const void*, size_t, void* h) { delete static_cast<SecretBytes*>(h); }, holder) != 0) {
    delete holder;
    return make_error("controlport.io_error", "evbuffer_add_reference failed");
  }
  evbuffer_add(out, "\r\n", 2);
  return enqueue(std::move(cb));
}

namespace {

Connection::ReplyCallback ok_only(Connection::StatusCallback cb) {
  return [cb = std::move(cb)](Result<Reply> r) {
    if (!r) return cb(r.error());
    if (!r->ok()) return cb(make_error("controlport.reply_error", r->summary()));
    cb(Status{});
  };
}

Result<SecretBytes> read_cookie(const std::string& path) {
  // O_NOFOLLOW: the cookie lives in tor's directory; a symlink there must not make us read
  // another file (docs/init.md "The tor control connection").
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW));
  if (!fd) return make_error("controlport.bad_cookie", path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != static_cast<off_t>(kCookieLen))
    return make_error("controlport.bad_cookie", path + ": not a 32-byte regular file");
  SecretBytes cookie(kCookieLen);
  std::size_t got = 0;
  while (got < kCookieLen) {
    ssize_t n = ::read(fd.get(), cookie.data() + got, kCookieLen - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error("controlport.bad_cookie", path + ": short read");
    got += static_cast<std::size_t>(n);
  }
  return cookie;
}

std::string methods_list(const ProtocolInfo& pi) {
  std::string s;
  for (const auto& m : pi.auth_methods) s += (s.empty() ? "" : ",") + m;
  return s;
}

}  // namespace

void Connection::authenticate(const AuthOptions& opts, Callback<ProtocolInfo> done) {
  auto st = command("PROTOCOLINFO 1", [this, opts, done](Result<Reply> r) {
    if (!r) return done(r.error());
    auto pi = parse_protocolinfo(*r);
    if (!pi) return done(pi.error());
    const bool cookie_ok = pi->has_method("SAFECOOKIE") || (opts.allow_cookie && pi->has_method("COOKIE"));
    if (cookie_ok && pi->cookie_file) return auth_with_cookie(*pi, opts, done);
    if (opts.allow_null && pi->has_method("NULL")) {
      auto info = *pi;
      auto s = command("AUTHENTICATE", [info, done](Result<Reply> a) {
        if (!a) return done(a.error());
        if (!a->ok()) return done(make_error("controlport.auth_failed", a->summary()));
        done(info);
      });
      if (!s) done(s.error());
      return;
    }
    done(make_error("controlport.no_auth_method", "tor offers " + methods_list(*pi)));
  });
  if (!st) done(st.error());
}

void Connection::auth_with_cookie(const ProtocolInfo& pi, const AuthOptions& opts, Callback<ProtocolInfo> done) {
  const std::string& path = *pi.cookie_file;
  if (!opts.expected_cookie_file.empty() && path != opts.expected_cookie_file)
    return done(make_error("controlport.cookie_path_mismatch", "tor names " + path));
  auto cookie_r = read_cookie(path);
  if (!cookie_r) return done(cookie_r.error());
  auto cookie = std::make_shared<SecretBytes>(std::move(*cookie_r));

  if (!pi.has_method("SAFECOOKIE")) {
    // COOKIE: the cookie itself, hex, in locked memory.
    static constexpr std::string_view kCmd = "AUTHENTICATE ";
    SecretBytes line(kCmd.size() + kCookieLen * 2);
    std::memcpy(line.data(), kCmd.data(), kCmd.size());
    SecretBytes hex(kCookieLen * 2 + 1);
    sodium_bin2hex(reinterpret_cast<char*>(hex.data()), hex.size(), cookie->data(), cookie->size());
    std::memcpy(line.data() + kCmd.size(), hex.data(), kCookieLen * 2);
    auto st = command_secret(std::move(line), [pi, done](Result<Reply> a) {
      if (!a) return done(a.error());
      if (!a->ok()) return done(make_error("controlport.auth_failed", a->summary()));
      done(pi);
    });
    if (!st) done(st.error());
    return;
  }

  auto nonce = std::make_shared<Bytes>(kNonceLen);
  randombytes_buf(nonce->data(), nonce->size());
  auto st = command("AUTHCHALLENGE SAFECOOKIE " + to_hex(*nonce), [this, pi, cookie, nonce, done](Result<Reply> r) {
    if (!r) return done(r.error());
    auto ch = parse_authchallenge(*r);
    if (!ch) return done(ch.error());
    auto expect = safecookie_server_hash(cookie->view(), *nonce, ch->server_nonce);
    if (!equal_ct(expect, ch->server_hash))
      return done(make_error("controlport.bad_server_hash", "tor does not know the cookie it named"));
    auto proof = safecookie_client_hash(cookie->view(), *nonce, ch->server_nonce);
    auto s = command("AUTHENTICATE " + to_hex(proof), [pi, done](Result<Reply> a) {
      if (!a) return done(a.error());
      if (!a->ok()) return done(make_error("controlport.auth_failed", a->summary()));
      done(pi);
    });
    if (!s) done(s.error());
  });
  if (!st) done(st.error());
}

Status Connection::getinfo(std::vector<std::string> keys,
                           Callback<std::vector<std::pair<std::string, std::string>>> cb) {
  TORGW_ASSIGN_OR_RETURN(auto line, cmd_getinfo(keys));
  return command(line, [keys = std::move(keys), cb = std::move(cb)](Result<Reply> r) {
    if (!r) return cb(r.error());
    cb(parse_getinfo(*r, keys));
  });
}

Status Connection::getconf(std::vector<std::string> keys,
                           Callback<std::vector<std::pair<std::string, std::optional<std::string>>>> cb) {
  TORGW_ASSIGN_OR_RETURN(auto line, cmd_getconf(keys));
  return command(line, [cb = std::move(cb)](Result<Reply> r) {
    if (!r) return cb(r.error());
    cb(parse_getconf(*r));
  });
}

Status Connection::setconf(const std::vector<std::pair<std::string, std::optional<std::string>>>& kv,
                           StatusCallback cb) {
  TORGW_ASSIGN_OR_RETURN(auto line, cmd_setconf(kv));
  return command(line, ok_only(std::move(cb)));
}

Status Connection::setevents(const std::vector<std::string>& events, StatusCallback cb) {
  TORGW_ASSIGN_OR_RETURN(auto line, cmd_setevents(events));
  return command(line, ok_only(std::move(cb)));
}

Status Connection::signal(std::string_view name, StatusCallback cb) {
  TORGW_ASSIGN_OR_RETURN(auto line, cmd_signal(name));
  return command(line, ok_only(std::move(cb)));
}

Status Connection::add_onion(const AddOnionRequest& req, Callback<AddOnionReply> cb) {
  TORGW_ASSIGN_OR_RETURN(auto line, cmd_add_onion(req));
  return command_secret(std::move(line), [cb = std::move(cb)](Result<Reply> r) {
    if (!r) return cb(r.error());
    cb(parse_add_onion(*r));
  });
}

Status Connection::del_onion(std::string_view service_id, StatusCallback cb) {
  TORGW_ASSIGN_OR_RETURN(auto line, cmd_del_onion(service_id));
  return command(line, ok_only(std::move(cb)));
}

// ---- run_until / BlockingControl -----------------------------------------------------

bool run_until(event_base* base, const std::function<bool()>& done, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  event::Timer wake(base);  // bounds each loop pass, so the deadline is seen
  bool ok = done();
  while (!ok) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    wake.start(std::min(left, milliseconds(200)), [] {});
    event_base_loop(base, EVLOOP_ONCE);
    ok = done();
  }
  return ok;
}

BlockingControl::~BlockingControl() {
  conn_.reset();
  if (base_) event_base_free(base_);
}

Result<std::unique_ptr<BlockingControl>> BlockingControl::open(const Endpoint& ep, const AuthOptions& auth,
                                                               ConnectOptions opts) {
  std::unique_ptr<BlockingControl> b(new BlockingControl());
  b->base_ = event_base_new();
  if (!b->base_) return make_error("controlport.io_error", "event_base_new failed");
  b->timeout_ = opts.command_timeout;
  b->conn_ = std::make_unique<Connection>(b->base_, opts);
  auto* self = b.get();
  b->conn_->on_event([self](const Reply& r) {
    if (self->events_.size() < 100000) self->events_.push_back(r);
  });
  b->conn_->on_close([self](const Error& e) { self->closed_ = e; });
  std::optional<Status> connected;
  b->conn_->connect(ep, [&](Status s) { connected = std::move(s); });
  run_until(
      b->base_, [&] { return connected.has_value(); }, opts.timeout + milliseconds(1000));
  if (!connected) return make_error("controlport.connect_failed", "timed out");
  if (!*connected) return connected->error();
  std::optional<Result<ProtocolInfo>> authed;
  b->conn_->authenticate(auth, [&](Result<ProtocolInfo> r) { authed = std::move(r); });
  TORGW_ASSIGN_OR_RETURN(auto pi, b->wait_for(authed));
  b->info_ = std::move(pi);
  return b;
}

template <class T>
Result<T> BlockingControl::wait_for(std::optional<Result<T>>& slot) {
  run_until(
      base_, [&] { return slot.has_value(); }, timeout_ + milliseconds(1000));
  if (!slot) return make_error("controlport.timeout", "no answer");
  return std::move(*slot);
}

Result<Reply> BlockingControl::command(std::string_view line) {
  std::optional<Result<Reply>> got;
  TORGW_TRY(conn_->command(line, [&](Result<Reply> r) { got = std::move(r); }));
  return wait_for(got);
}

Result<std::vector<std::pair<std::string, std::string>>> BlockingControl::getinfo(std::vector<std::string> keys) {
  std::optional<Result<std::vector<std::pair<std::string, std::string>>>> got;
  TORGW_TRY(conn_->getinfo(std::move(keys), [&](auto r) { got = std::move(r); }));
  return wait_for(got);
}

Result<std::string> BlockingControl::getinfo1(const std::string& key) {
  TORGW_ASSIGN_OR_RETURN(auto r, getinfo({key}));
  return std::move(r.front().second);
}

Status BlockingControl::setevents(const std::vector<std::string>& events) {
  std::optional<Status> got;
  auto st = conn_->setevents(events, [&](Status s) { got = std::move(s); });
  if (!st) return st;
  run_until(
      base_, [&] { return got.has_value(); }, timeout_ + milliseconds(1000));
  if (!got) return make_error("controlport.timeout", "no answer");
  return *got;
}

Result<AddOnionReply> BlockingControl::add_onion(const AddOnionRequest& req) {
  std::optional<Result<AddOnionReply>> got;
  TORGW_TRY(conn_->add_onion(req, [&](Result<AddOnionReply> r) { got = std::move(r); }));
  return wait_for(got);
}

std::optional<Reply> BlockingControl::wait_event(const std::function<bool(const Reply&)>& pred, milliseconds timeout) {
  std::optional<Reply> found;
  auto scan = [&] {
    while (!found && !events_.empty()) {
      Reply r = std::move(events_.front());
      events_.pop_front();
      if (pred(r)) found = std::move(r);
    }
    return found.has_value() || closed_.has_value();
  };
  run_until(base_, scan, timeout);
  return found;
}

}  // namespace torgw::controlport
