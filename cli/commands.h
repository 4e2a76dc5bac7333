// The `torgw` operator CLI. Each command group lives in its own cmd_<group>.cpp and
// registers its subcommands on the app; the chosen subcommand's action is stored in
// `selected` and run after parsing.
//
// Exit codes (a contract scripts depend on): 0 = valid/ok, 1 = invalid (verification
// failed, no complete boot, ...), 2 = usage or input error (unreadable file, bad flag).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace torgw::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitInvalid = 1;
inline constexpr int kExitUsage = 2;

using Action = std::function<int()>;

void register_serial(CLI::App& app, Action& selected);
void register_onion(CLI::App& app, Action& selected);
void register_config(CLI::App& app, Action& selected);
void register_report(CLI::App& app, Action& selected);
void register_verify(CLI::App& app, Action& selected);
void register_identity(CLI::App& app, Action& selected);
void register_measure(CLI::App& app, Action& selected);
void register_balance(CLI::App& app, Action& selected);

// Reads a whole file (bounded); on failure prints "torgw: <path>: <reason>" to stderr
// and returns false.
bool read_input_file(const std::string& path, std::string& out, std::size_t max_bytes);

}  // namespace torgw::cli
