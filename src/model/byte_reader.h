// Internal to gg::model: a bounds-checked cursor over bytes held in memory, for the weight-file
// readers. Every read checks the bytes left and throws gg::Error (kBadInput) naming the file and
// the offset, so a truncated or corrupted file can never read outside its buffer.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "common/error.h"

namespace gg::model::detail {

class ByteReader {
 public:
  ByteReader(std::string_view data, std::string file, std::string what_is_read)
      : data_(data), file_(std::move(file)), what_(std::move(what_is_read)) {}

  size_t pos() const { return pos_; }
  size_t size() const { return data_.size(); }
  size_t remaining() const { return data_.size() - pos_; }
  bool at_end() const { return pos_ == data_.size(); }
  const std::string& file() const { return file_; }

  void seek(size_t pos) {
    if (pos > data_.size()) fail("offset " + std::to_string(pos) + " is past the end");
    pos_ = pos;
  }
  std::string_view bytes(uint64_t n) {
    if (n > remaining()) {
      fail("needs " + std::to_string(n) + " bytes at offset " + std::to_string(pos_) +
           " but only " + std::to_string(remaining()) + " remain (truncated?)");
    }
    auto s = data_.substr(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }
  void skip(uint64_t n) { bytes(n); }
  uint8_t u8() { return static_cast<uint8_t>(bytes(1)[0]); }
  template <typename T>
  T little_endian() {  // host is little-endian (checked at build time by the readers)
    T v;
    std::memcpy(&v, bytes(sizeof(T)).data(), sizeof(T));
    return v;
  }
  uint16_t u16() { return little_endian<uint16_t>(); }
  uint32_t u32() { return little_endian<uint32_t>(); }
  uint64_t u64() { return little_endian<uint64_t>(); }
  int32_t i32() { return little_endian<int32_t>(); }
  int64_t i64() { return little_endian<int64_t>(); }

  // Protobuf base-128 varint (at most 10 bytes).
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      const uint8_t b = u8();
      if (shift == 63 && b > 1) break;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("malformed varint at offset " + std::to_string(pos_));
  }

  // Reads up to '\n' (excluded), at most max_len bytes.
  std::string_view line(size_t max_len = 256) {
    const size_t end = data_.find('\n', pos_);
    if (end == std::string_view::npos || end - pos_ > max_len)
      fail("unterminated text field at offset " + std::to_string(pos_));
    auto s = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }

  [[noreturn]] void fail(const std::string& problem) const {
    throw_bad_input(file_, "corrupt or unsupported " + what_ + ": " + problem,
                    "re-download the file, or check it is the right kind");
  }

 private:
  std::string_view data_;
  std::string file_, what_;
  size_t pos_ = 0;
};

// The protocol-buffer wire format, for the readers that take a few fields by hand (Caffe's
// NetParameter, TensorFlow's BundleEntryProto).
enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

struct ProtoField {
  uint32_t number = 0;
  uint32_t wire = 0;
  uint64_t value = 0;        // varint / fixed
  std::string_view payload;  // length-delimited
};

// Reads the next field of a message; false at its end. Throws (ByteReader::fail) on a bad key,
// a length past the end, or a wire type other than the four above (groups).
inline bool next_proto_field(ByteReader& in, ProtoField& f) {
  if (in.at_end()) return false;
  const uint64_t key = in.varint();
  f.number = static_cast<uint32_t>(key >> 3);
  f.wire = static_cast<uint32_t>(key & 7);
  if (f.number == 0 || key >> 32) in.fail("bad field key at offset " + std::to_string(in.pos()));
  switch (f.wire) {
    case kVarint:
      f.value = in.varint();
      break;
    case kFixed64:
      f.value = in.u64();
      break;
    case kLengthDelimited:
      f.payload = in.bytes(in.varint());
      break;
    case kFixed32:
      f.value = in.u32();
      break;
    default:
      in.fail("unsupported wire type " + std::to_string(f.wire) + " (groups?)");
  }
  return true;
}

}  // namespace gg::model::detail
