// Deterministic entry points behind identity::seal_with_key and identity::wrap, for the
// known-answer test only (snp/tests/kat_test.cpp): the production functions pick a
// random nonce (and, for wrap, a random ephemeral key) and then run exactly this code.
// A fixed nonce in production would reuse (key, nonce) pairs under XChaCha20-Poly1305,
// so nothing outside tests may include this header: it refuses to compile unless the
// including target defines TORGW_IDENTITY_TEST_SEAM (only snp_kat_test does) or is
// identity.cpp itself.
#pragma once

#if !defined(TORGW_IDENTITY_TEST_SEAM) && !defined(TORGW_IDENTITY_IMPL)
#error "snp/identity_internal.h is a test seam: production code uses snp/identity.h"
#endif

#include <array>
#include <cstdint>

#include "snp/identity.h"

namespace torgw::snp::identity::internal {

using Nonce = std::array<std::uint8_t, 24>;

// seal_with_key with the caller's nonce.
Result<Bytes> seal_with_nonce(const SecretBytes& dk, const SealBinding& b, const Secret& s, const Nonce& nonce);

// wrap with the caller's ephemeral X25519 key pair and nonce.
Result<Bytes> wrap_with(const Secret& s, const std::array<std::uint8_t, 32>& recipient, ByteView context,
                        const TransferKeypair& ephemeral, const Nonce& nonce);

}  // namespace torgw::snp::identity::internal
