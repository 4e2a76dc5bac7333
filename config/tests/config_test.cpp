#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <string>

#include "config/config.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::config;
using torgw::testing::FailsWith;

namespace {

std::string reason_of(const Result<Config>& r) { return r.ok() ? "ok" : r.error().reason; }

Result<Config> resolve_text(std::vector<std::pair<Source, std::string>> texts) {
  std::vector<SourceData> srcs;
  for (auto& [src, text] : texts) {
    SourceData d;
    d.source = src;
    if (src == Source::Cmdline) {
      TORGW_ASSIGN_OR_RETURN(auto e, parse_cmdline(text));
      d.entries = e;
    } else {
      TORGW_ASSIGN_OR_RETURN(auto e, parse_kv_text(text, to_string(src)));
      d.entries = e;
    }
    srcs.push_back(std::move(d));
  }
  return resolve(srcs);
}

std::string marker(const Config& c, const std::string& key) {
  for (auto& [k, v] : c.markers())
    if (k == key) return v;
  return "<none>";
}

const std::string kKey1 = std::string(51, 'a') + "q";
const std::string kKey2 = std::string(50, 'b') + "2a";
// torproject.org's published v3 address; its checksum was cross-checked with python3
// (base64.b32decode + hashlib.sha3_256(".onion checksum" | pk | 0x03)).
const std::string kMaster = "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid";

}  // namespace

TEST_CASE("registry: every key is well-formed and its default validates") {
  std::set<std::string_view> names;
  for (const auto& k : keys()) {
    INFO(k.name);
    CHECK(names.insert(k.name).second);
    CHECK(normalize_key(k.name) == k.name);
    CHECK_FALSE(k.help.empty());
    if (!k.default_value.empty()) {
      auto v = validate_value(k, k.default_value);
      REQUIRE(v.ok());
      CHECK(*v == k.default_value);  // defaults are already normalised
    }
    if (k.required) CHECK(k.default_value.empty());
  }
  CHECK(find_key("backend"));
  CHECK_FALSE(find_key("Backend"));
}

TEST_CASE("kernel command line: torgw.* parameters, kernel quoting, -- ends it") {
  auto r = parse_cmdline("BOOT_IMAGE=/vmlinuz root=/dev/vda ro torgw.backend=10.0.0.1:1080 quiet "
                         "\"torgw.onion_port=81\" torgw.backend-mode=\"passthrough\" torgw.fatal_action=halt\n"
                         " -- torgw.identity=ephemeral");
  REQUIRE(r.ok());
  REQUIRE(r->size() == 4);
  CHECK((*r)[0].key == "backend");
  CHECK((*r)[0].value == "10.0.0.1:1080");
  CHECK((*r)[1].key == "onion_port");
  CHECK((*r)[1].value == "81");
  CHECK((*r)[2].key == "backend_mode");
  CHECK((*r)[2].value == "passthrough");
  CHECK((*r)[3].key == "fatal_action");
  CHECK(parse_cmdline("").value().empty());
  CHECK(parse_cmdline("   \t ").value().empty());
  CHECK(parse_cmdline("torgwx.a=b torgw=1 xtorgw.a=1").value().empty());
}

TEST_CASE("kernel command line: bad parameters are errors with the key") {
  CHECK_THAT(parse_cmdline("torgw.backend"), FailsWith("backend:no_value"));
  CHECK_THAT(parse_cmdline("torgw.Backend=x"), FailsWith("_ackend:bad_key"));
  CHECK_THAT(parse_cmdline("torgw.=x"), FailsWith("_:bad_key"));
  CHECK_THAT(parse_cmdline("a \"torgw.backend=x"), FailsWith("cmdline:unterminated_quote"));
  CHECK_THAT(parse_cmdline(std::string(kMaxCmdlineBytes + 1, 'a')), FailsWith("cmdline:too_large"));
  CHECK_THAT(parse_cmdline("torgw.backend=" + std::string(kMaxValueBytes + 1, 'a')), FailsWith("backend:too_long"));
  // An empty value parses; validation rejects it.
  auto e = parse_cmdline("torgw.backend=");
  REQUIRE(e.ok());
  CHECK(e->at(0).value.empty());
}

TEST_CASE("key=value text: comments, blanks, CRLF, trimming, torgw. prefix") {
  auto r = parse_kv_text("# torgw config\r\n\r\n  backend = 127.0.0.1:9050 \r\n\ttorgw.onion_port=80\n"
                         "   # indented comment\nidle-timeout=5m",
                         "file");
  REQUIRE(r.ok());
  REQUIRE(r->size() == 3);
  CHECK((*r)[0].key == "backend");
  CHECK((*r)[0].value == "127.0.0.1:9050");
  CHECK((*r)[0].line == 3);
  CHECK((*r)[1].key == "onion_port");
  CHECK((*r)[2].key == "idle_timeout");
  CHECK((*r)[2].line == 6);
}

TEST_CASE("key=value text: bad input is a clear error") {
  CHECK_THAT(parse_kv_text("backend\n", "file"), FailsWith("file:syntax"));
  CHECK(parse_kv_text("a=b\nnot a pair\n", "hetzner").error().detail.find("line 2") != std::string::npos);
  CHECK_THAT(parse_kv_text("backend=a\x01", "file"), FailsWith("file:not_text"));
  CHECK_THAT(parse_kv_text("backend=\xc3\xa9", "file"), FailsWith("file:not_text"));
  CHECK_THAT(parse_kv_text(std::string("a=b\0c", 5), "file"), FailsWith("file:not_text"));
  CHECK_THAT(parse_kv_text(std::string(kMaxTextBytes + 1, '#'), "file"), FailsWith("file:too_large"));
  CHECK_THAT(parse_kv_text("#" + std::string(kMaxLineBytes, 'x'), "file"), FailsWith("file:line_too_long"));
  CHECK_THAT(parse_kv_text("Backend=1", "file"), FailsWith("_ackend:bad_key"));
  CHECK_THAT(parse_kv_text("=1", "file"), FailsWith("_:bad_key"));
  std::string many;
  for (std::size_t i = 0; i <= kMaxEntries; ++i) many += "k" + std::to_string(i) + "=v\n";
  CHECK_THAT(parse_kv_text(many, "file"), FailsWith("file:too_many_entries"));
}

TEST_CASE("GCE attribute listing") {
  auto r = parse_gce_attribute_list("ssh-keys\nenable-oslogin\ntorgw-backend\ntorgw-onion-port\nstartup-script\n");
  REQUIRE(r.ok());
  CHECK(*r == std::vector<std::string>{"torgw-backend", "torgw-onion-port"});
  CHECK(gce_attribute_key("torgw-onion-port") == "onion_port");
  CHECK(gce_attribute_key("torgw-Bad") == "");
  CHECK(gce_attribute_key("other") == "");
  CHECK(parse_gce_attribute_list("").value().empty());
  CHECK_THAT(parse_gce_attribute_list("<html>oops</html>"), FailsWith("gce:not_text"));
  CHECK_THAT(parse_gce_attribute_list(std::string(200, 'a')), FailsWith("gce:not_text"));
}

TEST_CASE("validation: every type accepts good values and names what is wrong") {
  auto v = [](const char* key, std::string_view value) { return validate_value(*find_key(key), value); };
  auto reason = [&](const char* key, std::string_view value) {
    auto r = v(key, value);
    return r.ok() ? std::string("ok:") + *r : r.error().reason;
  };
  // host:port lists
  CHECK(reason("backend", "127.0.0.1:1080") == "ok:127.0.0.1:1080");
  CHECK(reason("backend", "Exit.Example.COM:9050,[2001:db8::1]:1080") == "ok:exit.example.com:9050,[2001:db8::1]:1080");
  CHECK(reason("backend", "127.0.0.1") == "backend:bad_format");
  CHECK(reason("backend", "127.0.0.1:0") == "backend:bad_format");
  CHECK(reason("backend", "127.0.0.1:65536") == "backend:bad_format");
  CHECK(reason("backend", "1.2.3.999:80") == "backend:bad_format");
  CHECK(reason("backend", "-bad.example:80") == "backend:bad_format");
  CHECK(reason("backend", "[::1:80") == "backend:bad_format");
  CHECK(reason("backend", "[1:2:3:4:5:6:7:8:9]:80") == "backend:bad_format");
  CHECK(reason("backend", "a:1,a:1") == "backend:duplicate_item");
  CHECK(reason("backend", "a:1,,b:2") == "backend:bad_format");
  CHECK(reason("backend", "a:1,b:1,c:1,d:1,e:1,f:1,g:1,h:1,i:1") == "backend:too_many_items");
  CHECK(reason("backend", "") == "backend:empty");
  CHECK(reason("backend", "a b:1") == "backend:bad_format");
  // numbers
  CHECK(reason("onion_port", "80") == "ok:80");
  CHECK(reason("onion_port", "0") == "onion_port:out_of_range");
  CHECK(reason("onion_port", "65536") == "onion_port:out_of_range");
  CHECK(reason("onion_port", "080") == "onion_port:bad_format");
  CHECK(reason("onion_port", "-1") == "onion_port:bad_format");
  CHECK(reason("onion_port", "99999999999999999999") == "onion_port:bad_format");
  CHECK(reason("max_connections", "1") == "ok:1");
  // seconds
  CHECK(reason("idle_timeout", "0") == "ok:0");
  CHECK(reason("idle_timeout", "5m") == "ok:300");
  CHECK(reason("idle_timeout", "2h") == "ok:7200");
  CHECK(reason("idle_timeout", "30s") == "ok:30");
  CHECK(reason("idle_timeout", "25h") == "idle_timeout:out_of_range");
  CHECK(reason("idle_timeout", "5x") == "idle_timeout:bad_format");
  CHECK(reason("idle_timeout", "s") == "idle_timeout:bad_format");
  CHECK(reason("handshake_timeout", "0") == "handshake_timeout:out_of_range");
  // bool / enum
  CHECK(reason("pow_defense", "off") == "ok:false");
  CHECK(reason("pow_defense", "YES") == "pow_defense:bad_format");
  CHECK(reason("identity", "sealed") == "ok:sealed");
  CHECK(reason("identity", "Sealed") == "identity:bad_choice");
  CHECK(reason("snp_key_fields", "measurement,tcb_version") == "ok:measurement,tcb_version");
  CHECK(reason("snp_key_fields", "measurement,measurement") == "snp_key_fields:duplicate_item");
  CHECK(reason("snp_key_fields", "chip_id") == "snp_key_fields:bad_choice");
  // hex, base64
  CHECK(reason("expected_measurement", std::string(96, 'A')) == "ok:" + std::string(96, 'a'));
  CHECK(reason("expected_measurement", std::string(94, 'a')) == "expected_measurement:bad_hex");
  CHECK(reason("expected_measurement", std::string(95, 'a') + "g") == "expected_measurement:bad_hex");
  CHECK(reason("sealed_identity", "aGVsbG8=") == "ok:aGVsbG8=");
  CHECK(reason("sealed_identity", "aGVsbG8*") == "sealed_identity:bad_base64");
  // client auth keys
  CHECK(reason("client_auth", "descriptor:x25519:" + kKey1 + "," + kKey2) == "ok:" + kKey1 + "," + kKey2);
  CHECK(reason("client_auth", std::string(51, 'A') + "Q") == "ok:" + kKey1);
  CHECK(reason("client_auth", std::string(51, 'a') + "b") == "client_auth:bad_key_format");
  CHECK(reason("client_auth", std::string(50, 'a') + "q") == "client_auth:bad_key_format");
  CHECK(reason("client_auth", std::string(51, '1') + "a") == "client_auth:bad_key_format");
  CHECK(reason("client_auth", kKey1 + "," + kKey1) == "client_auth:duplicate_item");
  // urls
  CHECK(reason("metadata_url", "http://127.0.0.1:8080") == "ok:http://127.0.0.1:8080");
  CHECK(reason("metadata_url", "http://169.254.169.254/") == "ok:http://169.254.169.254");
  CHECK(reason("metadata_url", "http://[::1]:80") == "ok:http://[::1]:80");
  CHECK(reason("metadata_url", "https://127.0.0.1") == "metadata_url:bad_format");
  CHECK(reason("metadata_url", "http://metadata.google.internal") == "metadata_url:bad_format");
  CHECK(reason("metadata_url", "http://127.0.0.1:0") == "metadata_url:bad_format");
  CHECK(reason("metadata_url", "http://127.0.0.1:") == "metadata_url:bad_format");
  CHECK(reason("metadata_url", "http://127.0.0.1/path") == "metadata_url:bad_format");
  // strings
  CHECK(reason("backend_user", std::string(256, 'u')) == "backend_user:too_long");
  // tls:// backends
  CHECK(reason("backend", "tls://10.0.0.1:1443,TLS://x:1") == "backend:bad_format");
  CHECK(reason("backend", "tls://") == "backend:bad_format");
  CHECK(reason("backend", "tls://10.0.0.1") == "backend:bad_format");
  CHECK(reason("backend", "tls://tls://10.0.0.1:1") == "backend:bad_format");
  CHECK(reason("backend", "tls://10.0.0.1:1,tls://10.0.0.1:1") == "backend:duplicate_item");
  CHECK(reason("backend_tls_pin", "sha256//x y") == "backend_tls_pin:bad_format");
  CHECK(reason("backend_tls_ca", "bm90!") == "backend_tls_ca:bad_base64");
  CHECK(reason("backend", "tls://Exit.Example:443,10.0.0.2:1080") == "ok:tls://exit.example:443,10.0.0.2:1080");
}

TEST_CASE("validation: onionbalance_master is a real v3 address") {
  auto reason = [](std::string_view value) {
    auto r = validate_value(*find_key("onionbalance_master"), value);
    return r.ok() ? std::string("ok:") + *r : r.error().reason + "/" + r.error().detail;
  };
  CHECK(reason(kMaster + ".onion") == "ok:" + kMaster + ".onion");
  CHECK(reason(kMaster) == "ok:" + kMaster + ".onion");  // ".onion" is added
  std::string upper = kMaster;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(reason(upper + ".onion") == "ok:" + kMaster + ".onion");  // normalised to lower case
  // One character off (python3 says: checksum mismatch).
  CHECK(reason("2gzyxa5ihmbnsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion") ==
        "onionbalance_master:bad_onion/onion.bad_checksum");
  CHECK(reason(kMaster.substr(1) + ".onion") == "onionbalance_master:bad_onion/onion.bad_length");
  CHECK(reason("expyuzz4wqqyqhjn.onion") == "onionbalance_master:bad_onion/onion.bad_length");  // a v2 address
  CHECK(reason(std::string(55, 'a') + "1") == "onionbalance_master:bad_onion/onion.bad_base32");
  CHECK(reason("") == "onionbalance_master:empty/");
}

TEST_CASE("resolve: onionbalance_master is refused together with client_auth") {
  auto ok = resolve_text({{Source::File, "backend=10.9.9.9:1\nonionbalance_master=" + kMaster + ".onion"}});
  REQUIRE(ok.ok());
  CHECK(ok->str("onionbalance_master") == kMaster + ".onion");
  CHECK(ok->canonical().find("onionbalance_master=" + kMaster + ".onion\n") != std::string::npos);
  auto both = resolve_text(
      {{Source::File, "backend=10.9.9.9:1\nclient_auth=" + kKey1 + "\nonionbalance_master=" + kMaster}});
  CHECK(reason_of(both) == "onionbalance_master:client_auth");
  // Also when the two come from different sources.
  CHECK(reason_of(resolve_text({{Source::Cmdline, "torgw.onionbalance_master=" + kMaster},
                                {Source::File, "backend=10.9.9.9:1\nclient_auth=" + kKey1}})) ==
        "onionbalance_master:client_auth");
}

TEST_CASE("resolve: precedence cmdline > gce > hetzner > file > default") {
  // (backend is tighten-only: once the file or cmdline pins it, metadata may not
  // change it, see trust_test.cpp; here it comes from the local sources only.)
  auto c = resolve_text({
      {Source::File, "backend=1.1.1.1:1\nonion_port=81\nmax_connections=11\nidle_timeout=1"},
      {Source::Hetzner, "onion_port=82\nmax_connections=12"},
      {Source::Gce, "onion_port=83"},
      {Source::Cmdline, "torgw.backend=4.4.4.4:4"},
  });
  REQUIRE(c.ok());
  CHECK(c->str("backend") == "4.4.4.4:4");
  CHECK(c->source("backend") == Source::Cmdline);
  CHECK(c->uint("onion_port") == 83);
  CHECK(c->source("onion_port") == Source::Gce);
  CHECK(c->uint("max_connections") == 12);
  CHECK(c->uint("idle_timeout") == 1);
  CHECK(c->source("idle_timeout") == Source::File);
  CHECK(c->str("backend_mode") == "socks5");
  CHECK(c->source("backend_mode") == Source::Default);
  CHECK(c->flag("pow_defense"));
  CHECK(c->list("snp_key_fields") == std::vector<std::string>{"policy", "measurement"});
  CHECK_FALSE(c->has("client_auth"));
  CHECK(marker(*c, "CONFIG_SOURCES") == "cmdline,gce,hetzner,file");
  CHECK(marker(*c, "CONFIG_ORIGIN") == "backend@cmdline,onion_port@gce,max_connections@hetzner,idle_timeout@file");
  CHECK(marker(*c, "CONFIG_CLIENT_AUTH") == "unset");
  CHECK(marker(*c, "CONFIG_BACKEND") == "4.4.4.4:4");
}

TEST_CASE("resolve: source order in the span does not matter") {
  auto a = resolve_text({{Source::Cmdline, "torgw.backend=4.4.4.4:4"}, {Source::File, "backend=1.1.1.1:1"}});
  REQUIRE(a.ok());
  CHECK(a->str("backend") == "4.4.4.4:4");
}

TEST_CASE("resolve: every invalid key or value is <key>:<reason>") {
  CHECK(reason_of(resolve_text({})) == "backend:missing");
  CHECK(reason_of(resolve_text({{Source::File, "backend=10.9.9.9:1\nfrobnicate=1"}})) == "frobnicate:unknown_key");
  CHECK(reason_of(resolve_text({{Source::File, "backend=10.9.9.9:1\nbackend=b:1"}})) == "backend:duplicate");
  CHECK(reason_of(resolve_text({{Source::File, "backend=10.9.9.9:1\nbackend-mode=socks5\nbackend_mode=socks5"}})) ==
        "backend_mode:duplicate");
  // An invalid value in a lower source is fatal even when a higher one overrides it.
  CHECK(reason_of(resolve_text({{Source::Cmdline, "torgw.onion_port=80 torgw.backend=10.9.9.9:1"},
                                {Source::File, "onion_port=0"}})) == "onion_port:out_of_range");
  CHECK(reason_of(resolve_text({{Source::Gce, "backend=10.9.9.9:1\nmetadata_url=http://1.2.3.4"}})) ==
        "metadata_url:not_allowed_from_metadata");
  CHECK(reason_of(resolve_text({{Source::Hetzner, "backend=10.9.9.9:1\nmetadata=off"}})) ==
        "metadata:not_allowed_from_metadata");
  CHECK(reason_of(resolve_text({{Source::File, "backend=10.9.9.9:1\nmetadata=off"}})) == "ok");
  CHECK(reason_of(resolve_text({{Source::File, "backend=10.9.9.9:1\nidentity=sealed"}})) == "sealed_identity:missing");
  CHECK(reason_of(resolve_text({{Source::File, "backend=10.9.9.9:1\nbackend_user=u"}})) == "backend_password:missing");
  CHECK(reason_of(resolve_text({{Source::File, "backend=10.9.9.9:1\nbackend_password=p"}})) == "backend_user:missing");
  // A tls:// backend never without a pin or a CA; mixed with a plain one.
  CHECK(reason_of(resolve_text({{Source::File, "backend=tls://10.9.9.9:1,10.9.9.8:2"}})) == "backend_tls_pin:missing");
  CHECK(reason_of(resolve_text({{Source::File, "backend=tls://10.9.9.9:1,10.9.9.8:2\nbackend_tls_ca=Y2E="}})) == "ok");
  // Under the firewall a tls:// backend is an IP literal too; names (lower-cased) only without it.
  CHECK(reason_of(resolve_text({{Source::File, "backend=tls://a:1\nbackend_tls_ca=Y2E="}})) ==
        "backend:not_ip_literal");
  auto tls = resolve_text({{Source::File, "backend=tls://A:1,b:2\nfirewall=off\nbackend_tls_pin=sha256//"
                                          "hufrqJvISR5QC/CfNoCnUVS1uD34vmZvxZG9bFf0xyU="}});
  REQUIRE(tls.ok());
  CHECK(tls->list("backend") == std::vector<std::string>{"tls://a:1", "b:2"});
  auto e = resolve_text({{Source::File, "\nbackend=10.9.9.9:1\nonion_port=x"}});
  REQUIRE_FALSE(e.ok());
  CHECK_THAT(e, FailsWith("onion_port:bad_format"));
  CHECK(e.error().detail.find("file line 3") != std::string::npos);
}

TEST_CASE("resolve: under the firewall (the default) backend is IP literals; metadata may only turn it on") {
  CHECK(reason_of(resolve_text({{Source::File, "backend=exit.example.net:1080"}})) == "backend:not_ip_literal");
  CHECK(reason_of(resolve_text({{Source::File, "backend=10.0.0.1:1,exit.example.net:1080"}})) ==
        "backend:not_ip_literal");
  CHECK(reason_of(resolve_text({{Source::File, "backend=10.0.0.1:1,[2001:db8::1]:1080"}})) == "ok");
  CHECK(reason_of(resolve_text({{Source::File, "backend=exit.example.net:1080\nfirewall=off"}})) == "ok");
  CHECK(reason_of(resolve_text({{Source::Gce, "backend=exit.example.net:1080"}})) == "backend:not_ip_literal");
  // Tighten-only: the host cannot switch it off, but may switch it on.
  CHECK(reason_of(resolve_text({{Source::File, "backend=10.0.0.1:1"}, {Source::Gce, "firewall=off"}})) ==
        "firewall:metadata_loosens");
  auto on = resolve_text({{Source::File, "backend=10.0.0.1:1\nfirewall=off"}, {Source::Hetzner, "firewall=on"}});
  REQUIRE(on.ok());
  CHECK(on->str("firewall") == "on");
  CHECK(reason_of(resolve_text({{Source::File, "backend=a.example:1\nfirewall=off"}, {Source::Gce, "firewall=on"}})) ==
        "backend:not_ip_literal");
  CHECK(reason_of(resolve_text({{Source::File, "backend=10.0.0.1:1\nfirewall=maybe"}})) == "firewall:bad_choice");
}

TEST_CASE("resolve: secrets live in SecretBytes and are redacted in markers") {
  std::vector<SourceData> srcs(1);
  srcs[0].source = Source::Cmdline;
  srcs[0].entries = {
      {"backend", "10.9.9.9:1", 0}, {"backend_user", "alice", 0}, {"backend_password", "hunter2hunter2", 0}};
  auto c = resolve(srcs);
  REQUIRE(c.ok());
  const SecretBytes* pw = c->secret("backend_password");
  REQUIRE(pw);
  CHECK(std::string(reinterpret_cast<const char*>(pw->data()), pw->size()) == "hunter2hunter2");
  CHECK(c->str("backend_password").empty());
  CHECK(marker(*c, "CONFIG_BACKEND_PASSWORD") == "redacted");
  CHECK(marker(*c, "CONFIG_BACKEND_USER") == "alice");
  // The caller's copy of the secret was wiped.
  CHECK(srcs[0].entries[2].value.find("hunter2") == std::string::npos);
  for (auto& [k, v] : c->markers()) CHECK(v.find("hunter2") == std::string::npos);
}

TEST_CASE("resolve: long values are printed as a digest, every marker is marker-safe") {
  std::string blob(400, 'A');
  auto c = resolve_text({{Source::File, "backend=10.9.9.9:1\nidentity=sealed\nsealed_identity=" + blob}});
  REQUIRE(c.ok());
  auto m = marker(*c, "CONFIG_SEALED_IDENTITY");
  CHECK(m.rfind("sha256:", 0) == 0);
  CHECK(m.size() == 7 + 64);
  for (auto& [k, v] : c->markers()) {
    INFO(k << "=" << v);
    CHECK(v.size() <= 512);
    CHECK(v.find(' ') == std::string::npos);
  }
}

// ---- the attested configuration (Config::canonical, docs/serial.md) ----------------

TEST_CASE("canonical config: sorted key=value lines, secrets and long values as SHA-256") {
  std::vector<SourceData> srcs(1);
  srcs[0].source = Source::Cmdline;
  srcs[0].entries = {{"backend", "10.9.9.9:1", 0},
                     {"backend_user", "alice", 0},
                     {"backend_password", "hunter2hunter2", 0},
                     {"snp_key_fields", "measurement,policy", 0}};
  auto c = resolve(srcs);
  REQUIRE(c.ok());
  const std::string text = c->canonical();
  CHECK(text.find("hunter2") == std::string::npos);
  // SHA-256("hunter2hunter2") from python3 hashlib, not from this code.
  CHECK(text.find("\nbackend_password=sha256:76880d60191af3b3f803a656b7716f0179928357fc32421ced973ed265e15718\n") !=
        std::string::npos);
  CHECK(text.rfind("attestation=auto\nattestation_required=false\nbackend=10.9.9.9:1\n", 0) == 0);  // sorted
  CHECK(text.find("\nidentity=derived\n") != std::string::npos);  // defaults are part of it
  CHECK(text.find("\nsnp_key_fields=measurement,policy\n") != std::string::npos);
  auto parsed = parse_canonical_config(text);
  REQUIRE(parsed.ok());
  CHECK(render_canonical_config(*parsed) == text);
  CHECK(std::is_sorted(parsed->begin(), parsed->end()));
  // Every key with a value, and no other.
  for (const auto& [k, v] : *parsed) CHECK(c->has(k));
  // The CONFIG_<KEY> telemetry of the same config agrees with it.
  const auto markers = c->markers();
  std::map<std::string, std::string> values(markers.begin(), markers.end());
  CHECK(check_config_telemetry(*parsed, values).ok());
  values["CONFIG_BACKEND"] = "evil:1";
  CHECK_THAT(check_config_telemetry(*parsed, values), FailsWith("attested_config.telemetry_mismatch"));
  values["CONFIG_BACKEND"] = "a:1";
  values["CONFIG_BACKEND_PASSWORD"] = "unset";
  CHECK_FALSE(check_config_telemetry(*parsed, values).ok());
  values["CONFIG_BACKEND_PASSWORD"] = "redacted";
  values["CONFIG_SEALED_IDENTITY"] = "AAAA";
  CHECK_FALSE(check_config_telemetry(*parsed, values).ok());
}

TEST_CASE("canonical config: OB_MASTER and ONION_ROLE must say what onionbalance_master says") {
  auto inst = resolve_text({{Source::File, "backend=10.9.9.9:1\nonionbalance_master=" + kMaster}});
  REQUIRE(inst.ok());
  auto cfg = parse_canonical_config(inst->canonical());
  REQUIRE(cfg.ok());
  std::map<std::string, std::string> values = {{"ONION_ROLE", "instance"}, {"OB_MASTER", kMaster + ".onion"}};
  CHECK(check_config_telemetry(*cfg, values).ok());
  CHECK(check_config_telemetry(*cfg, {}).ok());  // a boot that ended before tor ran
  values["OB_MASTER"] = "aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4bqead.onion";
  auto bad = check_config_telemetry(*cfg, values);
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad, FailsWith("attested_config.telemetry_mismatch"));
  CHECK(bad.error().detail.find("OB_MASTER") != std::string::npos);
  // A single-service config: no instance markers may claim otherwise.
  auto single = parse_canonical_config(resolve_text({{Source::File, "backend=10.9.9.9:1"}})->canonical());
  REQUIRE(single.ok());
  CHECK_FALSE(check_config_telemetry(*single, {{"OB_MASTER", kMaster + ".onion"}}).ok());
  CHECK_FALSE(check_config_telemetry(*single, {{"ONION_ROLE", "instance"}}).ok());
  CHECK(check_config_telemetry(*single, {{"ONION_ROLE", "single"}}).ok());
}

TEST_CASE("canonical config: --expect-config KEY=VALUE") {
  auto c = resolve_text({{Source::File, "backend=10.0.0.1:1080\nbackend_user=u\nbackend_password=hunter2hunter2\n"
                                        "pow_defense=no"}});
  REQUIRE(c.ok());
  auto parsed = parse_canonical_config(c->canonical());
  REQUIRE(parsed.ok());
  CHECK(check_expected_config(*parsed, "backend=10.0.0.1:1080").ok());
  CHECK(check_expected_config(*parsed, "backend-mode=socks5").ok());              // '-' as '_'
  CHECK(check_expected_config(*parsed, "pow_defense=off").ok());                  // normalised: false
  CHECK(check_expected_config(*parsed, "backend_password=hunter2hunter2").ok());  // compared as its hash
  CHECK(check_expected_config(
            *parsed, "backend_password=sha256:76880d60191af3b3f803a656b7716f0179928357fc32421ced973ed265e15718")
            .ok());
  CHECK(check_expected_config(*parsed, "expected_measurement=unset").ok());
  CHECK_THAT(check_expected_config(*parsed, "backend=10.0.0.2:1080"), FailsWith("attested_config.mismatch"));
  CHECK_THAT(check_expected_config(*parsed, "backend_password=hunter3"), FailsWith("attested_config.mismatch"));
  CHECK_THAT(check_expected_config(*parsed, "identity=sealed"), FailsWith("attested_config.mismatch"));
  CHECK_THAT(check_expected_config(*parsed, "backend=unset"), FailsWith("attested_config.mismatch"));
  CHECK_THAT(check_expected_config(*parsed, "no_such_key=1"), FailsWith("attested_config.bad_expectation"));
  CHECK_THAT(check_expected_config(*parsed, "backend"), FailsWith("attested_config.bad_expectation"));
  CHECK_THAT(check_expected_config(*parsed, "=x"), FailsWith("attested_config.bad_expectation"));
  CHECK_THAT(check_expected_config(*parsed, "onion_port=0"), FailsWith("attested_config.bad_expectation"));
}

TEST_CASE("canonical config parser: bad input is a clear error, never a crash") {
  auto reason = [](std::string_view t) {
    auto r = parse_canonical_config(t);
    return r ? std::string("ok") : r.error().reason;
  };
  CHECK(reason("") == "ok");
  CHECK(reason("a=1\nb=2\n") == "ok");
  CHECK(reason("a=1") == "attested_config.no_final_newline");
  CHECK(reason("a=1\n\n") == "attested_config.syntax");
  CHECK(reason("a1\n") == "attested_config.syntax");
  CHECK(reason("=1\n") == "attested_config.bad_key");
  CHECK(reason("A=1\n") == "attested_config.bad_key");
  CHECK(reason("a-b=1\n") == "attested_config.bad_key");
  CHECK(reason(std::string(65, 'a') + "=1\n") == "attested_config.bad_key");
  CHECK(reason("a=\n") == "attested_config.empty_value");
  CHECK(reason("a=1 2\n") == "attested_config.not_text");
  CHECK(reason("a=1\r\n") == "attested_config.not_text");
  CHECK(reason(std::string("a=\x80\n")) == "attested_config.not_text");
  CHECK(reason(std::string("a=1\0\n", 5)) == "attested_config.not_text");
  CHECK(reason("b=1\na=2\n") == "attested_config.unsorted");
  CHECK(reason("a=1\na=1\n") == "attested_config.unsorted");
  CHECK(reason("a=b=c\n") == "ok");  // '=' in a value (base64 padding) is fine
  std::string many;
  for (int i = 0; i < 300; ++i) many += "k" + std::to_string(1000 + i) + "=1\n";
  CHECK(reason(many) == "attested_config.too_many_entries");
  CHECK(reason(std::string(kMaxCanonicalBytes + 1, 'a')) == "attested_config.too_large");
}
