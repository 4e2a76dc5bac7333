// Configuration: the key registry, the pure parsers of every source, and resolution.
//
// Sources, highest precedence first (../shared/DESIGN.md "Configuration"):
//   flags (--set, dev mode only) > kernel command line `torgw.<key>=<value>`
//   > GCE metadata attributes `torgw-<key>` > Hetzner userdata (parse_hetzner_userdata)
//   > /etc/torgw/torgw.conf (key=value lines) > the key's default.
// Every key has a type, a validation rule, a default where one is safe, and a secret
// flag. resolve() validates every entry of every source (an invalid value is an error
// even if a higher source overrides it: a broken source is a broken deployment) and
// fails with Error.reason = "<key>:<reason>", exactly what torgw-init prints as
// FATAL=<key>:<reason>. Error.detail says where (source, line) for humans.
//
// Key names: [a-z0-9_]; '-' is accepted as '_' (the kernel treats them alike in
// parameter names, and GCE users write torgw-backend-mode). Upper case is rejected.
//
// The module's other parts: config/metadata.h (GCE/Hetzner metadata over HTTP, the
// helper's pipe format) and config/text.h (small text helpers for config/ and init/).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/secret.h"

namespace torgw::config {

// Ascending precedence: a later source overrides an earlier one.
enum class Source : int { Default = 0, File, Hetzner, Gce, Cmdline, Flag };
const char* to_string(Source s);  // "default", "file", "hetzner", "gce", "cmdline", "flag"

struct Entry {
  std::string key;       // normalised ('-' -> '_'); may be unknown: resolve() rejects it
  std::string value;     // raw text as the source gave it
  std::size_t line = 0;  // 1-based line in the source text (0: not line-based)
};

struct SourceData {
  Source source = Source::File;
  std::vector<Entry> entries;
};

enum class Type {
  String,        // printable ASCII without spaces, length min..max
  HostPort,      // host:port; host = IPv4, [IPv6] or a DNS name
  HostPortList,  // comma-separated HostPort, 1..max items, no duplicates
  Port,          // 1..65535
  Uint,          // decimal, min..max
  Seconds,       // decimal seconds, optional suffix s|m|h; min..max seconds
  Bool,          // true|false|1|0|yes|no|on|off -> "true"|"false"
  Enum,          // one of choices
  EnumList,      // comma-separated subset of choices, no duplicates
  Hex,           // exactly min hex chars (== max), normalised to lower case
  Base64,        // standard base64, at most max chars, decodes
  X25519List,    // comma-separated tor client-auth keys: [descriptor:x25519:]<52 base32>
  Url,           // http://<IPv4|[IPv6]>[:port][/], no path: no DNS needed at boot
  Onion,         // a v3 onion address (version and checksum checked), "<56>.onion", lower case
};
const char* to_string(Type t);

// What host-controlled metadata (GCE attributes, Hetzner userdata: plain HTTP from an
// address the host answers) may do with a key. The command line, the image's file, --set
// flags and init's own defaults are the operator's ("local"); the registry default
// counts as local too. Security keys are tighten-only: metadata may make the VM
// stricter than the local sources say, never looser; a looser value is
// FATAL=<key>:metadata_loosens (the detail names both sources). A tighten-only value
// from metadata that passes the check wins over the local ones (it is at least as
// strict); `metadata=off` on the command line ignores metadata altogether.
enum class Trust {
  open,       // metadata may set it (precedence: above the file, below the cmdline)
  local,      // never from metadata: FATAL=<key>:not_allowed_from_metadata
  pinned,     // tighten-only: metadata may supply it while no local source sets it (a
              // value is stricter than none); once set locally it may only be restated
  ascending,  // tighten-only: Bool false < true; Enum: `choices` are listed loosest
              // first, and metadata may only move to the same or a later choice
  superset,   // tighten-only: EnumList; metadata's list must hold every local item
};
const char* to_string(Trust t);   // "open", "local", "pinned", "ascending", "superset"
bool tighten_only(Trust t);       // pinned, ascending, superset
const char* trust_rule(Trust t);  // one sentence: what metadata may do (docs, `torgw config keys`)

struct KeySpec {
  std::string_view name;
  Type type;
  std::string_view default_value;  // empty: no default (unset unless a source sets it)
  bool required = false;           // no safe default: missing -> "<key>:missing"
  bool secret = false;             // value kept in SecretBytes, printed as "redacted"
  Trust trust = Trust::local;      // what metadata may do with it (no implicit default
                                   // in rows: every row names its class)
  std::uint64_t min = 0, max = 0;  // numeric range, string/list length bounds
  std::string_view choices;        // "a|b|c" for Enum and EnumList
  std::string_view help;
};

// Every key, in the order the effective config is printed.
std::span<const KeySpec> keys();
const KeySpec* find_key(std::string_view name);

// Tighten-only rule of `spec` (normalised values): is the metadata value at least as
// strict as the local one? `local` is nullptr when no local source sets the key and it
// has no default. True for Trust::open; false for Trust::local.
bool at_least_as_strict(const KeySpec& spec, const std::string* local, std::string_view metadata);

// docs/config.md's "Trust classes" table, generated from the registry (`torgw config
// keys --trust` prints it; a test holds the doc to it).
std::string trust_table_markdown();

// Limits on outside text.
inline constexpr std::size_t kMaxTextBytes = 64 * 1024;     // config file, userdata
inline constexpr std::size_t kMaxCmdlineBytes = 64 * 1024;  // /proc/cmdline is <= 4 KiB today
inline constexpr std::size_t kMaxLineBytes = 8192;
inline constexpr std::size_t kMaxValueBytes = 8192;
inline constexpr std::size_t kMaxEntries = 256;

// "backend-mode" -> "backend_mode"; returns "" if the name has characters outside
// [a-z0-9_-] or is longer than 64.
std::string normalize_key(std::string_view name);

// ---- pure parsers -------------------------------------------------------------------

// The kernel command line (as /proc/cmdline): whitespace-separated parameters with the
// kernel's quoting ("..." may wrap a parameter or its value). Only `torgw.<key>=<value>`
// parameters are returned; parsing stops at "--" (what follows is init's argv).
// Errors: cmdline:too_large, cmdline:unterminated_quote, <key>:no_value, <key>:bad_key.
Result<std::vector<Entry>> parse_cmdline(std::string_view cmdline);

// key=value lines (the config file, Hetzner userdata). Blank lines and lines whose first
// non-blank character is '#' are ignored; spaces around key and value are trimmed; CRLF
// is accepted; an optional "torgw." before the key is accepted. `what` names the
// source in errors: <what>:too_large, <what>:line_too_long, <what>:not_text,
// <what>:syntax (detail: the line), <what>:too_many_entries, <key>:bad_key.
Result<std::vector<Entry>> parse_kv_text(std::string_view text, std::string_view what);

// The host:port of a validated `backend` item, without its "tls://" scheme: the address
// the firewall pins whether the hop is plain SOCKS5 or TLS.
inline std::string_view backend_address(std::string_view item) {
  return item.substr(0, 6) == "tls://" ? item.substr(6) : item;
}

// Hetzner userdata (GET /hetzner/v1/userdata), in the two shapes hcloud users pass
// (docs/config.md "Hetzner userdata"):
//  - torgw.conf text: key=value lines, as parse_kv_text(body, "hetzner");
//  - cloud-init `#cloud-config` (first line) whose only top-level key is write_files,
//    with exactly one entry, for /etc/torgw/torgw.conf (keys path, content, encoding,
//    permissions, owner; content a literal block `|`/`|-`/`|+` or a one-line scalar,
//    plain, '...' or "..." without escapes; encoding b64|base64|text/plain). Its decoded
//    content is torgw.conf text (parse_kv_text). ASCII, no tabs, no flow style.
// Errors: hetzner:too_large; hetzner:userdata_format (neither shape: a script, MIME,
// gzip, other text; the detail names the accepted formats); hetzner:cloud_config_syntax,
// _unsupported (a YAML feature or key outside the subset), _other_file (write_files
// for another path), _no_torgw_conf, _duplicate, _encoding, _bad_base64 (detail: line);
// then parse_kv_text's errors for the content.
inline constexpr std::string_view kTorgwConfPath = "/etc/torgw/torgw.conf";
Result<std::vector<Entry>> parse_hetzner_userdata(std::string_view body);

// GCE `.../instance/attributes/` listing: one attribute name per line. Returns the
// attributes named torgw-<key> (the full attribute names, for fetching).
// Errors: gce:too_large, gce:not_text, gce:too_many_entries.
Result<std::vector<std::string>> parse_gce_attribute_list(std::string_view body);

// An attribute name torgw-<key> -> the normalised key ("" if it is not one of ours).
std::string gce_attribute_key(std::string_view attribute);

// Validates one value against its key's rule; returns the normalised value.
// Errors: <key>:<reason> with reason in empty, too_long, bad_format, out_of_range,
// bad_choice, duplicate_item, too_many_items, bad_hex, bad_base64, bad_key_format,
// bad_onion (detail: onion.bad_length|bad_base32|bad_version|bad_checksum).
Result<std::string> validate_value(const KeySpec& spec, std::string_view value);

// ---- resolution ---------------------------------------------------------------------

class Config {
 public:
  struct Value {
    std::string text;    // normalised value; empty for secrets (see secret())
    SecretBytes secret;  // secrets only
    Source source = Source::Default;
  };

  bool has(std::string_view key) const;
  // Non-secret value; "" if unset. Asserts the key exists in the registry.
  const std::string& str(std::string_view key) const;
  std::uint64_t uint(std::string_view key) const;             // Uint, Port, Seconds
  bool flag(std::string_view key) const;                      // Bool
  std::vector<std::string> list(std::string_view key) const;  // comma lists
  const SecretBytes* secret(std::string_view key) const;      // nullptr if unset
  Source source(std::string_view key) const;                  // Default if unset

  // The effective config as markers, in registry order, secrets redacted:
  //   CONFIG_SOURCES=<sources that set at least one key, highest first, or "none">
  //   CONFIG_<KEY>=<value | unset | redacted | sha256:<hex> for values over 128 chars>
  //   CONFIG_ORIGIN=<key>@<source>,...   (keys not at their default; "defaults")
  std::vector<std::pair<std::string, std::string>> markers() const;

  // The attested configuration (docs/serial.md "Attested configuration"): one
  // `key=value\n` line per key that has a value (set or default), sorted by key, values
  // as CONFIG_<KEY> shows them except that a secret is `sha256:<hex of its bytes>`.
  // Its SHA-256 is bound into REPORT_DATA v2; the VM prints it as ATTESTED_CONFIG.
  std::string canonical() const;

  std::map<std::string, Value, std::less<>>& values() { return values_; }
  const std::map<std::string, Value, std::less<>>& values() const { return values_; }

 private:
  std::map<std::string, Value, std::less<>> values_;
};

// ---- the attested configuration, as a verifier reads it back ----------------------

// Sorted (key, value) pairs, keys unique.
using CanonicalConfig = std::vector<std::pair<std::string, std::string>>;
inline constexpr std::size_t kMaxCanonicalBytes = 64 * 1024;

// Pure parser of Config::canonical() text taken from a serial log (outside bytes): every
// line `key=value\n`, key a normalised key name ([a-z0-9_], 1..64; unknown keys are
// accepted so an older verifier reads a newer VM), value printable ASCII 0x21..0x7e,
// keys strictly ascending, the text ends in '\n' (the empty text is no config).
// Errors: attested_config.too_large, .not_text, .syntax, .bad_key, .empty_value,
// .unsorted (also duplicates), .too_many_entries, .no_final_newline.
Result<CanonicalConfig> parse_canonical_config(std::string_view text);
// The text parse_canonical_config() reads (sorted pairs -> lines).
std::string render_canonical_config(const CanonicalConfig& cfg);
// SHA-256 of the canonical text (what REPORT_DATA v2 binds).
std::array<std::uint8_t, 32> canonical_config_sha256(std::string_view text);

// The CONFIG_<KEY> telemetry markers (`values`: marker key -> value, e.g. a serial::Boot's
// values) must show what the attested config says: for every CONFIG_<KEY> of a key in the
// registry, unset <=> absent, redacted <=> secret, otherwise equal. CONFIG_SOURCES and
// CONFIG_ORIGIN are not checked (the attested config does not say where a value came
// from). OB_MASTER must equal the attested onionbalance_master, and ONION_ROLE=instance
// appear only with one. Error: attested_config.telemetry_mismatch (detail: the key).
Status check_config_telemetry(const CanonicalConfig& cfg, const std::map<std::string, std::string>& values);

// --expect-config KEY=VALUE against the attested config. VALUE is normalised by the key's
// rule first (yes -> true, upper-case hex -> lower case); for a value the config shows
// as sha256:<hex> (a secret, or longer than 128 chars), the SHA-256 of VALUE is compared
// unless VALUE is itself sha256:<hex>. Errors: attested_config.bad_expectation (not
// KEY=VALUE, unknown key, or a value the key's rule rejects: a usage error),
// attested_config.mismatch (detail: key, expected, attested).
Status check_expected_config(const CanonicalConfig& cfg, std::string_view expectation);

// Merges the sources by precedence, validates every entry, applies defaults, checks
// required keys and cross-key rules. Secret values are moved into SecretBytes and wiped
// from the entries given (hence the non-const span). `partial` skips the required-key
// and cross-key checks: torgw-init resolves cmdline + file first to learn how to reach
// the metadata service, which may supply the rest.
Result<Config> resolve(std::span<SourceData> sources, bool partial = false);

}  // namespace torgw::config

// ---- reason tokens (docs/DEVELOPING.md "Reason tokens") -----------------------------
// Every Error.reason this module's code makes: the tokens it spells as literals and the
// FATAL reasons it composes at run time, spelled out (<...>: a part known at run time
// only). The unit test reason_tokens_test holds the code to this list.
#include <string_view>

namespace torgw::config {
inline constexpr std::string_view kReasons[] = {
    "<key>:<word>",
    "<key>:too_long",
    "attested_config.bad_expectation",
    "attested_config.bad_key",
    "attested_config.empty_value",
    "attested_config.mismatch",
    "attested_config.no_final_newline",
    "attested_config.not_text",
    "attested_config.syntax",
    "attested_config.telemetry_mismatch",
    "attested_config.too_large",
    "attested_config.too_many_entries",
    "attested_config.unsorted",
    "gce:bad_key",
    "gce:fetch_failed",
    "gce:http_<status>",
    "gce:too_large",
    "hetzner:cloud_config_bad_base64",
    "hetzner:cloud_config_duplicate",
    "hetzner:cloud_config_encoding",
    "hetzner:cloud_config_no_torgw_conf",
    "hetzner:cloud_config_other_file",
    "hetzner:cloud_config_syntax",
    "hetzner:cloud_config_unsupported",
    "hetzner:http_<status>",
    "hetzner:too_large",
    "hetzner:userdata_format",
    "metadata:helper_bad_reason",
    "metadata:loop_failed",
    "metadata:no_event_base",
    "metadata_wire.bad_base64",
    "metadata_wire.bad_count",
    "metadata_wire.bad_header",
    "metadata_wire.bad_key",
    "metadata_wire.bad_line",
    "metadata_wire.bad_provider",
    "metadata_wire.bad_reason",
    "metadata_wire.bad_state",
    "metadata_wire.duplicate_provider",
    "metadata_wire.entry_without_provider",
    "metadata_wire.not_printable",
    "metadata_wire.too_large",
    "metadata_wire.too_many_entries",
    "metadata_wire.trailing",
    "metadata_wire.truncated",
};
// The <word> of a <key>:<word> reason (err() in config.cpp, for any registry key).
inline constexpr std::string_view kKeyReasons[] = {
    "bad_base64",
    "bad_choice",
    "bad_format",
    "bad_hex",
    "bad_key",
    "bad_key_format",
    "bad_onion",
    "client_auth",
    "duplicate",
    "duplicate_item",
    "empty",
    "line_too_long",
    "metadata_loosens",
    "missing",
    "no_value",
    "not_allowed_from_metadata",
    "not_ip_literal",
    "not_text",
    "out_of_range",
    "syntax",
    "too_large",
    "too_long",
    "too_many_entries",
    "too_many_items",
    "unknown_key",
    "unterminated_quote",
};
}  // namespace torgw::config
// ---- end of reason tokens ----------------------------------------------------------
