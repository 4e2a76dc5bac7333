// Sealed and transfer blobs: they come back from cloud metadata or a data disk, so the
// host (and whoever edits the metadata) controls them.
#include <cstdint>

#include "snp/identity.h"

using namespace torgw;
using namespace torgw::snp;
using namespace torgw::snp::identity;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteView in(data, size);
  static const SecretBytes dk = [] {
    SecretBytes k(32);
    for (std::size_t i = 0; i < 32; ++i) k.data()[i] = static_cast<std::uint8_t>(i + 1);
    return k;
  }();
  static const TransferKeypair kp = TransferKeypair::generate();
  if (auto s = parse_sealed_blob(in); s) {
    auto r = unseal_with_key(dk, *s, s->binding);
    if (r && r->bytes.size() != secret_size(r->kind)) __builtin_trap();
  }
  if (auto t = parse_transfer_blob(in); t) {
    const Bytes ctx(80, 0);
    auto r = unwrap(in, kp, ctx);
    if (r) __builtin_trap();  // nobody can wrap to this process's fresh key
  }
  return 0;
}
