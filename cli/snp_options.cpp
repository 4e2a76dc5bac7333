#include "cli/snp_options.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "cli/commands.h"
#include "snp/json.h"

namespace torgw::cli {

void add_snp_flags(CLI::App* cmd, SnpFlags& f, bool report_data) {
  cmd->add_flag("--allow-debug", f.allow_debug, "Accept a guest policy that allows debugging (DEBUG)");
  cmd->add_flag("--allow-uncommitted-tcb", f.allow_uncommitted_tcb,
                "Accept COMMITTED_TCB != CURRENT_TCB (firmware updated but not committed)");
  cmd->add_flag("--allow-migrate-ma", f.allow_migrate_ma, "Accept a guest policy that allows a migration agent");
  cmd->add_option("--expected-measurement", f.expected_measurement, "Required MEASUREMENT (96 hex digits)");
  if (report_data)
    cmd->add_option("--expected-report-data", f.expected_report_data, "Required REPORT_DATA (128 hex digits)");
  cmd->add_option("--at", f.at, "Check certificate validity at this UNIX time (VLEKs live one year)");
  cmd->add_option("--min-tcb", f.min_tcb, "Minimum REPORTED_TCB: bl=N,tee=N,snp=N,ucode=N[,fmc=N]");
  cmd->add_option("--crl", f.crl, "AMD's CRL for the product (DER, from the KDS): the ASK/ASVK must not be on it");
  cmd->add_option("--vmpl", f.vmpl, "Required VMPL (0-3)")->check(CLI::Range(0, 3));
  cmd->add_option("--allow-simulated", f.allow_simulated,
                  "Accept a chain rooted in this SIMULATED PSP ARK (PEM/DER) - for dev mode only");
  cmd->add_flag("--json", f.json, "Machine-readable output");
}

std::optional<Bytes> load_cert_file(const std::string& path) {
  std::string data;
  if (!read_input_file(path, data, 1 << 20)) return std::nullopt;
  auto der = snp::load_certificate(as_bytes(data));
  if (!der) {
    std::fprintf(stderr, "torgw: %s: %s\n", path.c_str(), der.error().to_string().c_str());
    return std::nullopt;
  }
  return *der;
}

std::optional<snp::VerifyOptions> snp_options(const SnpFlags& f) {
  snp::VerifyOptions o;
  o.policy.allow_debug = f.allow_debug;
  o.policy.allow_uncommitted_tcb = f.allow_uncommitted_tcb;
  o.policy.allow_migrate_ma = f.allow_migrate_ma;
  if (f.vmpl >= 0) o.policy.vmpl = static_cast<std::uint32_t>(f.vmpl);
  if (!f.expected_measurement.empty()) {
    auto m = snp::parse_measurement_hex(f.expected_measurement);
    if (!m) {
      std::fprintf(stderr, "torgw: --expected-measurement: %s\n", m.error().to_string().c_str());
      return std::nullopt;
    }
    o.policy.expected_measurement = *m;
  }
  if (!f.expected_report_data.empty()) {
    auto d = snp::parse_report_data_hex(f.expected_report_data);
    if (!d) {
      std::fprintf(stderr, "torgw: --expected-report-data: %s\n", d.error().to_string().c_str());
      return std::nullopt;
    }
    o.policy.expected_report_data = *d;
  }
  if (!f.min_tcb.empty()) {
    auto t = snp::parse_tcb_spec(f.min_tcb);
    if (!t) {
      std::fprintf(stderr, "torgw: --min-tcb: %s\n", t.error().to_string().c_str());
      return std::nullopt;
    }
    o.policy.minimum_tcb = *t;
  }
  if (f.at >= 0) o.chain.at = f.at;
  if (!f.allow_simulated.empty()) {
    auto ark = load_cert_file(f.allow_simulated);
    if (!ark) return std::nullopt;
    o.chain.simulated_ark = *ark;
  }
  return o;
}

namespace {

// The installed trust directory: ../share/torgw/snp-trust beside the running binary (so
// /usr/share/torgw/snp-trust for /usr/bin/torgw, and the same layout in any prefix or
// unpacked package), else /usr/share/torgw/snp-trust.
std::string default_trust_dir() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto beside = exe.parent_path().parent_path() / "share/torgw/snp-trust";
    if (std::filesystem::is_directory(beside, ec)) return beside.string();
  }
  return "/usr/share/torgw/snp-trust";
}

}  // namespace

void add_trust_dir_option(CLI::App* cmd, std::string& trust_dir) {
  const char* env = std::getenv("TORGW_SNP_TRUST_DIR");
  trust_dir = env ? env : default_trust_dir();
  cmd->add_option("--trust-dir", trust_dir,
                  "Where AMD's {milan,genoa,turin}_{ark,ask,asvk}.pem live when --ask/--ark are not given "
                  "(default $TORGW_SNP_TRUST_DIR, else the installed ../share/torgw/snp-trust beside torgw, "
                  "else /usr/share/torgw/snp-trust)");
}

namespace {

// Picks the trust-dir ASK/ASVK (and its ARK) whose subject issued the VCEK/VLEK: the
// first pair whose chain check gets past issuer, pin and signature checks.
bool fill_from_trust_dir(snp::CertChain& c, const std::string& dir) {
  for (const char* product : {"milan", "genoa", "turin"})
    for (const char* ask_name : {"ask", "asvk"}) {
      const std::string ask_path = dir + "/" + product + "_" + ask_name + ".pem";
      const std::string ark_path = dir + "/" + product + "_ark.pem";
      if (!std::filesystem::exists(ask_path) || !std::filesystem::exists(ark_path)) continue;
      std::string a, r;
      if (!read_input_file(ask_path, a, 1 << 20) || !read_input_file(ark_path, r, 1 << 20)) continue;
      auto ask = snp::load_certificate(as_bytes(a));
      auto ark = snp::load_certificate(as_bytes(r));
      if (!ask || !ark) continue;
      snp::CertChain trial = c;
      if (trial.ask.empty()) trial.ask = *ask;
      if (trial.ark.empty()) trial.ark = *ark;
      auto res = snp::verify_chain(trial, snp::ChainOptions{});
      const std::string reason = res.ok() ? "" : res.error().reason;
      if (reason != "snp.chain.issuer_mismatch" && reason != "snp.chain.ask_not_pinned" &&
          reason != "snp.chain.bad_signature") {
        c = std::move(trial);
        return true;
      }
    }
  return false;
}

}  // namespace

std::optional<snp::CertChain> load_chain_files(const std::string& vcek, const std::string& ask, const std::string& ark,
                                               const std::string& trust_dir) {
  snp::CertChain chain;
  auto vek = load_cert_file(vcek);
  if (!vek) return std::nullopt;
  chain.vek = *vek;
  if (!ask.empty()) {
    auto c = load_cert_file(ask);
    if (!c) return std::nullopt;
    chain.ask = *c;
  }
  if (!ark.empty()) {
    auto c = load_cert_file(ark);
    if (!c) return std::nullopt;
    chain.ark = *c;
  }
  if ((chain.ask.empty() || chain.ark.empty()) && !std::filesystem::is_directory(trust_dir)) {
    std::fprintf(stderr,
                 "torgw: trust directory %s does not exist: install torgw's package (AMD's certificates), "
                 "or pass --trust-dir, or --ask and --ark\n",
                 trust_dir.c_str());
    return std::nullopt;
  }
  if ((chain.ask.empty() || chain.ark.empty()) && !fill_from_trust_dir(chain, trust_dir)) {
    std::fprintf(stderr,
                 "torgw: no ASK/ARK for %s: pass --ask and --ark, or --trust-dir with AMD's "
                 "{milan,genoa,turin}_{ark,ask,asvk}.pem\n",
                 vcek.c_str());
    return std::nullopt;
  }
  return chain;
}

std::optional<Bytes> load_crl_file(const SnpFlags& f) {
  if (f.crl.empty()) return Bytes{};
  std::string data;
  if (!read_input_file(f.crl, data, 1 << 20)) return std::nullopt;
  return Bytes(data.begin(), data.end());
}

std::optional<serial::ParsedLog> read_serial_log(const std::string& path) {
  std::string data;
  if (!read_input_file(path, data, serial::kMaxLogBytes)) return std::nullopt;
  auto log = serial::parse_log(data);
  if (!log) {
    std::fprintf(stderr, "torgw: %s: %s\n", path.c_str(), log.error().to_string().c_str());
    return std::nullopt;
  }
  return std::move(*log);
}

void print_verification(const snp::Verification& v, const char* in) {
  const bool sim = v.chain && v.chain->simulated;
  if (sim) std::printf("%sSIMULATED: this report comes from torgw's simulated PSP, not from AMD hardware\n", in);
  if (v.chain)
    std::printf("%schain: %s%s %s -> ARK (SPKI sha256 %s)\n", in, sim ? "SIMULATED " : "", to_string(v.chain->product),
                to_string(v.chain->signer), v.chain->ark_spki_sha256.c_str());
  if (!v.report) return;
  const auto& r = *v.report;
  const snp::Product p = v.chain ? v.chain->product : snp::product_from_cpuid(r).value_or(snp::Product::Milan);
  std::printf("%sreport: version %u, VMPL %u, policy 0x%llx%s\n", in, r.version, r.vmpl,
              static_cast<unsigned long long>(r.policy), r.debug() ? " (DEBUG allowed)" : "");
  std::printf("%smeasurement: %s\n", in, to_hex(ByteView(r.measurement.data(), r.measurement.size())).c_str());
  std::printf("%sreport_data: %s\n", in, to_hex(ByteView(r.report_data.data(), r.report_data.size())).c_str());
  std::printf("%sreported TCB: %s\n", in, snp::tcb_to_string(snp::decode_tcb(r.reported_tcb, p), p).c_str());
  std::printf("%schip_id: %s\n", in, to_hex(ByteView(r.chip_id.data(), r.chip_id.size())).c_str());
  std::printf("%ssignature: %s\n", in, v.signature_ok ? "ok" : "not verified");
  if (v.chain && v.chain->crl_checked) std::printf("%sCRL: checked, the ASK/ASVK is not revoked\n", in);
}

}  // namespace torgw::cli
