// .caffemodel reader: Caffe's NetParameter protobuf (caffe/src/caffe/proto/caffe.proto), read
// straight from the wire format for the few fields needed. Field numbers:
//   NetParameter        layers=2 (V1LayerParameter), layer=100 (LayerParameter)
//   V1LayerParameter    name=4, type=5 (enum: CONVOLUTION=4, INNER_PRODUCT=14), blobs=6, layer=1
//   (V0) LayerParameter      name=1, type=2 (string), blobs=7 BlobProto           num=1,
//   channels=2, height=3, width=4, data=5 (float), shape=7 (BlobShape),
//                       double_data=8;  BlobShape dim=1 (int64)
#include <map>
#include <optional>

#include "common/files.h"
#include "model/byte_reader.h"
#include "model/model.h"

namespace gg::model {

namespace {

using detail::ByteReader;

using detail::kFixed32;
using detail::kFixed64;
using detail::kLengthDelimited;
using detail::kVarint;
using Field = detail::ProtoField;
constexpr auto next_field = detail::next_proto_field;

ByteReader sub(const ByteReader& parent, std::string_view payload, const std::string& what) {
  return ByteReader(payload, parent.file(), what);
}

struct Blob {
  std::vector<int64_t> shape;            // from BlobShape
  int64_t legacy[4] = {-1, -1, -1, -1};  // num, channels, height, width
  std::vector<float> data;
};

void append_floats(ByteReader& in, const Field& f, std::vector<float>& out, bool is_double) {
  const size_t width = is_double ? 8 : 4;
  if (f.wire == kLengthDelimited) {  // packed
    if (f.payload.size() % width)
      in.fail("packed blob data length is not a multiple of " + std::to_string(width));
    const size_t n = f.payload.size() / width;
    const size_t old = out.size();
    out.resize(old + n);  // bounded by the payload's size, itself within the file
    for (size_t i = 0; i < n; ++i) {
      if (is_double) {
        double d;
        std::memcpy(&d, f.payload.data() + i * 8, 8);
        out[old + i] = static_cast<float>(d);
      } else {
        std::memcpy(&out[old + i], f.payload.data() + i * 4, 4);
      }
    }
  } else if (f.wire == (is_double ? kFixed64 : kFixed32)) {  // unpacked, one element per field
    if (is_double) {
      double d;
      std::memcpy(&d, &f.value, 8);
      out.push_back(static_cast<float>(d));
    } else {
      const uint32_t bits = static_cast<uint32_t>(f.value);
      float v;
      std::memcpy(&v, &bits, 4);
      out.push_back(v);
    }
  } else {
    in.fail("blob data has wire type " + std::to_string(f.wire));
  }
}

Blob parse_blob(const ByteReader& parent, std::string_view payload) {
  ByteReader in = sub(parent, payload, "caffemodel blob");
  Blob blob;
  Field f;
  while (next_field(in, f)) {
    if (f.number >= 1 && f.number <= 4 && f.wire == kVarint) {
      blob.legacy[f.number - 1] = static_cast<int32_t>(f.value);
    } else if (f.number == 5) {
      append_floats(in, f, blob.data, false);
    } else if (f.number == 8) {
      append_floats(in, f, blob.data, true);
    } else if (f.number == 7 && f.wire == kLengthDelimited) {
      ByteReader shape = sub(in, f.payload, "caffemodel blob shape");
      Field d;
      while (next_field(shape, d)) {
        if (d.number != 1) continue;
        if (d.wire == kVarint) {
          blob.shape.push_back(static_cast<int64_t>(d.value));
        } else if (d.wire == kLengthDelimited) {
          ByteReader packed = sub(shape, d.payload, "caffemodel blob shape");
          while (!packed.at_end()) blob.shape.push_back(static_cast<int64_t>(packed.varint()));
        }
        if (blob.shape.size() > 8) in.fail("blob has more than 8 dimensions");
      }
    }
  }
  return blob;
}

// Caffe layer name -> our module name (see model.h). Empty if unknown.
std::string map_layer_name(const std::string& caffe) {
  static const std::map<std::string, std::string> fixed = {
      {"conv1/7x7_s2", "conv1.conv"},   {"conv2/3x3_reduce", "conv2.conv"},
      {"conv2/3x3", "conv3.conv"},      {"loss3/classifier", "fc"},
      {"loss1/conv", "aux1.conv.conv"}, {"loss1/fc", "aux1.fc1"},
      {"loss1/classifier", "aux1.fc2"}, {"loss2/conv", "aux2.conv.conv"},
      {"loss2/fc", "aux2.fc1"},         {"loss2/classifier", "aux2.fc2"},
  };
  if (auto it = fixed.find(caffe); it != fixed.end()) return it->second;
  // inception_3a/1x1 etc.
  static const std::map<std::string, std::string> branches = {
      {"1x1", "branch1.conv"},   {"3x3_reduce", "branch2.0.conv"},
      {"3x3", "branch2.1.conv"}, {"5x5_reduce", "branch3.0.conv"},
      {"5x5", "branch3.1.conv"}, {"pool_proj", "branch4.1.conv"},
  };
  if (caffe.size() > 13 && caffe.compare(0, 10, "inception_") == 0 && caffe[12] == '/') {
    const std::string block = caffe.substr(10, 2);
    const bool known_block = (block[0] == '3' && (block[1] == 'a' || block[1] == 'b')) ||
                             (block[0] == '4' && block[1] >= 'a' && block[1] <= 'e') ||
                             (block[0] == '5' && (block[1] == 'a' || block[1] == 'b'));
    auto it = branches.find(caffe.substr(13));
    if (known_block && it != branches.end()) return "inception" + block + "." + it->second;
  }
  return {};
}

torch::Tensor blob_tensor(const ByteReader& in, const std::string& layer, const Blob& blob,
                          bool is_bias, bool is_fc) {
  std::vector<int64_t> shape = blob.shape;
  if (shape.empty()) {
    for (int64_t d : blob.legacy) shape.push_back(d < 0 ? 1 : d);
  }
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0 || d > (int64_t{1} << 31))
      in.fail("layer " + layer + ": blob dimension " + std::to_string(d));
    numel *= d;
    if (numel > (int64_t{1} << 40)) in.fail("layer " + layer + ": blob too large");
  }
  if (numel != static_cast<int64_t>(blob.data.size())) {
    in.fail("layer " + layer + ": blob shape holds " + std::to_string(numel) +
            " values but the data has " + std::to_string(blob.data.size()));
  }
  // Legacy 4-D blobs pad with leading 1s: a bias is [1,1,1,n], an fc weight [1,1,out,in].
  if (is_bias) {
    shape = {numel};
  } else if (is_fc) {
    while (shape.size() > 2 && shape.front() == 1) shape.erase(shape.begin());
    if (shape.size() != 2) in.fail("layer " + layer + ": inner-product weight is not 2-D");
  }
  return torch::from_blob(const_cast<float*>(blob.data.data()), shape, torch::kFloat32).clone();
}

struct Layer {
  std::string name;
  bool is_fc = false;
  std::vector<std::string_view> blobs;
};

Layer parse_layer(const ByteReader& parent, std::string_view payload, bool v1) {
  ByteReader in = sub(parent, payload, "caffemodel layer");
  Layer layer;
  Field f;
  while (next_field(in, f)) {
    if (v1) {
      if (f.number == 1) in.fail("V0 layer definitions (before 2014) are not supported");
      if (f.number == 4 && f.wire == kLengthDelimited) layer.name = std::string(f.payload);
      if (f.number == 5 && f.wire == kVarint) layer.is_fc = f.value == 14;  // INNER_PRODUCT
      if (f.number == 6 && f.wire == kLengthDelimited) layer.blobs.push_back(f.payload);
    } else {
      if (f.number == 1 && f.wire == kLengthDelimited) layer.name = std::string(f.payload);
      if (f.number == 2 && f.wire == kLengthDelimited) layer.is_fc = f.payload == "InnerProduct";
      if (f.number == 7 && f.wire == kLengthDelimited) layer.blobs.push_back(f.payload);
    }
  }
  return layer;
}

}  // namespace

StateDict read_caffemodel(const fs::path& path) {
  const std::string bytes = read_file(path);
  ByteReader in(bytes, path.string(), "caffemodel");
  StateDict state;
  Field f;
  bool any_layer = false;
  while (next_field(in, f)) {
    const bool v1 = f.number == 2, v2 = f.number == 100;
    if (!(v1 || v2) || f.wire != kLengthDelimited) continue;
    any_layer = true;
    const Layer layer = parse_layer(in, f.payload, v1);
    if (layer.blobs.empty()) continue;
    const std::string name = map_layer_name(layer.name);
    if (name.empty()) {
      in.fail("layer '" + layer.name + "' has weights but is not a layer of BVLC GoogLeNet");
    }
    if (layer.blobs.size() > 2) in.fail("layer '" + layer.name + "' has more than 2 blobs");
    for (size_t i = 0; i < layer.blobs.size(); ++i) {
      const Blob blob = parse_blob(in, layer.blobs[i]);
      const bool is_bias = i == 1;
      state.emplace_back(name + (is_bias ? ".bias" : ".weight"),
                         blob_tensor(in, layer.name, blob, is_bias, layer.is_fc || name == "fc"));
    }
  }
  if (!any_layer) in.fail("no layers found (not a Caffe NetParameter?)");
  if (state.empty())
    in.fail("no layer has weights (is this a deploy.prototxt rather than a .caffemodel?)");
  return state;
}

}  // namespace gg::model
