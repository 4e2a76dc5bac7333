// torgw verify SERIAL.log [--manifest manifest.json [--require-image]] [--expected-onion HOST]
//                         [--expected-measurement HEX] [--json] ...
// Takes the last complete boot of a scraped serial log, rebuilds the attestation report
// and cert table from its markers, verifies them against the pinned AMD roots, and
// checks that REPORT_DATA binds the printed onion key and the boot's BOOT_ID (and, v2,
// the ATTESTED_CONFIG it prints: backend, identity mode, key fields, pins). Then says
// what the attested measurement means (docs/threat-model.md): image-bound when it is one
// of the manifest's direct-boot digests, otherwise that it does not cover the image.
// --expect-config KEY=VALUE (repeatable) makes a different attested value INVALID.
// Exit codes: 0 valid, 1 invalid (or no complete boot, or --require-image and the
// measurement is not image-bound), 2 usage/input error (a malformed manifest too).
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <vector>

#include "cli/commands.h"
#include "cli/snp_options.h"
#include "config/config.h"
#include "measure/manifest.h"
#include "serial/serial.h"
#include "snp/attest.h"
#include "snp/json.h"

namespace torgw::cli {

namespace {

struct Args {
  std::string log;
  std::string expected_onion;
  std::string vcek, ask, ark, trust_dir;
  std::vector<std::string> expect_config;
  std::string manifest;
  std::string manifest_sig, release_key;  // minisign signature over the manifest, and its key
  bool require_image = false;
  SnpFlags flags;
};

// The keys an operator looks for first in the attested config (all of it: --json).
constexpr const char* kConfigSummaryKeys[] = {"backend", "backend_mode", "identity", "snp_key_fields",
                                              "snp_fallback", "attestation", "expected_measurement",
                                              "metadata", "identity_salt"};

// The attested config of a verified boot: well-formed, agreeing with the CONFIG_<KEY>
// telemetry, and as the operator expects. A bad --expect-config is a usage error (2).
struct ConfigCheck {
  config::CanonicalConfig cfg;
  Status status;
  bool usage_error = false;
};
ConfigCheck check_attested_config(const snp::LogVerdict& v, const serial::Boot& boot, const Args& a) {
  ConfigCheck c;
  if (!v.attested_config) {
    if (!a.expect_config.empty())
      c.status = make_error("attested_config.absent", "this boot binds no configuration (REPORT_DATA v1): "
                                                      "--expect-config cannot be checked");
    return c;
  }
  auto parsed = config::parse_canonical_config(*v.attested_config);
  if (!parsed) {
    c.status = parsed.error();
    return c;
  }
  c.cfg = std::move(*parsed);
  if (auto s = config::check_config_telemetry(c.cfg, boot.values); !s) {
    c.status = s;
    return c;
  }
  for (const auto& e : a.expect_config) {
    if (auto s = config::check_expected_config(c.cfg, e); !s) {
      c.usage_error = s.error().reason == "attested_config.bad_expectation";
      c.status = s;
      return c;
    }
  }
  return c;
}

// What the attested measurement says about the image (docs/threat-model.md).
struct ImageVerdict {
  enum class Kind { Unchecked, Bound, NotCovered } kind = Kind::Unchecked;
  const measure::ExpectedMeasurement* row = nullptr;
  std::vector<std::string> lines;  // what the text output prints, one caveat a line
};

constexpr const char* kReplayCaveat =
    "replayable: a VALID log proves such a boot happened, not that it is running now or that it is the "
    "VM's latest boot: the VM chooses BOOT_ID, so anyone holding the log can show it again";
constexpr const char* kFirmwareOnly = "firmware-only: proves an SNP guest on a genuine AMD chip, not which image ran";

std::string image_name(const measure::ImageManifest& m) {
  return "torgw " + m.torgw_version + " " + m.image_sha256.substr(0, 12);
}

ImageVerdict image_verdict(const snp::Report& r, const std::optional<measure::ImageManifest>& manifest,
                           bool on_gce) {
  ImageVerdict out;
  if (manifest) {
    out.row = manifest->find(r.measurement);
    if (out.row) {
      out.kind = ImageVerdict::Kind::Bound;
      out.lines.push_back("image-bound: " + image_name(*manifest) + ", direct boot, " +
                          std::to_string(out.row->vcpus) + " vCPUs, " + out.row->vcpu_type);
      return out;
    }
    out.kind = ImageVerdict::Kind::NotCovered;
    out.lines.push_back("not image-bound: the measurement is none of the manifest's direct-boot digests, so it "
                        "does not cover " + image_name(*manifest));
  } else {
    out.lines.push_back("image not checked (no --manifest): the measurement is not known to cover any image");
  }
  out.lines.push_back(on_gce ? std::string(kFirmwareOnly) + " (GCE measures its own firmware only)"
                             : "measurement-only: proves an SNP guest on a genuine AMD chip launched with this "
                               "measurement, not which image ran");
  return out;
}

int verify_command(const Args& a) {
  auto opts = snp_options(a.flags);
  if (!opts) return kExitUsage;
  auto log = read_serial_log(a.log);
  if (!log) return kExitUsage;
  const serial::Boot* boot = serial::last_complete_boot(*log);
  snp::LogVerifyOptions lo;
  lo.verify = *opts;
  if (!a.expected_onion.empty()) lo.expected_onion = a.expected_onion;
  auto crl = load_crl_file(a.flags);
  if (!crl) return kExitUsage;
  lo.crl = *crl;
  if (!a.vcek.empty()) {
    lo.certs = load_chain_files(a.vcek, a.ask, a.ark, a.trust_dir);
    if (!lo.certs) return kExitUsage;
  }
  std::optional<measure::ImageManifest> manifest;
  std::string manifest_key, manifest_comment;  // set when --release-key checked it
  if (!a.manifest.empty()) {
    std::string text;
    if (!read_input_file(a.manifest, text, measure::kMaxManifestSize + 1)) return kExitUsage;
    // The signature first: not one byte of an unsigned or altered manifest is trusted.
    if (!a.release_key.empty()) {
      auto sig = check_release_signature(text, a.manifest_sig, a.release_key);
      if (!sig.usable) return kExitUsage;
      if (!sig.status) {
        const Error& e = sig.status.error();
        if (a.flags.json)
          std::cout << nlohmann::json{{"valid", false}, {"reason", e.reason}, {"detail", e.detail}}.dump(2) << "\n";
        else
          std::printf("INVALID: %s: %s\n", a.manifest.c_str(), e.to_string().c_str());
        return kExitInvalid;
      }
      manifest_key = sig.key_id;
      manifest_comment = sig.trusted_comment;
    }
    auto m = measure::parse_image_manifest(text);
    if (!m) {
      std::fprintf(stderr, "torgw: %s: %s\n", a.manifest.c_str(), m.error().to_string().c_str());
      return kExitUsage;
    }
    manifest = std::move(*m);
  }

  if (!boot) {
    if (a.flags.json) {
      nlohmann::json j = {{"valid", false}, {"reason", "log.no_complete_boot"}, {"boots", log->boots.size()}};
      std::cout << j.dump(2) << "\n";
    } else {
      std::printf("INVALID: log.no_complete_boot: no boot in %s ended in READY or FATAL with all its markers "
                  "(%zu boots seen)\n",
                  a.log.c_str(), log->boots.size());
    }
    return kExitInvalid;
  }
  snp::LogVerdict v = snp::verify_boot(*boot, lo);
  ConfigCheck cc;
  if (v.valid()) {
    cc = check_attested_config(v, *boot, a);
    if (cc.usage_error) {
      std::fprintf(stderr, "torgw verify: --expect-config: %s\n", cc.status.error().to_string().c_str());
      return kExitUsage;
    }
    if (!cc.status) v.status = cc.status;
  }
  const bool sim = v.simulated() || v.snp == "simulated";
  // Which metadata service answered is the host's word, not attested: it only picks the
  // wording of a caveat, never makes a claim stronger.
  const std::string* meta = boot->get("METADATA");
  const bool on_gce = meta && meta->find("gce:present") != std::string::npos;
  std::optional<ImageVerdict> image;
  if (v.valid() && v.verification.report) image = image_verdict(*v.verification.report, manifest, on_gce);
  const bool image_refused = a.require_image && image && image->kind != ImageVerdict::Kind::Bound;
  if (a.flags.json) {
    nlohmann::json j = snp::verification_json(v.verification);
    j["valid"] = v.valid();
    j["reason"] = v.valid() ? nlohmann::json(nullptr) : nlohmann::json(v.status.error().reason);
    j["detail"] = v.valid() ? nlohmann::json(nullptr) : nlohmann::json(v.status.error().detail);
    j["simulated"] = sim;
    j["boot_id"] = v.boot_id;
    j["boot_end"] = serial::to_string(boot->end);
    j["snp"] = v.snp;
    j["identity_binding"] = v.identity_binding;
    j["onion_hostname"] = v.onion_hostname;
    j["transfer_key"] = v.transfer_key ? nlohmann::json(to_hex(ByteView(v.transfer_key->data(), 32))) : nlohmann::json(nullptr);
    j["device_said_valid"] = v.device_said_valid ? nlohmann::json(*v.device_said_valid) : nlohmann::json(nullptr);
    j["device_reason"] = v.device_reason;
    if (v.expected_report_data)
      j["expected_report_data"] = to_hex(ByteView(v.expected_report_data->data(), v.expected_report_data->size()));
    j["config_sha256"] = v.config_sha256 ? nlohmann::json(to_hex(ByteView(v.config_sha256->data(), 32))) : nlohmann::json(nullptr);
    nlohmann::json cfg = nlohmann::json::object();
    for (const auto& [k, val] : cc.cfg) cfg[k] = val;
    j["attested_config"] = v.attested_config && cc.status ? cfg : nlohmann::json(nullptr);
    if (image) {
      static constexpr const char* kKinds[] = {"unchecked", "image-bound", "not-covered"};
      nlohmann::json im = {{"status", kKinds[static_cast<int>(image->kind)]}, {"caveats", image->lines}};
      if (manifest) {
        im["torgw_version"] = manifest->torgw_version;
        im["image_sha256"] = manifest->image_sha256;
        im["manifest_signed_by"] = manifest_key.empty() ? nlohmann::json(nullptr) : nlohmann::json(manifest_key);
      }
      if (image->row) {
        im["boot"] = "direct";
        im["vcpus"] = image->row->vcpus;
        im["vcpu_type"] = image->row->vcpu_type;
      }
      j["image"] = im;
      j["replayable"] = kReplayCaveat;
    } else {
      j["image"] = nullptr;
    }
    if (image_refused) j["reason"] = "verify.not_image_bound";
    std::cout << j.dump(2) << "\n";
  } else {
    const char* tag = sim ? "SIMULATED " : "";
    std::printf("boot %s (%s)\n", v.boot_id.c_str(), serial::to_string(boot->end));
    if (v.valid()) {
      std::printf("%sVALID: %s: a report signed by %s; its REPORT_DATA binds this onion key and this BOOT_ID\n",
                  tag, v.onion_hostname.empty() ? "(no onion yet)" : v.onion_hostname.c_str(),
                  sim ? "the SIMULATED PSP (not AMD hardware: no security value)" : "a genuine AMD SEV-SNP chip");
      if (!manifest_key.empty())
        std::printf("  manifest signed by release key %s (%s)\n", manifest_key.c_str(), manifest_comment.c_str());
      if (image)
        for (const auto& line : image->lines) std::printf("  %s\n", line.c_str());
      std::printf("  %s\n", kReplayCaveat);
      if (image_refused) std::printf("  --require-image: verify.not_image_bound\n");
    } else {
      std::printf("%sINVALID: %s\n", tag, v.status.error().to_string().c_str());
    }
    std::printf("  SNP=%s, identity %s\n", v.snp.empty() ? "?" : v.snp.c_str(),
                v.identity_binding.empty() ? "?" : v.identity_binding.c_str());
    if (!v.onion_hostname.empty()) std::printf("  onion: %s\n", v.onion_hostname.c_str());
    if (v.device_said_valid)
      std::printf("  the VM itself said: %s%s%s\n", *v.device_said_valid ? "valid" : "invalid",
                  v.device_reason.empty() ? "" : " ", v.device_reason.c_str());
    if (v.attested_config && v.valid()) {
      std::printf("  attested config (sha256 %s, %zu keys; all of them: --json):\n",
                  to_hex(ByteView(v.config_sha256->data(), 32)).c_str(), cc.cfg.size());
      for (const char* key : kConfigSummaryKeys) {
        auto it = std::find_if(cc.cfg.begin(), cc.cfg.end(), [&](const auto& p) { return p.first == key; });
        if (it != cc.cfg.end()) std::printf("    %s=%s\n", key, it->second.c_str());
      }
      for (const auto& e : a.expect_config) std::printf("    as expected: %s\n", e.c_str());
    } else if (!v.attested_config) {
      std::printf("  attested config: none (REPORT_DATA v1: this boot binds no configuration)\n");
    }
    print_verification(v.verification);
    if (!v.valid() && !a.flags.json && !lo.certs && !v.report.empty() && !boot->get("ATTESTATION_CERTS")) {
      if (auto r = snp::parse_report(v.report); r) {
        const snp::Product p = snp::product_from_cpuid(*r).value_or(snp::Product::Milan);
        std::printf("  the host supplied no certificates: fetch the VCEK (%s%s) and pass it with --vcek:\n    %s\n",
                    to_string(p), snp::product_from_cpuid(*r) ? "" : " assumed: version 2 reports do not say",
                    snp::kds_vcek_url(*r, p).c_str());
      }
    }
  }
  return v.valid() && !image_refused ? kExitOk : kExitInvalid;
}

}  // namespace

void register_verify(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand(
      "verify", "Verify a scraped serial log: the last complete boot's SEV-SNP attestation, onion and BOOT_ID binding");
  auto a = std::make_shared<Args>();
  cmd->add_option("LOG", a->log, "Scraped serial console log")->required();
  cmd->add_option("--expected-onion", a->expected_onion, "The onion address the boot must have (with or without .onion)");
  auto* vcek = cmd->add_option("--vcek", a->vcek,
                               "VCEK/VLEK (PEM or DER) to use instead of the log's ATTESTATION_CERTS, e.g. from "
                               "AMD's KDS when the host supplied none");
  cmd->add_option("--ask", a->ask, "ASK or ASVK for --vcek")->needs(vcek);
  cmd->add_option("--ark", a->ark, "ARK for --vcek")->needs(vcek);
  cmd->add_option("--expect-config", a->expect_config,
                  "KEY=VALUE the attested configuration must hold (repeatable; VALUE 'unset' for an unset key; "
                  "a secret is compared by its SHA-256): a mismatch is INVALID")
      ->allow_extra_args(false);
  auto* manifest = cmd->add_option("--manifest", a->manifest,
                                   "The image's manifest.json (image/build): say whether the attested measurement "
                                   "is one of its direct-boot digests (image-bound)");
  auto* msig = cmd->add_option("--manifest-sig", a->manifest_sig,
                               "The manifest's minisign signature (image/build --sign): checked before the manifest "
                               "is read; a bad one is INVALID")
                    ->needs(manifest);
  auto* rkey = cmd->add_option("--release-key", a->release_key, "The release's minisign public key for --manifest-sig")
                   ->needs(msig);
  msig->needs(rkey);
  cmd->add_flag("--require-image", a->require_image,
                "Exit 1 unless the measurement is one of the manifest's direct-boot digests")
      ->needs(manifest);
  add_trust_dir_option(cmd, a->trust_dir);
  add_snp_flags(cmd, a->flags, false);
  cmd->callback([&selected, a] { selected = [a] { return verify_command(*a); }; });
}

}  // namespace torgw::cli
