// SEV-SNP report parser and the PSP response decoders: a report arrives from the host
// (configfs outblob, ioctl response) and from operators' files and serial logs.
#include <cstdint>

#include "snp/abi.h"
#include "snp/device.h"
#include "snp/json.h"
#include "snp/validate.h"
#include "snp/verify.h"

using namespace torgw;
using namespace torgw::snp;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteView in(data, size);
  auto r = parse_report(in);
  if (r) {
    // Invariant: every byte of an accepted report is a decoded field.
    Bytes again = serialize_report(*r);
    if (again.size() != size || !std::equal(again.begin(), again.end(), data)) __builtin_trap();
    for (Product p : {Product::Milan, Product::Genoa, Product::Turin}) {
      (void)report_json(*r, p).dump();
      (void)validate_policy(*r, p, Policy{});
    }
    (void)product_from_cpuid(*r);
  }
  (void)parse_report_response(in);
  (void)parse_key_response(in);
  if (size >= 4 && size <= 8) (void)parse_der_small_uint(in);
  return 0;
}
