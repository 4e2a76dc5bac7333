#include "snp/attest.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>

#include "snp/json.h"

namespace torgw::snp {

Result<BootId> parse_boot_id(std::string_view hex) {
  auto b = from_hex(hex);
  if (!b || b->size() != 16) return make_error("snp.bad_boot_id", "BOOT_ID must be 32 hex digits");
  BootId id{};
  std::copy(b->begin(), b->end(), id.begin());
  return id;
}

namespace {

ReportData report_data_of(std::string_view label, const onion::PublicKey& onion_key,
                          const std::optional<X25519Key>& transfer_key, const BootId& boot_id,
                          const ConfigDigest* config_sha256) {
  Bytes msg(label.begin(), label.end());
  msg.insert(msg.end(), onion_key.begin(), onion_key.end());
  const X25519Key zero{};
  const X25519Key& x = transfer_key ? *transfer_key : zero;
  msg.insert(msg.end(), x.begin(), x.end());
  msg.insert(msg.end(), boot_id.begin(), boot_id.end());
  if (config_sha256) msg.insert(msg.end(), config_sha256->begin(), config_sha256->end());
  ReportData out{};
  unsigned int n = 0;
  EVP_Digest(msg.data(), msg.size(), out.data(), &n, EVP_sha512(), nullptr);
  return out;
}

ConfigDigest sha256_of(ByteView data) {
  ConfigDigest out{};
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &n, EVP_sha256(), nullptr);
  return out;
}

}  // namespace

ReportData report_data_for(const onion::PublicKey& onion_key, const std::optional<X25519Key>& transfer_key,
                           const BootId& boot_id) {
  return report_data_of("torgw-report-v1", onion_key, transfer_key, boot_id, nullptr);
}

ReportData report_data_v2(const onion::PublicKey& onion_key, const std::optional<X25519Key>& transfer_key,
                          const BootId& boot_id, const ConfigDigest& config_sha256) {
  return report_data_of("torgw-report-v2", onion_key, transfer_key, boot_id, &config_sha256);
}

const char* to_string(AttestationGate g) {
  switch (g) {
    case AttestationGate::Pass: return "pass";
    case AttestationGate::Incomplete: return "incomplete";
    case AttestationGate::Fail: return "fail";
  }
  return "fail";
}

const char* snp_marker_value(const Device* dev) {
  if (!dev) return "absent";
  return dev->kind() == DeviceKind::Simulated ? "simulated" : "present";
}

namespace {

// The checks the guest can make on its own report without any certificate (the gate's
// Fail class): everything in req.policy except the TCB comparisons.
Status self_check(const Report& r, const AttestRequest& req, const ReportData& asked) {
  Policy p = req.policy;
  p.allow_uncommitted_tcb = true;
  p.minimum_tcb.reset();
  p.vmpl = req.vmpl;
  p.expected_report_data = asked;
  return validate_policy(r, product_from_cpuid(r).value_or(Product::Milan), p);
}

// The chain did not verify: if the host's table still holds a VCEK/VLEK key, the report's
// signature must verify with it (a signature failing against the host's own table is a
// Fail); otherwise the table is merely unverifiable.
AttestationGate classify_unverified(const Attestation& a) {
  if (a.status.error().reason == "snp.signature.invalid") return AttestationGate::Fail;
  auto table = parse_cert_table(a.raw.cert_table);
  if (!table) return AttestationGate::Incomplete;
  auto chain = chain_from_cert_table(*table);
  if (!chain) return AttestationGate::Incomplete;
  auto spki = certificate_spki(chain->vek);
  if (!spki) return AttestationGate::Incomplete;
  auto sig = verify_report_signature(a.raw.report, *spki);
  return !sig && sig.error().reason == "snp.signature.invalid" ? AttestationGate::Fail : AttestationGate::Incomplete;
}

}  // namespace

Attestation attest(Device& dev, const AttestRequest& req) {
  Attestation a;
  a.simulated = dev.kind() == DeviceKind::Simulated;
  auto boot = parse_boot_id(req.boot_id);
  if (!boot) {
    a.status = boot.error();
    return a;
  }
  a.report_data = req.config_sha256 ? report_data_v2(req.onion_public_key, req.transfer_key, *boot, *req.config_sha256)
                                    : report_data_for(req.onion_public_key, req.transfer_key, *boot);
  auto ext = dev.get_report(a.report_data, req.vmpl, true);
  if (!ext) {
    a.status = ext.error();
    return a;
  }
  a.raw = std::move(*ext);
  auto parsed = parse_report(a.raw.report);
  if (!parsed) {
    a.status = parsed.error();
    return a;
  }
  if (auto s = self_check(*parsed, req, a.report_data); !s) {
    a.status = s;
    return a;
  }

  a.gate = AttestationGate::Incomplete;
  if (a.raw.cert_table.empty()) {
    a.status = make_error("snp.chain.missing_cert", "the host supplied no certificate table");
    return a;
  }
  auto table = parse_cert_table(a.raw.cert_table);
  if (!table) {
    a.status = table.error();
    return a;
  }
  auto chain = chain_from_cert_table(*table);
  if (!chain) {
    a.status = chain.error();
    return a;
  }
  VerifyOptions opts;
  opts.policy = req.policy;
  opts.policy.expected_report_data = a.report_data;
  opts.chain.at = req.at;
  opts.chain.simulated_ark = dev.simulated_ark();
  a.verification = verify_attestation(a.raw.report, *chain, opts);
  a.status = a.verification.status;
  a.gate = a.valid() ? AttestationGate::Pass : classify_unverified(a);
  return a;
}

Attestation attest_and_emit(Device& dev, const AttestRequest& req, serial::MarkerWriter& out) {
  Attestation a = attest(dev, req);
  out.emit("ATTESTATION_TRANSFER_KEY",
           req.transfer_key ? to_hex(ByteView(req.transfer_key->data(), req.transfer_key->size())) : "none");
  out.emit("ATTESTATION_REPORT_VALID", a.valid() ? "true" : "false");
  if (!a.valid()) out.emit("ATTESTATION_REPORT_VALID_REASON", serial::sanitize_value(a.status.error().reason));
  out.emit("ATTESTATION_GATE", to_string(a.gate));
  if (!a.raw.report.empty()) {
    if (auto r = parse_report(a.raw.report); r)
      out.emit("ATTESTATION_MEASUREMENT", to_hex(ByteView(r->measurement.data(), r->measurement.size())));
    out.emit_chunked("ATTESTATION_REPORT", to_base64(a.raw.report));
  }
  if (!a.raw.cert_table.empty()) {
    // Trim the page padding of the ioctl form: the table ends at its last blob.
    ByteView t = a.raw.cert_table;
    if (auto entries = parse_cert_table(t); entries) {
      const Bytes rebuilt = build_cert_table(*entries);
      out.emit_chunked("ATTESTATION_CERTS", to_base64(rebuilt));
    } else {
      out.emit_chunked("ATTESTATION_CERTS", to_base64(t));
    }
  }
  return a;
}

// ---- offline verification ----------------------------------------------------------

namespace {

Error missing(const char* key) { return make_error("log.missing_marker", std::string(key) + " marker missing"); }

}  // namespace

LogVerdict verify_boot(const serial::Boot& boot, const LogVerifyOptions& opts) {
  LogVerdict v;
  v.boot_id = boot.boot_id;
  auto get = [&](const char* k) -> const std::string* { return boot.get(k); };
  if (auto* s = get("SNP")) v.snp = *s;
  if (auto* s = get("IDENTITY_BINDING")) v.identity_binding = *s;
  if (auto* s = get("ONION_HOSTNAME")) v.onion_hostname = *s;
  if (auto* s = get("ATTESTATION_REPORT_VALID")) v.device_said_valid = *s == "true";
  if (auto* s = get("ATTESTATION_REPORT_VALID_REASON")) v.device_reason = *s;

  auto fail = [&](Error e) {
    v.status = std::move(e);
    return v;
  };
  if (v.snp.empty()) return fail(missing("SNP"));
  if (v.snp == "absent")
    return fail(make_error("log.snp_absent", "the VM ran without SEV-SNP (identity " +
                                                 (v.identity_binding.empty() ? std::string("?") : v.identity_binding) +
                                                 "): there is no attestation to verify"));
  if (v.snp != "present" && v.snp != "simulated") return fail(make_error("log.bad_marker", "SNP=" + v.snp));

  auto boot_id = parse_boot_id(boot.boot_id);
  if (!boot_id) return fail(boot_id.error());

  onion::PublicKey onion_key{};
  if (!v.onion_hostname.empty()) {
    auto pk = onion::public_key_from_address(v.onion_hostname);
    if (!pk) return fail(make_error("log.bad_marker", "ONION_HOSTNAME: " + pk.error().to_string()));
    onion_key = *pk;
  } else if (!opts.allow_missing_onion) {
    return fail(missing("ONION_HOSTNAME"));
  }
  if (opts.expected_onion) {
    auto want = onion::public_key_from_address(*opts.expected_onion);
    if (!want) return fail(make_error("log.bad_marker", "--expected-onion: " + want.error().to_string()));
    if (v.onion_hostname.empty() || *want != onion_key)
      return fail(
          make_error("log.onion_mismatch", "the log's onion " + v.onion_hostname + " is not " + *opts.expected_onion));
  }

  const std::string* tk = get("ATTESTATION_TRANSFER_KEY");
  if (!tk) return fail(missing("ATTESTATION_TRANSFER_KEY"));
  if (*tk != "none") {
    auto b = from_hex(*tk);
    if (!b || b->size() != 32)
      return fail(make_error("log.bad_marker", "ATTESTATION_TRANSFER_KEY is not 64 hex digits"));
    X25519Key k{};
    std::copy(b->begin(), b->end(), k.begin());
    v.transfer_key = k;
  }

  const std::string* rep_b64 = get("ATTESTATION_REPORT");
  if (!rep_b64) return fail(missing("ATTESTATION_REPORT"));
  auto rep = from_base64(*rep_b64);
  if (!rep) return fail(make_error("log.bad_marker", "ATTESTATION_REPORT is not base64"));
  v.report = std::move(*rep);
  CertChain chain;
  if (opts.certs) {
    chain = *opts.certs;
  } else {
    const std::string* certs_b64 = get("ATTESTATION_CERTS");
    if (!certs_b64)
      return fail(make_error("log.missing_marker", "ATTESTATION_CERTS marker missing (the host supplied no cert "
                                                   "table): pass the VCEK (--vcek) from AMD's KDS"));
    auto certs = from_base64(*certs_b64);
    if (!certs) return fail(make_error("log.bad_marker", "ATTESTATION_CERTS is not base64"));
    auto table = parse_cert_table(*certs);
    if (!table) return fail(table.error());
    auto c = chain_from_cert_table(*table);
    if (!c) return fail(c.error());
    chain = std::move(*c);
  }

  if (!opts.crl.empty()) chain.crl = opts.crl;
  VerifyOptions vo = opts.verify;
  if (const std::string* cfg_b64 = get("ATTESTED_CONFIG")) {
    auto cfg = from_base64(*cfg_b64);
    if (!cfg) return fail(make_error("log.bad_marker", "ATTESTED_CONFIG is not base64"));
    v.config_sha256 = sha256_of(*cfg);
    v.attested_config = std::string(cfg->begin(), cfg->end());
    v.expected_report_data = report_data_v2(onion_key, v.transfer_key, *boot_id, *v.config_sha256);
  } else {
    v.expected_report_data = report_data_for(onion_key, v.transfer_key, *boot_id);
  }
  vo.policy.expected_report_data = v.expected_report_data;
  v.verification = verify_attestation(v.report, chain, vo);
  if (!v.verification.valid()) return fail(v.verification.status.error());
  // Telemetry must agree with the proof.
  if (const std::string* m = get("ATTESTATION_MEASUREMENT")) {
    const auto& meas = v.verification.report->measurement;
    if (*m != to_hex(ByteView(meas.data(), meas.size())))
      return fail(make_error("log.measurement_mismatch", "ATTESTATION_MEASUREMENT marker differs from the report"));
  }
  if (v.snp == "present" && v.verification.chain->simulated)
    return fail(make_error("log.bad_marker", "SNP=present but the report comes from the simulated PSP"));
  v.status = {};
  return v;
}

std::string kds_vcek_url(const Report& r, Product p) {
  const std::size_t hwid_len = p == Product::Turin ? 8 : 64;
  const Tcb t = decode_tcb(r.reported_tcb, p);
  std::string url = std::string("https://kdsintf.amd.com/vcek/v1/") + to_string(p) + "/" +
                    to_hex(ByteView(r.chip_id.data(), hwid_len)) + "?";
  if (p == Product::Turin) url += "fmcSPL=" + std::to_string(t.fmc) + "&";
  url += "blSPL=" + std::to_string(t.bootloader) + "&teeSPL=" + std::to_string(t.tee) +
         "&snpSPL=" + std::to_string(t.snp) + "&ucodeSPL=" + std::to_string(t.microcode);
  return url;
}

const serial::Boot* last_transfer_boot(const serial::ParsedLog& log) {
  for (auto it = log.boots.rbegin(); it != log.boots.rend(); ++it) {
    const std::string* tk = it->get("ATTESTATION_TRANSFER_KEY");
    if (tk && *tk != "none" && it->get("ATTESTATION_REPORT") && it->get("ATTESTATION_CERTS") && it->problems.empty())
      return &*it;
  }
  return nullptr;
}

}  // namespace torgw::snp
