#include "snp/verify.h"

#include <algorithm>
#include <cstring>
#include <ctime>

#include "snp/ossl_internal.h"

namespace torgw::snp {

using namespace ossl;

const char* to_string(SignerKind k) { return k == SignerKind::Vcek ? "VCEK" : "VLEK"; }

const std::array<PinnedProduct, 3>& pinned_products() {
  static const std::array<PinnedProduct, 3> p = {{
      {Product::Milan, "9f056bee44377e29308cb5ffa895bdfb62d18881fa6bed8d6f075b0204089cb9",
       "42491669ccb851d627ea9846cd24eccbeb7de7c2a62740120fff88001d38ebb6",
       "66450a123ea5876206df67f2514a4fea224c0f63b18313423078b0edc4535e33"},
      {Product::Genoa, "429a69c9422aa258ee4d8db5fcda9c6470ef15f8cd5a9cebd6cbc7d90b863831",
       "0324d55bcd48ba877a8fd87c0e1b4934dec8448e3807a24384a34dc6a6c9ebb8",
       "7d1633252ebbadaa75f96e9b4e6f7d43a90ceb3f843937482630f8da2459264e"},
      {Product::Turin, "4f125410563a2ab9a50356f9243f6fe0b6f73de98603f53f90339c70e9d7ad08",
       "0000ead352025f208bf55297c4192c34cd1b878002107366d8f2065a9ae7d3a9",
       "bfc441408b2f806c5dbf180bd8920e6e60dd404d82141780d85dbf962954d386"},
  }};
  return p;
}

Result<Bytes> load_certificate(ByteView in) {
  static constexpr std::string_view kPem = "-----BEGIN CERTIFICATE-----";
  X509Ptr x;
  if (as_chars(in).find(kPem) != std::string_view::npos) {
    BioPtr bio(BIO_new_mem_buf(in.data(), static_cast<int>(std::min<std::size_t>(in.size(), 1 << 20))));
    x.reset(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  } else {
    x = x509_from_der(in);
  }
  if (!x) return make_error("snp.cert.parse", "not a PEM or DER X.509 certificate: " + last_error());
  return x509_to_der(x.get());
}

Result<Bytes> certificate_spki(ByteView cert_der) {
  auto x = x509_from_der(cert_der);
  if (!x) return make_error("snp.cert.parse", last_error());
  return spki_der(x.get());
}

Result<std::string> spki_sha256_hex(ByteView cert_der) {
  auto x = x509_from_der(cert_der);
  if (!x) return make_error("snp.cert.parse", last_error());
  return to_hex(sha256(spki_der(x.get())));
}

Result<CertChain> chain_from_cert_table(const std::vector<CertEntry>& entries) {
  const CertEntry* vcek = find_cert(entries, CertKind::Vcek);
  const CertEntry* vlek = find_cert(entries, CertKind::Vlek);
  if (vcek && vlek) return make_error("snp.chain.missing_cert", "cert table holds both a VCEK and a VLEK");
  if (!vcek && !vlek) return make_error("snp.chain.missing_cert", "cert table holds no VCEK or VLEK");
  CertChain c;
  c.vek = vcek ? vcek->data : vlek->data;
  c.vek_kind = vcek ? SignerKind::Vcek : SignerKind::Vlek;
  if (const auto* ask = find_cert(entries, CertKind::Ask)) c.ask = ask->data;
  if (const auto* ark = find_cert(entries, CertKind::Ark)) c.ark = ark->data;
  if (const auto* crl = find_cert(entries, CertKind::Crl)) c.crl = crl->data;
  return c;
}

// ---- extensions ----------------------------------------------------------------------

Result<std::uint8_t> parse_der_small_uint(ByteView d) {
  // 02 01 vv (vv < 0x80) | 02 02 00 vv (vv >= 0x80)
  if (d.size() == 3 && d[0] == 0x02 && d[1] == 0x01 && d[2] < 0x80) return d[2];
  if (d.size() == 4 && d[0] == 0x02 && d[1] == 0x02 && d[2] == 0x00 && d[3] >= 0x80) return d[3];
  return make_error("snp.vek.bad_extension", "not a minimal DER INTEGER in 0..255");
}

namespace {

constexpr std::string_view kAmdArc = "1.3.6.1.4.1.3704.1.";

std::string obj_text(const ASN1_OBJECT* o) {
  char buf[128];
  int n = OBJ_obj2txt(buf, sizeof buf, o, 1);
  if (n <= 0 || n >= static_cast<int>(sizeof buf)) return {};
  return std::string(buf, static_cast<std::size_t>(n));
}

Result<std::string> parse_der_string(ByteView d, std::uint8_t tag) {
  if (d.size() < 2 || d[0] != tag || d[1] >= 0x80 || d.size() != 2u + d[1])
    return make_error("snp.vek.bad_extension", "not a short DER string");
  std::string s(as_chars(d.subspan(2)));
  for (char c : s)
    if (c < 0x20 || c > 0x7e) return make_error("snp.vek.bad_extension", "non-printable string");
  return s;
}

std::string name_oneline(const X509_NAME* n) {
  char buf[512];
  X509_NAME_oneline(n, buf, sizeof buf);
  return buf;
}

// RSASSA-PSS, hash SHA-384, MGF1 with SHA-384, salt 48: the only signature algorithm AMD
// uses for ARK, ASK/ASVK and VCEK/VLEK certificates. AMD's ARK/ASK spell out the default
// trailer field ([3] INTEGER 1); VCEKs omit it. Both encodings, nothing else.
constexpr std::uint8_t kPssSha384Params[] = {
    0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0xa1,
    0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30, 0x0d, 0x06, 0x09,
    0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0xa2, 0x03, 0x02, 0x01, 0x30};
constexpr std::uint8_t kPssOid[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a};
constexpr std::uint8_t kTrailer1[] = {0xa3, 0x03, 0x02, 0x01, 0x01};

bool is_amd_pss_alg(ByteView der) {
  auto matches = [&](bool trailer) {
    const std::size_t params = sizeof kPssSha384Params + (trailer ? sizeof kTrailer1 : 0);
    const std::size_t body = sizeof kPssOid + 2 + params;
    Bytes want = {0x30, static_cast<std::uint8_t>(body)};
    want.insert(want.end(), std::begin(kPssOid), std::end(kPssOid));
    want.push_back(0x30);
    want.push_back(static_cast<std::uint8_t>(params));
    want.insert(want.end(), std::begin(kPssSha384Params), std::end(kPssSha384Params));
    if (trailer) want.insert(want.end(), std::begin(kTrailer1), std::end(kTrailer1));
    return std::equal(der.begin(), der.end(), want.begin(), want.end());
  };
  return matches(false) || matches(true);
}

Status check_sig_alg(X509* x, const char* what) {
  const X509_ALGOR* alg = nullptr;
  X509_get0_signature(nullptr, &alg, x);
  unsigned char* der = nullptr;
  int n = i2d_X509_ALGOR(const_cast<X509_ALGOR*>(alg), &der);
  bool ok = n > 0 && is_amd_pss_alg(ByteView(der, static_cast<std::size_t>(n)));
  OPENSSL_free(der);
  if (!ok)
    return make_error("snp.chain.bad_sig_alg", std::string(what) + " is not signed with RSASSA-PSS SHA-384 salt 48");
  return {};
}

Status check_signed_by(X509* child, X509* parent, const char* child_name, const char* parent_name) {
  TORGW_TRY(check_sig_alg(child, child_name));
  if (X509_NAME_cmp(X509_get_issuer_name(child), X509_get_subject_name(parent)) != 0)
    return make_error("snp.chain.issuer_mismatch", std::string(child_name) + " issuer " +
                                                       name_oneline(X509_get_issuer_name(child)) + " is not " +
                                                       parent_name + " " + name_oneline(X509_get_subject_name(parent)));
  EVP_PKEY* key = X509_get0_pubkey(parent);
  if (!key || X509_verify(child, key) != 1) {
    ERR_clear_error();
    return make_error("snp.chain.bad_signature",
                      std::string(child_name) + " signature does not verify with the " + parent_name + " key");
  }
  return {};
}

Status check_validity(X509* x, std::time_t at, const char* what) {
  if (X509_cmp_time(X509_get0_notBefore(x), &at) >= 0)
    return make_error("snp.chain.not_yet_valid", std::string(what) + " not valid before its notBefore");
  if (X509_cmp_time(X509_get0_notAfter(x), &at) <= 0)
    return make_error("snp.chain.expired", std::string(what) + " expired (notAfter passed)");
  return {};
}

// AMD's CRL (per product, issued by the ARK) lists revoked ASKs/ASVKs.
Status check_crl(ByteView der, X509* ark, X509* ask) {
  const unsigned char* p = der.data();
  std::unique_ptr<X509_CRL, Deleter<X509_CRL, X509_CRL_free>> crl(
      d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  if (!crl || p != der.data() + der.size()) {
    ERR_clear_error();
    return make_error("snp.crl.parse", "the CRL is not DER X.509 CRL");
  }
  const X509_ALGOR* alg = nullptr;
  X509_CRL_get0_signature(crl.get(), nullptr, &alg);
  unsigned char* alg_der = nullptr;
  int n = i2d_X509_ALGOR(const_cast<X509_ALGOR*>(alg), &alg_der);
  const bool alg_ok = n > 0 && is_amd_pss_alg(ByteView(alg_der, static_cast<std::size_t>(n)));
  OPENSSL_free(alg_der);
  if (!alg_ok) return make_error("snp.chain.bad_sig_alg", "CRL is not signed with RSASSA-PSS SHA-384 salt 48");
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(ark)) != 0 ||
      X509_CRL_verify(crl.get(), X509_get0_pubkey(ark)) != 1) {
    ERR_clear_error();
    return make_error("snp.crl.bad_signature", "the CRL is not signed by this ARK");
  }
  X509_REVOKED* rev = nullptr;
  if (X509_CRL_get0_by_cert(crl.get(), &rev, ask) == 1)
    return make_error("snp.chain.revoked",
                      "the ASK/ASVK " + name_oneline(X509_get_subject_name(ask)) + " is on the ARK's revocation list");
  return {};
}

}  // namespace

Result<VekExtensions> parse_vek_extensions(ByteView vek_der) {
  auto x = x509_from_der(vek_der);
  if (!x) return make_error("snp.cert.parse", last_error());
  VekExtensions v;
  const int n = X509_get_ext_count(x.get());
  for (int i = 0; i < n; ++i) {
    X509_EXTENSION* e = X509_get_ext(x.get(), i);
    std::string oid = obj_text(X509_EXTENSION_get_object(e));
    if (oid.compare(0, kAmdArc.size(), kAmdArc) != 0) continue;
    std::string sub = oid.substr(kAmdArc.size());
    const ASN1_OCTET_STRING* os = X509_EXTENSION_get_data(e);
    ByteView val(ASN1_STRING_get0_data(os), static_cast<std::size_t>(ASN1_STRING_length(os)));
    auto small = [&](std::optional<std::uint8_t>& dst) -> Status {
      auto r = parse_der_small_uint(val);
      if (!r) return make_error(r.error().reason, oid + ": " + r.error().detail);
      dst = *r;
      return {};
    };
    if (sub == "1") TORGW_TRY(small(v.struct_version));
    else if (sub == "2") {
      auto s = parse_der_string(val, 0x16);  // IA5String
      if (!s) return make_error("snp.vek.bad_extension", oid + ": " + s.error().detail);
      v.product_name = *s;
    } else if (sub == "3.1") TORGW_TRY(small(v.bl));
    else if (sub == "3.2") TORGW_TRY(small(v.tee));
    else if (sub == "3.3") TORGW_TRY(small(v.snp));
    else if (sub == "3.8") TORGW_TRY(small(v.ucode));
    else if (sub == "3.9") TORGW_TRY(small(v.fmc));
    else if (sub == "4") v.hwid.assign(val.begin(), val.end());  // raw bytes, no inner DER
    else if (sub == "5") {
      auto s = parse_der_string(val, 0x0c);  // UTF8String
      if (!s) s = parse_der_string(val, 0x16);
      if (!s) return make_error("snp.vek.bad_extension", oid + ": " + s.error().detail);
      v.csp_id = *s;
    }
  }
  return v;
}

Result<VerifiedChain> verify_chain(const CertChain& c, const ChainOptions& opts) {
  if (c.vek.empty()) return make_error("snp.chain.missing_cert", "no VCEK/VLEK");
  if (c.ask.empty()) return make_error("snp.chain.missing_cert", "no ASK/ASVK (pass --ask or a cert table with one)");
  if (c.ark.empty()) return make_error("snp.chain.missing_cert", "no ARK (pass --ark or a cert table with one)");
  auto vek = x509_from_der(c.vek);
  if (!vek) return make_error("snp.cert.parse", "VCEK/VLEK: " + last_error());
  auto ask = x509_from_der(c.ask);
  if (!ask) return make_error("snp.cert.parse", "ASK/ASVK: " + last_error());
  auto ark = x509_from_der(c.ark);
  if (!ark) return make_error("snp.cert.parse", "ARK: " + last_error());

  VerifiedChain out;
  out.ark_spki_sha256 = to_hex(sha256(spki_der(ark.get())));
  out.ask_spki_sha256 = to_hex(sha256(spki_der(ask.get())));

  // 1. Pins: the ARK names the product; the ASK or ASVK of that product names the signer.
  const PinnedProduct* pin = nullptr;
  for (const auto& p : pinned_products())
    if (out.ark_spki_sha256 == p.ark_spki_sha256) pin = &p;
  std::optional<SignerKind> signer;
  if (pin) {
    out.product = pin->product;
    if (out.ask_spki_sha256 == pin->ask_spki_sha256) signer = SignerKind::Vcek;
    else if (out.ask_spki_sha256 == pin->asvk_spki_sha256) signer = SignerKind::Vlek;
    else
      return make_error("snp.chain.ask_not_pinned", "ASK/ASVK SPKI sha256 " + out.ask_spki_sha256 + " is not AMD's " +
                                                        to_string(pin->product) + " ASK or ASVK");
  } else if (opts.simulated_ark) {
    auto sim = x509_from_der(*opts.simulated_ark);
    if (!sim) return make_error("snp.cert.parse", "simulated ARK: " + last_error());
    if (spki_der(sim.get()) != spki_der(ark.get()))
      return make_error("snp.chain.ark_not_pinned", "ARK SPKI sha256 " + out.ark_spki_sha256 +
                                                        " is neither an AMD root nor the given simulated ARK");
    out.simulated = true;
    out.product = Product::Milan;  // the simulated PSP models a Milan part
    signer = c.vek_kind.value_or(SignerKind::Vcek);
  } else {
    return make_error("snp.chain.ark_not_pinned",
                      "ARK SPKI sha256 " + out.ark_spki_sha256 + " is not a pinned AMD root (Milan, Genoa, Turin)");
  }
  out.signer = *signer;
  if (c.vek_kind && *c.vek_kind != out.signer)
    return make_error("snp.chain.signer_kind", std::string("cert table says ") + to_string(*c.vek_kind) +
                                                   " but the chain goes through the " +
                                                   (out.signer == SignerKind::Vcek ? "ASK" : "ASVK"));

  // 2. Signatures: ARK self-signed, ARK -> ASK/ASVK -> VCEK/VLEK, all RSASSA-PSS SHA-384.
  const char* ask_name = out.signer == SignerKind::Vcek ? "ASK" : "ASVK";
  const char* vek_name = out.signer == SignerKind::Vcek ? "VCEK" : "VLEK";
  TORGW_TRY(check_signed_by(ark.get(), ark.get(), "ARK", "ARK"));
  TORGW_TRY(check_signed_by(ask.get(), ark.get(), ask_name, "ARK"));
  TORGW_TRY(check_signed_by(vek.get(), ask.get(), vek_name, ask_name));

  // 3. Validity at the pinned time.
  const std::time_t at = opts.at ? static_cast<std::time_t>(*opts.at) : std::time(nullptr);
  TORGW_TRY(check_validity(ark.get(), at, "ARK"));
  TORGW_TRY(check_validity(ask.get(), at, ask_name));
  TORGW_TRY(check_validity(vek.get(), at, vek_name));
  if (!c.crl.empty()) {
    TORGW_TRY(check_crl(c.crl, ark.get(), ask.get()));
    out.crl_checked = true;
  }

  // 4. The VCEK/VLEK key is ECDSA P-384.
  EVP_PKEY* key = X509_get0_pubkey(vek.get());
  char group[64] = {};
  std::size_t glen = 0;
  if (!key || !EVP_PKEY_is_a(key, "EC") ||
      EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof group, &glen) != 1 ||
      std::string_view(group, glen) != "secp384r1") {
    ERR_clear_error();
    return make_error("snp.chain.vek_key", std::string(vek_name) + " key is not ECDSA P-384");
  }
  out.vek_spki = spki_der(vek.get());
  out.vek_subject = name_oneline(X509_get_subject_name(vek.get()));

  // 5. Extensions (compared with the report by check_vek_matches_report).
  TORGW_ASSIGN_OR_RETURN(auto ext, parse_vek_extensions(c.vek));
  out.ext = std::move(ext);
  if (!out.simulated && !out.ext.product_name.empty()) {
    // "Milan-B0", "Genoa", "Turin", ...: the name must be the pinned product's.
    std::string want = to_string(out.product);
    if (out.ext.product_name.compare(0, want.size(), want) != 0)
      return make_error("snp.vek.product_mismatch",
                        std::string(vek_name) + " product " + out.ext.product_name + " under the " + want + " ASK");
  }
  return out;
}

Status check_vek_matches_report(const Report& r, const VerifiedChain& chain) {
  const std::uint32_t want_key = chain.signer == SignerKind::Vcek ? kSigningKeyVcek : kSigningKeyVlek;
  if (r.signing_key() == kSigningKeyNone) return make_error("snp.signature.no_signing_key", "report is unsigned");
  if (r.signing_key() != want_key)
    return make_error("snp.chain.signer_kind", "report SIGNING_KEY=" + std::to_string(r.signing_key()) +
                                                   " but the certificate is a " + to_string(chain.signer));
  const auto& e = chain.ext;
  const Tcb t = decode_tcb(r.reported_tcb, chain.product);
  struct Field {
    const char* name;
    const std::optional<std::uint8_t>& ext;
    std::uint8_t report;
  };
  std::vector<Field> fields = {{"blSPL", e.bl, t.bootloader},
                               {"teeSPL", e.tee, t.tee},
                               {"snpSPL", e.snp, t.snp},
                               {"ucodeSPL", e.ucode, t.microcode}};
  if (chain.product == Product::Turin) fields.push_back({"fmcSPL", e.fmc, t.fmc});
  for (const auto& f : fields) {
    if (!f.ext) return make_error("snp.vek.missing_extension", std::string(f.name) + " extension missing");
    if (*f.ext != f.report)
      return make_error("snp.vek.tcb_mismatch", std::string(f.name) + "=" + std::to_string(*f.ext) +
                                                    " but REPORTED_TCB has " + std::to_string(f.report));
  }
  if (chain.signer == SignerKind::Vcek && !r.mask_chip_key()) {
    const std::size_t want = chain.product == Product::Turin ? 8 : 64;
    if (e.hwid.size() != want)
      return make_error("snp.vek.missing_extension",
                        "hwID extension missing or not " + std::to_string(want) + " bytes");
    if (!std::equal(e.hwid.begin(), e.hwid.end(), r.chip_id.begin()) ||
        !std::all_of(r.chip_id.begin() + static_cast<std::ptrdiff_t>(want), r.chip_id.end(),
                     [](std::uint8_t b) { return b == 0; }))
      return make_error("snp.vek.chip_id_mismatch", "VCEK hwID " + to_hex(e.hwid) + " is not CHIP_ID " +
                                                        to_hex(ByteView(r.chip_id.data(), r.chip_id.size())));
  }
  return {};
}

Status verify_report_signature(ByteView report, ByteView vek_spki) {
  if (report.size() != kReportSize) return make_error("snp.report.size", "report is not 1184 bytes");
  const unsigned char* p = vek_spki.data();
  PkeyPtr key(d2i_PUBKEY(nullptr, &p, static_cast<long>(vek_spki.size())));
  if (!key) return make_error("snp.chain.vek_key", last_error());
  // r, s: 72-byte little-endian; parse_report already refused non-zero high bytes, but
  // this function stands alone, so decode from the raw bytes.
  const std::uint8_t* sig = report.data() + kSignatureOffset;
  BnPtr r(BN_lebin2bn(sig, static_cast<int>(kSigComponentSize), nullptr));
  BnPtr s(BN_lebin2bn(sig + kSigComponentSize, static_cast<int>(kSigComponentSize), nullptr));
  EcdsaSigPtr es(ECDSA_SIG_new());
  if (!r || !s || !es || ECDSA_SIG_set0(es.get(), r.get(), s.get()) != 1)
    return make_error("snp.signature.invalid", "cannot build the signature");
  (void)r.release();
  (void)s.release();
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(es.get(), &der);
  if (der_len <= 0) return make_error("snp.signature.invalid", "cannot encode the signature");
  MdCtxPtr md(EVP_MD_CTX_new());
  int ok = md && EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha384(), nullptr, key.get()) == 1
               ? EVP_DigestVerify(md.get(), der, static_cast<std::size_t>(der_len), report.data(), kSignedSize)
               : -1;
  OPENSSL_free(der);
  ERR_clear_error();
  if (ok != 1) return make_error("snp.signature.invalid", "ECDSA P-384 signature over 0x000..0x29F does not verify");
  return {};
}

Verification verify_attestation(ByteView report_bytes, const CertChain& chain, const VerifyOptions& opts) {
  Verification v;
  auto rep = parse_report(report_bytes);
  if (!rep) {
    v.status = rep.error();
    return v;
  }
  v.report = *rep;
  auto ch = verify_chain(chain, opts.chain);
  if (!ch) {
    v.status = ch.error();
    return v;
  }
  v.chain = std::move(*ch);
  if (auto s = check_vek_matches_report(*v.report, *v.chain); !s) {
    v.status = s;
    return v;
  }
  if (auto s = verify_report_signature(report_bytes, v.chain->vek_spki); !s) {
    v.status = s;
    return v;
  }
  v.signature_ok = true;
  v.status = validate_policy(*v.report, v.chain->product, opts.policy);
  return v;
}

}  // namespace torgw::snp
