// torgw-socks parsers: every byte comes from anonymous onion clients (or from the
// backend). The first input byte picks the target, the rest is the hostile input:
//   0: ClientSession (auth mode from the next byte) fed in chunks, then the request
//      checks and the destination policy, as the relay does
//   1: BackendSession answering a CONNECT
//   2: each raw parser, with encode/parse round trips
//   3: text parsers: numeric hosts, CIDRs, policy rules, hostnames, endpoints, durations,
//      config-file lines
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "socks/config.h"
#include "socks/policy.h"
#include "socks/session.h"
#include "socks/socks5.h"

using namespace torgw;
using namespace torgw::socks5;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

template <class T>
void size_ok(const ParseResult<T>& r, std::size_t n) {
  if (r && r->has_value()) check((*r)->size <= n && (*r)->size > 0);
}

void client(ByteView in) {
  if (in.empty()) return;
  auto mode = static_cast<ClientAuthMode>(in[0] % 3);
  std::size_t chunk = 1 + (in.size() > 1 ? in[1] % 16 : 0);
  in = in.subspan(std::min<std::size_t>(2, in.size()));
  ClientAuthPolicy pol{mode, [](std::string_view u, std::string_view p) { return u == "user" && p == "pass"; }};
  ClientSession s(&pol);
  std::basic_string<std::uint8_t> buf;
  std::size_t fed = 0;
  static const socks::Policy policy(
      {*socks::parse_rule(true, "10.1.0.0/16"), *socks::parse_rule(false, "*.bad.example")}, true);
  for (int guard = 0; guard < 10000; ++guard) {
    auto st = s.step(ByteView(buf.data(), buf.size()));
    check(st.consumed <= buf.size());
    check(st.out_len <= sizeof st.out);
    using K = ClientSession::Step::Kind;
    if (st.kind == K::NeedMore) {
      check(st.consumed == 0);
      if (fed == in.size()) return;
      std::size_t n = std::min(chunk, in.size() - fed);
      buf.append(in.data() + fed, n);
      fed += n;
      continue;
    }
    buf.erase(0, st.consumed);
    if (st.kind == K::Progress) {
      check(st.out_len == 2);
      continue;
    }
    if (st.kind == K::Request) {
      check(st.request.has_value());
      const auto& dst = st.request->dst;
      if (dst.type == AddrType::Domain) check(!dst.domain.empty() && dst.domain.size() <= 255);
      auto verdict = check_request(*st.request);
      (void)policy.check(dst);
      auto enc = encode_request(Command::Connect, dst);
      check(enc.ok());
      auto back = parse_request(*enc);
      check(back.ok() && back->has_value() && (*back)->value.dst == dst && (*back)->size == enc->size());
      if (!verdict) {
        auto bs = BackendSession::make(dst, {});
        check(bs.ok());
      }
      (void)dst.to_string();
    }
    check(s.state() == ClientSession::State::Done || s.state() == ClientSession::State::Failed);
    return;
  }
}

void backend(ByteView in) {
  static const Bytes auth = *encode_userpass(as_bytes("u"), as_bytes("p"));
  BackendSession::Options o;
  if (!in.empty() && (in[0] & 1)) o.auth_msg = auth;
  if (!in.empty()) in = in.subspan(1);
  auto s = BackendSession::make(Address::name("example.com", 443), o);
  check(s.ok());
  std::size_t off = 0;
  for (int guard = 0; guard < 100; ++guard) {
    auto st = s->step(in.subspan(off));
    check(st.consumed <= in.size() - off);
    off += st.consumed;
    using K = BackendSession::Step::Kind;
    if (st.kind == K::NeedMore || st.kind == K::Done || st.kind == K::Fail) return;
    check(!st.out.empty());
  }
}

void raw(ByteView in) {
  size_ok(parse_greeting(in), in.size());
  size_ok(parse_userpass(in), in.size());
  size_ok(parse_method_choice(in), in.size());
  size_ok(parse_auth_status(in), in.size());
  auto rq = parse_request(in);
  size_ok(rq, in.size());
  if (rq && rq->has_value()) {
    auto enc = encode_request(static_cast<Command>((*rq)->value.command), (*rq)->value.dst);
    check(enc.ok() && std::memcmp(enc->data(), in.data(), enc->size()) == 0);
  }
  auto rp = parse_reply(in);
  size_ok(rp, in.size());
  if (rp && rp->has_value()) {
    auto enc = encode_reply((*rp)->value.code, (*rp)->value.bound);
    check(std::memcmp(enc.data(), in.data(), enc.size()) == 0);
  }
}

void text(ByteView in) {
  std::string_view t = as_chars(in);
  (void)valid_hostname(t);
  if (auto ip = socks::numeric_host(t)) {
    (void)socks::private_range(*ip);
    (void)ip->to_string();
  }
  if (auto c = socks::parse_cidr(t); c) check(c->prefix <= (c->net.v4 ? 32 : 128));
  (void)socks::parse_rule(in.size() & 1, t);
  (void)socks::parse_endpoint(t, true);
  (void)socks::parse_duration_ms(t);
  (void)socks::parse_config_text(t, "fuzz");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  ByteView in(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0: client(in); break;
    case 1: backend(in); break;
    case 2: raw(in); break;
    case 3: text(in); break;
  }
  return 0;
}
