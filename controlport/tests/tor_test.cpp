// The control-port client against a real tor that this test starts, plus a scripted fake
// tor for what a real one never does (wrong SAFECOOKIE hash, garbage, silence).
//
// The real tor gets a private DirAuthority on a closed loopback port: it enables its
// network side (tor opens no listeners with DisableNetwork) without ever reaching the
// public Tor network.
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include <event2/event.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "common/bytes.h"
#include "common/fd.h"
#include "controlport/controlport.h"
#include "controlport/testing.h"
#include "onion/onion.h"
#include "tests/support/net.h"
#include "tests/support/process.h"
#include "tests/support/result_matchers.h"
#include "tests/support/tempdir.h"

using namespace torgw;
using namespace torgw::controlport;
using namespace torgw::testing;
using namespace std::chrono_literals;
using torgw::testing::FailsWith;

namespace {

struct Tor {
  TempDir dir{"cp-tor"};
  std::string control_sock = dir.file("control");
  std::string cookie = dir.file("control.authcookie");
  std::uint16_t control_port = 0;
  Subprocess proc;

  // tcp_null: a TCP ControlPort without authentication besides the socket.
  explicit Tor(bool start = true, bool tcp_null = false) {
    std::string rc = "DataDirectory " + dir.file("data") +
                     "\n"
                     "SocksPort 0\n"
                     "Log notice stdout\n"
                     "TestingTorNetwork 1\n"
                     "DirAuthority closed orport=1 no-v2 v3ident=0000000000000000000000000000000000000000 127.0.0.1:1 "
                     "0000000000000000000000000000000000000000\n"
                     "GeoIPFile " +
                     dir.file("empty") + "\nGeoIPv6File " + dir.file("empty") +
                     "\n"
                     "ShutdownWaitLength 0\n"
                     "__OwningControllerProcess " +
                     std::to_string(::getpid()) + "\n";
    if (tcp_null) {
      control_port = free_tcp_port();
      rc += "ControlPort 127.0.0.1:" + std::to_string(control_port) + "\nCookieAuthentication 0\n";
    } else {
      rc += "ControlSocket " + control_sock + "\nCookieAuthentication 1\nCookieAuthFile " + cookie + "\n";
    }
    write_file(dir.file("empty"), "");
    write_file(dir.file("torrc"), rc);
    if (start) spawn();
  }
  void spawn() {
    SpawnOptions o;
    o.stdout_path = dir.file("tor.log");
    proc = Subprocess::spawn({find_program("tor"), "-f", dir.file("torrc"), "--defaults-torrc", "/dev/null"}, o);
  }
  std::string log() { return read_file(dir.file("tor.log")); }
};

struct Loop {
  event_base* base = event_base_new();
  ~Loop() { event_base_free(base); }
};

template <class T>
T wait(Loop& l, std::optional<T>& slot, std::chrono::milliseconds t = 30s) {
  REQUIRE(run_until(
      l.base, [&] { return slot.has_value(); }, t));
  return std::move(*slot);
}

AuthOptions auth_for(const Tor& t) {
  AuthOptions a;
  a.expected_cookie_file = t.cookie;
  return a;
}

}  // namespace

TEST_CASE("real tor: connect with retry, SAFECOOKIE, commands and events") {
  if (find_program("tor").empty()) {
    TORGW_SKIP(torgw::testing::Needs::package, "tor is not installed");
  }
  Tor tor(/*start=*/false);
  Loop loop;
  Connection c(loop.base);
  std::vector<Reply> events;
  c.on_event([&](const Reply& r) { events.push_back(r); });

  // Connect first: the socket does not exist yet, the client retries until tor makes it.
  std::optional<Status> connected;
  c.connect(Endpoint::unix_socket(tor.control_sock), [&](Status s) { connected = s; });
  run_until(
      loop.base, [] { return false; }, 300ms);
  CHECK_FALSE(connected.has_value());
  tor.spawn();
  auto cs = wait(loop, connected);
  INFO(tor.log());
  REQUIRE(cs.ok());

  std::optional<Result<ProtocolInfo>> authed;
  c.authenticate(auth_for(tor), [&](Result<ProtocolInfo> r) { authed = std::move(r); });
  auto pi = wait(loop, authed);
  REQUIRE(pi.ok());
  CHECK(pi->has_method("SAFECOOKIE"));
  CHECK(*pi->cookie_file == tor.cookie);
  CHECK(pi->tor_version.rfind("0.4.", 0) == 0);

  std::optional<Result<std::vector<std::pair<std::string, std::string>>>> info;
  REQUIRE(c.getinfo({"version", "config-text", "status/bootstrap-phase"}, [&](auto r) { info = std::move(r); }).ok());
  auto iv = wait(loop, info);
  REQUIRE(iv.ok());
  CHECK((*iv)[0].second.rfind(pi->tor_version, 0) == 0);
  CHECK((*iv)[1].second.find("ControlSocket " + tor.control_sock) != std::string::npos);  // a 250+ data reply
  auto phase = parse_bootstrap_phase((*iv)[2].second);
  REQUIRE(phase.ok());
  CHECK(phase->progress < 100);

  std::optional<Result<std::vector<std::pair<std::string, std::optional<std::string>>>>> conf;
  REQUIRE(c.getconf({"SocksPort", "ControlSocket", "MaxCircuitDirtiness"}, [&](auto r) { conf = std::move(r); }).ok());
  auto cv = wait(loop, conf);
  REQUIRE(cv.ok());
  REQUIRE(cv->size() == 3);
  CHECK((*cv)[2].first == "MaxCircuitDirtiness");

  std::optional<Status> set;
  REQUIRE(c.setconf({{"MaxCircuitDirtiness", "1234"}}, [&](Status s) { set = s; }).ok());
  REQUIRE(wait(loop, set).ok());
  conf.reset();
  REQUIRE(c.getconf({"MaxCircuitDirtiness"}, [&](auto r) { conf = std::move(r); }).ok());
  CHECK(*wait(loop, conf)->at(0).second == "1234");
  set.reset();
  REQUIRE(c.setconf({{"NoSuchOption", "1"}}, [&](Status s) { set = s; }).ok());
  auto bad_set = wait(loop, set);
  REQUIRE_FALSE(bad_set.ok());
  CHECK_THAT(bad_set, FailsWith("controlport.reply_error"));
  CHECK(bad_set.error().detail.rfind("552", 0) == 0);

  // Events: log events (NOTICE from SIGNAL HEARTBEAT) and bootstrap status.
  std::optional<Status> ev;
  REQUIRE(c.setevents({"NOTICE", "WARN", "ERR", "STATUS_CLIENT", "HS_DESC"}, [&](Status s) { ev = s; }).ok());
  REQUIRE(wait(loop, ev).ok());
  std::optional<Status> sig;
  REQUIRE(c.signal("HEARTBEAT", [&](Status s) { sig = s; }).ok());
  REQUIRE(wait(loop, sig).ok());
  REQUIRE(run_until(
      loop.base,
      [&] {
        for (const auto& e : events) {
          auto l = parse_log_event(e);
          if (l && l->severity == "NOTICE" && l->message.find("Heartbeat") != std::string::npos) return true;
        }
        return false;
      },
      10s));

  // A command in flight while events arrive; all in order.
  std::vector<int> order;
  for (int i = 0; i < 20; ++i)
    REQUIRE(c.command("GETINFO version", [&order, i](Result<Reply> r) {
               REQUIRE(r.ok());
               order.push_back(i);
             }).ok());
  REQUIRE(run_until(
      loop.base, [&] { return order.size() == 20; }, 10s));
  for (int i = 0; i < 20; ++i) CHECK(order[static_cast<std::size_t>(i)] == i);

  std::optional<Result<Reply>> raw;
  REQUIRE(c.command("FROBNICATE", [&](Result<Reply> r) { raw = std::move(r); }).ok());
  auto fr = wait(loop, raw);
  REQUIRE(fr.ok());
  CHECK(fr->code() == 510);
  CHECK_THAT(c.command("GETINFO version\r\nSIGNAL HALT", [](Result<Reply>) {}), FailsWith("controlport.bad_argument"));
  CHECK(c.connected());
}

TEST_CASE("real tor: ADD_ONION with a caller-supplied key, collision, DEL_ONION") {
  if (find_program("tor").empty()) {
    TORGW_SKIP(torgw::testing::Needs::package, "tor is not installed");
  }
  Tor tor;
  auto bc = BlockingControl::open(Endpoint::unix_socket(tor.control_sock), auth_for(tor));
  INFO(tor.log());
  REQUIRE(bc.ok());
  auto& b = **bc;

  // Tor makes a key (kept, not discarded) so we can hand the very same key back to it.
  auto made = b.command("ADD_ONION NEW:ED25519-V3 Port=80,127.0.0.1:1");
  REQUIRE(made.ok());
  REQUIRE(made->ok());
  std::string service_id, key_b64;
  for (const auto& l : made->lines) {
    if (l.text.rfind("ServiceID=", 0) == 0) service_id = l.text.substr(10);
    if (l.text.rfind("PrivateKey=ED25519-V3:", 0) == 0) key_b64 = l.text.substr(22);
  }
  REQUIRE(valid_service_id(service_id));
  auto raw_key = from_base64(key_b64);
  REQUIRE(raw_key.ok());
  auto id = onion::Identity::from_expanded(*raw_key);
  REQUIRE(id.ok());
  CHECK(id->hostname() == service_id + ".onion");
  SecretBytes blob = id->add_onion_key_blob();

  AddOnionRequest req;
  req.key_blob = &blob;
  req.ports = {{80, "127.0.0.1:8080"}, {81, "unix:" + tor.dir.file("backend.sock")}};
  req.max_streams = 16;
  req.max_streams_close_circuit = true;
  req.pow = PowOptions{true, 100, 1000};
  auto dup = b.add_onion(req);
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.error().detail.rfind("550", 0) == 0);  // Onion address collision

  std::optional<Status> del;
  REQUIRE(b.connection().del_onion(service_id, [&](Status s) { del = s; }).ok());
  REQUIRE(run_until(
      b.connection().base(), [&] { return del.has_value(); }, 10s));
  REQUIRE(del->ok());

  auto again = b.add_onion(req);
  REQUIRE(again.ok());
  CHECK(again->service_id == service_id);  // the address is a function of the key we gave

  // A fresh identity of ours: tor derives the address we computed.
  auto mine = onion::Identity::generate();
  SecretBytes mine_blob = mine.add_onion_key_blob();
  req.key_blob = &mine_blob;
  auto added = b.add_onion(req);
  REQUIRE(added.ok());
  CHECK(added->service_id + ".onion" == mine.hostname());
  CHECK_FALSE(again->returned_private_key);
  auto onions = b.getinfo1("onions/current");
  REQUIRE(onions.ok());
  CHECK(onions->find(service_id) != std::string::npos);

  // Client authorization and Detach: a detached service survives its control connection.
  AddOnionRequest auth_req;
  auth_req.ports = {{80, ""}};
  auth_req.detach = true;
  Bytes x25519(32);
  randombytes_buf(x25519.data(), x25519.size());
  const std::string b32 = onion::base32_encode(x25519);
  auth_req.client_auth_v3 = {b32};
  auto detached = b.add_onion(auth_req);
  REQUIRE(detached.ok());
  auto det = b.getinfo1("onions/detached");
  REQUIRE(det.ok());
  CHECK(det->find(detached->service_id) != std::string::npos);

  // A single-onion (NonAnonymous) service on a tor in anonymous mode: refused.
  AddOnionRequest single;
  single.ports = {{80, ""}};
  single.non_anonymous = true;
  auto refused = b.add_onion(single);
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused, FailsWith("controlport.reply_error"));

  // A key tor cannot decode, sent raw: 512.
  auto bad = b.command("ADD_ONION ED25519-V3:not-base64 Port=80");
  REQUIRE(bad.ok());
  CHECK(bad->code() == 512);
}

TEST_CASE("real tor: auth failures and tor closing the connection") {
  if (find_program("tor").empty()) {
    TORGW_SKIP(torgw::testing::Needs::package, "tor is not installed");
  }
  Tor tor;
  REQUIRE(wait_for_unix(tor.control_sock, 30s));

  AuthOptions wrong = auth_for(tor);
  wrong.expected_cookie_file = tor.dir.file("other.cookie");
  auto mismatch = BlockingControl::open(Endpoint::unix_socket(tor.control_sock), wrong);
  REQUIRE_FALSE(mismatch.ok());
  CHECK_THAT(mismatch, FailsWith("controlport.cookie_path_mismatch"));

  // A second PROTOCOLINFO before authenticating: tor answers 514 and hangs up.
  Loop loop;
  Connection c(loop.base);
  std::optional<Error> closed;
  c.on_close([&](const Error& e) { closed = e; });
  std::optional<Status> connected;
  c.connect(Endpoint::unix_socket(tor.control_sock), [&](Status s) { connected = s; });
  REQUIRE(wait(loop, connected).ok());
  std::optional<Result<Reply>> r1, r2, r3;
  REQUIRE(c.command("PROTOCOLINFO 1", [&](Result<Reply> r) { r1 = std::move(r); }).ok());
  REQUIRE(c.command("PROTOCOLINFO 1", [&](Result<Reply> r) { r2 = std::move(r); }).ok());
  REQUIRE(c.command("GETINFO version", [&](Result<Reply> r) { r3 = std::move(r); }).ok());
  REQUIRE(run_until(
      loop.base, [&] { return closed.has_value(); }, 10s));
  CHECK(r1->ok());
  REQUIRE(r2->ok());
  CHECK((*r2)->code() == 514);
  REQUIRE_FALSE(r3->ok());
  CHECK_THAT(*r3, FailsWith("controlport.closed"));
  CHECK(closed->reason == "controlport.closed");
  CHECK_FALSE(c.connected());

  // Plain COOKIE and NULL disallowed: tor offers SAFECOOKIE, which is enough.
  auto b = BlockingControl::open(Endpoint::unix_socket(tor.control_sock), AuthOptions{"", false, false});
  REQUIRE(b.ok());
}

TEST_CASE("real tor: TCP ControlPort with NULL authentication") {
  if (find_program("tor").empty()) {
    TORGW_SKIP(torgw::testing::Needs::package, "tor is not installed");
  }
  Tor tor(true, /*tcp_null=*/true);
  auto ep = Endpoint::parse("127.0.0.1:" + std::to_string(tor.control_port));
  REQUIRE(ep.ok());
  auto b = BlockingControl::open(*ep, AuthOptions{});
  INFO(tor.log());
  REQUIRE(b.ok());
  CHECK((*b)->protocol_info().has_method("NULL"));
  auto v = (*b)->getinfo1("version");
  REQUIRE(v.ok());
  auto refused = BlockingControl::open(*ep, AuthOptions{"", true, /*allow_null=*/false});
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused, FailsWith("controlport.no_auth_method"));
}

// ---- a scripted fake tor ------------------------------------------------------------

namespace {

// Serves one connection on a unix socket: for each expected command line, checks it and
// writes the scripted answer. Runs on a thread; the client runs on the test's loop.
class FakeTor {
 public:
  using Step = std::function<std::string(const std::string& line)>;  // answer to one command
  FakeTor(const std::string& path, std::vector<Step> steps) : path_(path) {
    listen_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, path.c_str());
    REQUIRE(::bind(listen_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listen_.get(), 1) == 0);
    thread_ = std::thread([this, steps = std::move(steps)] { serve(steps); });
  }
  ~FakeTor() {
    ::shutdown(listen_.get(), SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::string> seen() {
    std::lock_guard<std::mutex> g(mu_);
    return seen_;
  }

 private:
  void serve(std::vector<Step> steps) {
    UniqueFd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) return;
    std::string buf;
    for (auto& step : steps) {
      std::size_t nl;
      while ((nl = buf.find("\r\n")) == std::string::npos) {
        char tmp[4096];
        ssize_t n = ::read(c.get(), tmp, sizeof tmp);
        if (n <= 0) return;
        buf.append(tmp, static_cast<std::size_t>(n));
      }
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 2);
      {
        std::lock_guard<std::mutex> g(mu_);
        seen_.push_back(line);
      }
      std::string answer = step(line);
      if (answer == "<close>") return;
      if (answer == "<hang>") {
        std::this_thread::sleep_for(3s);
        return;
      }
      write_all(c.get(), answer.data(), answer.size());
    }
    std::this_thread::sleep_for(200ms);
  }
  std::string path_;
  UniqueFd listen_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> seen_;
};

std::string protocolinfo(const std::string& methods, const std::string& cookie) {
  return "250-PROTOCOLINFO 1\r\n250-AUTH METHODS=" + methods + " COOKIEFILE=\"" + cookie +
         "\"\r\n250-VERSION Tor=\"0.4.9.11\"\r\n250 OK\r\n";
}

}  // namespace

TEST_CASE("fake tor: SAFECOOKIE server hash is checked, COOKIE sends the cookie") {
  TempDir dir("cp-fake");
  Bytes cookie(32);
  randombytes_buf(cookie.data(), cookie.size());
  write_file(dir.file("cookie"), std::string(as_chars(cookie)), 0600);

  SECTION("a server that does not know the cookie is refused") {
    FakeTor fake(dir.file("s"), {[&](const std::string&) { return protocolinfo("SAFECOOKIE", dir.file("cookie")); },
                                 [&](const std::string&) {
                                   return "250 AUTHCHALLENGE SERVERHASH=" + std::string(64, '0') +
                                          " SERVERNONCE=" + std::string(64, '1') + "\r\n";
                                 }});
    auto b = BlockingControl::open(Endpoint::unix_socket(dir.file("s")), AuthOptions{});
    REQUIRE_FALSE(b.ok());
    CHECK_THAT(b, FailsWith("controlport.bad_server_hash"));
    CHECK(fake.seen().size() == 2);  // never sent AUTHENTICATE
  }
  SECTION("a server that knows it gets our proof") {
    Bytes sn(32, 7);
    std::string client_nonce_hex;
    FakeTor fake(dir.file("s"),
                 {[&](const std::string&) { return protocolinfo("SAFECOOKIE,COOKIE", dir.file("cookie")); },
                  [&](const std::string& l) {
                    client_nonce_hex = l.substr(std::string("AUTHCHALLENGE SAFECOOKIE ").size());
                    auto cn = *from_hex(client_nonce_hex);
                    return "250 AUTHCHALLENGE SERVERHASH=" + to_hex(safecookie_server_hash(cookie, cn, sn)) +
                           " SERVERNONCE=" + to_hex(sn) + "\r\n";
                  },
                  [&](const std::string& l) {
                    auto cn = *from_hex(client_nonce_hex);
                    bool good = l == "AUTHENTICATE " + to_hex(safecookie_client_hash(cookie, cn, sn));
                    return std::string(good ? "250 OK\r\n" : "515 Authentication failed\r\n");
                  }});
    auto b = BlockingControl::open(Endpoint::unix_socket(dir.file("s")), AuthOptions{});
    REQUIRE(b.ok());
    CHECK(client_nonce_hex.size() == 64);
  }
  SECTION("COOKIE only") {
    FakeTor fake(dir.file("s"),
                 {[&](const std::string&) { return protocolinfo("COOKIE", dir.file("cookie")); },
                  [&](const std::string& l) {
                    return std::string(l == "AUTHENTICATE " + to_hex(cookie) ? "250 OK\r\n" : "515 Bad cookie\r\n");
                  }});
    auto b = BlockingControl::open(Endpoint::unix_socket(dir.file("s")), AuthOptions{});
    REQUIRE(b.ok());
  }
  SECTION("COOKIE only, but the caller allows only SAFECOOKIE") {
    FakeTor fake(dir.file("s"), {[&](const std::string&) { return protocolinfo("COOKIE", dir.file("cookie")); }});
    auto b = BlockingControl::open(Endpoint::unix_socket(dir.file("s")), AuthOptions{"", false, false});
    REQUIRE_FALSE(b.ok());
    CHECK_THAT(b, FailsWith("controlport.no_auth_method"));
  }
  SECTION("a cookie file of the wrong size") {
    write_file(dir.file("short"), "abc", 0600);
    FakeTor fake(dir.file("s"), {[&](const std::string&) { return protocolinfo("SAFECOOKIE", dir.file("short")); }});
    auto b = BlockingControl::open(Endpoint::unix_socket(dir.file("s")), AuthOptions{});
    REQUIRE_FALSE(b.ok());
    CHECK_THAT(b, FailsWith("controlport.bad_cookie"));
  }
  SECTION("a wrong cookie: 515") {
    FakeTor fake(dir.file("s"), {[&](const std::string&) { return protocolinfo("COOKIE", dir.file("cookie")); },
                                 [&](const std::string&) { return std::string("515 Authentication failed\r\n"); }});
    auto b = BlockingControl::open(Endpoint::unix_socket(dir.file("s")), AuthOptions{});
    REQUIRE_FALSE(b.ok());
    CHECK_THAT(b, FailsWith("controlport.auth_failed"));
    CHECK(b.error().detail.rfind("515", 0) == 0);
  }
}

TEST_CASE("fake tor: garbage, long lines, unexpected replies and silence") {
  TempDir dir("cp-fake");
  auto null_auth = [](const std::string&) {
    return std::string("250-PROTOCOLINFO 1\r\n250-AUTH METHODS=NULL\r\n250 OK\r\n");
  };
  auto ok = [](const std::string&) { return std::string("250 OK\r\n"); };
  ConnectOptions fast;
  fast.command_timeout = 1500ms;

  SECTION("a 100 KiB reply line, split across many reads") {
    std::string big(100 * 1024, 'x');
    FakeTor fake(dir.file("s"), {null_auth, ok, [&](const std::string&) { return "250-k=" + big + "\r\n250 OK\r\n"; }});
    auto b = BlockingControl::open(Endpoint::unix_socket(dir.file("s")), AuthOptions{}, fast);
    REQUIRE(b.ok());
    std::vector<std::string> keys{"k"};
    auto v = (*b)->getinfo(keys);
    REQUIRE(v.ok());
    CHECK(v->at(0).second == big);
  }
  SECTION("garbage closes the connection with a clear error") {
    FakeTor fake(dir.file("s"), {null_auth, ok, [](const std::string&) { return std::string("HTTP/1.0 200 OK\r\n"); }});
    auto b = BlockingControl::open(Endpoint::unix_socket(dir.file("s")), AuthOptions{}, fast);
    REQUIRE(b.ok());
    auto r = (*b)->command("GETINFO version");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r, FailsWith("controlport.bad_line"));
    CHECK((*b)->closed()->reason == "controlport.bad_line");
    CHECK_FALSE((*b)->connection().connected());
  }
  SECTION("a reply nobody asked for") {
    FakeTor fake(dir.file("s"),
                 {null_auth, ok, [](const std::string&) { return std::string("250 OK\r\n250 OK\r\n"); }});
    auto b = BlockingControl::open(Endpoint::unix_socket(dir.file("s")), AuthOptions{}, fast);
    REQUIRE(b.ok());
    auto r = (*b)->command("GETINFO version");
    CHECK(r.ok());
    REQUIRE(run_until((*b)->connection().base(), [&] { return (*b)->closed().has_value(); }, 5s));
    CHECK((*b)->closed()->reason == "controlport.unexpected_reply");
  }
  SECTION("tor hangs up while we write: an error, not SIGPIPE") {
    FakeTor fake(dir.file("s"), {null_auth, ok, [](const std::string&) { return std::string("<close>"); }});
    auto b = BlockingControl::open(Endpoint::unix_socket(dir.file("s")), AuthOptions{}, fast);
    REQUIRE(b.ok());
    auto r = (*b)->command("GETINFO version");
    REQUIRE_FALSE(r.ok());
    // Keep writing into the closed connection: the process must survive it.
    std::string big(1 << 20, 'x');
    auto again = (*b)->command("GETINFO " + big);
    REQUIRE_FALSE(again.ok());
    CHECK((*b)->closed().has_value());
  }
  SECTION("silence: the command times out") {
    FakeTor fake(dir.file("s"), {null_auth, ok, [](const std::string&) { return std::string("<hang>"); }});
    auto b = BlockingControl::open(Endpoint::unix_socket(dir.file("s")), AuthOptions{}, fast);
    REQUIRE(b.ok());
    auto r = (*b)->command("GETINFO version");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r, FailsWith("controlport.timeout"));
  }
  SECTION("events before and between replies reach the event queue") {
    FakeTor fake(dir.file("s"),
                 {null_auth, ok, [](const std::string&) {
                    return std::string("650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=10 TAG=conn_done SUMMARY=\"x\"\r\n"
                                       "250-version=1\r\n650 WARN careful\r\n250 OK\r\n");
                  }});
    auto b = BlockingControl::open(Endpoint::unix_socket(dir.file("s")), AuthOptions{}, fast);
    REQUIRE(b.ok());
    auto v = (*b)->getinfo1("version");
    REQUIRE(v.ok());
    CHECK(*v == "1");
    auto w = (*b)->wait_event([](const Reply& r) { return event_name(r) == "WARN"; }, 2s);
    REQUIRE(w);
    CHECK(parse_log_event(*w)->message == "careful");
  }
}

TEST_CASE("connect gives up after its timeout") {
  TempDir dir("cp-none");
  Loop loop;
  ConnectOptions o;
  o.timeout = 300ms;
  Connection c(loop.base, o);
  std::optional<Status> done;
  auto t0 = std::chrono::steady_clock::now();
  c.connect(Endpoint::unix_socket(dir.file("absent")), [&](Status s) { done = s; });
  auto st = wait(loop, done, 10s);
  REQUIRE_FALSE(st.ok());
  CHECK_THAT(st, FailsWith("controlport.connect_failed"));
  CHECK(std::chrono::steady_clock::now() - t0 >= 300ms);
  CHECK_THAT(Endpoint::parse("unix:relative"), FailsWith("controlport.bad_endpoint"));
  CHECK_THAT(Endpoint::parse("example.com:9051"), FailsWith("controlport.bad_endpoint"));
  CHECK_THAT(Endpoint::parse("127.0.0.1:0"), FailsWith("controlport.bad_endpoint"));
  CHECK(Endpoint::parse("[::1]:9051")->to_string() == "[::1]:9051");
  CHECK(Endpoint::parse("localhost:9051")->to_string() == "127.0.0.1:9051");
}
