// Sans-I/O SOCKS5 sessions: the two handshakes torgw-socks performs, as pure state
// machines over byte spans.
//   ClientSession  : torgw-socks as the SOCKS5 server for an onion client
//                    (greeting -> [RFC 1929 auth] -> request).
//   BackendSession : torgw-socks as the SOCKS5 client of its backend exit node
//                    (greeting -> [auth] -> CONNECT -> reply).
// The relay feeds them what it reads and writes what they return; the fuzzer and the
// unit tests drive them the same way without a socket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "common/bytes.h"
#include "socks/socks5.h"

namespace torgw::socks5 {

// How onion clients may authenticate.
enum class ClientAuthMode : std::uint8_t {
  None,      // only "no authentication" (0x00)
  Password,  // only RFC 1929, checked against configured credentials
  Isolate,   // 0x00 or RFC 1929 with any credentials: the pair is an isolation token
             // (forwarded to the backend with backend_auth = forward), not a secret check
};

struct ClientAuthPolicy {
  ClientAuthMode mode = ClientAuthMode::None;
  // Password mode: true if the pair is valid. Must be constant-time in the secret.
  std::function<bool(std::string_view user, std::string_view pass)> verify;
};

class ClientSession {
 public:
  enum class State : std::uint8_t { Greeting, Auth, Request, Done, Failed };

  struct Step {
    enum class Kind : std::uint8_t {
      NeedMore,  // consumed nothing; read more
      Progress,  // consumed a message; write `out` and call step() again with the rest
      Request,   // consumed the CONNECT request: `request` is set; the caller replies
      Reject,    // write `out` (a typed refusal), then close; `reason` says why
      Close,     // malformed: close without a reply; `reason` says why
    };
    Kind kind = Kind::NeedMore;
    std::size_t consumed = 0;
    std::uint8_t out[16] = {};
    std::uint8_t out_len = 0;
    std::string_view reason;              // stable token, e.g. "socks5.bad_version"
    std::optional<UserPass> credentials;  // on the Progress step that accepted RFC 1929
    std::optional<Request> request;       // Kind::Request
    ByteView out_bytes() const { return {out, out_len}; }
  };

  explicit ClientSession(const ClientAuthPolicy* auth) : auth_(auth) {}

  // Feeds the bytes received and not yet consumed. Call again after Progress.
  Step step(ByteView in);
  State state() const { return state_; }
  // True if the client authenticated with RFC 1929 (its credentials came in a Step).
  bool used_userpass() const { return userpass_; }

 private:
  Step reject(std::string_view reason, std::initializer_list<std::uint8_t> out);
  const ClientAuthPolicy* auth_;
  State state_ = State::Greeting;
  bool userpass_ = false;
};

// The reply the relay owes a client for a CONNECT request that a ClientSession produced
// but the relay refuses before contacting a backend: 0x07 for BIND / UDP ASSOCIATE / any
// other command, 0x01 for an invalid hostname, nullopt if the request is acceptable.
struct RequestVerdict {
  std::uint8_t reply;
  std::string_view reason;
};
std::optional<RequestVerdict> check_request(const Request& req);

class BackendSession {
 public:
  struct Options {
    // A complete RFC 1929 message (encode_userpass) to present if the backend picks
    // username/password; empty means "offer no-auth only". Not copied: the caller keeps
    // it alive (it may be a secret living in SecretBytes).
    ByteView auth_msg;
    // No auth: send the greeting and the request in one write instead of waiting for
    // the method choice in between. Saves a round trip and a wakeup on both sides, but
    // only for backends that read pipelined input (dante, tor do; microsocks does not).
    bool pipeline = false;
  };

  struct Step {
    enum class Kind : std::uint8_t {
      NeedMore,  // read more
      Send,      // write `out` (possibly empty) to the backend, then call step() again
      Done,      // the backend answered the CONNECT: `reply` is its code
      Fail,      // protocol failure
    };
    Kind kind = Kind::NeedMore;
    std::size_t consumed = 0;
    ByteView out;  // valid while the session and the auth_msg live
    std::uint8_t reply = 0;
    std::string_view reason;
    // Fail only: true if the CONNECT had not been sent yet, so another backend may be
    // tried without the destination having seen a connection attempt.
    bool retryable = false;
  };

  // Errors: socks5.bad_domain.
  static Result<BackendSession> make(const Address& dst, const Options& opt);

  // The greeting (and, when pipelining, the request), to send once connected.
  ByteView first_flight() const { return pipelined_ ? ByteView(request_) : ByteView(greeting_, 3); }
  Step step(ByteView in);
  // True once the backend may act on the CONNECT: it has answered the greeting and has
  // the request. Before that another backend may be tried without the destination
  // having seen anything (a SOCKS5 server answers the greeting before reading on).
  bool committed() const { return state_ == State::Reply || state_ == State::Done; }

 private:
  enum class State : std::uint8_t { Method, Auth, Reply, Done, Failed };
  Step fail(std::string_view reason);
  std::uint8_t greeting_[3] = {kVersion, 1, 0};
  ByteView auth_msg_;
  Bytes request_;  // when pipelined: greeting + request
  bool pipelined_ = false;
  State state_ = State::Method;
};

}  // namespace torgw::socks5
