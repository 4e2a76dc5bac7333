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

inline ByteView as_bytes(std::string_view s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }
inline std::string_view as_chars(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// Reads fixed-width fields from a byte span for parsers of outside bytes.
//
// Design: every read returns a Result carrying a reason (not a sticky failure checked
// once at the end), so a parser can never use a field it did not get, and the abort
// discipline of Result catches a read that was dereferenced unchecked. A read either
// succeeds completely and advances, or fails and leaves the reader where it was: a parser
// can never read past the end, whatever the input claims about its own length, and an
// incremental parser (socks5) can treat a failed read as "need more bytes".
//
// A failed read's error has the reason the reader was built with ("bytes.truncated"
// unless the parser names its own, e.g. "identity.blob.size") and a detail saying how
// many bytes were wanted at which offset. expect_end() fails with "bytes.trailing" (or a
// reason of the caller's) when bytes are left over. Reasons are string literals: the
// reader keeps the pointer.
class ByteReader {
 public:
  explicit ByteReader(ByteView data, const char* truncated_reason = "bytes.truncated")
      : data_(data), truncated_reason_(truncated_reason) {}

  std::size_t offset() const { return pos_; }
  std::size_t remaining() const { return data_.size() - pos_; }
  bool empty() const { return remaining() == 0; }

  Result<std::uint8_t> u8();
  Result<std::uint16_t> be16();
  Result<std::uint16_t> le16();
  Result<std::uint32_t> le32();
  Result<std::uint64_t> le64();
  Result<ByteView> take(std::size_t n);
  Status skip(std::size_t n);
  ByteView rest() const { return data_.subspan(pos_); }
  // Ok when every byte has been read.
  Status expect_end(const char* trailing_reason = "bytes.trailing") const;

 private:
  Error truncated(std::size_t want) const;

  ByteView data_;
  const char* truncated_reason_;
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
