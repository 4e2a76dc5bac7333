// Identity modes on the simulated PSP: derive, seal/unseal (same chip after a "reboot",
// other chip, other measurement, other policy, tampering), transfer wrap/unwrap.
#include <catch2/catch.hpp>

#include "onion/onion.h"
#include "snp/identity.h"
#include "snp/tests/sim_fixture.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::snp;
using namespace torgw::snp::identity;
using torgw::testing::FailsWith;

namespace {

// SHA-256(32 x 0x5a)[:4], computed with python3's hashlib (see its use below).
constexpr const char* SALT_5A_ID = "60bf07c4";

Bytes bytes_of(const Secret& s) { return Bytes(s.bytes.view().begin(), s.bytes.view().end()); }

Secret expanded_secret() {
  auto id = onion::Identity::generate();
  return Secret{SecretKind::Expanded, SecretBytes::copy_of(id.expanded_secret())};
}

}  // namespace

TEST_CASE("derived: the same chip and fields give the same seed and onion; others do not") {
  DerivedKeyRequest req;
  const SecretBytes salt = testsim::salt();
  auto derive = [&](Device& d, const DerivedKeyRequest& r) { return identity::derive(d, r, salt); };
  auto a = testsim::open(testsim::chip_named("id-a"));
  auto a_again = testsim::open(testsim::chip_named("id-a"));
  auto b = testsim::open(testsim::chip_named("id-b"));
  SimulatedChip m = testsim::chip_named("id-a");
  m.measurement[47] ^= 0x80;
  auto a_meas = testsim::open(m);

  auto sa = derive(*a, req);
  REQUIRE(sa.ok());
  REQUIRE(sa->bytes.size() == 32);
  CHECK(bytes_of(*derive(*a_again, req)) == bytes_of(*sa));
  CHECK(bytes_of(*derive(*b, req)) != bytes_of(*sa));
  CHECK(bytes_of(*derive(*a_meas, req)) != bytes_of(*sa));
  DerivedKeyRequest with_tcb = req;
  with_tcb.fields |= key_field::kTcbVersion;
  with_tcb.tcb_version = encode_tcb(a->chip().tcb, Product::Milan);
  CHECK(bytes_of(*derive(*a, with_tcb)) != bytes_of(*sa));

  // The seed is a KDF output, not the derived key itself, and not the seal key.
  auto dk = a->get_derived_key(req);
  CHECK(Bytes(dk->view().begin(), dk->view().end()) != bytes_of(*sa));
  auto seal_key = seal_key_from_derived_key(*dk, req, salt);
  CHECK(Bytes(seal_key.view().begin(), seal_key.view().end()) != bytes_of(*sa));
  // The salt is in the seed: another salt, another seed (and onion) from the same chip.
  auto other_salt = identity::derive(*a, req, testsim::salt(0x01));
  CHECK(bytes_of(*other_salt) != bytes_of(*sa));
  CHECK(onion::Identity::from_seed(other_salt->bytes.view())->hostname() !=
        onion::Identity::from_seed(sa->bytes.view())->hostname());

  auto onion_a = onion::Identity::from_seed(sa->bytes.view());
  auto onion_a2 = onion::Identity::from_seed(derive(*a_again, req)->bytes.view());
  CHECK(onion_a->hostname() == onion_a2->hostname());

  CHECK(binding_marker(Mode::Derived, req, false) == "derived:vcek:policy+measurement");
  // salt_id: SHA-256 of 32 bytes of 0x5a, first 4 bytes (python3 -c "import hashlib;
  // print(hashlib.sha256(b'\x5a'*32).hexdigest()[:8])").
  CHECK(salt_id(salt) == SALT_5A_ID);
  CHECK(binding_marker(Mode::Derived, req, true, &salt) ==
        std::string("simulated-derived:vcek:policy+measurement:salted:") + SALT_5A_ID);
  DerivedKeyRequest fallback = req;
  fallback.key_sel = KeySel::VlekIfInstalled;
  CHECK(binding_marker(Mode::Sealed, fallback, false, &salt).rfind("sealed:vcek-or-vlek:", 0) == 0);
  CHECK(binding_marker(Mode::Sealed, req, true) == "simulated-sealed:vcek:policy+measurement");
  CHECK(binding_marker(Mode::Ephemeral, req, false) == "ephemeral");
  CHECK(*mode_from_string("transfer") == Mode::Transfer);
  CHECK_THAT(mode_from_string("tpm"), FailsWith("identity.bad_mode"));
}

TEST_CASE("sealed: unseals on the same chip and measurement only, with a clear reason otherwise") {
  DerivedKeyRequest req;
  const SecretBytes salt = testsim::salt();
  auto seal = [&](Device& d, const Secret& s, const DerivedKeyRequest& r) { return identity::seal(d, s, r, salt); };
  auto unseal = [&](Device& d, ByteView b) { return identity::unseal(d, b, salt); };
  auto a = testsim::open(testsim::chip_named("seal-a"));
  const Secret original = generate();
  auto blob = seal(*a, original, req);
  REQUIRE(blob.ok());
  CHECK(blob->size() == kSealHeaderSize + 24 + 32 + 16);

  auto rebooted = testsim::open(testsim::chip_named("seal-a"));
  auto back = unseal(*rebooted, *blob);
  REQUIRE(back.ok());
  CHECK(back->kind == SecretKind::Seed);
  CHECK(bytes_of(*back) == bytes_of(original));
  CHECK((*blob)[7] == kSealV2);
  // Same chip, another identity_salt: the AEAD fails.
  CHECK_THAT(identity::unseal(*rebooted, *blob, testsim::salt(0x01)), FailsWith("identity.sealed.auth_failed"));

  auto other_chip = testsim::open(testsim::chip_named("seal-b"));
  CHECK_THAT(unseal(*other_chip, *blob), FailsWith("identity.sealed.wrong_chip"));

  SimulatedChip m = testsim::chip_named("seal-a");
  m.measurement[0] ^= 1;
  auto other_meas = testsim::open(m);
  CHECK_THAT(unseal(*other_meas, *blob), FailsWith("identity.sealed.wrong_measurement"));

  SimulatedChip p = testsim::chip_named("seal-a");
  p.policy |= policy_bits::kSingleSocket;
  auto other_pol = testsim::open(p);
  CHECK_THAT(unseal(*other_pol, *blob), FailsWith("identity.sealed.wrong_policy"));

  // Same fields, different hidden state (the image id is not selected): the key
  // differs only if the PSP mixes it in; here it does not, so it unseals.
  SimulatedChip img = testsim::chip_named("seal-a");
  img.image_id[0] = 1;
  CHECK(unseal(*testsim::open(img), *blob).ok());
  // ...but when the blob selected image_id, a different image id fails the AEAD.
  DerivedKeyRequest img_req = req;
  img_req.fields |= key_field::kImageId;
  auto blob_img = seal(*a, original, img_req);
  REQUIRE(blob_img.ok());
  CHECK(unseal(*rebooted, *blob_img).ok());
  CHECK_THAT(unseal(*testsim::open(img), *blob_img), FailsWith("identity.sealed.auth_failed"));

  // Every byte is authenticated: flipping any of them fails.
  for (std::size_t i = 0; i < blob->size(); ++i) {
    Bytes b = *blob;
    b[i] ^= 0x01;
    auto r = unseal(*rebooted, b);
    if (r) FAIL("sealed blob byte " << i << " flipped still unseals");
  }

  // Imported tor keys (expanded form) seal too.
  Secret exp = expanded_secret();
  auto blob2 = seal(*a, exp, req);
  REQUIRE(blob2.ok());
  auto back2 = unseal(*rebooted, *blob2);
  REQUIRE(back2.ok());
  CHECK(back2->kind == SecretKind::Expanded);
  CHECK(bytes_of(*back2) == bytes_of(exp));
}

TEST_CASE("sealed blob parser: hostile input") {
  DerivedKeyRequest req;
  auto a = testsim::open(testsim::chip_named("seal-a"));
  auto blob = *seal(*a, generate(), req, testsim::salt());
  REQUIRE(parse_sealed_blob(blob).ok());
  for (std::size_t n = 0; n < blob.size(); ++n) {
    auto r = parse_sealed_blob(ByteView(blob).first(n));
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r, FailsWith("identity.blob.size"));
  }
  Bytes longer = blob;
  longer.push_back(0);
  CHECK_THAT(parse_sealed_blob(longer), FailsWith("identity.blob.size"));
  auto with = [&](std::size_t off, std::uint8_t v) {
    Bytes b = blob;
    b[off] = v;
    return parse_sealed_blob(b);
  };
  CHECK_THAT(with(0, 'X'), FailsWith("identity.blob.magic"));
  CHECK_THAT(with(7, 3), FailsWith("identity.blob.version"));
  CHECK_THAT(with(7, 0), FailsWith("identity.blob.version"));
  CHECK(with(7, 1)->version == kSealV1);  // old blobs parse (and open under the v1 key)
  CHECK_THAT(with(8, 3), FailsWith("identity.blob.kind"));
  CHECK_THAT(with(8, 2), FailsWith("identity.blob.size"));  // expanded kind, seed-sized ciphertext
  CHECK_THAT(with(9, 2), FailsWith("identity.blob.reserved"));
  CHECK_THAT(with(10, 1), FailsWith("identity.blob.reserved"));
  CHECK_THAT(with(12 + 7, 0x80), FailsWith("identity.blob.reserved"));  // unknown field bits
}

TEST_CASE("transfer: wrap to the VM's X25519 key, unwrap in that boot only") {
  auto kp = TransferKeypair::generate();
  Secret exp = expanded_secret();
  std::array<std::uint8_t, 16> boot{};
  boot[0] = 1;
  std::array<std::uint8_t, 64> rd{};
  rd[5] = 9;
  const Bytes ctx = transfer_context(boot, rd);
  auto blob = wrap(exp, kp.public_key, ctx);
  REQUIRE(blob.ok());
  auto back = unwrap(*blob, kp, ctx);
  REQUIRE(back.ok());
  CHECK(back->kind == SecretKind::Expanded);
  CHECK(bytes_of(*back) == bytes_of(exp));

  auto other = TransferKeypair::generate();
  CHECK_THAT(unwrap(*blob, other, ctx), FailsWith("identity.transfer.auth_failed"));
  boot[0] = 2;
  CHECK_THAT(unwrap(*blob, kp, transfer_context(boot, rd)), FailsWith("identity.transfer.auth_failed"));
  for (std::size_t i = 0; i < blob->size(); ++i) {
    Bytes b = *blob;
    b[i] ^= 0x01;
    if (unwrap(b, kp, ctx).ok()) FAIL("transfer blob byte " << i << " flipped still unwraps");
  }
  for (std::size_t n = 0; n < blob->size(); ++n) CHECK_FALSE(parse_transfer_blob(ByteView(*blob).first(n)).ok());

  std::array<std::uint8_t, 32> low_order{};  // the identity point
  low_order[0] = 1;
  CHECK_THAT(wrap(exp, low_order, ctx), FailsWith("identity.transfer.bad_key"));
  Secret wrong{SecretKind::Seed, SecretBytes(64)};
  CHECK_THAT(wrap(wrong, kp.public_key, ctx), FailsWith("identity.bad_secret"));
}

TEST_CASE("identity_salt: parsing, salt_id, fresh salts; derive falls back on old firmware only without a VLEK") {
  const std::string good = new_salt_base64();
  auto parsed = parse_salt(SecretBytes::copy_of(as_bytes(good)));
  REQUIRE(parsed.ok());
  CHECK(parsed->size() == kSaltSize);
  CHECK(new_salt_base64() != good);  // random, not a constant
  CHECK(salt_id(*parsed).size() == 8);
  auto bad = [](const std::string& t) { return parse_salt(SecretBytes::copy_of(as_bytes(t))).error(); };
  CHECK(bad("not base64!").reason == "identity.salt.bad");
  const std::string short_salt = to_base64(Bytes(16, 7));
  CHECK(bad(short_salt).reason == "identity.salt.bad");
  CHECK(bad(short_salt).detail.find(short_salt) == std::string::npos);  // never echoes the value

  const SecretBytes salt = testsim::salt();
  DerivedKeyRequest req;
  SimulatedChip old_fw = testsim::chip_named("id-old-fw");
  old_fw.knows_key_sel = false;
  DerivedKeyRequest sent;
  auto fb = identity::derive(*testsim::open(old_fw), req, salt, &sent);
  REQUIRE(fb.ok());
  CHECK(sent.key_sel == KeySel::VlekIfInstalled);
  // Without a VLEK, KEY_SEL=0 is the VCEK: the same onion as on firmware with KEY_SEL.
  auto modern = identity::derive(*testsim::open(testsim::chip_named("id-old-fw")), req, salt, &sent);
  CHECK(sent.key_sel == KeySel::VcekOnly);
  CHECK(bytes_of(*fb) == bytes_of(*modern));
  old_fw.vlek = true;
  CHECK_THAT(identity::derive(*testsim::open(old_fw), req, salt), FailsWith("identity.root.vlek"));
  CHECK_THAT(identity::seal(*testsim::open(old_fw), generate(), req, salt), FailsWith("identity.root.vlek"));
}

TEST_CASE("identity_key: the whole hs_ed25519_secret_key file, base64, strictly") {
  auto id = onion::Identity::generate();
  const Bytes file = onion::secret_key_file(id);
  auto text = [](std::string s) { return SecretBytes::copy_of(as_bytes(s)); };
  const std::string good = to_base64(file);
  REQUIRE(good.size() == 128);
  auto k = parse_provided_key(text(good));
  REQUIRE(k);
  CHECK(Bytes(k->view().begin(), k->view().end()) == Bytes(id.expanded_secret().begin(), id.expanded_secret().end()));
  CHECK(onion::Identity::from_expanded(k->view())->hostname() == id.hostname());

  auto reason = [&](const std::string& s) {
    auto r = parse_provided_key(text(s));
    if (r) return std::string("ok");
    // The detail never shows any of the key.
    CHECK(r.error().detail.find(good.substr(44, 40)) == std::string::npos);
    CHECK(r.error().to_string().find(to_hex(ByteView(file).subspan(32, 16))) == std::string::npos);
    return r.error().reason;
  };
  CHECK(reason("") == "identity.key.size");  // decodes to nothing
  CHECK(reason(good + "\n") == "identity.key.bad_base64");
  CHECK(reason(" " + good) == "identity.key.bad_base64");
  CHECK(reason(good.substr(0, 127)) == "identity.key.bad_base64");  // a torn character
  std::string url = good;
  for (char& c : url) c = c == '+' ? '-' : c == '/' ? '_' : c;
  if (url != good) CHECK(reason(url) == "identity.key.bad_base64");
  // Canonical: 95 bytes decode from 128 chars with padding only one way.
  const std::string b95 = to_base64(ByteView(file).first(95));
  CHECK(reason(b95) == "identity.key.size");
  std::string noncanon = b95;
  noncanon[noncanon.size() - 2] = noncanon[noncanon.size() - 2] == 'A' ? 'B' : 'A';  // stray low bits
  CHECK(reason(noncanon) != "ok");
  CHECK(reason(to_base64(ByteView(file).first(64))) == "identity.key.size");  // the key without the header
  CHECK(reason(to_base64(id.expanded_secret())) == "identity.key.size");
  Bytes longer = file;
  longer.push_back(0);
  CHECK(reason(to_base64(longer)) == "identity.key.size");
  Bytes pub = onion::public_key_file(id.public_key());
  pub.resize(96, 0);
  CHECK(reason(to_base64(pub)) == "identity.key.header");  // the public key file's header
  Bytes header = file;
  header[29] = '1';  // "type1"
  CHECK(reason(to_base64(header)) == "identity.key.header");
  Bytes unclamped = file;
  unclamped[32] |= 0x07;
  CHECK(reason(to_base64(unclamped)) == "identity.key.bad_scalar");
  Bytes high = file;
  high[63] |= 0x80;
  CHECK(reason(to_base64(high)) == "identity.key.bad_scalar");
}
