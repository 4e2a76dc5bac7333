// Serial markers: the appliance's machine-readable telemetry on the console, and the
// parser that `torgw serial parse` / `torgw verify` use on a scraped log.
//
// Format (../shared/DESIGN.md "Serial markers"), one marker per line:
//     \r\nTORGW <KEY>=<VALUE>\r\n        (one write(), so it cannot be torn)
// KEY is [A-Z0-9_]+ (<= 64 chars); VALUE is printable ASCII 0x21..0x7e, no spaces
// (<= kMaxValue chars). Long values are split as KEY.<i>/<n>=<chunk>, i = 1..n.
// Every boot starts with BOOT_ID=<32 hex> then MARKER_VERSION=1.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace torgw::serial {

inline constexpr int kMarkerVersion = 1;
inline constexpr std::size_t kMaxKey = 64;
inline constexpr std::size_t kMaxValue = 512;    // per line; longer values are chunked
inline constexpr std::size_t kMaxChunks = 4096;  // bounds a chunked value at 2 MiB
inline constexpr std::size_t kMaxLogBytes = 64u << 20;

bool valid_key(std::string_view key);
bool valid_value(std::string_view value);
// Replaces every character a value may not contain with '_' and truncates to kMaxValue;
// for free-text reasons that must still fit the format.
std::string sanitize_value(std::string_view text);

// "\r\nTORGW KEY=VALUE\r\n". Errors: serial.bad_key, serial.bad_value.
Result<std::string> format_marker(std::string_view key, std::string_view value);
// KEY.1/n=..., one string per line; a value of <= chunk chars still gets one ".1/1" line
// so a scraper always knows it is looking at a chunked key.
Result<std::vector<std::string>> format_chunked(std::string_view key, std::string_view value,
                                                std::size_t chunk = kMaxValue);

// 128 random bits as 32 lower-case hex characters (getrandom).
std::string new_boot_id();

// Writes markers to a set of fds (console, ttyS0, stdout in dev mode), one write() per
// marker per fd. Write failures on one fd do not stop the others: telemetry is best
// effort, the boot goes on.
class MarkerWriter {
 public:
  explicit MarkerWriter(std::vector<int> fds) : fds_(std::move(fds)) {}

  // BOOT_ID and MARKER_VERSION; returns the boot id.
  std::string begin_boot();
  void begin_boot(const std::string& boot_id);
  // Returns false if key/value are invalid (nothing written).
  bool emit(std::string_view key, std::string_view value);
  bool emit_chunked(std::string_view key, std::string_view value, std::size_t chunk = kMaxValue);
  // FATAL=<sanitized reason>.
  void fatal(std::string_view reason);
  // Called after every plain (not chunked) marker is written, e.g. to redraw a summary
  // on the screen console.
  void set_observer(std::function<void(std::string_view key, std::string_view value)> fn) { observer_ = std::move(fn); }

 private:
  void write_all(const std::string& line);
  std::vector<int> fds_;
  std::function<void(std::string_view, std::string_view)> observer_;
};

// ---- parsing -----------------------------------------------------------------------

struct Marker {
  std::string key;  // for chunked keys, the base key (chunks are reassembled)
  std::string value;
  std::size_t line = 0;  // 1-based line of the (first) marker line in the log
};

enum class BootEnd { Ready, Fatal, Incomplete };

struct Boot {
  std::string boot_id;
  int marker_version = 0;
  std::vector<Marker> markers;                // in order of appearance
  std::map<std::string, std::string> values;  // last value of each key
  std::vector<std::string> problems;          // malformed lines, missing chunks, ...
  BootEnd end = BootEnd::Incomplete;
  // Complete: ended in READY=true or FATAL, every chunked value has all its chunks, and
  // no problem was found. Only complete boots are trusted by torgw verify.
  bool complete() const { return end != BootEnd::Incomplete && problems.empty(); }
  const std::string* get(const std::string& key) const;
};

struct ParsedLog {
  std::vector<Boot> boots;
  std::size_t lines = 0;
  std::size_t marker_lines = 0;
  std::vector<std::string> problems;  // marker lines before any BOOT_ID, ...
};

// Pure: never fails on content (every oddity becomes a problem string); fails only on
// a log larger than kMaxLogBytes (serial.log_too_large).
Result<ParsedLog> parse_log(std::string_view log);

// The last complete boot, or nullptr.
const Boot* last_complete_boot(const ParsedLog& log);

const char* to_string(BootEnd e);

// ---- following a growing log (torgw serial watch) -----------------------------------
//
// The log arrives in arbitrary pieces (a pipe from `gcloud ... tail-serial-port-output`,
// a file being appended to): a marker line may be torn across pieces, kernel messages sit
// between markers, the VM may reboot in the middle. watch_feed is pure: it folds one piece
// into the state; watch_boot says where the newest boot stands. Memory is bounded: only
// the newest boot's marker lines are kept, and a line longer than kMaxWatchLine (binary
// garbage, a console without newlines) is dropped and counted.

inline constexpr std::size_t kMaxWatchLine = 64u << 10;

struct WatchState {
  std::string partial;            // the unterminated tail of the last piece (<= kMaxWatchLine)
  bool partial_dropped = false;   // the current line overflowed: skip it up to its newline
  std::string boot_markers;       // the newest boot's marker lines, each ending in '\n'
  std::size_t bytes = 0;          // bytes fed in total
  std::size_t lines = 0;          // complete lines seen
  std::size_t boots = 0;          // BOOT_ID markers seen
  std::size_t dropped_lines = 0;  // lines over kMaxWatchLine
  std::size_t binary_bytes = 0;   // NUL and other control bytes that no console text holds
};

// Folds `piece` into `s`. Never fails: every oddity is counted in the state.
void watch_feed(WatchState& s, std::string_view piece);

struct WatchProgress {
  bool have_boot = false;
  Boot boot;               // the newest boot as parse_log sees its marker lines so far
  std::string stage;       // the key of its last marker ("" before any)
  int tor_bootstrap = -1;  // TOR_BOOTSTRAP percent, -1 before the first
};

// The newest boot so far (pure; parses only the kept marker lines).
WatchProgress watch_progress(const WatchState& s);

}  // namespace torgw::serial

// ---- reason tokens (docs/DEVELOPING.md "Reason tokens") -----------------------------
// Every Error.reason this module's code makes: the tokens it spells as literals and the
// FATAL reasons it composes at run time, spelled out (<...>: a part known at run time
// only). The unit test reason_tokens_test holds the code to this list.
#include <string_view>

namespace torgw::serial {
inline constexpr std::string_view kReasons[] = {
    "serial.bad_chunk_size", "serial.bad_key", "serial.bad_value", "serial.log_too_large", "serial.value_too_long",
};
}  // namespace torgw::serial
// ---- end of reason tokens ----------------------------------------------------------
