// Internal to measure/: GUIDs as they appear in firmware bytes (EFI/Microsoft mixed-endian:
// the first three fields little-endian, the last two as written).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace torgw::measure {

using Guid = std::array<std::uint8_t, 16>;

constexpr std::uint8_t hex_nibble(char c) {
  return static_cast<std::uint8_t>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
}

// "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" -> bytes in firmware order.
constexpr Guid guid_le(std::string_view s) {
  std::array<std::uint8_t, 16> be{};
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '-') continue;
    be[n / 2] = static_cast<std::uint8_t>(be[n / 2] << 4 | hex_nibble(s[i]));
    ++n;
  }
  return Guid{be[3], be[2], be[1],  be[0],  be[5],  be[4],  be[7],  be[6],
              be[8], be[9], be[10], be[11], be[12], be[13], be[14], be[15]};
}

}  // namespace torgw::measure
