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
#include "cli/verify_log.h"
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
constexpr const char* kConfigSummaryKeys[] = {
    "backend",     "backend_mode",         "identity", "snp_key_fields", "snp_fallback",
    "attestation", "expected_measurement", "metadata", "identity_salt"};

int verify_command(const Args& a) {
  std::string manifest_key, manifest_comment;  // set when --release-key checked it
  std::string manifest_text;
  if (!a.manifest.empty() && !a.release_key.empty()) {
    if (!read_input_file(a.manifest, manifest_text, measure::kMaxManifestSize + 1)) return kExitUsage;
    // The signature first: not one byte of an unsigned or altered manifest is trusted,
    // and the bytes checked are the bytes parsed (the file is not read twice).
    auto sig = check_release_signature(manifest_text, a.manifest_sig, a.release_key);
    if (!sig.usable) return kExitUsage;
    if (!sig.status) {
      const Error& e = sig.status.error();
      if (a.flags.json)
        std::cout << nlohmann::json{{"valid", false}, {"reason", e.reason}, {"detail", e.detail}}.dump(2) << "\n";
      else std::printf("INVALID: %s: %s\n", a.manifest.c_str(), e.to_string().c_str());
      return kExitInvalid;
    }
    manifest_key = sig.key_id;
    manifest_comment = sig.trusted_comment;
  }
  auto opts = log_check_options(a.flags, a.manifest, a.expect_config, a.require_image,
                                a.release_key.empty() ? nullptr : &manifest_text);
  if (!opts) return kExitUsage;
  LogCheckOptions& co = *opts;
  auto log = read_serial_log(a.log);
  if (!log) return kExitUsage;
  if (!a.expected_onion.empty()) co.verify.expected_onion = a.expected_onion;
  if (!a.vcek.empty()) {
    co.verify.certs = load_chain_files(a.vcek, a.ask, a.ark, a.trust_dir);
    if (!co.verify.certs) return kExitUsage;
  }
  const auto& manifest = co.manifest;

  LogCheck lc = check_log(*log, co);
  const serial::Boot* boot = lc.boot;
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
  if (lc.usage_error) {
    std::fprintf(stderr, "torgw verify: --expect-config: %s\n", lc.verdict.status.error().to_string().c_str());
    return kExitUsage;
  }
  const snp::LogVerdict& v = lc.verdict;
  const bool sim = lc.simulated;
  const auto& image = lc.image;
  const bool image_refused = lc.image_refused;
  const auto& lo = co.verify;
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
    // Onionbalance instance mode: the master this attested boot serves (docs/scale-out.md).
    j["onionbalance_master"] = lc.ob_master.empty() ? nlohmann::json(nullptr) : nlohmann::json(lc.ob_master);
    j["transfer_key"] = v.transfer_key ? nlohmann::json(to_hex(ByteView(v.transfer_key->data(), 32)))
                                       : nlohmann::json(nullptr);
    j["device_said_valid"] = v.device_said_valid ? nlohmann::json(*v.device_said_valid) : nlohmann::json(nullptr);
    j["device_reason"] = v.device_reason;
    if (v.expected_report_data)
      j["expected_report_data"] = to_hex(ByteView(v.expected_report_data->data(), v.expected_report_data->size()));
    j["config_sha256"] = v.config_sha256 ? nlohmann::json(to_hex(ByteView(v.config_sha256->data(), 32)))
                                         : nlohmann::json(nullptr);
    nlohmann::json cfg = nlohmann::json::object();
    for (const auto& [k, val] : lc.config) cfg[k] = val;
    j["attested_config"] = v.attested_config && lc.config_status ? cfg : nlohmann::json(nullptr);
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
      std::printf("%sVALID: %s: a report signed by %s; its REPORT_DATA binds this onion key and this BOOT_ID\n", tag,
                  v.onion_hostname.empty() ? "(no onion yet)" : v.onion_hostname.c_str(),
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
    if (!lc.ob_master.empty())
      std::printf("  Onionbalance instance of master %s (attested: REPORT_DATA binds it through the attested "
                  "config)\n",
                  lc.ob_master.c_str());
    else if (const std::string* ob = boot->get("OB_MASTER"); ob && v.valid())
      std::printf("  OB_MASTER=%s is printed but not attested (this boot binds no configuration)\n", ob->c_str());
    if (v.device_said_valid)
      std::printf("  the VM itself said: %s%s%s\n", *v.device_said_valid ? "valid" : "invalid",
                  v.device_reason.empty() ? "" : " ", v.device_reason.c_str());
    if (v.attested_config && v.valid()) {
      std::printf("  attested config (sha256 %s, %zu keys; all of them: --json):\n",
                  to_hex(ByteView(v.config_sha256->data(), 32)).c_str(), lc.config.size());
      for (const char* key : kConfigSummaryKeys) {
        auto it = std::find_if(lc.config.begin(), lc.config.end(), [&](const auto& p) { return p.first == key; });
        if (it != lc.config.end()) std::printf("    %s=%s\n", key, it->second.c_str());
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
  cmd->add_option("--expected-onion", a->expected_onion,
                  "The onion address the boot must have (with or without .onion)");
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
