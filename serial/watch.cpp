// The incremental half of `torgw serial watch`: pieces of a growing log in, the newest
// boot's marker lines kept, everything else counted and dropped (serial.h).
#include <charconv>

#include "serial/serial.h"

namespace torgw::serial {

namespace {

constexpr std::string_view kPrefix = "TORGW ";
constexpr std::string_view kBootPrefix = "TORGW BOOT_ID=";

bool is_binary(unsigned char c) { return c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != 0x1b; }

void take_line(WatchState& s, std::string_view line) {
  ++s.lines;
  while (!line.empty() && line.front() == '\r') line.remove_prefix(1);
  while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.substr(0, kPrefix.size()) != kPrefix) return;  // kernel noise, firmware output
  if (line.substr(0, kBootPrefix.size()) == kBootPrefix) {
    // A new boot (a reboot mid-watch, or the next boot in a long log): the older one can
    // no longer be the newest, so it is dropped rather than kept growing.
    ++s.boots;
    s.boot_markers.clear();
  }
  s.boot_markers.append(line);
  s.boot_markers.push_back('\n');
  // A boot's markers are bounded by the parser's own limit; past it the boot is damaged
  // anyway and parse_log would refuse the text.
  if (s.boot_markers.size() > kMaxLogBytes) s.boot_markers.erase(0, s.boot_markers.size() - kMaxLogBytes);
}

}  // namespace

void watch_feed(WatchState& s, std::string_view piece) {
  s.bytes += piece.size();
  for (unsigned char c : piece)
    if (is_binary(c)) ++s.binary_bytes;
  while (!piece.empty()) {
    const auto nl = piece.find('\n');
    const std::string_view head = piece.substr(0, nl);
    if (s.partial_dropped) {
      if (nl == std::string_view::npos) return;
      s.partial_dropped = false;
      ++s.lines;
    } else if (s.partial.size() + head.size() > kMaxWatchLine) {
      s.partial.clear();
      ++s.dropped_lines;
      if (nl == std::string_view::npos) {
        s.partial_dropped = true;
        return;
      }
      ++s.lines;
    } else if (nl == std::string_view::npos) {
      s.partial.append(head);
      return;
    } else if (s.partial.empty()) {
      take_line(s, head);
    } else {
      s.partial.append(head);
      std::string line = std::move(s.partial);
      s.partial.clear();
      take_line(s, line);
    }
    piece.remove_prefix(nl + 1);
  }
}

WatchProgress watch_progress(const WatchState& s) {
  WatchProgress p;
  if (s.boots == 0 || s.boot_markers.empty()) return p;
  auto log = parse_log(s.boot_markers);
  if (!log || log->boots.empty()) return p;
  p.have_boot = true;
  p.boot = std::move(log->boots.back());
  if (!p.boot.markers.empty()) p.stage = p.boot.markers.back().key;
  if (const std::string* b = p.boot.get("TOR_BOOTSTRAP")) {
    int v = -1;
    auto [end, ec] = std::from_chars(b->data(), b->data() + b->size(), v);
    if (ec == std::errc() && end == b->data() + b->size() && v >= 0 && v <= 100) p.tor_bootstrap = v;
  }
  return p;
}

}  // namespace torgw::serial
