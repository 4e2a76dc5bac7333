// Trust decisions on an SNP attestation: the AMD certificate chain (ARK -> ASK -> VCEK or
// ARK -> ASVK -> VLEK, RSASSA-PSS SHA-384), pinned roots, the VCEK/VLEK extensions
// against the report, and the report's ECDSA P-384 signature. Pure functions over bytes.
//
// The host supplies the cert table, so nothing it contains is trusted by itself: the ARK
// and the ASK/ASVK are pinned by the SHA-256 of their SubjectPublicKeyInfo DER, and the
// pinned ASK that verifies the chain decides the product (Milan, Genoa, Turin) and with
// it the TCB layout. A chain rooted in the simulated PSP's ARK verifies only when the
// caller passes that ARK explicitly, and the result then says `simulated`.
//
// Reason tokens (stable): snp.cert.parse, snp.chain.missing_cert, snp.chain.ark_not_pinned,
// snp.chain.ask_not_pinned, snp.chain.bad_sig_alg, snp.chain.bad_signature,
// snp.chain.issuer_mismatch, snp.chain.not_yet_valid, snp.chain.expired, snp.chain.vek_key,
// snp.chain.signer_kind, snp.vek.missing_extension, snp.vek.bad_extension,
// snp.vek.tcb_mismatch, snp.vek.chip_id_mismatch, snp.vek.product_mismatch,
// snp.signature.invalid, snp.signature.no_signing_key, snp.crl.parse,
// snp.crl.bad_signature, snp.chain.revoked, plus those of abi.h/validate.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/bytes.h"
#include "common/result.h"
#include "snp/abi.h"
#include "snp/validate.h"

namespace torgw::snp {

enum class SignerKind { Vcek, Vlek };
const char* to_string(SignerKind k);

// The AMD roots we trust: SHA-256(SPKI DER) of each product's ARK, ASK and ASVK.
struct PinnedProduct {
  Product product;
  const char* ark_spki_sha256;
  const char* ask_spki_sha256;
  const char* asvk_spki_sha256;
};
const std::array<PinnedProduct, 3>& pinned_products();

// PEM ("-----BEGIN CERTIFICATE-----") or DER in, DER out (re-encoded by OpenSSL so the
// caller can hash/store it). Error: snp.cert.parse.
Result<Bytes> load_certificate(ByteView pem_or_der);
// A certificate's SubjectPublicKeyInfo DER (no trust decision). Error: snp.cert.parse.
Result<Bytes> certificate_spki(ByteView cert_der);
// SHA-256 of a certificate's SubjectPublicKeyInfo DER, lower-case hex.
Result<std::string> spki_sha256_hex(ByteView cert_der);

struct CertChain {
  Bytes vek;                           // VCEK or VLEK, DER
  Bytes ask;                           // ASK or ASVK, DER (empty: missing)
  Bytes ark;                           // DER (empty: missing)
  Bytes crl;                           // AMD's CRL for this product (DER), optional: when present it must be
                                       // signed by the ARK, and the ASK/ASVK must not be on it
  std::optional<SignerKind> vek_kind;  // from the cert table GUID, when known
};
// Picks VCEK|VLEK, ASK, ARK out of a parsed cert table (other entries are ignored).
// Error: snp.chain.missing_cert (no VCEK/VLEK, or both).
Result<CertChain> chain_from_cert_table(const std::vector<CertEntry>& entries);

// AMD's extensions in a VCEK/VLEK (OID 1.3.6.1.4.1.3704.1.*).
struct VekExtensions {
  std::optional<std::uint8_t> struct_version;            // .1.1
  std::string product_name;                              // .1.2, e.g. "Milan-B0"
  std::optional<std::uint8_t> bl, tee, snp, ucode, fmc;  // .3.1 .3.2 .3.3 .3.8 .3.9
  Bytes hwid;                                            // .4 (64 bytes; 8 on Turin; absent in VLEKs)
  std::string csp_id;                                    // .5 (VLEK only)
};
// Errors: snp.cert.parse, snp.vek.bad_extension.
Result<VekExtensions> parse_vek_extensions(ByteView vek_der);
// Strict DER INTEGER in 0..255 (minimal encoding, one pad byte allowed only for >= 0x80).
// Exposed for the fuzzer. Error: snp.vek.bad_extension.
Result<std::uint8_t> parse_der_small_uint(ByteView der);

struct ChainOptions {
  std::optional<std::int64_t> at;  // validity time (unix seconds); nullopt = now
  // The simulated PSP's ARK (DER). Only when set does a chain rooted in it verify, and
  // then with `simulated = true`. Never set this for production verification.
  std::optional<Bytes> simulated_ark;
};

struct VerifiedChain {
  Product product = Product::Milan;
  SignerKind signer = SignerKind::Vcek;
  bool simulated = false;
  VekExtensions ext;
  Bytes vek_spki;  // SubjectPublicKeyInfo DER of the VCEK/VLEK
  std::string ark_spki_sha256, ask_spki_sha256;
  std::string vek_subject;   // one-line subject of the VCEK/VLEK, for display
  bool crl_checked = false;  // a CRL signed by the ARK was present and the ASK is not on it
};
Result<VerifiedChain> verify_chain(const CertChain& chain, const ChainOptions& opts);

// The VCEK/VLEK extensions equal REPORTED_TCB (and CHIP_ID unless MASK_CHIP_KEY), and
// the signer kind matches SIGNING_KEY.
Status check_vek_matches_report(const Report& r, const VerifiedChain& chain);

// ECDSA P-384 / SHA-384 over report bytes 0x000..0x29F with the key in `vek_spki`.
Status verify_report_signature(ByteView report_bytes, ByteView vek_spki);

struct VerifyOptions {
  ChainOptions chain;
  Policy policy;
};

// Everything a verifier needs to print, even on failure.
struct Verification {
  std::optional<Report> report;        // set if the report parsed
  std::optional<VerifiedChain> chain;  // set if the chain verified
  bool signature_ok = false;
  Status status;  // the first failure, or ok
  bool valid() const { return status.ok(); }
};

// parse -> chain -> extensions vs report -> signature -> policy.
Verification verify_attestation(ByteView report_bytes, const CertChain& chain, const VerifyOptions& opts);

}  // namespace torgw::snp
