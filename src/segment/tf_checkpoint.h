// Internal to gg::segment: a reader for TensorFlow 1 checkpoints (tensor bundles), as CaPTk ships
// DeepMedic's weights: `<prefix>.index` and `<prefix>.data-00000-of-00001`.
//
// The .index file is a LevelDB-format table (google/leveldb doc/table_format.md; TensorFlow writes
// it with its own copy, tensorflow/core/lib/io/table_builder.cc, same format) mapping each tensor
// name to a BundleEntryProto (tensorflow/core/protobuf/tensor_bundle.proto): dtype, shape, shard,
// offset and size in the data file, and the masked crc32c of the tensor's bytes. The data file
// holds the raw little-endian tensors back to back.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace gg::segment {

namespace fs = std::filesystem;

struct TfTensor {
  int dtype = 0;  // TensorFlow DataType: 1 = DT_FLOAT (the only one whose values are kept)
  std::vector<int64_t> shape;
  std::vector<float> values;  // row-major; empty unless dtype is DT_FLOAT
  int64_t num_elements() const;
};

struct TfCheckpoint {
  fs::path prefix;                          // what was read, for messages
  std::map<std::string, TfTensor> tensors;  // every entry of the bundle (the header excluded)

  // The DT_FLOAT tensor `name`, checked to have `shape`. Throws gg::Error (kBadInput) naming the
  // index file and the tensor when it is absent, not float, or shaped otherwise.
  const TfTensor& get(const std::string& name, const std::vector<int64_t>& shape) const;
};

// Reads the bundle at `prefix` (".../model.ckpt"): every table block and entry, and every tensor's
// bytes, whose crc32c is checked. Throws gg::Error (kBadInput) naming the file (and the tensor
// where one is involved) for: a missing file, a bad footer magic, a truncated or corrupt table
// (block crc, restart array, key encoding), a compressed block (TensorFlow writes none), a
// malformed BundleEntryProto, more than one shard, a tensor past the end of the data file (a
// truncated file), a tensor whose crc32c does not match, or a float tensor whose size disagrees
// with its shape. Only single-shard bundles of unsliced tensors are supported.
TfCheckpoint read_tf_checkpoint(const fs::path& prefix);

// CRC-32C (Castagnoli), and LevelDB/TensorFlow's mask of it (stored crcs are masked so that a crc
// of data holding crcs stays well distributed). Exposed for tests that build checkpoints.
uint32_t crc32c(const void* data, size_t n, uint32_t init = 0);
inline uint32_t crc32c_mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

}  // namespace gg::segment
