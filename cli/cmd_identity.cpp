// torgw identity salt
// Prints a fresh identity_salt: 32 bytes from libsodium's randombytes, base64, one line.
// Exit codes: 0 printed, 2 usage error.
//
// torgw identity wrap SERIAL.log --key hs_ed25519_secret_key [--expected-measurement HEX] ...
// Moves an existing onion identity into a VM booted with identity=transfer: verifies the
// VM's attestation from its serial log (the last boot that published a transfer key),
// then encrypts the tor secret key to the X25519 key bound in that report. Prints the
// wrapped blob (base64, one line) for the VM's metadata; the VM unwraps and re-seals.
// Exit codes: 0 blob printed, 1 the log does not verify, 2 usage/input error.
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/snp_options.h"
#include "onion/onion.h"
#include "serial/serial.h"
#include "snp/attest.h"
#include "snp/identity.h"

namespace torgw::cli {

namespace {

struct Args {
  std::string log;
  std::string key;
  SnpFlags flags;
};

int wrap_command(const Args& a) {
  auto opts = snp_options(a.flags);
  if (!opts) return kExitUsage;
  // The tor key: read, parse, wipe the file buffer.
  std::string keyfile;
  if (!read_input_file(a.key, keyfile, 4096)) return kExitUsage;
  auto expanded = onion::parse_secret_key_file(as_bytes(keyfile));
  wipe(keyfile.data(), keyfile.size());
  if (!expanded) {
    std::fprintf(stderr, "torgw: %s: %s\n", a.key.c_str(), expanded.error().to_string().c_str());
    return kExitUsage;
  }
  auto id = onion::Identity::from_expanded(expanded->view());
  if (!id) {
    std::fprintf(stderr, "torgw: %s: %s\n", a.key.c_str(), id.error().to_string().c_str());
    return kExitUsage;
  }

  auto log = read_serial_log(a.log);
  if (!log) return kExitUsage;
  const serial::Boot* boot = snp::last_transfer_boot(*log);
  if (!boot) {
    std::fprintf(stderr,
                 "torgw: INVALID: no boot in %s published a transfer key with a whole attestation report "
                 "(is the VM running with identity=transfer?)\n",
                 a.log.c_str());
    return kExitInvalid;
  }
  snp::LogVerifyOptions lo;
  lo.verify = *opts;
  lo.allow_missing_onion = true;
  auto v = snp::verify_boot(*boot, lo);
  const bool sim = v.simulated();
  if (!v.valid()) {
    std::fprintf(stderr, "torgw: %sINVALID: boot %s: %s\n", sim ? "SIMULATED " : "", v.boot_id.c_str(),
                 v.status.error().to_string().c_str());
    return kExitInvalid;
  }
  auto boot_id = snp::parse_boot_id(v.boot_id);
  const auto context = snp::identity::transfer_context(*boot_id, v.verification.report->report_data);
  snp::identity::Secret secret{snp::identity::SecretKind::Expanded, SecretBytes::copy_of(expanded->view())};
  auto blob = snp::identity::wrap(secret, *v.transfer_key, context);
  if (!blob) {
    std::fprintf(stderr, "torgw: %s\n", blob.error().to_string().c_str());
    return kExitInvalid;
  }
  const auto& m = v.verification.report->measurement;
  std::fprintf(stderr, "torgw: %swrapped %s for boot %s (measurement %s, %s %s); the blob opens only in that boot\n",
               sim ? "SIMULATED " : "", id->hostname().c_str(), v.boot_id.c_str(),
               to_hex(ByteView(m.data(), m.size())).c_str(), to_string(v.verification.chain->product),
               to_string(v.verification.chain->signer));
  if (sim) std::fprintf(stderr, "torgw: SIMULATED: the target is torgw's simulated PSP, not AMD hardware\n");
  if (a.flags.json) {
    nlohmann::json j = {{"blob", to_base64(*blob)},
                        {"boot_id", v.boot_id},
                        {"onion_hostname", id->hostname()},
                        {"measurement", to_hex(ByteView(m.data(), m.size()))},
                        {"simulated", sim}};
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("%s\n", to_base64(*blob).c_str());
  }
  return kExitOk;
}

}  // namespace

void register_identity(CLI::App& app, Action& selected) {
  auto* identity = app.add_subcommand("identity", "Onion identities bound to SEV-SNP");
  identity->require_subcommand(1);
  auto* salt = identity->add_subcommand(
      "salt", "Print a fresh identity_salt (32 random bytes, base64): the per-deployment secret that derived, sealed "
              "and transfer identities need; keep it like a key");
  auto salt_json = std::make_shared<bool>(false);
  salt->add_flag("--json", *salt_json, "Machine-readable output");
  salt->callback([&selected, salt_json] {
    selected = [salt_json] {
      const std::string salt_b64 = snp::identity::new_salt_base64();
      if (*salt_json) std::cout << nlohmann::json{{"identity_salt", salt_b64}}.dump(2) << "\n";
      else std::printf("%s\n", salt_b64.c_str());
      return kExitOk;
    };
  });
  auto* wrap = identity->add_subcommand(
      "wrap", "Encrypt an existing tor key to a VM in identity=transfer mode, after verifying its attestation");
  auto a = std::make_shared<Args>();
  wrap->add_option("LOG", a->log, "Scraped serial log of the target VM")->required();
  wrap->add_option("--key", a->key, "tor's hs_ed25519_secret_key to move")->required();
  add_snp_flags(wrap, a->flags, false);
  wrap->callback([&selected, a] { selected = [a] { return wrap_command(*a); }; });
}

}  // namespace torgw::cli
