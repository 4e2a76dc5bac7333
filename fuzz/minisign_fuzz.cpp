// minisign signature and public-key files: an operator's download, outside bytes. The
// first half of the input is read as a public key, the whole as a signature; a parsed
// pair is verified over the input (never valid by chance, never a crash).
#include <cstdint>
#include <string_view>

#include "release/release.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto pk = torgw::release::parse_public_key(text.substr(0, size / 2));
  auto sig = torgw::release::parse_signature(text);
  if (sig && sig->trusted_comment.size() > 1024) __builtin_trap();
  if (pk && sig.ok()) (void)torgw::release::verify(*pk, *sig, torgw::ByteView(data, size));
  return 0;
}
