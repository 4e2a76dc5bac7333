// The verification of one scraped serial log, exactly as `torgw verify` does it: the
// last complete boot, its attestation (snp::verify_boot), its attested configuration
// (well-formed, agreeing with the CONFIG_<KEY>/OB_MASTER telemetry, --expect-config),
// and what the measurement says about the image (--manifest, --require-image).
// `torgw verify` prints the result; `torgw balance` filters instances on it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cli/snp_options.h"
#include "common/result.h"
#include "config/config.h"
#include "measure/manifest.h"
#include "serial/serial.h"
#include "snp/attest.h"

namespace torgw::cli {

// What the attested measurement says about the image (docs/threat-model.md).
struct ImageVerdict {
  enum class Kind { Unchecked, Bound, NotCovered } kind = Kind::Unchecked;
  const measure::ExpectedMeasurement* row = nullptr;
  std::vector<std::string> lines;  // what the text output prints, one caveat a line
};

struct LogCheckOptions {
  snp::LogVerifyOptions verify;
  std::optional<measure::ImageManifest> manifest;
  std::vector<std::string> expect_config;
  bool require_image = false;
};

struct LogCheck {
  const serial::Boot* boot = nullptr;  // the last complete boot; nullptr: none
  snp::LogVerdict verdict;             // status: the first failure (attestation or config)
  config::CanonicalConfig config;      // the attested config (v2 boots that verified)
  Status config_status;                // its check (ok when there was nothing to check)
  bool usage_error = false;            // a bad --expect-config
  std::optional<ImageVerdict> image;   // valid boots with a report
  bool image_refused = false;          // --require-image and not image-bound
  bool simulated = false;
  bool on_gce = false;  // the host's METADATA marker: wording only
  // The attested onionbalance_master ("<56>.onion"), "" if the config sets none or the
  // boot attests no config (REPORT_DATA v1).
  std::string ob_master;
  bool valid() const { return boot && verdict.valid(); }
};

// `boot` of `log` is checked; `log` must outlive the result.
LogCheck check_log(const serial::ParsedLog& log, const LogCheckOptions& opts);

// The options from the flags `torgw verify` and `torgw balance` share (SEV-SNP policy,
// --crl, --manifest, --expect-config, --require-image). On a usage error (a bad flag, an
// unreadable or malformed file) prints "torgw: ..." and returns nullopt. `manifest_text`,
// when given, is the manifest already read (and signature-checked) from manifest_path:
// it is parsed instead of reading the file a second time.
std::optional<LogCheckOptions> log_check_options(const SnpFlags& flags, const std::string& manifest_path,
                                                 const std::vector<std::string>& expect_config, bool require_image,
                                                 const std::string* manifest_text = nullptr);

inline constexpr const char* kReplayCaveat =
    "replayable: a VALID log proves such a boot happened, not that it is running now or that it is the "
    "VM's latest boot: the VM chooses BOOT_ID, so anyone holding the log can show it again";

}  // namespace torgw::cli
