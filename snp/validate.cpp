#include "snp/validate.h"

#include <cstring>

namespace torgw::snp {

namespace {
template <std::size_t N>
Result<std::array<std::uint8_t, N>> parse_fixed_hex(std::string_view hex, const char* what) {
  auto b = from_hex(hex);
  if (!b || b->size() != N)
    return make_error("snp.bad_hex", std::string(what) + " must be " + std::to_string(2 * N) + " hex digits");
  std::array<std::uint8_t, N> a{};
  std::memcpy(a.data(), b->data(), N);
  return a;
}
template <std::size_t N>
std::string hx(const std::array<std::uint8_t, N>& a) {
  return to_hex(ByteView(a.data(), N));
}
}  // namespace

Result<std::array<std::uint8_t, 48>> parse_measurement_hex(std::string_view hex) {
  return parse_fixed_hex<48>(hex, "measurement");
}
Result<std::array<std::uint8_t, 64>> parse_report_data_hex(std::string_view hex) {
  return parse_fixed_hex<64>(hex, "report data");
}

Result<Tcb> parse_tcb_spec(std::string_view spec) {
  Tcb t;
  unsigned seen = 0;
  std::size_t pos = 0;
  while (pos <= spec.size()) {
    std::size_t end = spec.find(',', pos);
    if (end == std::string_view::npos) end = spec.size();
    std::string_view item = spec.substr(pos, end - pos);
    pos = end + 1;
    const auto eq = item.find('=');
    if (eq == std::string_view::npos)
      return make_error("snp.bad_tcb", "expected name=value, got '" + std::string(item) + "'");
    std::string_view name = item.substr(0, eq), num = item.substr(eq + 1);
    unsigned v = 0;
    if (num.empty() || num.size() > 3) return make_error("snp.bad_tcb", "bad value for " + std::string(name));
    for (char c : num) {
      if (c < '0' || c > '9') return make_error("snp.bad_tcb", "bad value for " + std::string(name));
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v > 255) return make_error("snp.bad_tcb", std::string(name) + " above 255");
    struct Slot {
      const char* name;
      std::uint8_t* dst;
      unsigned bit;
    };
    const Slot slots[] = {{"bl", &t.bootloader, 1},
                          {"tee", &t.tee, 2},
                          {"snp", &t.snp, 4},
                          {"ucode", &t.microcode, 8},
                          {"fmc", &t.fmc, 16}};
    const Slot* s = nullptr;
    for (const auto& sl : slots)
      if (name == sl.name) s = &sl;
    if (!s) return make_error("snp.bad_tcb", "unknown component '" + std::string(name) + "' (bl tee snp ucode fmc)");
    if (seen & s->bit) return make_error("snp.bad_tcb", std::string(name) + " twice");
    seen |= s->bit;
    *s->dst = static_cast<std::uint8_t>(v);
  }
  if ((seen & 15) != 15) return make_error("snp.bad_tcb", "bl, tee, snp and ucode are all required");
  return t;
}

Status validate_policy(const Report& r, Product product, const Policy& p) {
  using namespace policy_bits;
  if (r.version < p.minimum_version)
    return make_error("snp.report.version_too_old",
                      "version " + std::to_string(r.version) + " < " + std::to_string(p.minimum_version));
  if (!(r.policy & kReserved17)) return make_error("snp.policy.reserved17", "policy bit 17 must be 1");
  if (r.policy & ~kKnownMask) return make_error("snp.policy.reserved_bits", "policy bits 26..63 set");
  if (r.debug() && !p.allow_debug) return make_error("snp.policy.debug", "guest policy allows DEBUG");
  if (r.migrate_ma() && !p.allow_migrate_ma)
    return make_error("snp.policy.migrate_ma", "guest policy allows a migration agent");
  if (p.require_single_socket && !(r.policy & kSingleSocket))
    return make_error("snp.policy.single_socket", "SINGLE_SOCKET not set");
  if (r.committed_tcb != r.current_tcb && !p.allow_uncommitted_tcb)
    return make_error("snp.tcb.uncommitted",
                      "committed " + tcb_to_string(decode_tcb(r.committed_tcb, product), product) + " != current " +
                          tcb_to_string(decode_tcb(r.current_tcb, product), product));
  if (p.minimum_tcb) {
    Tcb reported = decode_tcb(r.reported_tcb, product);
    if (!tcb_at_least(reported, *p.minimum_tcb))
      return make_error("snp.tcb.below_minimum",
                        tcb_to_string(reported, product) + " < minimum " + tcb_to_string(*p.minimum_tcb, product));
  }
  if (p.vmpl && r.vmpl != *p.vmpl)
    return make_error("snp.vmpl.mismatch", "VMPL " + std::to_string(r.vmpl) + ", required " + std::to_string(*p.vmpl));
  if (p.expected_measurement && r.measurement != *p.expected_measurement)
    return make_error("snp.measurement.mismatch", hx(r.measurement) + " != expected " + hx(*p.expected_measurement));
  if (p.expected_report_data && r.report_data != *p.expected_report_data)
    return make_error("snp.report_data.mismatch", hx(r.report_data) + " != expected " + hx(*p.expected_report_data));
  if (p.expected_host_data && r.host_data != *p.expected_host_data)
    return make_error("snp.host_data.mismatch", hx(r.host_data) + " != expected " + hx(*p.expected_host_data));
  return {};
}

}  // namespace torgw::snp
