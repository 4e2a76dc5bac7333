// The tls config values' parsers (pins, PEM, SNI, tls:// endpoints) and the tls keys'
// validation: good values, and every kind of bad input with its reason token.
#include <catch2/catch.hpp>

#include <string>

#include "common/bytes.h"
#include "socks/config.h"
#include "socks/tests/config_support.h"
#include "socks/tls.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::socks;
using torgw::socks::testing::build;
using torgw::socks::testing::err;
using torgw::testing::FailsWith;

namespace {

// Known-answer vector: a self-signed P-256 certificate made with
//   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 36500 -subj /CN=kat.torgw.test
// and its pin computed independently twice: with the openssl CLI
//   openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64
// and with python3-cryptography (sha256 of public_bytes(DER, SubjectPublicKeyInfo)).
constexpr const char* kKatCert = "-----BEGIN CERTIFICATE-----\n"
                                 "MIIBiTCCAS+gAwIBAgIUDeL6ZGWEkpx0owqKDQ6f1mFRWDUwCgYIKoZIzj0EAwIw\n"
                                 "GTEXMBUGA1UEAwwOa2F0LnRvcmd3LnRlc3QwIBcNMjYxMjAzMTQwNjI0WhgPMjEy\n"
                                 "NjExMDkxNDA2MjRaMBkxFzAVBgNVBAMMDmthdC50b3Jndy50ZXN0MFkwEwYHKoZI\n"
                                 "zj0CAQYIKoZIzj0DAQcDQgAEsrZ+rYEN+Cg4zcuH/Fl8IIGPDTcGLxBp/pGnL6/r\n"
                                 "oZp7tgguVCSbazAYX+ll/6RXi0nmiXsY8TuZSO1T19dXvaNTMFEwHQYDVR0OBBYE\n"
                                 "FJQtmRv+NYBkEYOvqys5qJw6ODQnMB8GA1UdIwQYMBaAFJQtmRv+NYBkEYOvqys5\n"
                                 "qJw6ODQnMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIhAMGoClwu\n"
                                 "NEGcHdm9h4dGlfR/U/QTXTjElfXia0V9iTlzAiABroyLXX0tnBTRcAPtJge55Yh8\n"
                                 "ZoqgjpGvRhIZO12KUQ==\n"
                                 "-----END CERTIFICATE-----\n";
constexpr const char* kKatPin = "sha256//hufrqJvISR5QC/CfNoCnUVS1uD34vmZvxZG9bFf0xyU=";
constexpr const char* kOtherPin = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

// A key's armor only (the parser checks structure, never decodes a key).
constexpr const char* kKeyArmor = "-----BEGIN PRIVATE KEY-----\n"
                                  "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgAAAAAAAAAAAAAAAA\n"
                                  "-----END PRIVATE KEY-----\n";

std::string b64(std::string_view s) { return to_base64(as_bytes(s)); }

}  // namespace

TEST_CASE("tls: pins in curl's sha256// format") {
  auto one = tls::parse_pins(kKatPin);
  REQUIRE(one.ok());
  REQUIRE(one->size() == 1);
  CHECK(tls::pin_text((*one)[0]) == kKatPin);
  auto two = tls::parse_pins(std::string(kKatPin) + ";" + kOtherPin);
  REQUIRE(two.ok());
  CHECK(two->size() == 2);
  CHECK(tls::pin_text((*two)[1]) == kOtherPin);

  for (const char* bad : {"", "sha256//", "sha1//hufrqJvISR5QC/CfNoCnUVS1uD34vmZvxZG9bFf0xyU=",
                          "hufrqJvISR5QC/CfNoCnUVS1uD34vmZvxZG9bFf0xyU=",
                          "sha256//hufrqJvISR5QC/CfNoCnUVS1uD34vmZvxZG9bFf0xy=",    // 43 characters
                          "sha256//hufrqJvISR5QC/CfNoCnUVS1uD34vmZvxZG9bFf0xyU==",  // 45
                          "sha256//hufrqJvISR5QC/CfNoCnUVS1uD34vmZvxZG9bFf0x!U=",   // not base64
                          "sha256//hufrqJvISR5QC/CfNoCnUVS1uD34vmZvxZG9bFf0xyU=;",  // empty item
                          "sha256//hufrqJvISR5QC/CfNoCnUVS1uD34vmZvxZG9bFf0xyU= "}) {
    INFO(bad);
    auto r = tls::parse_pins(bad);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r, FailsWith("tls.bad_pin"));
  }
  std::string many;
  for (int i = 0; i < 17; ++i) many += std::string(i ? ";" : "") + kOtherPin;
  CHECK(tls::parse_pins(many).error().detail == "at most 16 pins");
}

TEST_CASE("tls: the pin of a certificate matches openssl's and python's") {
  auto p = tls::pin_of_pem_certificate(as_bytes(kKatCert));
  REQUIRE(p.ok());
  CHECK(tls::pin_text(*p) == kKatPin);
  CHECK_THAT(tls::pin_of_pem_certificate(as_bytes("not pem")), FailsWith("tls.bad_pem"));
}

TEST_CASE("tls: PEM values are base64 of PEM text") {
  auto ca = tls::parse_pem_base64(b64(kKatCert), tls::PemKind::Certificates);
  REQUIRE(ca.ok());
  CHECK(ca->size() == std::string_view(kKatCert).size());
  auto bundle = tls::parse_pem_base64(b64(std::string(kKatCert) + kKatCert), tls::PemKind::Certificates);
  CHECK(bundle.ok());
  CHECK(tls::parse_pem_base64(b64(kKeyArmor), tls::PemKind::PrivateKey).ok());

  CHECK_THAT(tls::parse_pem_base64("", tls::PemKind::Certificates), FailsWith("tls.bad_base64"));
  CHECK_THAT(tls::parse_pem_base64("!!!!", tls::PemKind::Certificates), FailsWith("tls.bad_base64"));
  CHECK_THAT(tls::parse_pem_base64(std::string(70000, 'A'), tls::PemKind::Certificates), FailsWith("tls.too_large"));
  CHECK_THAT(tls::parse_pem_base64(b64("hello"), tls::PemKind::Certificates), FailsWith("tls.bad_pem"));
  // A cert bundle with a block that is not a certificate (a key) is refused whole.
  CHECK_THAT(tls::parse_pem_base64(b64(std::string(kKatCert) + kKeyArmor), tls::PemKind::Certificates),
             FailsWith("tls.bad_pem"));
  // A corrupted certificate body.
  std::string broken = kKatCert;
  broken[100] = broken[100] == 'A' ? 'B' : 'A';
  broken[101] = '*';
  CHECK_THAT(tls::parse_pem_base64(b64(broken), tls::PemKind::Certificates), FailsWith("tls.bad_pem"));
  // Keys: one unencrypted block, nothing else.
  for (std::string bad :
       {std::string(kKatCert), std::string(kKeyArmor) + kKeyArmor,
        std::string(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAAAAAAAAAAAAAAAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"),
        std::string("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAAAAAAAAAAAAAAAAAAA\n-----END RSA "
                    "PRIVATE KEY-----\n"),
        std::string("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        std::string("-----BEGIN PRIVATE KEY-----\nAAAAAAAAAAAAAAAAAAAA\n-----END EC PRIVATE KEY-----\n"),
        std::string(1, '\0') + kKeyArmor}) {
    INFO(bad);
    CHECK_THAT(tls::parse_pem_base64(b64(bad), tls::PemKind::PrivateKey), FailsWith("tls.bad_pem"));
  }
}

TEST_CASE("tls: SNI is a DNS name") {
  CHECK(*tls::parse_sni("exit.example.net") == "exit.example.net");
  CHECK(tls::parse_sni("a").ok());
  for (const char* bad : {"", ".", "a..b", "a.", ".a", "-a.b", "a-.b", "a b", "a/b", "ä.example"}) {
    INFO(bad);
    CHECK_THAT(tls::parse_sni(bad), FailsWith("tls.bad_sni"));
  }
  CHECK_FALSE(tls::parse_sni(std::string(64, 'a') + ".b").ok());
  CHECK_FALSE(tls::parse_sni(std::string(254, 'a')).ok());
}

TEST_CASE("tls: tls:// endpoints, for backends only") {
  auto e = parse_endpoint("tls://203.0.113.5:1443", true, true);
  REQUIRE(e.ok());
  CHECK(e->tls);
  CHECK(e->host == "203.0.113.5");
  CHECK(e->port == 1443);
  CHECK(e->to_string() == "tls://203.0.113.5:1443");
  CHECK(parse_endpoint("tls://[2001:db8::1]:443", false, true)->to_string() == "tls://[2001:db8::1]:443");
  CHECK(parse_endpoint("tls://exit.example.net:443", false, true)->host == "exit.example.net");
  CHECK_FALSE(parse_endpoint("tls://203.0.113.5:1443", true).ok());  // listen: no
  CHECK_FALSE(parse_endpoint("tls://unix:/run/x.sock", true, true).ok());
  CHECK_FALSE(parse_endpoint("tls://", true, true).ok());
  CHECK_FALSE(parse_endpoint("tls://tls://1.2.3.4:5", true, true).ok());
  CHECK_FALSE(parse_endpoint("tls://1.2.3.4", true, true).ok());
}

TEST_CASE("tls: config keys and their validation") {
  auto c = build(
      std::string("backend = tls://203.0.113.5:1443\nbackend = 10.0.0.2:1080\n") + "backend_tls_pin = " + kKatPin +
      "\nbackend_tls_pin = " + kOtherPin + "\nbackend_tls_sni = exit.example.net\nbackend_tls_ca = " + b64(kKatCert) +
      "\nbackend_tls_cert = " + b64(kKatCert) + "\nbackend_tls_key = " + b64(kKeyArmor) + "\nbackend_tls_ktls = no\n");
  REQUIRE(c.ok());
  CHECK(c->backends[0].tls);
  CHECK_FALSE(c->backends[1].tls);
  CHECK(c->tls.pins.size() == 2);
  CHECK(c->tls.sni == "exit.example.net");
  CHECK_FALSE(c->tls.ktls);
  CHECK(c->tls.auth_name() == "pinned+ca");
  auto d = c->describe();
  CHECK(d.find("backend = tls://203.0.113.5:1443") != std::string::npos);
  CHECK(d.find(std::string("backend_tls_pin = ") + kKatPin) != std::string::npos);
  CHECK(d.find("backend_tls_key = (redacted)") != std::string::npos);
  CHECK(d.find("MIIB") == std::string::npos);  // no PEM text in the dump

  // --backend tls:// on the command line too.
  auto f = build(std::string("backend_tls_pin = ") + kKatPin + "\n", {"--backend", "tls://127.0.0.1:1443"});
  REQUIRE(f.ok());
  CHECK(f->backends[0].tls);

  CHECK(err(build("backend = tls://127.0.0.1:1443\n")).find("needs backend_tls_pin or backend_tls_ca") !=
        std::string::npos);
  CHECK(err(build(std::string("backend = 127.0.0.1:1080\nbackend_tls_pin = ") + kKatPin + "\n"))
            .find("no backend is tls://") != std::string::npos);
  CHECK(err(build(std::string("backend = tls://127.0.0.1:1443\nbackend_tls_pin = ") + kKatPin +
                  "\nbackend_tls_cert = " + b64(kKatCert) + "\n"))
            .find("go together") != std::string::npos);
  CHECK(err(build("backend = tls://127.0.0.1:1443\nbackend_tls_pin = sha256//x\n")).find("t.conf:2: backend_tls_pin") !=
        std::string::npos);
  CHECK(
      err(build("backend = tls://127.0.0.1:1443\nbackend_tls_ca = bm90IHBlbQ==\n")).find("t.conf:2: backend_tls_ca") !=
      std::string::npos);
  CHECK(err(build("backend = tls://127.0.0.1:1443\nbackend_tls_sni = a..b\n")).find("backend_tls_sni") !=
        std::string::npos);
  // A bad key value's error never quotes the value.
  auto k = err(build("backend = tls://127.0.0.1:1443\nbackend_tls_key = c2VjcmV0LWtleS10ZXh0\n"));
  CHECK(k.find("backend_tls_key") != std::string::npos);
  CHECK(k.find("c2VjcmV0") == std::string::npos);
  CHECK(k.find("secret-key-text") == std::string::npos);
}

TEST_CASE("tls: a client context refuses to exist without a pin or a CA") {
  tls::Settings s;
  auto c = tls::ClientContext::create(std::move(s));
  REQUIRE_FALSE(c.ok());
  CHECK_THAT(c, FailsWith("tls.context"));
  tls::Settings p;
  p.pins = *tls::parse_pins(kKatPin);
  CHECK(tls::ClientContext::create(std::move(p)).ok());
}
