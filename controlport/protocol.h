// The Tor control protocol's contents, as pure functions: parsers for the replies and
// events we use (every byte from tor is outside input), builders for the commands we
// send (which refuse anything that could inject a second command), and the SAFECOOKIE
// computations. No I/O here; controlport.h does the talking.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "common/secret.h"
#include "controlport/reply.h"

namespace torgw::controlport {

// ---- tokens ------------------------------------------------------------------------

// control-spec QuotedString: `"` ... `"` with C escapes (\\ \" \' \n \r \t, \xHH,
// 1-3 octal digits). Input must be exactly one quoted string.
// Errors: controlport.bad_quoted.
Result<std::string> unquote(std::string_view quoted);
// Quotes `s` for a command argument. Refuses CR, LF, NUL and other control bytes
// (controlport.bad_argument): a value must never be able to end our command line.
Result<std::string> quote(std::string_view s);

// "KEY=VALUE KEY="quoted value" ..." as tor writes keyword arguments in events and
// replies. Tokens that are not KEY=... (KEY = [A-Za-z0-9_]+) are positional. A quoted
// value is unquoted. Errors: controlport.bad_quoted.
struct Args {
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> keywords;
  // The first value of `key`, or nullptr.
  const std::string* get(std::string_view key) const;
};
Result<Args> parse_args(std::string_view text);

// ---- replies -----------------------------------------------------------------------

struct ProtocolInfo {
  int protocol_version = 0;
  std::vector<std::string> auth_methods;  // upper case: NULL, HASHEDPASSWORD, COOKIE, SAFECOOKIE
  std::optional<std::string> cookie_file;
  std::string tor_version;  // "0.4.9.11", empty if absent
  bool has_method(std::string_view m) const;
};
// Errors: controlport.reply_error (not 250), controlport.bad_protocolinfo.
Result<ProtocolInfo> parse_protocolinfo(const Reply& r);

struct AuthChallenge {
  Bytes server_hash;   // 32 bytes
  Bytes server_nonce;  // 32 bytes
};
// "250 AUTHCHALLENGE SERVERHASH=<64 hex> SERVERNONCE=<64 hex>".
// Errors: controlport.reply_error, controlport.bad_authchallenge.
Result<AuthChallenge> parse_authchallenge(const Reply& r);

// GETINFO: "250-key=value" / "250+key=" + data, ending "250 OK". Values in request order;
// every requested key must be present. Errors: controlport.reply_error,
// controlport.bad_getinfo.
Result<std::vector<std::pair<std::string, std::string>>> parse_getinfo(const Reply& r,
                                                                       std::span<const std::string> keys);

// GETCONF: "250-Key=value" lines, the last one "250 Key=value"; "250 Key" (no '=') means
// unset/default (nullopt). Repeated keys (e.g. several DirAuthority lines) repeat.
Result<std::vector<std::pair<std::string, std::optional<std::string>>>> parse_getconf(const Reply& r);

struct AddOnionReply {
  std::string service_id;             // 56 base32 chars, lower case, no ".onion"
  bool returned_private_key = false;  // tor sent PrivateKey= (we never keep it)
  std::vector<std::string> client_auth_v3;
};
// Errors: controlport.reply_error, controlport.bad_add_onion.
Result<AddOnionReply> parse_add_onion(const Reply& r);

// ---- events ------------------------------------------------------------------------

// The event's name: the first word of an asynchronous reply ("HS_DESC", "STATUS_CLIENT",
// "WARN"), or empty for anything else.
std::string_view event_name(const Reply& r);

enum class HsDescAction { Requested, Upload, Received, Uploaded, Ignore, Failed, Created, Unknown };
const char* to_string(HsDescAction a);

struct HsDescEvent {
  HsDescAction action = HsDescAction::Unknown;
  std::string address;  // ServiceID (no ".onion") or "UNKNOWN"
  std::string auth_type;
  std::string hs_dir;              // "$FP~nick", "$FP", nick, or "UNKNOWN"
  std::string hs_dir_fingerprint;  // 40 upper-case hex, or empty
  std::optional<std::string> descriptor_id;
  std::optional<std::string> reason;  // FAILED: BAD_DESC, UPLOAD_REJECTED, NOT_FOUND, ...
  std::optional<std::string> hsdir_index;
};
// "650 HS_DESC <Action> <Address> <AuthType> <HsDir> [<DescID>] [REASON=..] ...".
// Errors: controlport.bad_event.
Result<HsDescEvent> parse_hs_desc(const Reply& event);

struct StatusEvent {
  std::string type;      // STATUS_CLIENT, STATUS_GENERAL, STATUS_SERVER
  std::string severity;  // NOTICE, WARN, ERR
  std::string action;    // BOOTSTRAP, CIRCUIT_ESTABLISHED, ...
  Args args;
};
Result<StatusEvent> parse_status(const Reply& event);

struct Bootstrap {
  int progress = 0;  // 0..100
  std::string tag;   // "done", "conn", ...
  std::string summary;
  std::string severity;  // NOTICE (progress) or WARN (a problem)
  std::optional<std::string> warning, reason, recommendation;
};
// From a STATUS_CLIENT BOOTSTRAP event, or from GETINFO status/bootstrap-phase's value
// ("NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY=\"Done\"").
// Errors: controlport.bad_event.
Result<Bootstrap> parse_bootstrap(const StatusEvent& s);
Result<Bootstrap> parse_bootstrap_phase(std::string_view getinfo_value);

struct LogEvent {
  std::string severity;  // DEBUG INFO NOTICE WARN ERR
  std::string message;   // may span lines ("650+WARN" data form)
};
// "650 WARN text" or "650+WARN\r\n<data>\r\n.\r\n650 OK". Errors: controlport.bad_event.
Result<LogEvent> parse_log_event(const Reply& event);

// ---- commands ----------------------------------------------------------------------
// Builders return the command line without CRLF; the connection adds it. Every argument
// is checked, so no caller value can smuggle a second command.
// Errors: controlport.bad_argument.

Result<std::string> cmd_getinfo(std::span<const std::string> keys);
Result<std::string> cmd_getconf(std::span<const std::string> keys);
// SETCONF Key=Value ... ; a nullopt value resets the key to its default.
Result<std::string> cmd_setconf(std::span<const std::pair<std::string, std::optional<std::string>>> kv);
Result<std::string> cmd_setevents(std::span<const std::string> events);
// RELOAD SHUTDOWN DUMP DEBUG HALT HUP INT USR1 USR2 TERM NEWNYM CLEARDNSCACHE HEARTBEAT
// ACTIVE DORMANT.
Result<std::string> cmd_signal(std::string_view name);
Result<std::string> cmd_del_onion(std::string_view service_id);

struct OnionPort {
  std::uint16_t virtual_port = 0;  // 1..65535
  std::string target;              // "" (same port on 127.0.0.1), "PORT", "HOST:PORT" or "unix:/path"
};

struct PowOptions {
  bool enabled = true;
  std::optional<std::uint32_t> queue_rate;   // PoWQueueRate
  std::optional<std::uint32_t> queue_burst;  // PoWQueueBurst
};

struct AddOnionRequest {
  // The service key as ADD_ONION's KeyType:KeyBlob text, "ED25519-V3:<base64 of the
  // 64-byte expanded secret>" (onion::Identity::add_onion_key_blob()), or null to let
  // tor generate one (NEW:ED25519-V3).
  const SecretBytes* key_blob = nullptr;
  std::vector<OnionPort> ports;  // at least one
  bool detach = false;           // survive this control connection
  bool discard_pk = true;        // only meaningful with a NEW key
  bool non_anonymous = false;    // single onion service (tor must be configured so)
  std::optional<std::uint32_t> max_streams;
  bool max_streams_close_circuit = false;
  std::vector<std::string> client_auth_v3;  // base32 x25519 public keys (52 chars)
  std::optional<PowOptions> pow;
};
// The whole line in locked memory, since it may carry the secret key.
Result<SecretBytes> cmd_add_onion(const AddOnionRequest& req);

bool valid_service_id(std::string_view id);   // 56 chars [a-z2-7]
bool valid_fingerprint(std::string_view fp);  // 40 hex

// ---- authentication ----------------------------------------------------------------

inline constexpr std::size_t kCookieLen = 32;
inline constexpr std::size_t kNonceLen = 32;

// HMAC-SHA256(key = "Tor safe cookie authentication server-to-controller hash" or
// "...controller-to-server hash", msg = cookie | client nonce | server nonce).
Bytes safecookie_server_hash(ByteView cookie, ByteView client_nonce, ByteView server_nonce);
Bytes safecookie_client_hash(ByteView cookie, ByteView client_nonce, ByteView server_nonce);

}  // namespace torgw::controlport
