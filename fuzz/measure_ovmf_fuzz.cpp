// OVMF footer table and SEV metadata parser (`torgw measure --ovmf`): a firmware image is
// an operator's download, i.e. outside bytes. The input is the END of an image: it is
// placed at the end of zero pages up to the next 4 KiB boundary, because the parser reads
// backwards from the last byte and rejects anything not a whole number of pages.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "measure/measure.h"

using namespace torgw;
using namespace torgw::measure;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 64 * 1024) return 0;
  (void)parse_ovmf(ByteView(data, size));  // the raw input, whatever its size
  const std::size_t padded = std::max<std::size_t>(kPageSize, (size + kPageSize - 1) / kPageSize * kPageSize);
  std::vector<std::uint8_t> image(padded, 0);
  std::copy(data, data + size, image.end() - static_cast<std::ptrdiff_t>(size));
  auto o = parse_ovmf(image);
  if (!o) return 0;
  // Invariants of an accepted image: sections are whole pages and never overlap each other
  // or the image (the PSP would refuse such a launch).
  for (const auto& s : o->sections)
    if (s.gpa % kPageSize || s.size % kPageSize || s.size == 0) __builtin_trap();
  const std::string kernel = "fuzz kernel";
  for (VmmType vmm : {VmmType::Qemu, VmmType::Ec2, VmmType::Gce}) {
    SnpLaunch l;
    l.ovmf = image;
    l.vcpus = 3;
    l.vcpu_sig = 0xa00f11;
    l.vmm = vmm;
    (void)snp_launch_digest(l, *o);
    l.direct_boot = DirectBoot{as_bytes(kernel), std::nullopt, "console=ttyS0"};
    auto d = snp_launch_digest(l, *o);
    if (d && !o->has_section(SectionType::SnpKernelHashes)) __builtin_trap();
  }
  return 0;
}
