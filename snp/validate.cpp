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
    return make_error("snp.tcb.uncommitted", "committed " + tcb_to_string(decode_tcb(r.committed_tcb, product), product) +
                                                 " != current " +
                                                 tcb_to_string(decode_tcb(r.current_tcb, product), product));
  if (p.minimum_tcb) {
    Tcb reported = decode_tcb(r.reported_tcb, product);
    if (!tcb_at_least(reported, *p.minimum_tcb))
      return make_error("snp.tcb.below_minimum", tcb_to_string(reported, product) + " < minimum " +
                                                     tcb_to_string(*p.minimum_tcb, product));
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
