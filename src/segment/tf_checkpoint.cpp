// TensorFlow 1 checkpoint reader. Ours rather than Debian's libleveldb-dev: leveldb::Table could
// open the .index file (TensorFlow's table is LevelDB's format), but only through leveldb's Env
// and Status, whose messages name neither our file nor a tensor, and it would add a system
// library for a 12 kB file whose format is four pages of spec. This reader is ~250 lines, checks
// every length against the bytes left (model/byte_reader.h) and every block and tensor crc.
//
// Formats (google/leveldb doc/table_format.md; tensorflow/core/lib/io/format.cc, block.cc;
// tensorflow/core/protobuf/tensor_bundle.proto; tensorflow/core/util/tensor_bundle):
//   file    := data blocks, [meta blocks], metaindex block, index block, footer (48 bytes)
//   footer  := metaindex BlockHandle, index BlockHandle (varint64 offset, size), zero padding
//              to 40 bytes, fixed64 magic 0xdb4775248b80fb57
//   block   := entries, fixed32 restart[n], fixed32 n; then a 5-byte trailer: type (0 = none,
//              1 = snappy), fixed32 masked crc32c of contents + type
//   entry   := varint32 shared, varint32 non_shared, varint32 value_length, key delta, value
//   index   := entries whose values are BlockHandles of the data blocks
//   bundle  := key "" -> BundleHeaderProto {num_shards=1, endianness=2, version=3};
//              tensor name -> BundleEntryProto {dtype=1, shape=2 (TensorShapeProto dim=2
//              {size=1}), shard_id=3, offset=4, size=5, crc32c=6 (fixed32, masked), slices=7}
#include "segment/tf_checkpoint.h"

#include <array>
#include <cstring>

#include "common/error.h"
#include "common/files.h"
#include "model/byte_reader.h"  // header-only bounds-checked cursor, shared with the Caffe reader

namespace gg::segment {

namespace {

using model::detail::ByteReader;

static_assert(sizeof(float) == 4, "float32 expected");
constexpr uint64_t kTableMagic = 0xdb4775248b80fb57ull;
constexpr size_t kFooterSize = 48;
constexpr size_t kBlockTrailerSize = 5;
constexpr int kDtFloat = 1;

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;  // reflected poly
    table[i] = c;
  }
  return table;
}

struct BlockHandle {
  uint64_t offset = 0, size = 0;
};

BlockHandle read_handle(ByteReader& in) {
  BlockHandle h;
  h.offset = in.varint();
  h.size = in.varint();
  return h;
}

// Checks a block's trailer (type and crc) and returns its contents.
std::string_view block_contents(std::string_view file, const BlockHandle& h, const fs::path& path,
                                const std::string& which) {
  if (h.offset > file.size() || h.size > file.size() - h.offset ||
      kBlockTrailerSize > file.size() - h.offset - h.size) {
    throw_bad_input(path.string(),
                    which + " block at offset " + std::to_string(h.offset) + " (" +
                        std::to_string(h.size) +
                        " bytes) runs past the end of the file (truncated?)",
                    "re-copy the checkpoint");
  }
  const std::string_view contents = file.substr(h.offset, h.size);
  const auto type = static_cast<uint8_t>(file[h.offset + h.size]);
  uint32_t stored;
  std::memcpy(&stored, file.data() + h.offset + h.size + 1, 4);
  const uint32_t actual = crc32c_mask(crc32c(&file[h.offset], h.size + 1));
  if (stored != actual) {
    throw_bad_input(path.string(),
                    which + " block at offset " + std::to_string(h.offset) + " fails its crc32c",
                    "the file is corrupt: re-copy the checkpoint");
  }
  if (type != 0) {
    throw_bad_input(path.string(),
                    which + " block at offset " + std::to_string(h.offset) +
                        " is compressed (type " + std::to_string(type) +
                        (type == 1 ? ", snappy" : "") +
                        "); TensorFlow bundles are written uncompressed",
                    "re-save the checkpoint with TensorFlow's tf.train.Saver");
  }
  return contents;
}

// Calls f(key, value) for each entry of a block, in order. Keys are prefix-compressed against the
// previous key; each restart point must hold a full key (shared == 0).
template <typename F>
void for_each_entry(std::string_view block, const fs::path& path, const std::string& which, F&& f) {
  ByteReader in(block, path.string(), "TensorFlow checkpoint index (" + which + " block)");
  if (block.size() < 4) in.fail("block shorter than its restart count");
  uint32_t num_restarts;
  std::memcpy(&num_restarts, block.data() + block.size() - 4, 4);
  if (num_restarts == 0 || num_restarts > (block.size() - 4) / 4)
    in.fail("bad restart count " + std::to_string(num_restarts));
  const size_t restarts_at = block.size() - 4 - size_t(num_restarts) * 4;
  std::vector<uint32_t> restarts(num_restarts);
  std::memcpy(restarts.data(), block.data() + restarts_at, size_t(num_restarts) * 4);
  ByteReader entries(block.substr(0, restarts_at), path.string(),
                     "TensorFlow checkpoint index (" + which + " block)");
  std::string key;
  size_t next_restart = 0;
  while (!entries.at_end()) {
    const size_t at = entries.pos();
    const bool is_restart = next_restart < restarts.size() && restarts[next_restart] == at;
    if (is_restart) ++next_restart;
    const uint64_t shared = entries.varint();
    const uint64_t non_shared = entries.varint();
    const uint64_t value_length = entries.varint();
    if (shared > key.size() || (is_restart && shared != 0))
      entries.fail("bad shared key length " + std::to_string(shared) + " at offset " +
                   std::to_string(at));
    key.resize(static_cast<size_t>(shared));
    key.append(entries.bytes(non_shared));
    f(key, entries.bytes(value_length));
  }
  if (next_restart != restarts.size()) in.fail("restart points do not match the entries");
}

using Field = model::detail::ProtoField;
constexpr auto next_field = model::detail::next_proto_field;

struct Entry {
  TfTensor tensor;
  uint64_t shard = 0, offset = 0, size = 0;
  uint32_t crc = 0;
  bool has_crc = false, sliced = false;
};

Entry parse_entry(std::string_view value, const fs::path& path, const std::string& name) {
  ByteReader in(value, path.string(), "BundleEntryProto of tensor '" + name + "'");
  Entry e;
  Field f;
  while (next_field(in, f)) {
    switch (f.number) {
      case 1:
        e.tensor.dtype = static_cast<int>(f.value);
        break;
      case 2: {
        ByteReader shape(f.payload, path.string(), "TensorShapeProto of tensor '" + name + "'");
        Field d;
        while (next_field(shape, d)) {
          if (d.number != 2 || d.wire != 2) continue;  // unknown_rank=3 and others: ignored
          ByteReader dim(d.payload, path.string(), "TensorShapeProto.Dim of '" + name + "'");
          Field s;
          int64_t size = 0;
          while (next_field(dim, s))
            if (s.number == 1 && s.wire == 0) size = static_cast<int64_t>(s.value);
          if (size < 0) shape.fail("negative dimension");
          e.tensor.shape.push_back(size);
        }
        break;
      }
      case 3:
        e.shard = f.value;
        break;
      case 4:
        e.offset = f.value;
        break;
      case 5:
        e.size = f.value;
        break;
      case 6:
        e.crc = static_cast<uint32_t>(f.value), e.has_crc = f.wire == 5;
        break;
      case 7:
        e.sliced = true;
        break;
      default:
        break;
    }
  }
  return e;
}

}  // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t init) {
  static const std::array<uint32_t, 256> table = make_crc_table();
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~init;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return ~c;
}

int64_t TfTensor::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const TfTensor& TfCheckpoint::get(const std::string& name,
                                  const std::vector<int64_t>& shape) const {
  const std::string index = prefix.string() + ".index";
  const auto it = tensors.find(name);
  if (it == tensors.end())
    throw_bad_input(index, "tensor '" + name + "' is missing from the checkpoint",
                    "use the checkpoint that matches this modelConfig.txt");
  auto describe = [](const std::vector<int64_t>& s) {
    std::string out = "[";
    for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
    return out + "]";
  };
  if (it->second.dtype != kDtFloat)
    throw_bad_input(index, "tensor '" + name + "' has dtype " + std::to_string(it->second.dtype) +
                               ", expected float32 (1)");
  if (it->second.shape != shape)
    throw_bad_input(index,
                    "tensor '" + name + "' has shape " + describe(it->second.shape) +
                        ", expected " + describe(shape),
                    "use the checkpoint that matches this modelConfig.txt");
  return it->second;
}

TfCheckpoint read_tf_checkpoint(const fs::path& prefix) {
  const fs::path index_path = prefix.string() + ".index";
  const fs::path data_path = prefix.string() + ".data-00000-of-00001";
  const std::string index = read_file(index_path);
  const std::string_view file(index);
  if (file.size() < kFooterSize)
    throw_bad_input(index_path.string(), "too short for a table footer (" +
                                             std::to_string(file.size()) + " bytes; truncated?)");
  uint64_t magic;
  std::memcpy(&magic, file.data() + file.size() - 8, 8);
  if (magic != kTableMagic)
    throw_bad_input(index_path.string(), "bad footer magic (not a TensorFlow checkpoint index)",
                    "pass the checkpoint prefix, e.g. .../model.ckpt");
  ByteReader footer(file.substr(file.size() - kFooterSize, kFooterSize - 8), index_path.string(),
                    "TensorFlow checkpoint index footer");
  read_handle(footer);  // metaindex: no filters in a bundle, nothing to read
  const BlockHandle index_handle = read_handle(footer);

  std::vector<std::pair<std::string, Entry>> entries;
  bool header_seen = false;
  for_each_entry(block_contents(file, index_handle, index_path, "index"), index_path, "index",
                 [&](const std::string&, std::string_view handle_bytes) {
                   ByteReader h(handle_bytes, index_path.string(), "index block handle");
                   const BlockHandle data_handle = read_handle(h);
                   for_each_entry(block_contents(file, data_handle, index_path, "data"), index_path,
                                  "data", [&](const std::string& key, std::string_view value) {
                                    if (key.empty()) {
                                      header_seen = true;  // BundleHeaderProto
                                      ByteReader in(value, index_path.string(),
                                                    "BundleHeaderProto");
                                      Field f;
                                      while (next_field(in, f))
                                        if (f.number == 1 && f.value != 1)
                                          in.fail(std::to_string(f.value) +
                                                  " shards (only single-shard bundles are read)");
                                      return;
                                    }
                                    entries.emplace_back(key, parse_entry(value, index_path, key));
                                  });
                 });
  if (!header_seen)
    throw_bad_input(index_path.string(), "no bundle header (empty key) in the table");

  const std::string data = read_file(data_path);
  TfCheckpoint ckpt;
  ckpt.prefix = prefix;
  for (auto& [name, e] : entries) {
    const std::string where = "tensor '" + name + "'";
    if (e.shard != 0 || e.sliced)
      throw_bad_input(index_path.string(), where + " is sharded or sliced (not supported)");
    if (e.offset > data.size() || e.size > data.size() - e.offset)
      throw_bad_input(data_path.string(),
                      where + " needs bytes " + std::to_string(e.offset) + ".." +
                          std::to_string(e.offset + e.size) + " but the file has " +
                          std::to_string(data.size()) + " (truncated?)",
                      "re-copy the checkpoint");
    const uint32_t actual = crc32c_mask(crc32c(data.data() + e.offset, e.size));
    if (!e.has_crc || actual != e.crc)
      throw_bad_input(data_path.string(), where + " fails its crc32c check (corrupt data file)",
                      "re-copy the checkpoint");
    if (e.tensor.dtype == kDtFloat) {
      const int64_t n = e.tensor.num_elements();
      if (uint64_t(n) * 4 != e.size)
        throw_bad_input(index_path.string(), where + " holds " + std::to_string(e.size) +
                                                 " bytes but its shape needs " +
                                                 std::to_string(n * 4));
      e.tensor.values.resize(size_t(n));
      std::memcpy(e.tensor.values.data(), data.data() + e.offset, e.size);
    }
    ckpt.tensors.emplace(name, std::move(e.tensor));
  }
  return ckpt;
}

}  // namespace gg::segment
