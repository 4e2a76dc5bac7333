// The reason tokens of common/: the list that docs and tests/reasons read; common/common.h
// includes it.
#pragma once

// ---- reason tokens (docs/DEVELOPING.md "Reason tokens") -----------------------------
// Every Error.reason this module's code makes: the tokens it spells as literals and the
// FATAL reasons it composes at run time, spelled out (<...>: a part known at run time
// only). The unit test reason_tokens_test holds the code to this list.
#include <string_view>

namespace torgw {
inline constexpr std::string_view kCommonReasons[] = {
    "base64.invalid",         "bytes.trailing",        "bytes.truncated",     "hex.bad_character",
    "hex.odd_length",         "secret.alloc_failed",   "spawn.bad_argv",      "spawn.chdir_failed",
    "spawn.drop_failed",      "spawn.exec_failed",     "spawn.fork_failed",   "spawn.no_new_privs_failed",
    "spawn.pdeathsig_failed", "spawn.pipe_failed",     "spawn.setsid_failed", "spawn.signals_failed",
    "spawn.stdin_failed",     "spawn.stdin_too_large", "spawn.stdio_failed",
};
}  // namespace torgw
// ---- end of reason tokens ----------------------------------------------------------
