#include "common/bytes.h"

#include <sodium.h>

#include <cstring>
#include <string>

namespace torgw {

Error ByteReader::truncated(std::size_t want) const {
  return make_error(truncated_reason_, "need " + std::to_string(want) + " bytes at offset " + std::to_string(pos_) +
                                           ", " + std::to_string(remaining()) + " left");
}

Result<std::uint8_t> ByteReader::u8() {
  if (remaining() < 1) return truncated(1);
  return data_[pos_++];
}

Result<std::uint16_t> ByteReader::be16() {
  if (remaining() < 2) return truncated(2);
  std::uint16_t v = static_cast<std::uint16_t>((data_[pos_] << 8) | data_[pos_ + 1]);
  pos_ += 2;
  return v;
}

Result<std::uint16_t> ByteReader::le16() {
  if (remaining() < 2) return truncated(2);
  auto v = load_le16(data_.data() + pos_);
  pos_ += 2;
  return v;
}

Result<std::uint32_t> ByteReader::le32() {
  if (remaining() < 4) return truncated(4);
  auto v = load_le32(data_.data() + pos_);
  pos_ += 4;
  return v;
}

Result<std::uint64_t> ByteReader::le64() {
  if (remaining() < 8) return truncated(8);
  auto v = load_le64(data_.data() + pos_);
  pos_ += 8;
  return v;
}

Result<ByteView> ByteReader::take(std::size_t n) {
  if (remaining() < n) return truncated(n);
  ByteView v = data_.subspan(pos_, n);
  pos_ += n;
  return v;
}

Status ByteReader::skip(std::size_t n) {
  if (remaining() < n) return truncated(n);
  pos_ += n;
  return {};
}

Status ByteReader::expect_end(const char* trailing_reason) const {
  if (remaining() == 0) return {};
  return make_error(trailing_reason, std::to_string(remaining()) + " bytes left after offset " + std::to_string(pos_));
}

std::uint16_t load_le16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
std::uint32_t load_le32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[3]} << 24);
}
std::uint64_t load_le64(const std::uint8_t* p) {
  return std::uint64_t{load_le32(p)} | (std::uint64_t{load_le32(p + 4)} << 32);
}
void store_le16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
}
void store_le32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void store_le64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

std::string to_hex(ByteView b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(b.size() * 2);
  for (std::uint8_t c : b) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<Bytes> from_hex(std::string_view s) {
  if (s.size() % 2 != 0) return make_error("hex.odd_length", std::to_string(s.size()));
  Bytes out(s.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = hex_value(s[2 * i]);
    int lo = hex_value(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return make_error("hex.bad_character", "at offset " + std::to_string(2 * i));
    out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return out;
}

std::string to_base64(ByteView b, bool pad) {
  const int variant = pad ? sodium_base64_VARIANT_ORIGINAL : sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
  std::string out(sodium_base64_ENCODED_LEN(b.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), b.data(), b.size(), variant);
  out.resize(std::strlen(out.c_str()));
  return out;
}

Result<Bytes> from_base64(std::string_view s) {
  const bool padded = !s.empty() && s.back() == '=';
  const int variant = padded ? sodium_base64_VARIANT_ORIGINAL : sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
  Bytes out(s.size() / 4 * 3 + 3);
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out.data(), out.size(), s.data(), s.size(), nullptr, &len, &end, variant) != 0 ||
      end != s.data() + s.size()) {
    return make_error("base64.invalid");
  }
  out.resize(len);
  return out;
}

bool equal_ct(ByteView a, ByteView b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace torgw
