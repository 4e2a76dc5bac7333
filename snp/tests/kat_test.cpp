// Known-answer vectors for the formats that fix the onion address and what `torgw
// verify` checks (docs/snp.md "Known-answer vectors"). The expected values in
// snp/tests/kat/identity_kat.json come from gen_identity_kat.py, which computes them
// without this code or libsodium; here the C++ recomputes each from its inputs. A changed
// label, field order or encoding fails here: such a change needs a new format tag and new
// vectors, while the old tag's vectors keep passing (blobs sealed by old builds must open).
#include <catch2/catch.hpp>

#include <sodium.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "config/config.h"
#include "onion/onion.h"
#include "snp/attest.h"
#include "snp/identity.h"
#include "snp/identity_internal.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::snp;
using namespace torgw::snp::identity;
using json = nlohmann::json;
using torgw::testing::FailsWith;

namespace {

const json& kat() {
  static const json doc = [] {
    const char* src = std::getenv("TORGW_SOURCE_DIR");
    REQUIRE(src != nullptr);  // CTest sets it (cmake/torgw.cmake torgw_test)
    const std::string path = std::string(src) + "/snp/tests/kat/identity_kat.json";
    std::ifstream in(path);
    INFO(path);
    REQUIRE(in.good());
    std::stringstream ss;
    ss << in.rdbuf();
    return json::parse(ss.str());
  }();
  return doc;
}

// The vectors of one format; fails if there are none (a format must keep its vectors).
std::vector<json> vectors_of(const std::string& format) {
  std::vector<json> out;
  for (const auto& v : kat().at("vectors"))
    if (v.at("format") == format) out.push_back(v);
  INFO(format);
  REQUIRE(!out.empty());
  return out;
}

Bytes hex_in(const json& v, const char* field) {
  auto b = from_hex(v.at("inputs").at(field).get<std::string>());
  INFO(field);
  REQUIRE(b.ok());
  return *b;
}

template <std::size_t N>
std::array<std::uint8_t, N> array_in(const json& v, const char* field) {
  Bytes b = hex_in(v, field);
  INFO(field);
  REQUIRE(b.size() == N);
  std::array<std::uint8_t, N> a{};
  std::copy(b.begin(), b.end(), a.begin());
  return a;
}

std::string expected(const json& v, const char* field) { return v.at("expected").at(field).get<std::string>(); }

DerivedKeyRequest request_in(const json& v) {
  const json& in = v.at("inputs");
  DerivedKeyRequest req;
  req.root = static_cast<RootKey>(in.at("root").get<std::uint32_t>());
  req.fields = in.at("fields").get<std::uint64_t>();
  req.vmpl = in.at("vmpl").get<std::uint32_t>();
  req.guest_svn = in.value("guest_svn", std::uint32_t{0});
  req.tcb_version = in.value("tcb_version", std::uint64_t{0});
  return req;
}

Secret secret_in(const json& v) {
  return Secret{static_cast<SecretKind>(v.at("inputs").at("secret_kind").get<int>()),
                SecretBytes::copy_of(hex_in(v, "secret"))};
}

TransferKeypair keypair_from_secret(const Bytes& secret) {
  REQUIRE(secret.size() == crypto_scalarmult_SCALARBYTES);
  TransferKeypair kp;
  kp.secret_key = SecretBytes::copy_of(secret);
  REQUIRE(crypto_scalarmult_base(kp.public_key.data(), kp.secret_key.data()) == 0);
  return kp;
}

const std::set<std::string> kFormats = {"torgw-identity-seed-v1", "torgw-seal-key-v1", "torgw-sealed-blob-v1",
                                        "torgw-transfer-blob-v1", "torgw-report-v1",   "onion-v3",
                                        "torgw-identity-seed-v2", "torgw-seal-key-v2", "torgw-sealed-blob-v2",
                                        "torgw-report-v2"};

SecretBytes salt_in(const json& v) {
  Bytes b = hex_in(v, "salt");
  REQUIRE(b.size() == kSaltSize);
  return SecretBytes::copy_of(b);
}

SealBinding binding_in(const json& v) {
  SealBinding b;
  b.req = request_in(v);
  b.chip_id = array_in<64>(v, "chip_id");
  b.measurement = array_in<48>(v, "measurement");
  b.policy = v.at("inputs").at("policy").get<std::uint64_t>();
  return b;
}

}  // namespace

TEST_CASE("kat: every vector has a known format tag, and every format keeps its vectors") {
  std::map<std::string, int> count;
  for (const auto& v : kat().at("vectors")) {
    INFO(v.at("name").get<std::string>());
    CHECK(kFormats.count(v.at("format").get<std::string>()) == 1);
    ++count[v.at("format").get<std::string>()];
  }
  for (const auto& f : kFormats) {
    INFO(f);
    CHECK(count[f] >= 1);
    CHECK(kat().at("formats").contains(f));
  }
}

TEST_CASE("kat: derived seed, its ed25519 key and onion address (torgw-identity-seed-v1)") {
  for (const auto& v : vectors_of("torgw-identity-seed-v1")) {
    INFO(v.at("name").get<std::string>());
    const SecretBytes dk = SecretBytes::copy_of(hex_in(v, "derived_key"));
    const SecretBytes seed = seed_from_derived_key(dk, request_in(v));
    CHECK(to_hex(seed.view()) == expected(v, "seed"));
    auto id = onion::Identity::from_seed(seed.view());
    REQUIRE(id.ok());
    CHECK(to_hex(id->public_key()) == expected(v, "ed25519_public_key"));
    CHECK(id->hostname() == expected(v, "onion_address") + ".onion");
  }
}

TEST_CASE("kat: seal key (torgw-seal-key-v1)") {
  for (const auto& v : vectors_of("torgw-seal-key-v1")) {
    INFO(v.at("name").get<std::string>());
    const SecretBytes dk = SecretBytes::copy_of(hex_in(v, "derived_key"));
    CHECK(to_hex(seal_key_from_derived_key(dk, request_in(v)).view()) == expected(v, "seal_key"));
  }
}

TEST_CASE("kat: sealed blob (torgw-sealed-blob-v1): sealing gives it, unsealing opens it") {
  for (const auto& v : vectors_of("torgw-sealed-blob-v1")) {
    INFO(v.at("name").get<std::string>());
    const SecretBytes dk = SecretBytes::copy_of(hex_in(v, "derived_key"));
    const SealBinding b = binding_in(v);
    const Secret secret = secret_in(v);
    CHECK(to_hex(seal_key_from_derived_key(dk, b.req).view()) == expected(v, "seal_key"));

    auto blob = internal::seal_with_nonce(dk, b, secret, array_in<24>(v, "nonce"));
    REQUIRE(blob.ok());
    CHECK(to_hex(*blob) == expected(v, "blob"));

    // A blob an older build wrote must still open: parse + unseal the committed bytes.
    auto committed = from_hex(expected(v, "blob"));
    REQUIRE(committed.ok());
    auto parsed = parse_sealed_blob(*committed);
    REQUIRE(parsed.ok());
    CHECK(parsed->kind == secret.kind);
    CHECK(parsed->binding.req.guest_svn == b.req.guest_svn);
    CHECK(parsed->binding.req.tcb_version == b.req.tcb_version);
    auto opened = unseal_with_key(dk, *parsed, b);
    REQUIRE(opened.ok());
    CHECK(to_hex(opened->bytes.view()) == to_hex(secret.bytes.view()));
  }
}

TEST_CASE("kat: REPORT_DATA (torgw-report-v1)") {
  for (const auto& v : vectors_of("torgw-report-v1")) {
    INFO(v.at("name").get<std::string>());
    std::optional<X25519Key> transfer;
    if (!v.at("inputs").at("transfer_public_key").is_null()) transfer = array_in<32>(v, "transfer_public_key");
    const ReportData rd = report_data_for(array_in<32>(v, "onion_public_key"), transfer, array_in<16>(v, "boot_id"));
    CHECK(to_hex(rd) == expected(v, "report_data"));
  }
}

TEST_CASE("kat: REPORT_DATA v2 and the attested config it binds (torgw-report-v2)") {
  for (const auto& v : vectors_of("torgw-report-v2")) {
    INFO(v.at("name").get<std::string>());
    const json& in = v.at("inputs");
    // Config::canonical() renders the inputs as the python does (secrets, long values).
    config::Config cfg;
    std::set<std::string> secret_keys;
    for (const auto& k : in.at("secret_keys")) secret_keys.insert(k.get<std::string>());
    for (const auto& [key, value] : in.at("config").items()) {
      REQUIRE(config::find_key(key));
      CHECK(config::find_key(key)->secret == (secret_keys.count(key) == 1));
      const std::string text = value.get<std::string>();
      auto& slot = cfg.values()[key];
      if (secret_keys.count(key)) slot.secret = SecretBytes::copy_of(as_bytes(text));
      else slot.text = text;
    }
    const std::string text = cfg.canonical();
    CHECK(text == expected(v, "attested_config"));
    auto parsed = config::parse_canonical_config(text);
    REQUIRE(parsed.ok());
    CHECK(config::render_canonical_config(*parsed) == text);
    const auto digest = config::canonical_config_sha256(text);
    CHECK(to_hex(ByteView(digest.data(), digest.size())) == expected(v, "config_sha256"));
    std::optional<X25519Key> transfer;
    if (!in.at("transfer_public_key").is_null()) transfer = array_in<32>(v, "transfer_public_key");
    const ReportData rd = report_data_v2(array_in<32>(v, "onion_public_key"), transfer, array_in<16>(v, "boot_id"),
                                         digest);
    CHECK(to_hex(rd) == expected(v, "report_data"));
    // v2 never collides with v1 for the same onion, transfer key and BOOT_ID.
    CHECK(rd != report_data_for(array_in<32>(v, "onion_public_key"), transfer, array_in<16>(v, "boot_id")));
  }
}

TEST_CASE("kat: transfer blob (torgw-transfer-blob-v1): wrapping gives it, unwrapping opens it") {
  for (const auto& v : vectors_of("torgw-transfer-blob-v1")) {
    INFO(v.at("name").get<std::string>());
    const TransferKeypair recipient = keypair_from_secret(hex_in(v, "recipient_secret_key"));
    const TransferKeypair sender = keypair_from_secret(hex_in(v, "sender_secret_key"));
    CHECK(to_hex(recipient.public_key) == expected(v, "recipient_public_key"));
    CHECK(to_hex(sender.public_key) == expected(v, "sender_public_key"));
    const Bytes context = transfer_context(array_in<16>(v, "boot_id"), array_in<64>(v, "report_data"));
    const Secret secret = secret_in(v);

    auto blob = internal::wrap_with(secret, recipient.public_key, context, sender, array_in<24>(v, "nonce"));
    REQUIRE(blob.ok());
    CHECK(to_hex(*blob) == expected(v, "blob"));

    auto committed = from_hex(expected(v, "blob"));
    REQUIRE(committed.ok());
    auto opened = unwrap(*committed, recipient, context);
    REQUIRE(opened.ok());
    CHECK(opened->kind == secret.kind);
    CHECK(to_hex(opened->bytes.view()) == to_hex(secret.bytes.view()));
  }
}

TEST_CASE("kat: v3 onion address of a fixed public key (onion-v3, rend-spec-v3)") {
  for (const auto& v : vectors_of("onion-v3")) {
    INFO(v.at("name").get<std::string>());
    const onion::PublicKey pk = array_in<32>(v, "ed25519_public_key");
    CHECK(onion::address_from_public_key(pk) == expected(v, "onion_address"));
    auto back = onion::public_key_from_address(expected(v, "onion_address"));
    REQUIRE(back.ok());
    CHECK(*back == pk);
  }
}

TEST_CASE("kat: salted seed and seal key (torgw-identity-seed-v2, torgw-seal-key-v2); two salts, two onions") {
  std::map<std::string, std::set<std::string>> onions_per_key;  // derived key -> onions under its salts
  for (const auto& v : vectors_of("torgw-identity-seed-v2")) {
    INFO(v.at("name").get<std::string>());
    const SecretBytes dk = SecretBytes::copy_of(hex_in(v, "derived_key"));
    const SecretBytes salt = salt_in(v);
    CHECK(salt_id(salt) == expected(v, "salt_id"));
    const SecretBytes seed = seed_from_derived_key(dk, request_in(v), salt);
    CHECK(to_hex(seed.view()) == expected(v, "seed"));
    CHECK(to_hex(seed.view()) != to_hex(seed_from_derived_key(dk, request_in(v)).view()));  // not v1
    auto id = onion::Identity::from_seed(seed.view());
    REQUIRE(id.ok());
    CHECK(to_hex(id->public_key()) == expected(v, "ed25519_public_key"));
    CHECK(id->hostname() == expected(v, "onion_address") + ".onion");
    onions_per_key[to_hex(dk.view())].insert(expected(v, "onion_address"));
  }
  // The vectors hold one derived key under two salts: two different onions.
  CHECK(onions_per_key.at("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f").size() == 2);
  for (const auto& v : vectors_of("torgw-seal-key-v2")) {
    INFO(v.at("name").get<std::string>());
    const SecretBytes dk = SecretBytes::copy_of(hex_in(v, "derived_key"));
    CHECK(to_hex(seal_key_from_derived_key(dk, request_in(v), salt_in(v)).view()) == expected(v, "seal_key"));
  }
}

TEST_CASE("kat: sealed blob v2 (torgw-sealed-blob-v2): salted; opens only with its salt") {
  for (const auto& v : vectors_of("torgw-sealed-blob-v2")) {
    INFO(v.at("name").get<std::string>());
    const SecretBytes dk = SecretBytes::copy_of(hex_in(v, "derived_key"));
    const SealBinding b = binding_in(v);
    const SecretBytes salt = salt_in(v);
    const Secret secret = secret_in(v);
    CHECK(to_hex(seal_key_from_derived_key(dk, b.req, salt).view()) == expected(v, "seal_key"));
    auto blob = internal::seal_with_nonce(dk, b, secret, array_in<24>(v, "nonce"), &salt);
    REQUIRE(blob.ok());
    CHECK(to_hex(*blob) == expected(v, "blob"));

    auto parsed = parse_sealed_blob(*from_hex(expected(v, "blob")));
    REQUIRE(parsed.ok());
    CHECK(parsed->version == kSealV2);
    auto opened = unseal_with_key(dk, *parsed, b, &salt);
    REQUIRE(opened.ok());
    CHECK(to_hex(opened->bytes.view()) == to_hex(secret.bytes.view()));
    const SecretBytes other = SecretBytes::copy_of(Bytes(kSaltSize, 0x01));
    CHECK_THAT(unseal_with_key(dk, *parsed, b, &other), FailsWith("identity.sealed.auth_failed"));
    CHECK_THAT(unseal_with_key(dk, *parsed, b), FailsWith("identity.salt.missing"));
  }
}
