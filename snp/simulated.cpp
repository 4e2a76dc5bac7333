#include "snp/simulated.h"

#include <fcntl.h>
#include <openssl/rsa.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>

#include "common/fd.h"
#include "snp/ossl_internal.h"

namespace torgw::snp {

using namespace ossl;

namespace {

Bytes blake2b(ByteView key, ByteView msg, std::size_t out_len) {
  ensure_sodium();
  Bytes out(out_len);
  crypto_generichash(out.data(), out.size(), msg.data(), msg.size(), key.empty() ? nullptr : key.data(), key.size());
  return out;
}

void append_le(Bytes& b, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

Error crypto_error(const std::string& what) { return make_error("snp.sim.crypto", what + ": " + last_error()); }

// ---- key and certificate making --------------------------------------------------------

PkeyPtr gen_rsa4096() { return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(4096))); }
PkeyPtr gen_p384() { return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384")); }

bool add_name(X509_NAME* n, const char* field, const std::string& value) {
  return X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(value.c_str()), -1,
                                    -1, 0) == 1;
}

NamePtr amd_like_name(const std::string& cn) {
  NamePtr n(X509_NAME_new());
  add_name(n.get(), "OU", "Engineering");
  add_name(n.get(), "C", "US");
  add_name(n.get(), "L", "Santa Clara");
  add_name(n.get(), "ST", "CA");
  add_name(n.get(), "O", "torgw SIMULATED AMD PSP - not Advanced Micro Devices");
  add_name(n.get(), "CN", cn);
  return n;
}

bool add_raw_ext(X509* x, const std::string& oid, ByteView value) {
  ObjPtr obj(OBJ_txt2obj(oid.c_str(), 1));
  OctetPtr os(ASN1_OCTET_STRING_new());
  if (!obj || !os || ASN1_OCTET_STRING_set(os.get(), value.data(), static_cast<int>(value.size())) != 1) return false;
  ExtPtr ext(X509_EXTENSION_create_by_OBJ(nullptr, obj.get(), 0, os.get()));
  return ext && X509_add_ext(x, ext.get(), -1) == 1;
}

Bytes der_small_uint(std::uint8_t v) { return v < 0x80 ? Bytes{0x02, 0x01, v} : Bytes{0x02, 0x02, 0x00, v}; }

Bytes der_ia5(const std::string& s) {
  Bytes b{0x16, static_cast<std::uint8_t>(s.size())};
  b.insert(b.end(), s.begin(), s.end());
  return b;
}

// AMD's certificate signature: RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48.
bool sign_pss(X509* x, EVP_PKEY* issuer_key) {
  MdCtxPtr md(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  return md && EVP_DigestSignInit(md.get(), &pctx, EVP_sha384(), nullptr, issuer_key) == 1 &&
         EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48) == 1 && EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()) == 1 &&
         X509_sign_ctx(x, md.get()) > 0;
}

struct CertSpec {
  std::string cn;
  long serial = 0;
  long days = 0;
};

X509Ptr make_cert(EVP_PKEY* key, const CertSpec& spec, X509* issuer, EVP_PKEY* issuer_key,
                  const std::function<bool(X509*)>& extensions = {}) {
  X509Ptr x(X509_new());
  if (!x) return nullptr;
  NamePtr subject = amd_like_name(spec.cn);
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), spec.serial);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -24 * 3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), spec.days * 24 * 3600);
  X509_set_subject_name(x.get(), subject.get());
  X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer) : subject.get());
  X509_set_pubkey(x.get(), key);
  if (extensions && !extensions(x.get())) return nullptr;
  if (!sign_pss(x.get(), issuer_key)) return nullptr;
  return x;
}

// ---- state dir ---------------------------------------------------------------------

Status write_file_atomic(const std::string& path, ByteView data, mode_t mode) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return make_error("snp.sim.state", tmp + ": " + std::strerror(errno));
  ::fchmod(::fileno(f), mode);
  bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return make_error("snp.sim.state", path + ": write failed");
  }
  return {};
}

std::optional<std::string> read_small_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return s;
}

std::string key_pem(EVP_PKEY* k) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), k, nullptr, nullptr, 0, nullptr, nullptr);
  char* d = nullptr;
  long n = BIO_get_mem_data(bio.get(), &d);
  return std::string(d, static_cast<std::size_t>(n));
}

PkeyPtr key_from_pem(const std::string& s) {
  BioPtr bio(BIO_new_mem_buf(s.data(), static_cast<int>(s.size())));
  return PkeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

X509Ptr cert_from_pem(const std::string& s) {
  BioPtr bio(BIO_new_mem_buf(s.data(), static_cast<int>(s.size())));
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

// A key+certificate pair that lives in `dir` as <stem>.key / <stem>.pem (or in memory).
struct KeyCert {
  PkeyPtr key;
  X509Ptr cert;
  Bytes der;
};

Result<KeyCert> load_or_make(const std::string& dir, const std::string& stem,
                             const std::function<Result<KeyCert>()>& make) {
  if (!dir.empty()) {
    auto k = read_small_file(dir + "/" + stem + ".key");
    auto c = read_small_file(dir + "/" + stem + ".pem");
    if (k && c) {
      KeyCert kc{key_from_pem(*k), cert_from_pem(*c), {}};
      if (!kc.key || !kc.cert) return make_error("snp.sim.state", dir + "/" + stem + ": unreadable key or cert");
      kc.der = x509_to_der(kc.cert.get());
      return kc;
    }
  }
  auto kc = make();
  if (!kc) return kc.error();
  kc->der = x509_to_der(kc->cert.get());
  if (!dir.empty()) {
    TORGW_TRY(write_file_atomic(dir + "/" + stem + ".key", as_bytes(key_pem(kc->key.get())), 0600));
    TORGW_TRY(write_file_atomic(dir + "/" + stem + ".pem", as_bytes(x509_to_pem(kc->cert.get())), 0644));
  }
  return kc;
}

// One process-wide lock: OpenSSL objects are not shared across threads here, but the
// state dir is, and key generation is slow enough to make races likely.
std::mutex& state_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

std::array<std::uint8_t, 48> SimulatedChip::default_measurement() {
  std::array<std::uint8_t, 48> m{};
  const std::string_view label = "torgw-sim-measurement";
  unsigned int n = 0;
  EVP_Digest(label.data(), label.size(), m.data(), &n, EVP_sha384(), nullptr);
  return m;
}

struct SimulatedPsp::Impl {
  KeyCert ark, ask, vcek;
  SecretBytes chip_key;  // BLAKE2b(fuse secret, chip id): root of this chip's derived keys
  std::array<std::uint8_t, 64> chip_id{};
  // Stands in for the open /dev/sev-guest fd: held as long as the device is, so tests
  // see in /proc/<pid>/fd when PID 1 has closed its SEV-SNP device (docs/init.md).
  UniqueFd handle;
};

SimulatedPsp::SimulatedPsp(std::unique_ptr<Impl> impl, SimulatedChip chip)
    : impl_(std::move(impl)), chip_(std::move(chip)) {}
SimulatedPsp::~SimulatedPsp() = default;

Result<std::unique_ptr<SimulatedPsp>> SimulatedPsp::open(const std::string& dir, const SimulatedChip& chip) {
  std::lock_guard<std::mutex> lock(state_mutex());
  ensure_sodium();
  if (!dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return make_error("snp.sim.state", dir + ": " + ec.message());
  }
  auto impl = std::make_unique<Impl>();
  if (!dir.empty()) {
    impl->handle.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!impl->handle) return make_error("snp.sim.state", dir + ": " + std::strerror(errno));
  }
  {
    std::string label = "torgw-sim-chip-id" + chip.name;
    unsigned int n = 0;
    EVP_Digest(label.data(), label.size(), impl->chip_id.data(), &n, EVP_sha512(), nullptr);
  }

  auto ark = load_or_make(dir, "ark", []() -> Result<KeyCert> {
    KeyCert kc{gen_rsa4096(), nullptr, {}};
    if (!kc.key) return crypto_error("ARK key");
    kc.cert = make_cert(kc.key.get(), {"SIMULATED-ARK-Milan", 0x10000, 25 * 365}, nullptr, kc.key.get());
    if (!kc.cert) return crypto_error("ARK certificate");
    return kc;
  });
  if (!ark) return ark.error();
  impl->ark = std::move(*ark);

  auto ask = load_or_make(dir, "ask", [&]() -> Result<KeyCert> {
    KeyCert kc{gen_rsa4096(), nullptr, {}};
    if (!kc.key) return crypto_error("ASK key");
    kc.cert = make_cert(kc.key.get(), {"SIMULATED-SEV-Milan", 0x10001, 25 * 365}, impl->ark.cert.get(),
                        impl->ark.key.get());
    if (!kc.cert) return crypto_error("ASK certificate");
    return kc;
  });
  if (!ask) return ask.error();
  impl->ask = std::move(*ask);

  // The fuse secret: what makes this simulated "host" unique.
  Bytes fuse;
  if (!dir.empty()) {
    if (auto s = read_small_file(dir + "/fuse.secret"); s && s->size() == 32) fuse.assign(s->begin(), s->end());
  }
  if (fuse.empty()) {
    fuse.resize(32);
    randombytes_buf(fuse.data(), fuse.size());
    if (!dir.empty()) TORGW_TRY(write_file_atomic(dir + "/fuse.secret", fuse, 0600));
  }
  Bytes msg(as_bytes("torgw-sim-chip-key-v1").begin(), as_bytes("torgw-sim-chip-key-v1").end());
  msg.insert(msg.end(), impl->chip_id.begin(), impl->chip_id.end());
  Bytes ck = blake2b(fuse, msg, 32);
  impl->chip_key = SecretBytes::copy_of(ck);
  wipe(ck.data(), ck.size());
  wipe(fuse.data(), fuse.size());

  // One VCEK per chip and TCB, as AMD's KDS hands out.
  const std::uint64_t tcb_raw = encode_tcb(chip.tcb, Product::Milan);
  char tcb_hex[17];
  std::snprintf(tcb_hex, sizeof tcb_hex, "%016llx", static_cast<unsigned long long>(tcb_raw));
  const std::string stem = "vcek-" + to_hex(ByteView(impl->chip_id.data(), 8)) + "-" + tcb_hex;
  auto vcek = load_or_make(dir, stem, [&]() -> Result<KeyCert> {
    KeyCert kc{gen_p384(), nullptr, {}};
    if (!kc.key) return crypto_error("VCEK key");
    auto exts = [&](X509* x) {
      const std::string arc = "1.3.6.1.4.1.3704.1.";
      return add_raw_ext(x, arc + "1", der_small_uint(0)) && add_raw_ext(x, arc + "2", der_ia5("SIMULATED-Milan")) &&
             add_raw_ext(x, arc + "3.1", der_small_uint(chip.tcb.bootloader)) &&
             add_raw_ext(x, arc + "3.2", der_small_uint(chip.tcb.tee)) &&
             add_raw_ext(x, arc + "3.4", der_small_uint(0)) && add_raw_ext(x, arc + "3.5", der_small_uint(0)) &&
             add_raw_ext(x, arc + "3.6", der_small_uint(0)) && add_raw_ext(x, arc + "3.7", der_small_uint(0)) &&
             add_raw_ext(x, arc + "3.3", der_small_uint(chip.tcb.snp)) &&
             add_raw_ext(x, arc + "3.8", der_small_uint(chip.tcb.microcode)) &&
             add_raw_ext(x, arc + "4", ByteView(impl->chip_id.data(), impl->chip_id.size()));
    };
    kc.cert = make_cert(kc.key.get(), {"SIMULATED-SEV-VCEK", 0, 7 * 365}, impl->ask.cert.get(), impl->ask.key.get(),
                        exts);
    if (!kc.cert) return crypto_error("VCEK certificate");
    return kc;
  });
  if (!vcek) return vcek.error();
  impl->vcek = std::move(*vcek);
  return std::unique_ptr<SimulatedPsp>(new SimulatedPsp(std::move(impl), chip));
}

std::array<std::uint8_t, 64> SimulatedPsp::chip_id() const { return impl_->chip_id; }
const Bytes& SimulatedPsp::ark_der() const { return impl_->ark.der; }
std::string SimulatedPsp::ark_pem() const { return x509_to_pem(impl_->ark.cert.get()); }
const Bytes& SimulatedPsp::ask_der() const { return impl_->ask.der; }
const Bytes& SimulatedPsp::vcek_der() const { return impl_->vcek.der; }

Bytes SimulatedPsp::cert_table() const {
  return build_cert_table({{guid_of(CertKind::Vcek), CertKind::Vcek, impl_->vcek.der},
                           {guid_of(CertKind::Ask), CertKind::Ask, impl_->ask.der},
                           {guid_of(CertKind::Ark), CertKind::Ark, impl_->ark.der}});
}

Result<Bytes> SimulatedPsp::make_crl(bool revoke_ask) const {
  std::unique_ptr<X509_CRL, Deleter<X509_CRL, X509_CRL_free>> crl(X509_CRL_new());
  std::unique_ptr<ASN1_TIME, Deleter<ASN1_TIME, ASN1_TIME_free>> now(X509_gmtime_adj(nullptr, 0));
  std::unique_ptr<ASN1_TIME, Deleter<ASN1_TIME, ASN1_TIME_free>> next(X509_gmtime_adj(nullptr, 7 * 24 * 3600));
  if (!crl || !now || !next || X509_CRL_set_version(crl.get(), 1) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(impl_->ark.cert.get())) != 1 ||
      X509_CRL_set1_lastUpdate(crl.get(), now.get()) != 1 || X509_CRL_set1_nextUpdate(crl.get(), next.get()) != 1)
    return crypto_error("CRL");
  if (revoke_ask) {
    X509_REVOKED* rev = X509_REVOKED_new();
    if (!rev || X509_REVOKED_set_serialNumber(rev, X509_get_serialNumber(impl_->ask.cert.get())) != 1 ||
        X509_REVOKED_set_revocationDate(rev, now.get()) != 1 || X509_CRL_add0_revoked(crl.get(), rev) != 1) {
      X509_REVOKED_free(rev);
      return crypto_error("CRL entry");
    }
    X509_CRL_sort(crl.get());
  }
  MdCtxPtr md(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (!md || EVP_DigestSignInit(md.get(), &pctx, EVP_sha384(), nullptr, impl_->ark.key.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()) != 1 ||
      X509_CRL_sign_ctx(crl.get(), md.get()) <= 0)
    return crypto_error("CRL signature");
  int n = i2d_X509_CRL(crl.get(), nullptr);
  Bytes out(static_cast<std::size_t>(n));
  unsigned char* p = out.data();
  i2d_X509_CRL(crl.get(), &p);
  return out;
}

Result<ExtendedReport> SimulatedPsp::get_report(const ReportData& data, std::uint32_t vmpl, bool with_certs) {
  if (vmpl > 3 || vmpl < chip_.vmpl)
    return make_error("snp.device.status", "MSG_REPORT_RSP status " + std::to_string(kPspStatusInvalidParam) +
                                               " (VMPL " + std::to_string(vmpl) + ")");
  Report r;
  r.version = 5;
  r.guest_svn = chip_.guest_svn;
  r.policy = chip_.policy;
  r.family_id = chip_.family_id;
  r.image_id = chip_.image_id;
  r.vmpl = vmpl;
  r.signature_algo = kSigAlgoEcdsaP384Sha384;
  r.current_tcb = r.reported_tcb = r.committed_tcb = r.launch_tcb = encode_tcb(chip_.tcb, Product::Milan);
  r.platform_info = 0x25;  // SMT_EN | ECC_EN | ALIAS_CHECK_COMPLETE
  r.key_info = (chip_.vlek ? kSigningKeyVlek : kSigningKeyVcek) << 2;
  r.report_data = data;
  if (chip_.fault == SimulatedChip::Fault::WrongReportData) r.report_data[0] ^= 0x01;
  r.measurement = chip_.measurement;
  r.host_data = chip_.host_data;
  Bytes rid = blake2b(impl_->chip_key.view(), as_bytes("torgw-sim-report-id"), 32);
  std::copy(rid.begin(), rid.end(), r.report_id.begin());
  r.report_id_ma.fill(0xff);
  r.cpuid_fam_id = 0x19;
  r.cpuid_mod_id = 0x01;
  r.cpuid_step = 0x01;
  r.chip_id = impl_->chip_id;
  r.current_major = r.committed_major = 1;
  r.current_minor = r.committed_minor = 55;
  r.current_build = r.committed_build = 24;
  Bytes bytes = serialize_report(r);

  MdCtxPtr md(EVP_MD_CTX_new());
  std::size_t sig_len = 0;
  if (!md || EVP_DigestSignInit(md.get(), nullptr, EVP_sha384(), nullptr, impl_->vcek.key.get()) != 1 ||
      EVP_DigestSign(md.get(), nullptr, &sig_len, bytes.data(), kSignedSize) != 1)
    return crypto_error("report signature");
  Bytes sig(sig_len);
  if (EVP_DigestSign(md.get(), sig.data(), &sig_len, bytes.data(), kSignedSize) != 1)
    return crypto_error("report signature");
  const unsigned char* p = sig.data();
  EcdsaSigPtr es(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig_len)));
  if (!es) return crypto_error("report signature decode");
  const BIGNUM* br = nullptr;
  const BIGNUM* bs = nullptr;
  ECDSA_SIG_get0(es.get(), &br, &bs);
  BN_bn2binpad(br, r.sig_r.data(), 48);
  BN_bn2binpad(bs, r.sig_s.data(), 48);
  if (chip_.fault == SimulatedChip::Fault::Signature) r.sig_r[0] ^= 0x01;
  ExtendedReport out;
  out.report = serialize_report(r);
  if (with_certs && chip_.fault == SimulatedChip::Fault::BadCerts)
    out.cert_table = build_cert_table({{guid_of(CertKind::Vcek), CertKind::Vcek, impl_->vcek.der}});
  else if (with_certs && chip_.fault != SimulatedChip::Fault::NoCerts) out.cert_table = cert_table();
  return out;
}

Result<SecretBytes> SimulatedPsp::get_derived_key(const DerivedKeyRequest& req) {
  auto refuse = [](std::uint32_t status, const std::string& why) { return key_status_error(status, why); };
  // What the real PSP sees is the request's first word; decode it like the firmware.
  const auto word = parse_root_key_word(root_key_word(req));
  if (!word) return refuse(kPspStatusInvalidParam, "reserved bits in the root key word");
  if (word->root != RootKey::Vcek) return refuse(kPspStatusInvalidKey, "no VMRK: the guest has no migration agent");
  if (!chip_.knows_key_sel && word->key_sel != KeySel::VlekIfInstalled)
    return refuse(kPspStatusInvalidParam, "KEY_SEL is a reserved field in this firmware");
  if (word->key_sel == KeySel::VlekOnly && !chip_.vlek) return refuse(kPspStatusInvalidKey, "no VLEK installed");
  if (req.fields & ~key_field::kAll) return refuse(kPspStatusInvalidParam, "reserved GUEST_FIELD_SELECT bits");
  if (req.vmpl > 3 || req.vmpl < chip_.vmpl) return refuse(kPspStatusInvalidParam, "VMPL below the guest's");
  if ((req.fields & key_field::kGuestSvn) && req.guest_svn > chip_.guest_svn)
    return refuse(kPspStatusInvalidParam, "GUEST_SVN above the guest's");
  if ((req.fields & key_field::kTcbVersion) && !tcb_at_least(chip_.tcb, decode_tcb(req.tcb_version, Product::Milan)))
    return refuse(kPspStatusInvalidParam, "TCB_VERSION above the platform's");
  // The root: this chip's secret, or the simulated host's VLEK (one for every chip that
  // shares the simulated AMD root, as a provider's VLEK spans its fleet).
  const bool use_vlek = chip_.vlek && word->key_sel != KeySel::VcekOnly;
  Bytes vlek_root;
  if (use_vlek) vlek_root = blake2b(as_bytes("torgw-sim-vlek-v1"), impl_->ark.der, 32);
  // Like the PSP: the key mixes the root with exactly the selected fields.
  Bytes msg(as_bytes("torgw-sim-derived-key-v1").begin(), as_bytes("torgw-sim-derived-key-v1").end());
  append_le(msg, static_cast<std::uint32_t>(req.root), 4);
  append_le(msg, req.fields, 8);
  append_le(msg, req.vmpl, 4);
  if (req.fields & key_field::kPolicy) append_le(msg, chip_.policy, 8);
  if (req.fields & key_field::kImageId) msg.insert(msg.end(), chip_.image_id.begin(), chip_.image_id.end());
  if (req.fields & key_field::kFamilyId) msg.insert(msg.end(), chip_.family_id.begin(), chip_.family_id.end());
  if (req.fields & key_field::kMeasurement) msg.insert(msg.end(), chip_.measurement.begin(), chip_.measurement.end());
  if (req.fields & key_field::kGuestSvn) append_le(msg, req.guest_svn, 4);
  if (req.fields & key_field::kTcbVersion) append_le(msg, req.tcb_version, 8);
  SecretBytes key(kDerivedKeySize);
  if (use_vlek) {
    crypto_generichash(key.data(), key.size(), msg.data(), msg.size(), vlek_root.data(), vlek_root.size());
    wipe(vlek_root.data(), vlek_root.size());
  } else {
    crypto_generichash(key.data(), key.size(), msg.data(), msg.size(), impl_->chip_key.data(), impl_->chip_key.size());
  }
  return key;
}

Result<std::unique_ptr<Device>> open_simulated_device(const DeviceConfig& cfg) {
  SimulatedChip chip;
  chip.name = cfg.sim_chip;
  if (!cfg.sim_measurement.empty() && !cfg.sim_direct_boot.ovmf.empty())
    return make_error("snp.sim.direct_boot", "a measurement and direct-boot inputs both given: choose one");
  if (!cfg.sim_measurement.empty()) {
    auto m = from_hex(cfg.sim_measurement);
    if (!m || m->size() != 48) return make_error("snp.bad_hex", "sim measurement must be 96 hex digits");
    std::copy(m->begin(), m->end(), chip.measurement.begin());
  }
  using F = SimulatedChip::Fault;
  if (cfg.sim_fault == "debug_policy") chip.policy |= policy_bits::kDebug;
  else if (cfg.sim_fault == "migrate_ma_policy") chip.policy |= policy_bits::kMigrateMa;
  else if (cfg.sim_fault == "report_data") chip.fault = F::WrongReportData;
  else if (cfg.sim_fault == "signature") chip.fault = F::Signature;
  else if (cfg.sim_fault == "no_certs") chip.fault = F::NoCerts;
  else if (cfg.sim_fault == "bad_certs") chip.fault = F::BadCerts;
  else if (cfg.sim_fault != "none") return make_error("snp.sim.bad_fault", "sim fault '" + cfg.sim_fault + "'");
  if (!cfg.sim_direct_boot.ovmf.empty()) {
    TORGW_ASSIGN_OR_RETURN(auto m, sim_direct_boot_measurement(cfg.sim_direct_boot));
    chip.measurement = m;
  }
  TORGW_ASSIGN_OR_RETURN(auto sim, SimulatedPsp::open(cfg.sim_state_dir, chip));
  return std::unique_ptr<Device>(std::move(sim));
}

}  // namespace torgw::snp
