// serial watch's incremental follower: a piped console is attacker-controlled (the host
// owns the port) and arrives in arbitrary pieces. The first byte picks the piece size;
// the newest boot must not depend on where the pieces were cut.
#include <cstdint>
#include <string_view>

#include "serial/serial.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t piece = 1 + data[0] % 61;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  torgw::serial::WatchState cut, whole;
  for (std::size_t i = 0; i < text.size(); i += piece) torgw::serial::watch_feed(cut, text.substr(i, piece));
  torgw::serial::watch_feed(whole, text);
  auto a = torgw::serial::watch_progress(cut);
  auto b = torgw::serial::watch_progress(whole);
  if (a.have_boot != b.have_boot || a.boot.values != b.boot.values || a.boot.end != b.boot.end ||
      a.tor_bootstrap != b.tor_bootstrap || cut.boots != whole.boots || cut.lines != whole.lines)
    __builtin_trap();
  if (cut.partial.size() > torgw::serial::kMaxWatchLine) __builtin_trap();
  return 0;
}
