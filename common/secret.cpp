#include "common/secret.h"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace torgw {

void ensure_sodium() {
  if (sodium_init() < 0) {
    std::fputs("libsodium initialisation failed\n", stderr);
    std::abort();
  }
}

Result<SecretBytes> SecretBytes::allocate(std::size_t size) {
  ensure_sodium();
  SecretBytes s;
  if (size == 0) return s;
  void* p = sodium_malloc(size);  // guard pages + mlock; madvise(DONTDUMP)
  if (p == nullptr) return make_error("secret.alloc_failed", "sodium_malloc(" + std::to_string(size) + ")");
  std::memset(p, 0, size);
  s.data_ = static_cast<std::uint8_t*>(p);
  s.size_ = size;
  return s;
}

SecretBytes::SecretBytes(std::size_t size) {
  auto r = allocate(size);
  if (!r) {
    std::fprintf(stderr, "%s\n", r.error().to_string().c_str());
    std::abort();
  }
  *this = std::move(r).value();
}

SecretBytes SecretBytes::copy_of(std::span<const std::uint8_t> data) {
  SecretBytes s(data.size());
  if (!data.empty()) std::memcpy(s.data_, data.data(), data.size());
  return s;
}

SecretBytes::SecretBytes(SecretBytes&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& o) noexcept {
  if (this != &o) {
    release();
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

SecretBytes::~SecretBytes() { release(); }

void SecretBytes::release() {
  if (data_ != nullptr) sodium_free(data_);  // zeroes, munlocks, unmaps
  data_ = nullptr;
  size_ = 0;
}

void wipe(void* p, std::size_t n) {
  if (n != 0) sodium_memzero(p, n);
}

}  // namespace torgw
