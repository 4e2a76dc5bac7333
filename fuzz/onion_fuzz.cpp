// Onion addresses (operator input, scraped markers) and tor key files (imported keys).
#include <cstdint>
#include <string_view>

#include "onion/onion.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace torgw;
  ByteView in(data, size);
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto pk = onion::public_key_from_address(text); pk) {
    // Anything accepted must round-trip to the canonical form.
    if (onion::address_from_public_key(*pk).size() != onion::kAddressChars) __builtin_trap();
  }
  (void)onion::base32_decode(text);
  (void)onion::key_file_kind(in);
  if (auto sk = onion::parse_secret_key_file(in); sk) (void)onion::Identity::from_expanded(sk->view());
  (void)onion::parse_public_key_file(in);
  return 0;
}
