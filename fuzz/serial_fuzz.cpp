// Marker parser: a scraped serial log is attacker-controlled (the host owns the port).
#include <cstdint>
#include <string_view>

#include "serial/serial.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto log = torgw::serial::parse_log(std::string_view(reinterpret_cast<const char*>(data), size));
  if (log) {
    for (const auto& b : log->boots) {
      // Invariants: a complete boot has an id and a known end.
      if (b.complete() && (b.boot_id.size() != 32 || b.end == torgw::serial::BootEnd::Incomplete)) __builtin_trap();
    }
    (void)torgw::serial::last_complete_boot(*log);
  }
  return 0;
}
