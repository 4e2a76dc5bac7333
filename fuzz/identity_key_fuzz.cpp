// identity_key (identity=provided): the operator's tor key file, base64, from the config
// (Hetzner userdata, GCE metadata, the command line): outside bytes.
#include <cstdint>

#include "onion/onion.h"
#include "snp/identity.h"

using namespace torgw;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto text = SecretBytes::copy_of(ByteView(data, size));
  auto key = snp::identity::parse_provided_key(text);
  if (!key) {
    if (key.error().reason.rfind("identity.key.", 0) != 0) __builtin_trap();
    return 0;
  }
  // Accepted: 64 bytes that make an identity, and the text is the canonical file.
  if (key->size() != onion::kExpandedSize) __builtin_trap();
  auto id = onion::Identity::from_expanded(key->view());
  if (!id) __builtin_trap();
  if (to_base64(onion::secret_key_file(*id)) != std::string(reinterpret_cast<const char*>(data), size))
    __builtin_trap();
  return 0;
}
