#include "snp/identity.h"

#define TORGW_IDENTITY_IMPL
#include "snp/identity_internal.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "onion/onion.h"

namespace torgw::snp::identity {

namespace {

constexpr char kSealMagic[8] = {'T', 'G', 'W', 'S', 'E', 'A', 'L', 0x01};
constexpr char kXferMagic[8] = {'T', 'G', 'W', 'X', 'F', 'E', 'R', 0x01};
constexpr std::size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t kTag = crypto_aead_xchacha20poly1305_ietf_ABYTES;

void put_le(Bytes& b, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

// salt == nullptr: the v1 message; otherwise v2 (the salt appended). The message holds
// the salt, so it lives in locked memory and is wiped.
SecretBytes kdf(const SecretBytes& dk, std::string_view label, const DerivedKeyRequest& req,
                const SecretBytes* salt = nullptr) {
  ensure_sodium();
  Bytes head(label.begin(), label.end());
  put_le(head, static_cast<std::uint32_t>(req.root), 4);
  put_le(head, req.fields, 8);
  put_le(head, req.vmpl, 4);
  SecretBytes msg(head.size() + (salt ? salt->size() : 0));
  std::memcpy(msg.data(), head.data(), head.size());
  if (salt) std::memcpy(msg.data() + head.size(), salt->data(), salt->size());
  SecretBytes out(32);
  crypto_generichash(out.data(), out.size(), msg.data(), msg.size(), dk.data(), dk.size());
  return out;
}

bool valid_kind(std::uint8_t k) {
  return k == static_cast<std::uint8_t>(SecretKind::Seed) || k == static_cast<std::uint8_t>(SecretKind::Expanded);
}

Status check_secret(const Secret& s) {
  if (s.bytes.size() != secret_size(s.kind))
    return make_error("identity.bad_secret", "secret of " + std::to_string(s.bytes.size()) + " bytes for its kind");
  return {};
}

template <std::size_t N>
std::string hx(const std::array<std::uint8_t, N>& a, std::size_t n = N) {
  return to_hex(ByteView(a.data(), std::min(n, N)));
}

}  // namespace

const char* to_string(Mode m) {
  switch (m) {
    case Mode::Derived: return "derived";
    case Mode::Sealed: return "sealed";
    case Mode::Transfer: return "transfer";
    case Mode::Ephemeral: return "ephemeral";
    case Mode::Provided: return "provided";
  }
  return "derived";
}

Result<Mode> mode_from_string(std::string_view s) {
  for (Mode m : {Mode::Derived, Mode::Sealed, Mode::Transfer, Mode::Ephemeral, Mode::Provided})
    if (s == to_string(m)) return m;
  return make_error("identity.bad_mode",
                    "identity '" + std::string(s) + "' (derived, sealed, transfer, ephemeral, provided)");
}

// ---- identity_salt ----------------------------------------------------------------------

Result<SecretBytes> parse_salt(const SecretBytes& text) {
  // Only the length and the validity are reported: the value is a secret.
  auto raw = from_base64(as_chars(text.view()));
  if (!raw) return make_error("identity.salt.bad", "identity_salt is not base64 (make one with `torgw identity salt`)");
  SecretBytes salt = SecretBytes::copy_of(*raw);
  const std::size_t n = raw->size();
  wipe(raw->data(), raw->size());
  if (n != kSaltSize)
    return make_error("identity.salt.bad", "identity_salt decodes to " + std::to_string(n) + " bytes, not " +
                                               std::to_string(kSaltSize) + " (make one with `torgw identity salt`)");
  return salt;
}

// ---- identity_key ------------------------------------------------------------------------

Result<SecretBytes> parse_provided_key(const SecretBytes& text) {
  constexpr const char* kHow = " (base64 -w0 of tor's hs_ed25519_secret_key file, 96 bytes)";
  auto raw = from_base64(as_chars(text.view()));
  if (!raw) return make_error("identity.key.bad_base64", std::string("identity_key is not base64") + kHow);
  SecretBytes file = SecretBytes::copy_of(*raw);
  wipe(raw->data(), raw->size());
  // Canonical only: one text per key (no missing padding, no stray low bits).
  std::string again = to_base64(file.view());
  const bool canonical = again.size() == text.size() && sodium_memcmp(again.data(), text.data(), again.size()) == 0;
  wipe(again.data(), again.size());
  if (!canonical)
    return make_error("identity.key.bad_base64", std::string("identity_key is not canonical padded base64") + kHow);
  auto expanded = onion::parse_secret_key_file(file.view());
  if (!expanded) {
    const bool size = expanded.error().reason == "onion.keyfile_size";
    return make_error(size ? "identity.key.size" : "identity.key.header",
                      size ? "identity_key decodes to " + std::to_string(file.size()) + " bytes, not 96" + kHow
                           : std::string("identity_key is not an ed25519v1 secret key file") + kHow);
  }
  if (!onion::Identity::from_expanded(expanded->view()))
    return make_error("identity.key.bad_scalar", "identity_key's scalar is not clamped: not a key tor wrote");
  return std::move(*expanded);
}

std::string salt_id(const SecretBytes& salt) {
  ensure_sodium();
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, salt.data(), salt.size());
  return to_hex(ByteView(h, 4));
}

std::string new_salt_base64() {
  ensure_sodium();
  SecretBytes salt(kSaltSize);
  randombytes_buf(salt.data(), salt.size());
  return to_base64(salt.view());
}

const char* root_name(const DerivedKeyRequest& req) {
  if (req.root == RootKey::Vmrk) return "vmrk";
  switch (req.key_sel) {
    case KeySel::VcekOnly: return "vcek";
    case KeySel::VlekIfInstalled: return "vcek-or-vlek";
    case KeySel::VlekOnly: return "vlek";
  }
  return "vcek";
}

std::string binding_marker(Mode mode, const DerivedKeyRequest& req, bool simulated, const SecretBytes* salt) {
  if (mode == Mode::Ephemeral || mode == Mode::Provided) return to_string(mode);
  return std::string(simulated ? "simulated-" : "") + to_string(mode) + ":" + root_name(req) + ":" +
         key_fields_to_string(req.fields) + (salt ? ":salted:" + salt_id(*salt) : std::string());
}

std::size_t secret_size(SecretKind k) { return k == SecretKind::Seed ? kSeedSize : kExpandedSize; }

// ---- derived ---------------------------------------------------------------------------

SecretBytes seed_from_derived_key(const SecretBytes& dk, const DerivedKeyRequest& req) {
  return kdf(dk, "torgw-identity-seed-v1", req);
}

SecretBytes seal_key_from_derived_key(const SecretBytes& dk, const DerivedKeyRequest& req) {
  return kdf(dk, "torgw-seal-key-v1", req);
}

SecretBytes seed_from_derived_key(const SecretBytes& dk, const DerivedKeyRequest& req, const SecretBytes& salt) {
  return kdf(dk, "torgw-identity-seed-v2", req, &salt);
}

SecretBytes seal_key_from_derived_key(const SecretBytes& dk, const DerivedKeyRequest& req, const SecretBytes& salt) {
  return kdf(dk, "torgw-seal-key-v2", req, &salt);
}

Result<SecretBytes> request_chip_key(Device& dev, const DerivedKeyRequest& req_in, DerivedKeyRequest* sent) {
  DerivedKeyRequest req = req_in;
  req.key_sel = KeySel::VcekOnly;
  auto dk = dev.get_derived_key(req);
  if (!dk && dk.error().reason == "snp.device.status.invalid_param" && req.root == RootKey::Vcek) {
    // Firmware older than KEY_SEL reads bits 2:1 as reserved. KEY_SEL=0 means "the VLEK
    // if the host installed one": acceptable only if this VM's reports are VCEK-signed,
    // i.e. no VLEK is installed.
    ReportData zero{};
    TORGW_ASSIGN_OR_RETURN(auto rep, dev.get_report(zero, req.vmpl, false));
    TORGW_ASSIGN_OR_RETURN(auto parsed, parse_report(rep.report));
    if (parsed.signing_key() == kSigningKeyVlek)
      return make_error("identity.root.vlek",
                        "the SNP firmware refuses KEY_SEL=VCEK (INVALID_PARAM: it predates the field) and this host "
                        "signs reports with a VLEK, so KEY_SEL=0 would derive from the provider's VLEK, which is "
                        "not unique to this chip; run on SNP firmware that knows KEY_SEL or on a host without a VLEK");
    if (parsed.signing_key() != kSigningKeyVcek)
      return make_error("identity.root.unsigned",
                        "the SNP firmware refuses KEY_SEL=VCEK and the report names no VCEK signing key (SIGNING_KEY=" +
                            std::to_string(parsed.signing_key()) + "): cannot tell which root KEY_SEL=0 would use");
    req.key_sel = KeySel::VlekIfInstalled;
    dk = dev.get_derived_key(req);
  }
  if (!dk) return dk.error();
  if (sent) *sent = req;
  return std::move(*dk);
}

Result<Secret> derive(Device& dev, const DerivedKeyRequest& req, const SecretBytes& salt, DerivedKeyRequest* sent) {
  TORGW_ASSIGN_OR_RETURN(auto dk, request_chip_key(dev, req, sent));
  return Secret{SecretKind::Seed, seed_from_derived_key(dk, req, salt)};
}

Secret generate() {
  ensure_sodium();
  Secret s{SecretKind::Seed, SecretBytes(kSeedSize)};
  randombytes_buf(s.bytes.data(), s.bytes.size());
  return s;
}

// ---- sealed ----------------------------------------------------------------------------

SealBinding binding_from_report(const Report& r, const DerivedKeyRequest& req) {
  SealBinding b;
  b.req = req;
  b.chip_id = r.chip_id;
  b.measurement = r.measurement;
  b.policy = r.policy;
  return b;
}

namespace {

Bytes seal_header(std::uint8_t version, SecretKind kind, const SealBinding& b) {
  Bytes h(kSealMagic, kSealMagic + 7);
  h.push_back(version);
  h.push_back(static_cast<std::uint8_t>(kind));
  h.push_back(static_cast<std::uint8_t>(b.req.root));
  put_le(h, 0, 2);
  put_le(h, b.req.fields, 8);
  put_le(h, b.req.vmpl, 4);
  put_le(h, b.req.guest_svn, 4);
  put_le(h, b.req.tcb_version, 8);
  h.insert(h.end(), b.chip_id.begin(), b.chip_id.end());
  h.insert(h.end(), b.measurement.begin(), b.measurement.end());
  put_le(h, b.policy, 8);
  return h;
}

}  // namespace

Result<SealedBlob> parse_sealed_blob(ByteView blob) {
  if (blob.size() < kSealHeaderSize + kNonce + kSeedSize + kTag)
    return make_error("identity.blob.size", "sealed blob of " + std::to_string(blob.size()) + " bytes is too short");
  if (std::memcmp(blob.data(), kSealMagic, 7) != 0) return make_error("identity.blob.magic", "not a torgw sealed blob");
  if (blob[7] != kSealV1 && blob[7] != kSealV2)
    return make_error("identity.blob.version", "sealed blob version " + std::to_string(blob[7]));
  // The size check above makes every read below succeed; the reads are checked anyway,
  // so a later change to the layout cannot turn into a read past the end.
  ByteReader rd(blob.subspan(8), "identity.blob.size");
  SealedBlob s;
  s.version = blob[7];
  TORGW_ASSIGN_OR_RETURN(const std::uint8_t kind, rd.u8());
  if (!valid_kind(kind)) return make_error("identity.blob.kind", "secret kind " + std::to_string(kind));
  s.kind = static_cast<SecretKind>(kind);
  TORGW_ASSIGN_OR_RETURN(const std::uint8_t root, rd.u8());
  if (root > 1) return make_error("identity.blob.reserved", "root key " + std::to_string(root));
  s.binding.req.root = static_cast<RootKey>(root);
  TORGW_ASSIGN_OR_RETURN(const std::uint16_t reserved, rd.le16());
  if (reserved != 0) return make_error("identity.blob.reserved", "reserved bytes not zero");
  TORGW_ASSIGN_OR_RETURN(s.binding.req.fields, rd.le64());
  if (s.binding.req.fields & ~key_field::kAll) return make_error("identity.blob.reserved", "unknown key fields");
  TORGW_ASSIGN_OR_RETURN(s.binding.req.vmpl, rd.le32());
  TORGW_ASSIGN_OR_RETURN(s.binding.req.guest_svn, rd.le32());
  TORGW_ASSIGN_OR_RETURN(s.binding.req.tcb_version, rd.le64());
  TORGW_ASSIGN_OR_RETURN(const ByteView chip_id, rd.take(s.binding.chip_id.size()));
  std::memcpy(s.binding.chip_id.data(), chip_id.data(), chip_id.size());
  TORGW_ASSIGN_OR_RETURN(const ByteView measurement, rd.take(s.binding.measurement.size()));
  std::memcpy(s.binding.measurement.data(), measurement.data(), measurement.size());
  TORGW_ASSIGN_OR_RETURN(s.binding.policy, rd.le64());
  s.header.assign(blob.begin(), blob.begin() + kSealHeaderSize);
  TORGW_ASSIGN_OR_RETURN(const ByteView nonce, rd.take(kNonce));
  std::memcpy(s.nonce.data(), nonce.data(), kNonce);
  if (rd.remaining() != secret_size(s.kind) + kTag)
    return make_error("identity.blob.size", "sealed blob ciphertext of " + std::to_string(rd.remaining()) +
                                                " bytes for a " + std::to_string(secret_size(s.kind)) + "-byte secret");
  ByteView ct = rd.rest();
  s.ciphertext.assign(ct.begin(), ct.end());
  return s;
}

Result<Bytes> seal_with_key(const SecretBytes& dk, const SealBinding& b, const Secret& s, const SecretBytes& salt) {
  ensure_sodium();
  internal::Nonce nonce;
  randombytes_buf(nonce.data(), nonce.size());
  return internal::seal_with_nonce(dk, b, s, nonce, &salt);
}

namespace {

SecretBytes blob_seal_key(const SecretBytes& dk, const DerivedKeyRequest& req, const SecretBytes* salt) {
  return salt ? seal_key_from_derived_key(dk, req, *salt) : seal_key_from_derived_key(dk, req);
}

}  // namespace

Result<Bytes> internal::seal_with_nonce(const SecretBytes& dk, const SealBinding& b, const Secret& s,
                                        const Nonce& nonce, const SecretBytes* salt) {
  TORGW_TRY(check_secret(s));
  ensure_sodium();
  Bytes out = seal_header(salt ? kSealV2 : kSealV1, s.kind, b);
  const std::size_t aad_len = out.size();
  out.insert(out.end(), nonce.begin(), nonce.end());
  const std::size_t ct_off = out.size();
  out.resize(ct_off + s.bytes.size() + kTag);
  SecretBytes key = blob_seal_key(dk, b.req, salt);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out.data() + ct_off, &clen, s.bytes.data(), s.bytes.size(), out.data(),
                                             aad_len, nullptr, nonce.data(), key.data());
  return out;
}

namespace {

// Clear reasons before any cryptography: the blob's fields say where it belongs.
Status check_binding(const SealedBlob& blob, const SealBinding& cur) {
  const auto& want = blob.binding;
  if (want.req.root == RootKey::Vcek && want.chip_id != cur.chip_id)
    return make_error("identity.sealed.wrong_chip", "sealed on chip " + hx(want.chip_id, 8) + "..., this is chip " +
                                                        hx(cur.chip_id, 8) +
                                                        "... (a VM moved to another host: use "
                                                        "identity=transfer)");
  if ((want.req.fields & key_field::kMeasurement) && want.measurement != cur.measurement)
    return make_error("identity.sealed.wrong_measurement",
                      "sealed under measurement " + hx(want.measurement) + ", this VM has " + hx(cur.measurement));
  if ((want.req.fields & key_field::kPolicy) && want.policy != cur.policy)
    return make_error("identity.sealed.wrong_policy", "sealed under guest policy " + std::to_string(want.policy) +
                                                          ", this VM has " + std::to_string(cur.policy));
  if (want.req.fields != cur.req.fields || want.req.root != cur.req.root || want.req.vmpl != cur.req.vmpl)
    return make_error("identity.sealed.wrong_fields", "sealed with key fields " +
                                                          key_fields_to_string(want.req.fields) + ", unsealing with " +
                                                          key_fields_to_string(cur.req.fields));
  return {};
}

}  // namespace

Result<Secret> unseal_with_key(const SecretBytes& dk, const SealedBlob& blob, const SealBinding& cur,
                               const SecretBytes* salt) {
  TORGW_TRY(check_binding(blob, cur));
  const auto& want = blob.binding;
  if (blob.version == kSealV2 && !salt)
    return make_error("identity.salt.missing", "a version-2 sealed blob opens only with its identity_salt");
  ensure_sodium();
  Secret s{blob.kind, SecretBytes(secret_size(blob.kind))};
  SecretBytes key = blob_seal_key(dk, want.req, blob.version == kSealV2 ? salt : nullptr);
  unsigned long long mlen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(s.bytes.data(), &mlen, nullptr, blob.ciphertext.data(),
                                                 blob.ciphertext.size(), blob.header.data(), blob.header.size(),
                                                 blob.nonce.data(), key.data()) != 0 ||
      mlen != s.bytes.size())
    return make_error("identity.sealed.auth_failed",
                      "the derived key does not open this blob (another identity_salt, other firmware/TCB/image "
                      "fields, or a damaged blob)");
  return s;
}

Result<Bytes> seal(Device& dev, const Secret& s, const DerivedKeyRequest& req, const SecretBytes& salt,
                   DerivedKeyRequest* sent) {
  ReportData zero{};
  TORGW_ASSIGN_OR_RETURN(auto rep, dev.get_report(zero, req.vmpl, false));
  TORGW_ASSIGN_OR_RETURN(auto parsed, parse_report(rep.report));
  TORGW_ASSIGN_OR_RETURN(auto dk, request_chip_key(dev, req, sent));
  return seal_with_key(dk, binding_from_report(parsed, req), s, salt);
}

Result<Secret> unseal(Device& dev, ByteView blob, const SecretBytes& salt, DerivedKeyRequest* sent) {
  TORGW_ASSIGN_OR_RETURN(auto b, parse_sealed_blob(blob));
  ReportData zero{};
  TORGW_ASSIGN_OR_RETURN(auto rep, dev.get_report(zero, b.binding.req.vmpl, false));
  TORGW_ASSIGN_OR_RETURN(auto parsed, parse_report(rep.report));
  const SealBinding cur = binding_from_report(parsed, b.binding.req);
  TORGW_TRY(check_binding(b, cur));  // refuse before asking the PSP for a key
  TORGW_ASSIGN_OR_RETURN(auto dk, request_chip_key(dev, b.binding.req, sent));
  return unseal_with_key(dk, b, cur, &salt);
}

// ---- transfer --------------------------------------------------------------------------

TransferKeypair TransferKeypair::generate() {
  ensure_sodium();
  TransferKeypair kp;
  kp.secret_key = SecretBytes(crypto_box_SECRETKEYBYTES);
  crypto_box_keypair(kp.public_key.data(), kp.secret_key.data());
  return kp;
}

Bytes transfer_context(const std::array<std::uint8_t, 16>& boot_id, const std::array<std::uint8_t, 64>& report_data) {
  Bytes c(boot_id.begin(), boot_id.end());
  c.insert(c.end(), report_data.begin(), report_data.end());
  return c;
}

namespace {

Result<SecretBytes> transfer_key(const std::uint8_t* our_secret, const std::uint8_t* their_public,
                                 const std::uint8_t* sender_pub, const std::uint8_t* recipient_pub) {
  SecretBytes shared(crypto_scalarmult_BYTES);
  if (crypto_scalarmult(shared.data(), our_secret, their_public) != 0)
    return make_error("identity.transfer.bad_key", "X25519 with a low-order public key");
  Bytes msg(as_bytes("torgw-transfer-v1").begin(), as_bytes("torgw-transfer-v1").end());
  msg.insert(msg.end(), sender_pub, sender_pub + 32);
  msg.insert(msg.end(), recipient_pub, recipient_pub + 32);
  SecretBytes key(crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
  crypto_generichash(key.data(), key.size(), msg.data(), msg.size(), shared.data(), shared.size());
  return key;
}

}  // namespace

Result<TransferBlob> parse_transfer_blob(ByteView blob) {
  if (blob.size() < kTransferHeaderSize + kNonce + kSeedSize + kTag)
    return make_error("identity.blob.size", "transfer blob of " + std::to_string(blob.size()) + " bytes is too short");
  if (std::memcmp(blob.data(), kXferMagic, 7) != 0)
    return make_error("identity.blob.magic", "not a torgw transfer blob");
  if (blob[7] != 0x01) return make_error("identity.blob.version", "transfer blob version " + std::to_string(blob[7]));
  TransferBlob t;
  if (!valid_kind(blob[8])) return make_error("identity.blob.kind", "secret kind " + std::to_string(blob[8]));
  t.kind = static_cast<SecretKind>(blob[8]);
  std::memcpy(t.sender_public.data(), blob.data() + 9, 32);
  t.header.assign(blob.begin(), blob.begin() + kTransferHeaderSize);
  std::memcpy(t.nonce.data(), blob.data() + kTransferHeaderSize, kNonce);
  ByteView ct = blob.subspan(kTransferHeaderSize + kNonce);
  if (ct.size() != secret_size(t.kind) + kTag)
    return make_error("identity.blob.size", "transfer ciphertext of " + std::to_string(ct.size()) + " bytes");
  t.ciphertext.assign(ct.begin(), ct.end());
  return t;
}

Result<Bytes> wrap(const Secret& s, const std::array<std::uint8_t, 32>& recipient, ByteView context) {
  ensure_sodium();
  internal::Nonce nonce;
  randombytes_buf(nonce.data(), nonce.size());
  return internal::wrap_with(s, recipient, context, TransferKeypair::generate(), nonce);
}

Result<Bytes> internal::wrap_with(const Secret& s, const std::array<std::uint8_t, 32>& recipient, ByteView context,
                                  const TransferKeypair& eph, const Nonce& nonce) {
  TORGW_TRY(check_secret(s));
  ensure_sodium();
  TORGW_ASSIGN_OR_RETURN(
      auto key, transfer_key(eph.secret_key.data(), recipient.data(), eph.public_key.data(), recipient.data()));
  Bytes out(kXferMagic, kXferMagic + 8);
  out.push_back(static_cast<std::uint8_t>(s.kind));
  out.insert(out.end(), eph.public_key.begin(), eph.public_key.end());
  Bytes aad = out;
  aad.insert(aad.end(), context.begin(), context.end());
  out.insert(out.end(), nonce.begin(), nonce.end());
  const std::size_t off = out.size();
  out.resize(off + s.bytes.size() + kTag);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out.data() + off, &clen, s.bytes.data(), s.bytes.size(), aad.data(),
                                             aad.size(), nullptr, nonce.data(), key.data());
  return out;
}

Result<Secret> unwrap(ByteView blob, const TransferKeypair& kp, ByteView context) {
  TORGW_ASSIGN_OR_RETURN(auto t, parse_transfer_blob(blob));
  ensure_sodium();
  TORGW_ASSIGN_OR_RETURN(auto key, transfer_key(kp.secret_key.data(), t.sender_public.data(), t.sender_public.data(),
                                                kp.public_key.data()));
  Bytes aad = t.header;
  aad.insert(aad.end(), context.begin(), context.end());
  Secret s{t.kind, SecretBytes(secret_size(t.kind))};
  unsigned long long mlen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(s.bytes.data(), &mlen, nullptr, t.ciphertext.data(),
                                                 t.ciphertext.size(), aad.data(), aad.size(), t.nonce.data(),
                                                 key.data()) != 0 ||
      mlen != s.bytes.size())
    return make_error("identity.transfer.auth_failed",
                      "the blob was not wrapped for this VM's transfer key and boot (or is damaged)");
  return s;
}

}  // namespace torgw::snp::identity
