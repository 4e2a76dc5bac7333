// torgw balance LOG... --key MASTER_KEY [--master ADDR] [--out config.yaml]
//               [--manifest manifest.json [--require-image]] [--expect-config K=V] [--json] ...
// Builds the Onionbalance v3 frontend's config.yaml from the instances' scraped serial
// logs (docs/scale-out.md). Each log is verified exactly as `torgw verify` does it
// (cli/verify_log.h); an instance is included only if its last complete boot is VALID,
// ended in READY, attests onionbalance_master = this master (REPORT_DATA v2 binds it
// through the attested config), is image-bound when --require-image is given, and is
// not a second log of an instance already included. Every log gets a line saying
// included or excluded, and why.
// Onionbalance takes 2 introduction points per live instance and clients reject a
// descriptor with more than 20, so more than 8 instances is an error (nothing written).
// Exit codes: 0 config.yaml written, 1 nothing written (no instance qualifies, or more
// than 8 do), 2 usage or input error (a malformed --master, an unreadable --manifest).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/snp_options.h"
#include "cli/verify_log.h"
#include "onion/onion.h"

namespace torgw::cli {

namespace {

// Onionbalance v3 puts 2 intro points per instance in one descriptor; tor clients
// refuse more than 20 (rend-spec-v3 NUM_INTRO_POINT), and the upstream docs say 8.
constexpr std::size_t kMaxInstances = 8;

struct Args {
  std::vector<std::string> logs;
  std::string key;
  std::string master;
  std::string out = "config.yaml";
  std::string manifest;
  bool require_image = false;
  std::vector<std::string> expect_config;
  SnpFlags flags;
};

struct Row {
  std::string log;
  bool included = false;
  std::string onion;  // "<56>.onion", "" if unknown
  std::string boot_id;
  std::string reason;  // a dotted token; for included rows "valid"
  std::string detail;
  bool simulated = false;
  std::string image;  // "image-bound", "not-covered", "unchecked", ""
};

const char* image_kind(const std::optional<ImageVerdict>& v) {
  if (!v) return "";
  static constexpr const char* kKinds[] = {"unchecked", "image-bound", "not-covered"};
  return kKinds[static_cast<int>(v->kind)];
}

// A path or name on one YAML line in double quotes: printable ASCII only.
bool yaml_safe(const std::string& s) {
  for (char c : s)
    if (c < 0x20 || c > 0x7e) return false;
  return !s.empty();
}
std::string yaml_quoted(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o + "\"";
}

// The master address: from --master, or from the key when it is in tor's format (the
// file onionbalance also reads); both given must agree. Prints and returns nullopt on a
// usage error.
std::optional<std::string> resolve_master(const Args& a) {
  std::optional<std::string> from_flag, from_key;
  if (!a.master.empty()) {
    auto pk = onion::public_key_from_address(a.master);
    if (!pk) {
      std::fprintf(stderr, "torgw balance: --master %s: not a v3 onion address (%s)\n", a.master.c_str(),
                   pk.error().reason.c_str());
      return std::nullopt;
    }
    from_flag = onion::address_from_public_key(*pk) + ".onion";
  }
  std::string key;
  if (!read_input_file(a.key, key, 1 << 16)) {
    if (!from_flag) {
      std::fprintf(stderr, "torgw balance: --key must be readable to learn the master address, or give --master\n");
      return std::nullopt;
    }
    std::fprintf(stderr, "torgw balance: --key %s not read here: that it holds %s is not checked\n", a.key.c_str(),
                 from_flag->c_str());
    return from_flag;
  }
  auto kind = onion::key_file_kind(as_bytes(key));
  if (kind && *kind == onion::KeyFileKind::Public) {
    std::fprintf(stderr, "torgw balance: --key %s is a public key: onionbalance needs the secret key\n", a.key.c_str());
    return std::nullopt;
  }
  if (kind) {
    auto secret = onion::parse_secret_key_file(as_bytes(key));
    wipe(key.data(), key.size());
    auto id = secret ? onion::Identity::from_expanded(secret->view()) : Result<onion::Identity>(secret.error());
    if (!id) {
      std::fprintf(stderr, "torgw balance: --key %s: %s\n", a.key.c_str(), id.error().to_string().c_str());
      return std::nullopt;
    }
    from_key = id->hostname();
  } else {
    wipe(key.data(), key.size());
  }
  if (from_flag && from_key && *from_flag != *from_key) {
    std::fprintf(stderr, "torgw balance: --key %s is the key of %s, not of --master %s\n", a.key.c_str(),
                 from_key->c_str(), from_flag->c_str());
    return std::nullopt;
  }
  if (from_key) return from_key;
  if (!from_flag) {
    std::fprintf(stderr,
                 "torgw balance: --key %s is not in tor's hs_ed25519_secret_key format (a PEM key?): give "
                 "--master too\n",
                 a.key.c_str());
    return std::nullopt;
  }
  return from_flag;
}

Row check_instance(const std::string& path, const std::string& master, const LogCheckOptions& co) {
  Row r;
  r.log = path;
  auto exclude = [&](std::string reason, std::string detail) {
    r.reason = std::move(reason);
    r.detail = std::move(detail);
    return r;
  };
  auto log = read_serial_log(path);
  if (!log) return exclude("log.unreadable", "cannot read it (see above)");
  LogCheck lc = check_log(*log, co);
  if (!lc.boot) return exclude("log.no_complete_boot", "no boot ended in READY or FATAL with all its markers");
  const auto& v = lc.verdict;
  r.boot_id = v.boot_id;
  r.onion = v.onion_hostname;
  r.simulated = lc.simulated;
  r.image = image_kind(lc.image);
  if (!v.valid()) return exclude(v.status.error().reason, v.status.error().detail);
  if (lc.boot->end != serial::BootEnd::Ready)
    return exclude("balance.not_ready", "the last complete boot ended in FATAL: it serves nothing");
  if (!v.attested_config)
    return exclude("balance.master_not_attested",
                   "this boot binds no configuration (REPORT_DATA v1), so nothing attests which master it serves");
  if (lc.ob_master.empty()) return exclude("balance.not_instance", "the attested config sets no onionbalance_master");
  auto pk = onion::public_key_from_address(lc.ob_master);
  if (!pk)
    return exclude("balance.bad_master", "attested onionbalance_master " + lc.ob_master + ": " + pk.error().reason);
  if (onion::address_from_public_key(*pk) + ".onion" != master)
    return exclude("balance.other_master", "it serves " + lc.ob_master);
  if (r.onion.empty() || r.onion == master)
    return exclude("balance.bad_instance_address", "instance address '" + r.onion + "'");
  if (lc.image_refused) return exclude("verify.not_image_bound", lc.image->lines.front());
  r.included = true;
  r.reason = "valid";
  r.detail = std::string(lc.simulated ? "SIMULATED " : "") + "VALID, boot " + v.boot_id;
  return r;
}

std::string render_config_yaml(const std::string& key_path, const std::string& master, const std::vector<Row>& rows) {
  std::string y = "# Onionbalance v3 config for " + master +
                  ", written by `torgw balance` from the\n"
                  "# instances' verified serial logs (docs/scale-out.md). Regenerate, then reload onionbalance.\n"
                  "services:\n- key: " +
                  yaml_quoted(key_path) + "\n  instances:\n";
  int n = 0;
  for (const auto& r : rows) {
    if (!r.included) continue;
    // Onionbalance compares addresses without ".onion" (hs_v3/instance.py).
    y += "  - address: " + r.onion.substr(0, onion::kAddressChars) + "\n";
    y += "    name: instance" + std::to_string(++n) + "-" + r.boot_id.substr(0, 8) + "\n";
  }
  return y;
}

bool write_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!(f << text) || !f.flush()) {
      std::fprintf(stderr, "torgw balance: cannot write %s\n", tmp.c_str());
      return false;
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::fprintf(stderr, "torgw balance: cannot write %s: %s\n", path.c_str(), ec.message().c_str());
    return false;
  }
  return true;
}

int balance_command(const Args& a) {
  auto opts = log_check_options(a.flags, a.manifest, a.expect_config, a.require_image);
  if (!opts) return kExitUsage;
  const LogCheckOptions& co = *opts;
  auto master = resolve_master(a);
  if (!master) return kExitUsage;
  std::error_code ec;
  const std::string key_path = std::filesystem::absolute(a.key, ec).lexically_normal().string();
  if (ec || !yaml_safe(key_path)) {
    std::fprintf(stderr, "torgw balance: --key: the path must be printable ASCII\n");
    return kExitUsage;
  }
  for (const auto& e : a.expect_config) {
    // Checked once against an empty config, so a malformed one is a usage error before
    // it can exclude every instance.
    auto s = config::check_expected_config({}, e);
    if (!s && s.error().reason == "attested_config.bad_expectation") {
      std::fprintf(stderr, "torgw balance: --expect-config: %s\n", s.error().to_string().c_str());
      return kExitUsage;
    }
  }

  std::vector<Row> rows;
  std::set<std::string> seen;  // instance addresses already included
  for (const auto& path : a.logs) {
    Row r = check_instance(path, *master, co);
    if (r.included && !seen.insert(r.onion).second) {
      r.included = false;
      r.reason = "balance.duplicate";
      r.detail = r.onion + " is already included from an earlier log";
    }
    rows.push_back(std::move(r));
  }
  std::size_t included = 0;
  for (const auto& r : rows) included += r.included ? 1 : 0;
  std::string error, error_detail;
  if (included == 0) {
    error = "balance.no_instances";
    error_detail = "no log qualifies: nothing written";
  } else if (included > kMaxInstances) {
    error = "balance.too_many_instances";
    error_detail = std::to_string(included) +
                   " instances qualify; Onionbalance puts 2 introduction points per "
                   "instance in one descriptor and clients reject more than 20, so at most " +
                   std::to_string(kMaxInstances) + " (nothing written)";
  }
  std::string yaml = render_config_yaml(key_path, *master, rows);
  if (error.empty() && !write_atomic(a.out, yaml)) return kExitUsage;

  if (a.flags.json) {
    nlohmann::json inst = nlohmann::json::array();
    for (const auto& r : rows)
      inst.push_back({{"log", r.log},
                      {"status", r.included ? "included" : "excluded"},
                      {"onion", r.onion.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.onion)},
                      {"boot_id", r.boot_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.boot_id)},
                      {"reason", r.reason},
                      {"detail", r.detail},
                      {"simulated", r.simulated},
                      {"image", r.image.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.image)}});
    nlohmann::json j = {{"master", *master},
                        {"key", key_path},
                        {"config", error.empty() ? nlohmann::json(a.out) : nlohmann::json(nullptr)},
                        {"included", included},
                        {"max_instances", kMaxInstances},
                        {"error", error.empty() ? nlohmann::json(nullptr) : nlohmann::json(error)},
                        {"error_detail", error_detail},
                        {"instances", inst}};
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("master %s (key %s)\n", master->c_str(), key_path.c_str());
    for (const auto& r : rows)
      std::printf("%-8s  %-62s  %s  %s: %s\n", r.included ? "included" : "excluded",
                  r.onion.empty() ? "-" : r.onion.c_str(), r.log.c_str(), r.reason.c_str(), r.detail.c_str());
    if (error.empty())
      std::printf("wrote %s: %zu of %zu instances; reload onionbalance (SIGHUP, or systemctl reload onionbalance)\n",
                  a.out.c_str(), included, rows.size());
    else std::printf("ERROR: %s: %s\n", error.c_str(), error_detail.c_str());
  }
  return error.empty() ? kExitOk : kExitInvalid;
}

}  // namespace

void register_balance(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand(
      "balance", "Write Onionbalance's config.yaml from the instances' verified serial logs (docs/scale-out.md)");
  auto a = std::make_shared<Args>();
  cmd->add_option("LOG", a->logs, "Scraped serial logs of the instances, one per instance")->required();
  cmd->add_option("--key", a->key,
                  "The master's secret key file as the frontend reads it (tor's hs_ed25519_secret_key, or "
                  "onionbalance's PEM with --master); its path goes into config.yaml")
      ->required();
  cmd->add_option("--master", a->master, "The master onion address (default: the address of --key)");
  cmd->add_option("--out", a->out, "Where to write config.yaml (default: ./config.yaml)");
  auto* manifest = cmd->add_option("--manifest", a->manifest,
                                   "The image's manifest.json: report whether each measurement is image-bound");
  cmd->add_flag("--require-image", a->require_image,
                "Exclude instances whose measurement is not one of the manifest's direct-boot digests")
      ->needs(manifest);
  cmd->add_option("--expect-config", a->expect_config,
                  "KEY=VALUE every instance's attested configuration must hold (repeatable), as torgw verify")
      ->allow_extra_args(false);
  add_snp_flags(cmd, a->flags, false);
  cmd->callback([&selected, a] { selected = [a] { return balance_command(*a); }; });
}

}  // namespace torgw::cli
