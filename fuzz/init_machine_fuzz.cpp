// What PID 1 parses from the kernel: /proc/net/pnp (carrying the DHCP server's answer:
// nameservers, domain), /proc/consoles, input events, the image's module list and
// passwd/group. The first byte picks the parser.
#include <cstdint>
#include <string_view>

#include "init/child.h"
#include "init/machine.h"

using namespace torgw::init;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0: {
      // resolv.conf must only ever hold a comment, search and nameserver lines.
      std::string rc = resolv_conf_from_pnp(text);
      std::size_t pos = 0;
      while (pos < rc.size()) {
        auto nl = rc.find('\n', pos);
        if (nl == std::string::npos) __builtin_trap();
        std::string_view line(rc.data() + pos, nl - pos);
        if (!(line.rfind("# ", 0) == 0 || line.rfind("nameserver ", 0) == 0 || line.rfind("search ", 0) == 0))
          __builtin_trap();
        for (char c : line)
          if (c < 0x20 || c > 0x7e) __builtin_trap();
        pos = nl + 1;
      }
      break;
    }
    case 1:
      for (const auto& c : parse_consoles(text))
        if (c.empty() || c.find('/') != std::string::npos) __builtin_trap();
      break;
    case 2:
      (void)power_pressed(data + 1, size - 1);
      (void)has_power_key(data + 1, size - 1);
      break;
    case 3: {
      auto m = parse_module_list(text);
      if (m)
        for (const auto& p : *m)
          if (p.empty() || p[0] != '/') __builtin_trap();
      break;
    }
    case 4: {
      auto split = text.find('\x00');
      auto passwd = text.substr(0, split);
      auto group = split == std::string_view::npos ? std::string_view() : text.substr(split + 1);
      (void)lookup_user("tor", passwd, group);
      break;
    }
  }
  return 0;
}
