// torgw-socks tls config values: they come from the appliance's config sources, which
// include host-controlled metadata. The first input byte picks the parser:
//   0: backend_tls_pin    1: backend_tls_ca / cert (base64 PEM certificates)
//   2: backend_tls_key (base64 PEM key armor)    3: backend_tls_sni
//   4: tls:// endpoints   5: a whole config text built into a Config (validation)
//   6: raw PEM text (not base64): the certificate reader and the pin of its leaf
#include <cstdint>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "socks/config.h"
#include "socks/tls.h"

using namespace torgw;
using namespace torgw::socks;

namespace {
void check(bool ok) {
  if (!ok) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  ByteView in(data + 1, size - 1);
  std::string_view t = as_chars(in);
  switch (data[0] % 7) {
    case 0:
      if (auto p = tls::parse_pins(t); p) {
        check(!p->empty() && p->size() <= 16);
        // Round trip: the text of each pin parses back to it.
        for (const auto& pin : *p) check(tls::parse_pins(tls::pin_text(pin))->front() == pin);
      } else {
        check(p.error().reason == "tls.bad_pin");
      }
      break;
    case 1:
      if (auto r = tls::parse_pem_base64(t, tls::PemKind::Certificates); r)
        check(tls::pin_of_pem_certificate(r->view()).ok());
      break;
    case 2: (void)tls::parse_pem_base64(t, tls::PemKind::PrivateKey); break;
    case 3:
      if (auto s = tls::parse_sni(t); s) check(*s == t && !s->empty() && s->size() <= 253);
      break;
    case 4:
      if (auto e = parse_endpoint(t, true, true); e) {
        auto again = parse_endpoint(e->to_string(), true, true);
        check(again.ok() && again->to_string() == e->to_string() && again->tls == e->tls);
      }
      break;
    case 5:
      if (auto file = parse_config_text(t, "fuzz"); file) {
        auto c = build_config(*file, {});
        if (c) {
          bool any_tls = false;
          for (const auto& b : c->backends) any_tls |= b.tls;
          check(!any_tls || !c->tls.pins.empty() || !c->tls.ca_pem.empty());
          (void)c->describe();
        }
      }
      break;
    case 6: (void)tls::pin_of_pem_certificate(in); break;
  }
  return 0;
}
