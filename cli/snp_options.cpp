#include "cli/snp_options.h"

#include <cstdio>

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
  if (sim)
    std::printf("%sSIMULATED: this report comes from torgw's simulated PSP, not from AMD hardware\n", in);
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
}

}  // namespace torgw::cli
