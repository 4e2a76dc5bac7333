#include "socks/session.h"

#include <algorithm>

namespace torgw::socks5 {

ClientSession::Step ClientSession::reject(std::string_view reason, std::initializer_list<std::uint8_t> out) {
  Step s;
  s.kind = Step::Kind::Reject;
  s.reason = reason;
  s.out_len = static_cast<std::uint8_t>(std::min(out.size(), sizeof s.out));
  std::copy_n(out.begin(), s.out_len, s.out);
  state_ = State::Failed;
  return s;
}

ClientSession::Step ClientSession::step(ByteView in) {
  Step s;
  auto close = [&](const Error& e) {
    s.kind = Step::Kind::Close;
    s.reason = e.reason == "socks5.bad_version"        ? "socks5.bad_version"
               : e.reason == "socks5.bad_reserved"     ? "socks5.bad_reserved"
               : e.reason == "socks5.bad_auth_version" ? "socks5.bad_auth_version"
               : e.reason == "socks5.empty_username"   ? "socks5.empty_username"
                                                       : "socks5.malformed";
    state_ = State::Failed;
    return s;
  };

  switch (state_) {
    case State::Greeting: {
      auto g = parse_greeting(in);
      if (!g) {
        if (g.error().reason == "socks5.no_methods")
          return reject("socks5.no_methods", {kVersion, static_cast<std::uint8_t>(Method::NoAcceptable)});
        return close(g.error());
      }
      if (!g->has_value()) return s;
      const Greeting& gr = (*g)->value;
      Method pick = Method::NoAcceptable;
      switch (auth_->mode) {
        case ClientAuthMode::None:
          if (gr.offers(Method::NoAuth)) pick = Method::NoAuth;
          break;
        case ClientAuthMode::Password:
          if (gr.offers(Method::UserPass)) pick = Method::UserPass;
          break;
        case ClientAuthMode::Isolate:
          // Prefer the credentials: they are what isolates this client's streams.
          if (gr.offers(Method::UserPass)) pick = Method::UserPass;
          else if (gr.offers(Method::NoAuth)) pick = Method::NoAuth;
          break;
      }
      if (pick == Method::NoAcceptable)
        return reject("socks5.no_acceptable_method", {kVersion, static_cast<std::uint8_t>(Method::NoAcceptable)});
      s.kind = Step::Kind::Progress;
      s.consumed = (*g)->size;
      s.out[0] = kVersion;
      s.out[1] = static_cast<std::uint8_t>(pick);
      s.out_len = 2;
      state_ = pick == Method::UserPass ? State::Auth : State::Request;
      return s;
    }
    case State::Auth: {
      auto a = parse_userpass(in);
      if (!a) return close(a.error());
      if (!a->has_value()) return s;
      const UserPass& up = (*a)->value;
      bool ok = auth_->mode == ClientAuthMode::Isolate || (auth_->verify && auth_->verify(up.user, up.pass));
      if (!ok) return reject("socks5.auth_failed", {kAuthVersion, 0x01});
      s.kind = Step::Kind::Progress;
      s.consumed = (*a)->size;
      s.out[0] = kAuthVersion;
      s.out[1] = 0x00;
      s.out_len = 2;
      s.credentials = up;
      userpass_ = true;
      state_ = State::Request;
      return s;
    }
    case State::Request: {
      auto r = parse_request(in);
      if (!r) {
        const auto& reason = r.error().reason;
        if (reason == "socks5.bad_atyp")
          return reject("socks5.bad_atyp",
                        {kVersion, static_cast<std::uint8_t>(Reply::AddrTypeNotSupported), 0, 1, 0, 0, 0, 0, 0, 0});
        if (reason == "socks5.empty_domain")
          return reject("socks5.empty_domain",
                        {kVersion, static_cast<std::uint8_t>(Reply::GeneralFailure), 0, 1, 0, 0, 0, 0, 0, 0});
        return close(r.error());
      }
      if (!r->has_value()) return s;
      s.kind = Step::Kind::Request;
      s.consumed = (*r)->size;
      s.request = std::move((*r)->value);
      state_ = State::Done;
      return s;
    }
    case State::Done:
    case State::Failed:
      s.kind = Step::Kind::Close;
      s.reason = "socks5.unexpected";
      return s;
  }
  return s;
}

std::optional<RequestVerdict> check_request(const Request& req) {
  if (req.command != static_cast<std::uint8_t>(Command::Connect))
    return RequestVerdict{static_cast<std::uint8_t>(Reply::CommandNotSupported), "socks5.unsupported_command"};
  if (req.dst.type == AddrType::Domain && !valid_hostname(req.dst.domain))
    return RequestVerdict{static_cast<std::uint8_t>(Reply::GeneralFailure), "socks5.bad_hostname"};
  return std::nullopt;
}

Result<BackendSession> BackendSession::make(const Address& dst, const Options& opt) {
  TORGW_ASSIGN_OR_RETURN(auto req, encode_request(Command::Connect, dst));
  BackendSession s;
  s.request_ = std::move(req);
  s.auth_msg_ = opt.auth_msg;
  if (!s.auth_msg_.empty()) s.greeting_[2] = static_cast<std::uint8_t>(Method::UserPass);
  if (opt.pipeline && s.auth_msg_.empty()) {
    s.request_.insert(s.request_.begin(), s.greeting_, s.greeting_ + 3);
    s.pipelined_ = true;
  }
  return s;
}

BackendSession::Step BackendSession::fail(std::string_view reason) {
  Step s;
  s.kind = Step::Kind::Fail;
  s.reason = reason;
  s.retryable = state_ == State::Method || state_ == State::Auth;
  state_ = State::Failed;
  return s;
}

BackendSession::Step BackendSession::step(ByteView in) {
  Step s;
  switch (state_) {
    case State::Method: {
      auto m = parse_method_choice(in);
      if (!m) return fail("backend.bad_version");
      if (!m->has_value()) return s;
      std::uint8_t method = (*m)->value;
      s.consumed = (*m)->size;
      s.kind = Step::Kind::Send;
      if (method == greeting_[2] && method == static_cast<std::uint8_t>(Method::UserPass)) {
        s.out = auth_msg_;
        state_ = State::Auth;
      } else if (method == greeting_[2]) {
        if (!pipelined_) s.out = request_;  // pipelined: it went with the greeting
        state_ = State::Reply;
      } else if (method == static_cast<std::uint8_t>(Method::NoAcceptable)) {
        return fail("backend.no_acceptable_method");
      } else {
        return fail("backend.bad_method");
      }
      return s;
    }
    case State::Auth: {
      auto a = parse_auth_status(in);
      if (!a) return fail("backend.bad_auth_version");
      if (!a->has_value()) return s;
      if ((*a)->value != 0) return fail("backend.auth_failed");
      s.consumed = (*a)->size;
      s.kind = Step::Kind::Send;
      s.out = request_;
      state_ = State::Reply;
      return s;
    }
    case State::Reply: {
      auto r = parse_reply(in);
      if (!r) return fail("backend.bad_reply");
      if (!r->has_value()) return s;
      s.consumed = (*r)->size;
      s.kind = Step::Kind::Done;
      s.reply = (*r)->value.code;
      state_ = State::Done;
      return s;
    }
    case State::Done:
    case State::Failed: return fail("backend.unexpected");
  }
  return s;
}

}  // namespace torgw::socks5
