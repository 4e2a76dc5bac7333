// SecretBytes: fixed-size secret material (seeds, derived keys, expanded onion keys).
// Lives in libsodium's guarded allocation: mlock'ed (never swapped), surrounded by
// guard pages, excluded from core dumps, and zeroed when freed. Move-only, no copies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/result.h"

namespace torgw {

class SecretBytes {
 public:
  SecretBytes() = default;
  // Aborts if locked memory cannot be had: running with a swappable secret is worse
  // than not running. Use SecretBytes::allocate for a recoverable path.
  explicit SecretBytes(std::size_t size);
  static Result<SecretBytes> allocate(std::size_t size);
  static SecretBytes copy_of(std::span<const std::uint8_t> data);

  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  SecretBytes(SecretBytes&& o) noexcept;
  SecretBytes& operator=(SecretBytes&& o) noexcept;
  ~SecretBytes();

  std::uint8_t* data() { return data_; }
  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::span<std::uint8_t> span() { return {data_, size_}; }
  std::span<const std::uint8_t> view() const { return {data_, size_}; }

 private:
  void release();
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

// Zeroes memory in a way the compiler may not elide.
void wipe(void* p, std::size_t n);

// libsodium must be initialised once per process before any other call; idempotent.
void ensure_sodium();

}  // namespace torgw
