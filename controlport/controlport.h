// A Tor control-protocol client on libevent: one connection to tor's ControlSocket (or
// a TCP ControlPort), authenticated from PROTOCOLINFO (SAFECOOKIE, COOKIE, NULL), with
// commands answered in order and asynchronous events delivered to a callback.
//
// Everything runs on the caller's event_base (PID 1 drives tor supervision from its own
// loop); nothing blocks. Errors are Results with stable reasons:
//   controlport.connect_failed   no connection within ConnectOptions::timeout
//   controlport.closed           tor closed the connection
//   controlport.io_error         read/write error
//   controlport.timeout          a command got no reply within command_timeout
//   controlport.unexpected_reply a reply arrived with no command waiting for it
//   controlport.reply_error      tor answered 4xx/5xx (detail: "552 ...")
//   controlport.bad_line / line_too_long / reply_too_large   malformed stream (reply.h)
//   controlport.no_auth_method / cookie_path_mismatch / bad_cookie / bad_server_hash /
//   auth_failed                  authentication (see authenticate())
// After any stream error the connection is closed: every command still waiting gets the
// error, then the close callback runs. close() and the destructor drop waiting callbacks
// without calling them.
//
// Reentrancy: callbacks may issue commands, close the connection or destroy it.
// SIGPIPE: a write to a connection tor has closed must not kill the process; the first
// Connection sets SIGPIPE to SIG_IGN if its disposition is still SIG_DFL.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/event.h"
#include "common/result.h"
#include "common/secret.h"
#include "controlport/protocol.h"
#include "controlport/reply.h"

struct event_base;

namespace torgw::controlport {

// Where tor listens: "unix:/path" or "HOST:PORT" (an IPv4 literal, "localhost" or
// "[IPv6]").
struct Endpoint {
  bool is_unix = true;
  std::string path;  // unix
  std::string host;  // tcp
  std::uint16_t port = 0;

  static Endpoint unix_socket(std::string path);
  static Endpoint tcp(std::string host, std::uint16_t port);
  // Errors: controlport.bad_endpoint.
  static Result<Endpoint> parse(std::string_view s);
  std::string to_string() const;
};

struct ConnectOptions {
  // Total time to keep retrying while tor creates its socket (ENOENT, ECONNREFUSED, ...).
  std::chrono::milliseconds timeout{30000};
  std::chrono::milliseconds retry_initial{20};  // doubles after each attempt...
  std::chrono::milliseconds retry_max{500};     // ...up to this
  // Time from sending a command to its reply.
  std::chrono::milliseconds command_timeout{30000};
  ParserLimits limits;
};

struct AuthOptions {
  // If set, PROTOCOLINFO's COOKIEFILE must name exactly this file, so that a process
  // squatting the socket cannot make us read (and, with COOKIE, send) another file.
  std::string expected_cookie_file;
  bool allow_cookie = true;  // plain COOKIE when SAFECOOKIE is not offered
  bool allow_null = true;    // NULL (no authentication configured)
};

class Connection {
 public:
  using ReplyCallback = std::function<void(Result<Reply>)>;
  using EventCallback = std::function<void(const Reply&)>;
  using CloseCallback = std::function<void(const Error&)>;
  template <class T>
  using Callback = std::function<void(Result<T>)>;
  using StatusCallback = std::function<void(Status)>;

  explicit Connection(event_base* base, ConnectOptions opts = {});
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects, retrying with backoff until opts.timeout. `done` runs exactly once.
  void connect(const Endpoint& ep, StatusCallback done);
  bool connected() const;
  void close();

  void on_event(EventCallback cb) { on_event_ = std::move(cb); }
  void on_close(CloseCallback cb) { on_close_ = std::move(cb); }

  // PROTOCOLINFO, then SAFECOOKIE (preferred: tor proves it knows the cookie too),
  // COOKIE or NULL, as tor offers and `opts` allows. `done` gets the PROTOCOLINFO.
  void authenticate(const AuthOptions& opts, Callback<ProtocolInfo> done);

  // Sends one command line (CRLF is added). Returns an error, and never calls `cb`, if
  // the line is unsafe (CR, LF or NUL in it) or the connection is not up; otherwise `cb`
  // runs exactly once with the reply (any status code) or a connection error.
  Status command(std::string_view line, ReplyCallback cb);
  // The same for a line that carries a secret: it stays in locked memory until written
  // and is wiped then; it is never logged.
  Status command_secret(SecretBytes line, ReplyCallback cb);

  // Typed commands; a non-2xx reply becomes controlport.reply_error.
  Status getinfo(std::vector<std::string> keys, Callback<std::vector<std::pair<std::string, std::string>>> cb);
  Status getconf(std::vector<std::string> keys,
                 Callback<std::vector<std::pair<std::string, std::optional<std::string>>>> cb);
  Status setconf(const std::vector<std::pair<std::string, std::optional<std::string>>>& kv, StatusCallback cb);
  Status setevents(const std::vector<std::string>& events, StatusCallback cb);
  Status signal(std::string_view name, StatusCallback cb);
  Status add_onion(const AddOnionRequest& req, Callback<AddOnionReply> cb);
  Status del_onion(std::string_view service_id, StatusCallback cb);

  // Commands sent and not yet answered.
  std::size_t pending() const { return pending_.size(); }
  event_base* base() const { return base_; }

 private:
  struct Pending {
    ReplyCallback cb;
    std::chrono::steady_clock::time_point deadline;
  };
  void attempt_connect();
  void on_stream_event(short what);
  void on_command_timeout();
  void connect_failed_attempt(int err);
  void connected_ok();
  void on_readable();
  void fail(Error e);
  void teardown();
  void arm_command_timer();
  Status enqueue(ReplyCallback cb);
  void auth_with_cookie(const ProtocolInfo& pi, const AuthOptions& opts, Callback<ProtocolInfo> done);

  event_base* base_;
  ConnectOptions opts_;
  Endpoint endpoint_;
  event::BufferEvent bev_;
  event::Timer retry_timer_;
  event::Timer timeout_timer_;
  bool connecting_ = false;
  bool up_ = false;
  std::chrono::steady_clock::time_point connect_deadline_;
  std::chrono::milliseconds retry_delay_{0};
  int last_errno_ = 0;
  StatusCallback connect_done_;
  ReplyParser parser_;
  std::deque<Pending> pending_;
  EventCallback on_event_;
  CloseCallback on_close_;
  // Callbacks we call may destroy us: checked through a guard after each.
  event::Lifetime lifetime_;
};

}  // namespace torgw::controlport

// ---- reason tokens (docs/DEVELOPING.md "Reason tokens") -----------------------------
// Every Error.reason this module's code makes: the tokens it spells as literals and the
// FATAL reasons it composes at run time, spelled out (<...>: a part known at run time
// only). The unit test reason_tokens_test holds the code to this list.
#include <string_view>

namespace torgw::controlport {
inline constexpr std::string_view kReasons[] = {
    "controlport.auth_failed",      "controlport.bad_add_onion",
    "controlport.bad_argument",     "controlport.bad_authchallenge",
    "controlport.bad_cookie",       "controlport.bad_endpoint",
    "controlport.bad_event",        "controlport.bad_getconf",
    "controlport.bad_getinfo",      "controlport.bad_line",
    "controlport.bad_protocolinfo", "controlport.bad_quoted",
    "controlport.bad_server_hash",  "controlport.closed",
    "controlport.connect_failed",   "controlport.cookie_path_mismatch",
    "controlport.io_error",         "controlport.line_too_long",
    "controlport.no_auth_method",   "controlport.not_connected",
    "controlport.reply_error",      "controlport.reply_too_large",
    "controlport.timeout",          "controlport.truncated",
    "controlport.unexpected_reply",
};
}  // namespace torgw::controlport
// ---- end of reason tokens ----------------------------------------------------------
