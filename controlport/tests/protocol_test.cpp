#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include <string>

#include "controlport/protocol.h"
#include "onion/onion.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::controlport;
using torgw::testing::FailsWith;

namespace {

Reply one(const std::string& s) {
  auto r = parse_replies(s);
  REQUIRE(r.ok());
  REQUIRE(r->size() == 1);
  return r->front();
}

std::string line_of(const SecretBytes& s) { return std::string(reinterpret_cast<const char*>(s.data()), s.size()); }

const std::string kOnion = "n35etu3yjxrqjpntmfziom5sjwspoydchmelc4xleoy4jk2u4lziz2yd";
const std::string kFp = "B8D1CB8F3F4F5A7B1E6A1DA1C8A0A3D27C4F3A10";

}  // namespace

TEST_CASE("quoted strings") {
  CHECK(*unquote("\"abc\"") == "abc");
  CHECK(*unquote("\"\"") == "");
  CHECK(*unquote(R"("a\"b\\c\nd\te\r")") == "a\"b\\c\nd\te\r");
  CHECK(*unquote(R"("\x41\102\7")") == "AB\x07");
  CHECK(*unquote(R"("\'")") == "'");
  for (const char* bad :
       {"abc", "\"abc", "abc\"", "\"", "\"a\"b\"", R"("\q")", R"("\x4")", R"("\xzz")", R"("abc\")", R"("\777")"}) {
    INFO(bad);
    CHECK_THAT(unquote(bad), FailsWith("controlport.bad_quoted"));
  }
  CHECK(*quote("/run/tor/control") == "\"/run/tor/control\"");
  CHECK(*quote("a\"b\\c") == R"("a\"b\\c")");
  CHECK(*unquote(*quote("a\"b\\c d")) == "a\"b\\c d");
  CHECK_THAT(quote("a\r\nSIGNAL HALT"), FailsWith("controlport.bad_argument"));
  CHECK_THAT(quote(std::string("a\0b", 3)), FailsWith("controlport.bad_argument"));
}

TEST_CASE("keyword arguments") {
  auto a = parse_args(
      R"(STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=75 TAG=enough_dirinfo SUMMARY="Loaded enough directory info to build circuits")");
  REQUIRE(a.ok());
  CHECK(a->positional == std::vector<std::string>{"STATUS_CLIENT", "NOTICE", "BOOTSTRAP"});
  CHECK(*a->get("PROGRESS") == "75");
  CHECK(*a->get("SUMMARY") == "Loaded enough directory info to build circuits");
  CHECK(a->get("NOPE") == nullptr);
  a = parse_args(R"(X K="a \"quoted\" value" E= $FP=nick)");
  REQUIRE(a.ok());
  CHECK(*a->get("K") == "a \"quoted\" value");
  CHECK(*a->get("E") == "");
  CHECK(a->positional == std::vector<std::string>{"X", "$FP=nick"});
  CHECK_THAT(parse_args(R"(K="unterminated)"), FailsWith("controlport.bad_quoted"));
  CHECK_THAT(parse_args(R"(K="x"y)"), FailsWith("controlport.bad_quoted"));
  CHECK_THAT(parse_args(R"(K="x\)"), FailsWith("controlport.bad_quoted"));
}

TEST_CASE("PROTOCOLINFO") {
  auto pi = parse_protocolinfo(one("250-PROTOCOLINFO 1\r\n"
                                   "250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE=\"/run/tor/control.authcookie\"\r\n"
                                   "250-VERSION Tor=\"0.4.9.11\"\r\n"
                                   "250-FUTURE-LINE whatever\r\n"
                                   "250 OK\r\n"));
  REQUIRE(pi.ok());
  CHECK(pi->protocol_version == 1);
  CHECK(pi->auth_methods == std::vector<std::string>{"COOKIE", "SAFECOOKIE"});
  CHECK(pi->has_method("SAFECOOKIE"));
  CHECK_FALSE(pi->has_method("NULL"));
  CHECK(*pi->cookie_file == "/run/tor/control.authcookie");
  CHECK(pi->tor_version == "0.4.9.11");

  auto null = parse_protocolinfo(one("250-PROTOCOLINFO 1\r\n250-AUTH METHODS=NULL\r\n250 OK\r\n"));
  REQUIRE(null.ok());
  CHECK_FALSE(null->cookie_file);

  CHECK_THAT(parse_protocolinfo(one("514 Authentication required.\r\n")), FailsWith("controlport.reply_error"));
  CHECK_THAT(parse_protocolinfo(one("250-PROTOCOLINFO 1\r\n250 OK\r\n")), FailsWith("controlport.bad_protocolinfo"));
  CHECK_THAT(parse_protocolinfo(one("250-PROTOCOLINFO x\r\n250-AUTH METHODS=NULL\r\n250 OK\r\n")),
             FailsWith("controlport.bad_protocolinfo"));
  CHECK_THAT(parse_protocolinfo(one("250-PROTOCOLINFO 1\r\n250-AUTH COOKIEFILE=\"x\"\r\n250 OK\r\n")),
             FailsWith("controlport.bad_protocolinfo"));
  CHECK_THAT(parse_protocolinfo(one("250-PROTOCOLINFO 1\r\n250-AUTH METHODS=A,,B\r\n250 OK\r\n")),
             FailsWith("controlport.bad_protocolinfo"));
  CHECK_THAT(parse_protocolinfo(one("250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE COOKIEFILE=\"x\r\n250 OK\r\n")),
             FailsWith("controlport.bad_protocolinfo"));
}

TEST_CASE("AUTHCHALLENGE") {
  std::string h(64, 'a'), n(64, 'B');
  auto c = parse_authchallenge(one("250 AUTHCHALLENGE SERVERHASH=" + h + " SERVERNONCE=" + n + "\r\n"));
  REQUIRE(c.ok());
  CHECK(c->server_hash == Bytes(32, 0xaa));
  CHECK(c->server_nonce == Bytes(32, 0xbb));
  CHECK_THAT(parse_authchallenge(one("250 AUTHCHALLENGE SERVERHASH=" + h + "\r\n")),
             FailsWith("controlport.bad_authchallenge"));
  CHECK_THAT(parse_authchallenge(one("250 AUTHCHALLENGE SERVERHASH=aa SERVERNONCE=" + n + "\r\n")),
             FailsWith("controlport.bad_authchallenge"));
  CHECK_THAT(parse_authchallenge(one("250 OK\r\n")), FailsWith("controlport.bad_authchallenge"));
  CHECK_THAT(parse_authchallenge(one("513 Invalid base16\r\n")), FailsWith("controlport.reply_error"));
}

TEST_CASE("GETINFO, GETCONF and ADD_ONION replies") {
  std::vector<std::string> keys{"version", "config-text", "status/bootstrap-phase"};
  auto g = parse_getinfo(
      one("250-version=0.4.9.11\r\n250+config-text=\r\nA 1\r\nB 2\r\n.\r\n"
          "250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY=\"Starting\"\r\n"
          "250 OK\r\n"),
      keys);
  REQUIRE(g.ok());
  CHECK((*g)[0].second == "0.4.9.11");
  CHECK((*g)[1].second == "A 1\nB 2");
  CHECK((*g)[2].second.rfind("NOTICE BOOTSTRAP", 0) == 0);
  std::vector<std::string> missing{"version", "nope"};
  CHECK_THAT(parse_getinfo(one("250-version=1\r\n250 OK\r\n"), missing), FailsWith("controlport.bad_getinfo"));
  CHECK_THAT(parse_getinfo(one("552 Unrecognized key \"nope\"\r\n"), missing), FailsWith("controlport.reply_error"));
  CHECK_THAT(parse_getinfo(one("250-novalue\r\n250 OK\r\n"), missing), FailsWith("controlport.bad_getinfo"));

  auto c = parse_getconf(one("250-SocksPort=0\r\n250-ControlSocket=\"/run/x y\"\r\n250 DataDirectory\r\n"));
  REQUIRE(c.ok());
  REQUIRE(c->size() == 3);
  CHECK(*(*c)[0].second == "0");
  CHECK(*(*c)[1].second == "/run/x y");
  CHECK_FALSE((*c)[2].second);
  CHECK_THAT(parse_getconf(one("250 Bad Key=1\r\n")), FailsWith("controlport.bad_getconf"));

  auto a = parse_add_onion(one("250-ServiceID=" + kOnion + "\r\n250-PrivateKey=ED25519-V3:c2VjcmV0\r\n250 OK\r\n"));
  REQUIRE(a.ok());
  CHECK(a->service_id == kOnion);
  CHECK(a->returned_private_key);
  CHECK_THAT(parse_add_onion(one("250 OK\r\n")), FailsWith("controlport.bad_add_onion"));
  CHECK_THAT(parse_add_onion(one("250-ServiceID=short\r\n250 OK\r\n")), FailsWith("controlport.bad_add_onion"));
  CHECK_THAT(parse_add_onion(one("550 Onion address collision\r\n")), FailsWith("controlport.reply_error"));
  CHECK(parse_add_onion(one("512 Failed to decode ED25519-V3 key\r\n")).error().detail.rfind("512", 0) == 0);
}

TEST_CASE("HS_DESC events as tor 0.4.9 sends them") {
  auto created = parse_hs_desc(
      one("650 HS_DESC CREATED " + kOnion + " UNKNOWN UNKNOWN Xq0PyFvVlyjcD4rmmdNiyDxFPkW8GTs0UExKZcUxSiQ\r\n"));
  REQUIRE(created.ok());
  CHECK(created->action == HsDescAction::Created);
  CHECK(created->address == kOnion);
  CHECK(created->hs_dir == "UNKNOWN");
  CHECK(*created->descriptor_id == "Xq0PyFvVlyjcD4rmmdNiyDxFPkW8GTs0UExKZcUxSiQ");

  auto upload = parse_hs_desc(
      one("650 HS_DESC UPLOAD " + kOnion + " UNKNOWN $" + kFp +
          "~relay1 Xq0PyFvVlyjcD4rmmdNiyDxFPkW8GTs0UExKZcUxSiQ HSDIR_INDEX=" + std::string(64, 'f') + "\r\n"));
  REQUIRE(upload.ok());
  CHECK(upload->action == HsDescAction::Upload);
  CHECK(upload->hs_dir_fingerprint == kFp);
  CHECK(*upload->hsdir_index == std::string(64, 'f'));

  auto uploaded = parse_hs_desc(one("650 HS_DESC UPLOADED " + kOnion + " UNKNOWN $" + kFp + "~relay1\r\n"));
  REQUIRE(uploaded.ok());
  CHECK(uploaded->action == HsDescAction::Uploaded);
  CHECK_FALSE(uploaded->descriptor_id);
  CHECK_FALSE(uploaded->reason);

  auto failed = parse_hs_desc(one("650 HS_DESC FAILED " + kOnion + " NO_AUTH $" + kFp +
                                  "=relay2 Xq0PyFvVlyjcD4rmmdNiyDxFPkW8GTs0UExKZcUxSiQ REASON=UPLOAD_REJECTED\r\n"));
  REQUIRE(failed.ok());
  CHECK(failed->action == HsDescAction::Failed);
  CHECK(*failed->reason == "UPLOAD_REJECTED");
  // Without a descriptor id, REASON comes right after the HsDir.
  auto failed2 = parse_hs_desc(
      one("650 HS_DESC FAILED " + kOnion + " NO_AUTH UNKNOWN REASON=QUERY_NO_HSDIR NEWKW=1\r\n"));
  REQUIRE(failed2.ok());
  CHECK(*failed2->reason == "QUERY_NO_HSDIR");
  CHECK_FALSE(failed2->descriptor_id);

  auto future = parse_hs_desc(one("650 HS_DESC REPLACED " + kOnion + " NO_AUTH UNKNOWN\r\n"));
  REQUIRE(future.ok());
  CHECK(future->action == HsDescAction::Unknown);

  for (const std::string& bad : std::vector<std::string>{
           "650 HS_DESC UPLOADED " + kOnion + " UNKNOWN\r\n", "650 HS_DESC UPLOADED notanonion UNKNOWN UNKNOWN\r\n",
           "650 HS_DESC UPLOADED " + kOnion + " UNKNOWN $ZZZ~x\r\n",
           "650 HS_DESC UPLOADED " + kOnion + " UNKNOWN $" + kFp + "!x\r\n",
           "650 HS_DESC UPLOADED " + kOnion + " UN-KNOWN UNKNOWN\r\n", "650 STATUS_CLIENT NOTICE X\r\n",
           "250 OK\r\n"}) {
    INFO(bad);
    CHECK_THAT(parse_hs_desc(one(bad)), FailsWith("controlport.bad_event"));
  }
}

TEST_CASE("STATUS_CLIENT BOOTSTRAP and log events") {
  auto ev = one("650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY=\"Done\"\r\n");
  CHECK(event_name(ev) == "STATUS_CLIENT");
  auto s = parse_status(ev);
  REQUIRE(s.ok());
  auto b = parse_bootstrap(*s);
  REQUIRE(b.ok());
  CHECK(b->progress == 100);
  CHECK(b->tag == "done");
  CHECK(b->summary == "Done");

  auto w = parse_bootstrap(*parse_status(one("650 STATUS_CLIENT WARN BOOTSTRAP PROGRESS=5 TAG=conn "
                                             "SUMMARY=\"Connecting to a relay\" WARNING=\"Connection refused\" "
                                             "REASON=CONNECTREFUSED COUNT=3 RECOMMENDATION=ignore HOSTID=\"$" +
                                             kFp + "\" HOSTADDR=\"127.0.0.1:1\"\r\n")));
  REQUIRE(w.ok());
  CHECK(w->severity == "WARN");
  CHECK(*w->warning == "Connection refused");
  CHECK(*w->reason == "CONNECTREFUSED");
  CHECK(*w->recommendation == "ignore");

  auto phase = parse_bootstrap_phase("NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY=\"Starting\"");
  REQUIRE(phase.ok());
  CHECK(phase->progress == 0);
  CHECK_THAT(parse_bootstrap_phase("NOTICE BOOTSTRAP PROGRESS=101 TAG=x"), FailsWith("controlport.bad_event"));
  CHECK_THAT(parse_bootstrap_phase("NOTICE BOOTSTRAP TAG=x"), FailsWith("controlport.bad_event"));
  CHECK_THAT(parse_bootstrap_phase("NOTICE BOOTSTRAP PROGRESS=-1 TAG=x"), FailsWith("controlport.bad_event"));
  CHECK_THAT(parse_bootstrap_phase("NOTICE"), FailsWith("controlport.bad_event"));
  auto other = parse_status(one("650 STATUS_GENERAL NOTICE CLOCK_JUMPED TIME=120\r\n"));
  REQUIRE(other.ok());
  CHECK_THAT(parse_bootstrap(*other), FailsWith("controlport.bad_event"));

  auto warn = parse_log_event(one("650 WARN Could not bind to 127.0.0.1:9050: Address already in use\r\n"));
  REQUIRE(warn.ok());
  CHECK(warn->severity == "WARN");
  CHECK(warn->message == "Could not bind to 127.0.0.1:9050: Address already in use");
  auto multi = parse_log_event(one("650+ERR\r\nline one\r\nline two\r\n.\r\n650 OK\r\n"));
  REQUIRE(multi.ok());
  CHECK(multi->severity == "ERR");
  CHECK(multi->message == "line one\nline two");
  CHECK_THAT(parse_log_event(one("650 HS_DESC x\r\n")), FailsWith("controlport.bad_event"));
  CHECK(event_name(one("250 OK\r\n")).empty());
}

TEST_CASE("command builders refuse what could inject a command") {
  std::vector<std::string> k{"version", "status/bootstrap-phase", "ns/id/$" + kFp};
  CHECK(*cmd_getinfo(k) == "GETINFO version status/bootstrap-phase ns/id/$" + kFp);
  std::vector<std::string> inj{"version\r\nSIGNAL HALT"};
  CHECK_THAT(cmd_getinfo(inj), FailsWith("controlport.bad_argument"));
  std::vector<std::string> sp{"a b"};
  CHECK_THAT(cmd_getinfo(sp), FailsWith("controlport.bad_argument"));
  CHECK_THAT(cmd_getinfo({}), FailsWith("controlport.bad_argument"));
  std::vector<std::string> conf{"SocksPort", "DataDirectory"};
  CHECK(*cmd_getconf(conf) == "GETCONF SocksPort DataDirectory");
  std::vector<std::string> badconf{"Socks/Port"};
  CHECK_THAT(cmd_getconf(badconf), FailsWith("controlport.bad_argument"));

  std::vector<std::pair<std::string, std::optional<std::string>>> kv{{"Log", "notice stdout"},
                                                                     {"SocksPort", std::nullopt}};
  CHECK(*cmd_setconf(kv) == "SETCONF Log=\"notice stdout\" SocksPort");
  kv = {{"Log", "x\nSIGNAL HALT"}};
  CHECK_THAT(cmd_setconf(kv), FailsWith("controlport.bad_argument"));
  kv = {{"Log x", "1"}};
  CHECK_THAT(cmd_setconf(kv), FailsWith("controlport.bad_argument"));

  std::vector<std::string> ev{"HS_DESC", "STATUS_CLIENT", "WARN", "ERR"};
  CHECK(*cmd_setevents(ev) == "SETEVENTS HS_DESC STATUS_CLIENT WARN ERR");
  CHECK(*cmd_setevents({}) == "SETEVENTS");
  std::vector<std::string> badev{"hs_desc"};
  CHECK_THAT(cmd_setevents(badev), FailsWith("controlport.bad_argument"));
  CHECK(*cmd_signal("NEWNYM") == "SIGNAL NEWNYM");
  CHECK_THAT(cmd_signal("HALT\r\nX"), FailsWith("controlport.bad_argument"));
  CHECK(*cmd_del_onion(kOnion) == "DEL_ONION " + kOnion);
  CHECK_THAT(cmd_del_onion(kOnion + ".onion"), FailsWith("controlport.bad_argument"));
}

TEST_CASE("ADD_ONION lines") {
  AddOnionRequest req;
  req.ports = {{80, "127.0.0.1:8080"}};
  CHECK(line_of(*cmd_add_onion(req)) == "ADD_ONION NEW:ED25519-V3 Flags=DiscardPK Port=80,127.0.0.1:8080");

  auto id = onion::Identity::generate();
  SecretBytes blob = id.add_onion_key_blob();
  req.key_blob = &blob;
  req.ports = {{80, "unix:/run/torgw/socks.sock"}, {443, ""}, {22, "2222"}};
  req.detach = true;
  req.max_streams = 10;
  req.max_streams_close_circuit = true;
  req.client_auth_v3 = {std::string(52, 'a')};
  req.pow = PowOptions{true, 250, 2500};
  auto line = line_of(*cmd_add_onion(req));
  CHECK(line == "ADD_ONION ED25519-V3:" + to_base64(id.expanded_secret()) +
                    " Flags=Detach,MaxStreamsCloseCircuit,V3Auth MaxStreams=10 Port=80,unix:/run/torgw/socks.sock"
                    " Port=443 Port=22,2222 ClientAuthV3=" +
                    std::string(52, 'a') + " PoWDefensesEnabled=1 PoWQueueRate=250 PoWQueueBurst=2500");

  AddOnionRequest single;
  single.ports = {{80, ""}};
  single.non_anonymous = true;
  single.discard_pk = false;
  CHECK(line_of(*cmd_add_onion(single)) == "ADD_ONION NEW:ED25519-V3 Flags=NonAnonymous Port=80");

  auto bad = [&](auto mutate) {
    AddOnionRequest r;
    r.ports = {{80, ""}};
    mutate(r);
    return cmd_add_onion(r).error().reason;
  };
  CHECK(bad([](AddOnionRequest& r) { r.ports.clear(); }) == "controlport.bad_argument");
  CHECK(bad([](AddOnionRequest& r) { r.ports = {{0, ""}}; }) == "controlport.bad_argument");
  CHECK(bad([](AddOnionRequest& r) { r.ports = {{80, "127.0.0.1:0"}}; }) == "controlport.bad_argument");
  CHECK(bad([](AddOnionRequest& r) { r.ports = {{80, "127.0.0.1:70000"}}; }) == "controlport.bad_argument");
  CHECK(bad([](AddOnionRequest& r) { r.ports = {{80, "host name:80"}}; }) == "controlport.bad_argument");
  CHECK(bad([](AddOnionRequest& r) { r.ports = {{80, "unix:relative"}}; }) == "controlport.bad_argument");
  CHECK(bad([](AddOnionRequest& r) { r.ports = {{80, "unix:/a b"}}; }) == "controlport.bad_argument");
  CHECK(bad([](AddOnionRequest& r) { r.ports = {{80, "1\r\nSIGNAL HALT"}}; }) == "controlport.bad_argument");
  CHECK(bad([](AddOnionRequest& r) { r.client_auth_v3 = {"short"}; }) == "controlport.bad_argument");
  CHECK(bad([](AddOnionRequest& r) { r.max_streams = 70000; }) == "controlport.bad_argument");
  for (std::string b : {"ED25519-V3:" + std::string(87, 'A'), "RSA1024:" + std::string(91, 'A'),
                        "ED25519-V3:" + std::string(87, 'A') + " ", "ED25519-V3:" + std::string(86, 'A') + "\r\n"}) {
    SecretBytes k = SecretBytes::copy_of(as_bytes(b));
    CHECK(bad([&](AddOnionRequest& r) { r.key_blob = &k; }) == "controlport.bad_argument");
  }
}

TEST_CASE("SAFECOOKIE hashes match an independent HMAC-SHA256") {
  Bytes cookie(32), cn(32), sn(32);
  randombytes_buf(cookie.data(), 32);
  randombytes_buf(cn.data(), 32);
  randombytes_buf(sn.data(), 32);
  Bytes msg = cookie;
  msg.insert(msg.end(), cn.begin(), cn.end());
  msg.insert(msg.end(), sn.begin(), sn.end());
  auto ossl = [&](const std::string& key) {
    unsigned char out[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), msg.data(), msg.size(), out, &len);
    return Bytes(out, out + len);
  };
  CHECK(safecookie_server_hash(cookie, cn, sn) == ossl("Tor safe cookie authentication server-to-controller hash"));
  CHECK(safecookie_client_hash(cookie, cn, sn) == ossl("Tor safe cookie authentication controller-to-server hash"));
  CHECK(safecookie_server_hash(cookie, cn, sn) != safecookie_client_hash(cookie, cn, sn));
}
