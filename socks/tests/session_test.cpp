// The sans-I/O handshakes: what torgw-socks answers to each client message, in every
// auth mode, whether the bytes arrive one at a time or all pipelined in one read.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "socks/session.h"

using namespace torgw;
using namespace torgw::socks5;
using Kind = ClientSession::Step::Kind;

namespace {

Bytes B(std::initializer_list<int> v) {
  Bytes b;
  for (int x : v) b.push_back(static_cast<std::uint8_t>(x));
  return b;
}
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

const Bytes kGreetNoAuth = B({5, 1, 0});
const Bytes kGreetBoth = B({5, 2, 0, 2});
const Bytes kGreetUserPass = B({5, 1, 2});
const Bytes kConnect = B({5, 1, 0, 1, 93, 184, 216, 34, 0, 80});

struct Outcome {
  Bytes written;  // everything the session asked to send
  Kind last = Kind::NeedMore;
  std::string reason;
  std::optional<Request> request;
  std::size_t consumed = 0;  // total
  std::vector<std::string> creds;
};

// Feeds `input` in chunks of `chunk` bytes, like a relay reading a socket, and runs the
// session until it stops.
Outcome drive(ClientSession& s, const Bytes& input, std::size_t chunk) {
  Outcome o;
  Bytes buf;
  std::size_t fed = 0;
  while (true) {
    auto st = s.step(buf);
    o.last = st.kind;
    if (st.kind == Kind::NeedMore) {
      if (fed == input.size()) return o;
      std::size_t n = std::min(chunk, input.size() - fed);
      buf.insert(buf.end(), input.begin() + static_cast<std::ptrdiff_t>(fed),
                 input.begin() + static_cast<std::ptrdiff_t>(fed + n));
      fed += n;
      continue;
    }
    o.written.insert(o.written.end(), st.out, st.out + st.out_len);
    o.consumed += st.consumed;
    buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(st.consumed));
    if (st.credentials) o.creds = {std::string(st.credentials->user), std::string(st.credentials->pass)};
    if (st.kind == Kind::Progress) continue;
    o.reason = std::string(st.reason);
    o.request = st.request;
    return o;
  }
}

ClientAuthPolicy none_policy() { return ClientAuthPolicy{ClientAuthMode::None, {}}; }
ClientAuthPolicy password_policy() {
  return ClientAuthPolicy{ClientAuthMode::Password,
                          [](std::string_view u, std::string_view p) { return u == "alice" && p == "s3cret"; }};
}

}  // namespace

TEST_CASE("client session: no-auth CONNECT, byte by byte and pipelined") {
  auto pol = none_policy();
  for (std::size_t chunk : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{1000}}) {
    INFO("chunk " << chunk);
    ClientSession s(&pol);
    auto o = drive(s, cat({kGreetNoAuth, kConnect, B({'G', 'E', 'T'})}), chunk);
    CHECK(o.last == Kind::Request);
    CHECK(o.written == B({5, 0}));
    REQUIRE(o.request);
    CHECK(o.request->dst.to_string() == "93.184.216.34:80");
    CHECK(o.consumed == kGreetNoAuth.size() + kConnect.size());  // early data left alone
    CHECK(s.state() == ClientSession::State::Done);
    CHECK_FALSE(s.used_userpass());
  }
}

TEST_CASE("client session: method selection per auth mode") {
  SECTION("none: a client offering only user/pass gets 0xFF") {
    auto pol = none_policy();
    ClientSession s(&pol);
    auto o = drive(s, kGreetUserPass, 100);
    CHECK(o.last == Kind::Reject);
    CHECK(o.reason == "socks5.no_acceptable_method");
    CHECK(o.written == B({5, 0xff}));
  }
  SECTION("none: GSSAPI-only client gets 0xFF") {
    auto pol = none_policy();
    ClientSession s(&pol);
    CHECK(drive(s, B({5, 1, 1}), 100).written == B({5, 0xff}));
  }
  SECTION("password: no-auth-only client gets 0xFF") {
    auto pol = password_policy();
    ClientSession s(&pol);
    auto o = drive(s, kGreetNoAuth, 100);
    CHECK(o.last == Kind::Reject);
    CHECK(o.written == B({5, 0xff}));
  }
  SECTION("isolate: prefers user/pass, accepts any pair") {
    ClientAuthPolicy pol{ClientAuthMode::Isolate, {}};
    ClientSession s(&pol);
    auto o = drive(s, cat({kGreetBoth, B({1, 3, 't', 'a', 'b', 1, '7'}), kConnect}), 1);
    CHECK(o.last == Kind::Request);
    CHECK(o.written == B({5, 2, 1, 0}));
    CHECK(o.creds == std::vector<std::string>{"tab", "7"});
    CHECK(s.used_userpass());
  }
  SECTION("isolate: no-auth client is fine too") {
    ClientAuthPolicy pol{ClientAuthMode::Isolate, {}};
    ClientSession s(&pol);
    auto o = drive(s, cat({kGreetNoAuth, kConnect}), 100);
    CHECK(o.last == Kind::Request);
    CHECK(o.written == B({5, 0}));
  }
}

TEST_CASE("client session: password checking") {
  auto pol = password_policy();
  SECTION("good credentials") {
    ClientSession s(&pol);
    auto o = drive(s, cat({kGreetBoth, B({1, 5, 'a', 'l', 'i', 'c', 'e', 6, 's', '3', 'c', 'r', 'e', 't'}), kConnect}),
                   4);
    CHECK(o.last == Kind::Request);
    CHECK(o.written == B({5, 2, 1, 0}));
  }
  SECTION("bad password: status 1, then close (RFC 1929)") {
    ClientSession s(&pol);
    auto o = drive(s, cat({kGreetBoth, B({1, 5, 'a', 'l', 'i', 'c', 'e', 5, 'w', 'r', 'o', 'n', 'g'}), kConnect}), 100);
    CHECK(o.last == Kind::Reject);
    CHECK(o.reason == "socks5.auth_failed");
    CHECK(o.written == B({5, 2, 1, 1}));
    CHECK(s.state() == ClientSession::State::Failed);
  }
  SECTION("malformed auth message closes without a reply") {
    ClientSession s(&pol);
    auto o = drive(s, cat({kGreetBoth, B({5, 5, 'a', 'l', 'i', 'c', 'e'})}), 100);
    CHECK(o.last == Kind::Close);
    CHECK(o.reason == "socks5.bad_auth_version");
    CHECK(o.written == B({5, 2}));
  }
}

TEST_CASE("client session: typed refusals and silent closes") {
  auto pol = none_policy();
  auto run = [&](const Bytes& in) {
    ClientSession s(&pol);
    return drive(s, in, 100);
  };
  SECTION("zero methods: 0xFF") {
    auto o = run(B({5, 0}));
    CHECK(o.last == Kind::Reject);
    CHECK(o.written == B({5, 0xff}));
  }
  SECTION("unknown ATYP: reply 0x08") {
    auto o = run(cat({kGreetNoAuth, B({5, 1, 0, 7})}));
    CHECK(o.last == Kind::Reject);
    CHECK(o.reason == "socks5.bad_atyp");
    CHECK(o.written == cat({B({5, 0}), B({5, 8, 0, 1, 0, 0, 0, 0, 0, 0})}));
  }
  SECTION("empty domain: reply 0x01") {
    auto o = run(cat({kGreetNoAuth, B({5, 1, 0, 3, 0, 0, 80})}));
    CHECK(o.last == Kind::Reject);
    CHECK(o.written == cat({B({5, 0}), B({5, 1, 0, 1, 0, 0, 0, 0, 0, 0})}));
  }
  SECTION("wrong greeting version: close, nothing written") {
    auto o = run(B({4, 1, 0, 80, 1, 2, 3, 4, 0}));
    CHECK(o.last == Kind::Close);
    CHECK(o.reason == "socks5.bad_version");
    CHECK(o.written.empty());
  }
  SECTION("HTTP instead of SOCKS: close") {
    std::string http = "GET / HTTP/1.1\r\n\r\n";
    auto o = run(Bytes(http.begin(), http.end()));
    CHECK(o.last == Kind::Close);
  }
  SECTION("wrong request version / reserved byte: close") {
    CHECK(run(cat({kGreetNoAuth, B({4, 1, 0, 1, 1, 2, 3, 4, 0, 1})})).reason == "socks5.bad_version");
    CHECK(run(cat({kGreetNoAuth, B({5, 1, 9, 1, 1, 2, 3, 4, 0, 1})})).reason == "socks5.bad_reserved");
  }
  SECTION("truncated anywhere: just waits") {
    Bytes full = cat({kGreetNoAuth, kConnect});
    for (std::size_t n = 0; n < full.size(); ++n) {
      ClientSession s(&pol);
      auto o = drive(s, Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n)), 1);
      CHECK(o.last == Kind::NeedMore);
    }
  }
  SECTION("after the request the session takes nothing more") {
    ClientSession s(&pol);
    drive(s, cat({kGreetNoAuth, kConnect}), 100);
    auto st = s.step(kConnect);
    CHECK(st.kind == Kind::Close);
  }
}

TEST_CASE("request checks: commands and hostnames") {
  auto req = [](int cmd, Address a) { return Request{static_cast<std::uint8_t>(cmd), std::move(a)}; };
  CHECK_FALSE(check_request(req(1, Address::name("example.com", 80))));
  CHECK_FALSE(check_request(req(1, Address::ipv4(0x01020304, 80))));
  for (int cmd : {2, 3, 0, 4, 0xff}) {
    auto v = check_request(req(cmd, Address::ipv4(0x01020304, 80)));
    REQUIRE(v);
    CHECK(v->reply == 0x07);
    CHECK(v->reason == "socks5.unsupported_command");
  }
  auto bad = check_request(req(1, Address::name("evil host\r\nX: y", 80)));
  REQUIRE(bad);
  CHECK(bad->reply == 0x01);
  CHECK(bad->reason == "socks5.bad_hostname");
}

TEST_CASE("backend session: no-auth CONNECT") {
  auto s = BackendSession::make(Address::name("example.com", 443), {});
  REQUIRE(s.ok());
  CHECK(Bytes(s->first_flight().begin(), s->first_flight().end()) == B({5, 1, 0}));
  auto st = s->step(B({5, 0}));
  REQUIRE(st.kind == BackendSession::Step::Kind::Send);
  CHECK(st.consumed == 2);
  Bytes req(st.out.begin(), st.out.end());
  CHECK(req == cat({B({5, 1, 0, 3, 11}), Bytes{'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm'}, B({1, 0xbb})}));
  CHECK(s->committed());
  auto partial = s->step(B({5, 0, 0, 1, 1}));
  CHECK(partial.kind == BackendSession::Step::Kind::NeedMore);
  auto done = s->step(cat({B({5, 0, 0, 1, 1, 2, 3, 4, 0, 9}), B({'h', 'i'})}));
  CHECK(done.kind == BackendSession::Step::Kind::Done);
  CHECK(done.reply == 0);
  CHECK(done.consumed == 10);
}

TEST_CASE("backend session: pipelined greeting + request") {
  auto s = BackendSession::make(Address::ipv4(0x01020304, 80), {.pipeline = true});
  REQUIRE(s.ok());
  Bytes flight(s->first_flight().begin(), s->first_flight().end());
  CHECK(flight == cat({B({5, 1, 0}), B({5, 1, 0, 1, 1, 2, 3, 4, 0, 80})}));
  CHECK_FALSE(s->committed());
  // Method choice and reply in one read: nothing more to send.
  Bytes in = cat({B({5, 0}), B({5, 0, 0, 1, 0, 0, 0, 0, 0, 0})});
  auto st = s->step(in);
  CHECK(st.kind == BackendSession::Step::Kind::Send);
  CHECK(st.out.empty());
  CHECK(s->committed());
  auto done = s->step(ByteView(in).subspan(st.consumed));
  CHECK(done.kind == BackendSession::Step::Kind::Done);
  // With credentials nothing is pipelined: the secret is sent only when asked for.
  auto msg = encode_userpass(as_bytes("u"), as_bytes("p"));
  auto a = BackendSession::make(Address::ipv4(0x01020304, 80), {.auth_msg = *msg, .pipeline = true});
  CHECK(a->first_flight().size() == 3);
}

TEST_CASE("backend session: relays the backend's failure code") {
  for (int code = 1; code <= 8; ++code) {
    auto s = BackendSession::make(Address::ipv4(0x01020304, 80), {});
    s->step(B({5, 0}));
    auto done = s->step(B({5, code, 0, 1, 0, 0, 0, 0, 0, 0}));
    CHECK(done.kind == BackendSession::Step::Kind::Done);
    CHECK(done.reply == code);
  }
}

TEST_CASE("backend session: user/pass") {
  auto msg = encode_userpass(as_bytes("exit"), as_bytes("pw"));
  auto s = BackendSession::make(Address::ipv4(0x01020304, 80), {.auth_msg = *msg});
  CHECK(Bytes(s->first_flight().begin(), s->first_flight().end()) == B({5, 1, 2}));
  auto st = s->step(B({5, 2}));
  REQUIRE(st.kind == BackendSession::Step::Kind::Send);
  CHECK(Bytes(st.out.begin(), st.out.end()) == *msg);
  CHECK_FALSE(s->committed());
  SECTION("accepted") {
    auto st2 = s->step(B({1, 0}));
    CHECK(st2.kind == BackendSession::Step::Kind::Send);
    CHECK(s->committed());
  }
  SECTION("refused: retryable elsewhere") {
    auto st2 = s->step(B({1, 1}));
    CHECK(st2.kind == BackendSession::Step::Kind::Fail);
    CHECK(st2.reason == "backend.auth_failed");
    CHECK(st2.retryable);
  }
}

TEST_CASE("backend session: protocol failures") {
  auto fresh = [] { return *BackendSession::make(Address::ipv4(0x01020304, 80), {}); };
  SECTION("no acceptable method") {
    auto s = fresh();
    auto st = s.step(B({5, 0xff}));
    CHECK(st.kind == BackendSession::Step::Kind::Fail);
    CHECK(st.reason == "backend.no_acceptable_method");
    CHECK(st.retryable);
  }
  SECTION("a method we did not offer") {
    auto s = fresh();
    auto st = s.step(B({5, 2}));
    CHECK(st.reason == "backend.bad_method");
  }
  SECTION("not SOCKS5") {
    auto s = fresh();
    CHECK(s.step(B({'H', 'T'})).reason == "backend.bad_version");
  }
  SECTION("garbage reply after the CONNECT: not retryable") {
    auto s = fresh();
    s.step(B({5, 0}));
    auto st = s.step(B({5, 0, 1, 1, 0, 0, 0, 0, 0, 0}));
    CHECK(st.kind == BackendSession::Step::Kind::Fail);
    CHECK(st.reason == "backend.bad_reply");
    CHECK_FALSE(st.retryable);
  }
  SECTION("bytes after Done") {
    auto s = fresh();
    s.step(B({5, 0}));
    s.step(B({5, 0, 0, 1, 0, 0, 0, 0, 0, 0}));
    auto st = s.step(B({1}));
    CHECK(st.kind == BackendSession::Step::Kind::Fail);
    CHECK_FALSE(st.retryable);
  }
  CHECK_FALSE(BackendSession::make(Address::name("", 80), {}).ok());
}
