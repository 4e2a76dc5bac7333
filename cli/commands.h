// The `torgw` operator CLI. Each command group lives in its own cmd_<group>.cpp and
// registers its subcommands on the app; the chosen subcommand's action is stored in
// `selected` and run after parsing.
//
// Exit codes (a contract scripts depend on): 0 = valid/ok, 1 = invalid (verification
// failed, no complete boot, ...), 2 = usage or input error (unreadable file, bad flag);
// serial watch adds 3 (timeout) and 4 (input ended). docs/cli.md lists them.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace torgw::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitInvalid = 1;
inline constexpr int kExitUsage = 2;
// serial watch only: the --timeout passed (3), the input ended before the boot did (4).
inline constexpr int kExitTimeout = 3;
inline constexpr int kExitInputEnded = 4;

using Action = std::function<int()>;

void register_serial(CLI::App& app, Action& selected);
void register_onion(CLI::App& app, Action& selected);
void register_config(CLI::App& app, Action& selected);
void register_report(CLI::App& app, Action& selected);
void register_verify(CLI::App& app, Action& selected);
void register_identity(CLI::App& app, Action& selected);
void register_measure(CLI::App& app, Action& selected);
void register_release(CLI::App& app, Action& selected);

// The largest file `release sign/verify` reads (a manifest is tens of KiB).
inline constexpr std::size_t kMaxSignedFile = 64u << 20;

// A release signature over `message` (cmd_release.cpp). `usable` is false when the
// signature or key file is unreadable or malformed (already said on stderr: exit 2);
// otherwise `status` is the verdict (minisign.wrong_key, minisign.bad_signature, ...).
struct ReleaseCheck {
  bool usable = false;
  Status status;
  std::string key_id, trusted_comment;
};
ReleaseCheck check_release_signature(std::string_view message, const std::string& sig_path,
                                     const std::string& key_path);
void register_balance(CLI::App& app, Action& selected);

// Reads a whole file (bounded); on failure prints "torgw: <path>: <reason>" to stderr
// and returns false.
bool read_input_file(const std::string& path, std::string& out, std::size_t max_bytes);

}  // namespace torgw::cli

// ---- reason tokens (docs/DEVELOPING.md "Reason tokens") -----------------------------
// Every Error.reason this module's code makes: the tokens it spells as literals and the
// FATAL reasons it composes at run time, spelled out (<...>: a part known at run time
// only). The unit test reason_tokens_test holds the code to this list.
#include <string_view>

namespace torgw::cli {
inline constexpr std::string_view kReasons[] = {
    "attested_config.absent",  "balance.bad_instance_address", "balance.bad_master",
    "balance.duplicate",       "balance.master_not_attested",  "balance.not_instance",
    "balance.not_ready",       "balance.other_master",         "log.no_complete_boot",
    "log.unreadable",          "measure.vcpu.bad_signature",   "measure.vcpu.conflict",
    "measure.vcpu.incomplete", "verify.not_image_bound",
};
}  // namespace torgw::cli
// ---- end of reason tokens ----------------------------------------------------------
