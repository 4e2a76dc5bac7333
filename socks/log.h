// Minimal logger for torgw-socks: one line per event to stderr, written with a single
// write() so lines from a supervisor's other children cannot tear it:
//     2025-01-31T12:00:00.123Z torgw-socks[42] warn: backend 127.0.0.5:1080 down: ...
// Client-triggered events go through a RateLimiter: hostile clients must not be able to
// flood the operator's console.
#pragma once

#include <cstdint>

#include "socks/config.h"

namespace torgw::socks::log {

void set_level(LogLevel level);
bool enabled(LogLevel level);
void write(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

#define TORGW_LOG(level, ...)                                                                \
  do {                                                                                       \
    if (::torgw::socks::log::enabled(level)) ::torgw::socks::log::write(level, __VA_ARGS__); \
  } while (0)

// At most `per_second` lines per second; the rest are counted and reported by the next
// line that gets through ("(N similar lines suppressed)").
class RateLimiter {
 public:
  explicit RateLimiter(std::uint32_t per_second) : per_second_(per_second) {}
  // True if a line may be written now (now_ms: a monotonic clock).
  bool allow(std::uint64_t now_ms);
  // Lines suppressed since the last allowed one; resets the count.
  std::uint64_t take_suppressed();

 private:
  std::uint32_t per_second_;
  std::uint64_t window_start_ = 0;
  std::uint32_t in_window_ = 0;
  std::uint64_t suppressed_ = 0;
};

}  // namespace torgw::socks::log
