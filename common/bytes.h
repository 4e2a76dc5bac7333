// Bytes: a bounds-checked reader for parsers of outside bytes, and the text encodings
// (hex, base64) that markers, key files and the control protocol use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace torgw {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

inline ByteView as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_chars(ByteView b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Reads fixed-width fields from a byte span. Every read either succeeds completely and
// advances, or returns nullopt and leaves the reader where it was: a parser can never
// read past the end, whatever the input claims about its own length.
class ByteReader {
 public:
  explicit ByteReader(ByteView data) : data_(data) {}

  std::size_t offset() const { return pos_; }
  std::size_t remaining() const { return data_.size() - pos_; }
  bool empty() const { return remaining() == 0; }

  std::optional<std::uint8_t> u8();
  std::optional<std::uint16_t> be16();
  std::optional<std::uint16_t> le16();
  std::optional<std::uint32_t> le32();
  std::optional<std::uint64_t> le64();
  std::optional<ByteView> take(std::size_t n);
  bool skip(std::size_t n);
  ByteView rest() const { return data_.subspan(pos_); }

 private:
  ByteView data_;
  std::size_t pos_ = 0;
};

// Little-endian loads from a span the caller has already bounds-checked.
std::uint16_t load_le16(const std::uint8_t* p);
std::uint32_t load_le32(const std::uint8_t* p);
std::uint64_t load_le64(const std::uint8_t* p);
void store_le16(std::uint8_t* p, std::uint16_t v);
void store_le32(std::uint8_t* p, std::uint32_t v);
void store_le64(std::uint8_t* p, std::uint64_t v);

// Lower-case hex.
std::string to_hex(ByteView b);
// Accepts upper and lower case; rejects odd length and non-hex characters.
Result<Bytes> from_hex(std::string_view s);

// RFC 4648 base64, standard alphabet. from_base64 accepts input with or without
// padding and rejects anything else (whitespace, URL alphabet, trailing garbage).
std::string to_base64(ByteView b, bool pad = true);
Result<Bytes> from_base64(std::string_view s);

// Constant-time equality for secrets and MACs.
bool equal_ct(ByteView a, ByteView b);

}  // namespace torgw
