#include "cli/verify_log.h"

#include <cstdio>

#include "cli/commands.h"

namespace torgw::cli {

namespace {

// The attested config of a verified boot: well-formed, agreeing with the CONFIG_<KEY>
// (and OB_MASTER) telemetry, and as the operator expects. A bad --expect-config is a
// usage error.
Status check_attested_config(const snp::LogVerdict& v, const serial::Boot& boot, const LogCheckOptions& o,
                             LogCheck& out) {
  if (!v.attested_config) {
    if (!o.expect_config.empty())
      return make_error("attested_config.absent", "this boot binds no configuration (REPORT_DATA v1): "
                                                  "--expect-config cannot be checked");
    return {};
  }
  TORGW_ASSIGN_OR_RETURN(auto parsed, config::parse_canonical_config(*v.attested_config));
  out.config = std::move(parsed);
  TORGW_TRY(config::check_config_telemetry(out.config, boot.values));
  for (const auto& e : o.expect_config) {
    if (auto s = config::check_expected_config(out.config, e); !s) {
      out.usage_error = s.error().reason == "attested_config.bad_expectation";
      return s;
    }
  }
  return {};
}

constexpr const char* kFirmwareOnly = "firmware-only: proves an SNP guest on a genuine AMD chip, not which image ran";

std::string image_name(const measure::ImageManifest& m) {
  return "torgw " + m.torgw_version + " " + m.image_sha256.substr(0, 12);
}

ImageVerdict image_verdict(const snp::Report& r, const std::optional<measure::ImageManifest>& manifest, bool on_gce) {
  ImageVerdict out;
  if (manifest) {
    out.row = manifest->find(r.measurement);
    if (out.row) {
      out.kind = ImageVerdict::Kind::Bound;
      out.lines.push_back("image-bound: " + image_name(*manifest) + ", direct boot, " + std::to_string(out.row->vcpus) +
                          " vCPUs, " + out.row->vcpu_type);
      return out;
    }
    out.kind = ImageVerdict::Kind::NotCovered;
    out.lines.push_back("not image-bound: the measurement is none of the manifest's direct-boot digests, so it "
                        "does not cover " +
                        image_name(*manifest));
  } else {
    out.lines.push_back("image not checked (no --manifest): the measurement is not known to cover any image");
  }
  out.lines.push_back(on_gce ? std::string(kFirmwareOnly) + " (GCE measures its own firmware only)"
                             : "measurement-only: proves an SNP guest on a genuine AMD chip launched with this "
                               "measurement, not which image ran");
  return out;
}

}  // namespace

LogCheck check_log(const serial::ParsedLog& log, const LogCheckOptions& o) {
  LogCheck lc;
  lc.boot = serial::last_complete_boot(log);
  if (!lc.boot) return lc;
  lc.verdict = snp::verify_boot(*lc.boot, o.verify);
  if (lc.verdict.valid()) {
    lc.config_status = check_attested_config(lc.verdict, *lc.boot, o, lc);
    if (!lc.config_status) lc.verdict.status = lc.config_status;
  }
  lc.simulated = lc.verdict.simulated() || lc.verdict.snp == "simulated";
  // Which metadata service answered is the host's word, not attested: it only picks the
  // wording of a caveat, never makes a claim stronger.
  const std::string* meta = lc.boot->get("METADATA");
  lc.on_gce = meta && meta->find("gce:present") != std::string::npos;
  if (lc.verdict.valid() && lc.verdict.verification.report)
    lc.image = image_verdict(*lc.verdict.verification.report, o.manifest, lc.on_gce);
  lc.image_refused = o.require_image && lc.image && lc.image->kind != ImageVerdict::Kind::Bound;
  if (lc.verdict.valid())
    for (const auto& [k, val] : lc.config)
      if (k == "onionbalance_master") lc.ob_master = val;
  return lc;
}

std::optional<LogCheckOptions> log_check_options(const SnpFlags& flags, const std::string& manifest_path,
                                                 const std::vector<std::string>& expect_config, bool require_image,
                                                 const std::string* manifest_text) {
  auto opts = snp_options(flags);
  if (!opts) return std::nullopt;
  LogCheckOptions co;
  co.verify.verify = *opts;
  auto crl = load_crl_file(flags);
  if (!crl) return std::nullopt;
  co.verify.crl = *crl;
  if (!manifest_path.empty()) {
    std::string read;
    if (!manifest_text && !read_input_file(manifest_path, read, measure::kMaxManifestSize + 1)) return std::nullopt;
    auto m = measure::parse_image_manifest(manifest_text ? *manifest_text : read);
    if (!m) {
      std::fprintf(stderr, "torgw: %s: %s\n", manifest_path.c_str(), m.error().to_string().c_str());
      return std::nullopt;
    }
    co.manifest = std::move(*m);
  }
  co.expect_config = expect_config;
  co.require_image = require_image;
  return co;
}

}  // namespace torgw::cli
