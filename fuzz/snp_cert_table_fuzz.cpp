// GHCB certificate table (the host hands it to the guest) and the certificates in it.
#include <cstdint>

#include "snp/abi.h"
#include "snp/verify.h"

using namespace torgw;
using namespace torgw::snp;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteView in(data, size);
  auto t = parse_cert_table(in);
  if (t) {
    // Invariant: what we build from the entries parses back to the same entries.
    auto again = parse_cert_table(build_cert_table(*t));
    if (!again || again->size() != t->size()) __builtin_trap();
    for (std::size_t i = 0; i < t->size(); ++i)
      if ((*again)[i].guid != (*t)[i].guid || (*again)[i].data != (*t)[i].data) __builtin_trap();
    for (const auto& e : *t) (void)parse_vek_extensions(e.data);
    if (auto c = chain_from_cert_table(*t); c) {
      ChainOptions o;
      o.at = 1700000000;
      auto v = verify_chain(*c, o);
      if (v && v->simulated) __builtin_trap();  // never without a simulated ARK
    }
  }
  // The same bytes as one certificate (PEM or DER), as `--vcek/--ask/--ark` read them.
  if (auto der = load_certificate(in); der) {
    (void)parse_vek_extensions(*der);
    (void)spki_sha256_hex(*der);
  }
  return 0;
}
