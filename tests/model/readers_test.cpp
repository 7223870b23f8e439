// The weight-file readers on tiny hand-built files with known contents, and against hostile
// input: every truncation point and many random byte flips give gg::Error or a valid result,
// never a crash, a hang, another exception type or a huge allocation.
#include <fstream>
#include <random>

#include "model/model.h"
#include "parity_util.h"

namespace gg::model {
namespace {

// --- a tiny protobuf writer (wire format) for hand-built .caffemodel files ---
std::string varint(uint64_t v) {
  std::string s;
  while (v >= 0x80) {
    s += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  s += static_cast<char>(v);
  return s;
}
std::string field_varint(int number, uint64_t v) {
  return varint(static_cast<uint64_t>(number) << 3) + varint(v);
}
std::string field_bytes(int number, const std::string& payload) {
  return varint(static_cast<uint64_t>(number) << 3 | 2) + varint(payload.size()) + payload;
}
std::string floats(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

// NetParameter with a V1 conv layer (legacy num/channels/height/width blobs, unpacked bias) and
// a V2 InnerProduct layer (BlobShape, packed data), plus a weightless layer.
std::string tiny_caffemodel() {
  std::string conv_weight = field_varint(1, 2) + field_varint(2, 1) + field_varint(3, 1) +
                            field_varint(4, 1) + field_bytes(5, floats({1.5f, -2.0f}));
  std::string conv_bias =
      field_varint(1, 1) + field_varint(2, 1) + field_varint(3, 1) + field_varint(4, 2);
  for (float b : {0.25f, 0.5f}) {
    uint32_t bits;
    std::memcpy(&bits, &b, 4);
    conv_bias +=
        varint(5 << 3 | 5) + std::string(reinterpret_cast<const char*>(&bits), 4);  // unpacked
  }
  std::string v1 = field_bytes(4, "conv1/7x7_s2") + field_varint(5, 4) +
                   field_bytes(6, conv_weight) + field_bytes(6, conv_bias);
  std::string relu = field_bytes(4, "conv1/relu_7x7") + field_varint(5, 18);
  std::string fc_weight = field_bytes(7, field_bytes(1, varint(3) + varint(2))) +
                          field_bytes(5, floats({1, 2, 3, 4, 5, 6}));
  std::string fc_bias = field_bytes(7, field_varint(1, 3)) + field_bytes(5, floats({7, 8, 9}));
  std::string v2 = field_bytes(1, "loss3/classifier") + field_bytes(2, "InnerProduct") +
                   field_bytes(7, fc_weight) + field_bytes(7, fc_bias);
  return field_bytes(1, "tiny") + field_bytes(2, v1) + field_bytes(2, relu) + varint(100 << 3 | 2) +
         varint(v2.size()) + v2;
}

// --- a hand-built legacy torch.save of OrderedDict{"w": FloatTensor [2,3] = 0..5 viewed from
// offset 1 of a 7-element storage, "n": LongTensor [] = 8} ---
std::string u(const std::string& s) {  // BINUNICODE
  const uint32_t n = static_cast<uint32_t>(s.size());
  return "X" + std::string(reinterpret_cast<const char*>(&n), 4) + s;
}
std::string tiny_legacy_pth(const std::string& w_offset_size_stride =
                                std::string("K\x01K\x02K\x03\x86K\x03K\x01\x86", 12)) {
  std::string f;
  f += std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15);  // magic
  f += std::string("\x80\x02M\xe9\x03.", 6);                                          // 1001
  f += std::string("\x80\x02}(", 4) + u("protocol_version") + std::string("M\xe9\x03", 3) +
       u("little_endian") + "\x88" + u("type_sizes") + "}(" + u("short") + "K\x02" + u("int") +
       "K\x04" + u("long") + "K\x04" + "uu.";
  auto tensor = [](const std::string& key, const std::string& type, int numel,
                   const std::string& offset_size_stride) {
    return "ctorch._utils\n_rebuild_tensor_v2\n((" + u("storage") + "ctorch\n" + type + "\n" +
           u(key) + u("cpu") + "K" + std::string(1, static_cast<char>(numel)) + "NtQ" +
           offset_size_stride + "\x89" + "ccollections\nOrderedDict\n)Rtq\x05R";
  };
  f += "\x80\x02"
       "ccollections\nOrderedDict\nq\x02)Rq\x01(" +
       u("w") + tensor("0", "FloatStorage", 7, w_offset_size_stride) + u("n") +
       tensor("1", "LongStorage", 1, std::string("K\x00)", 3) + ")") + "u}" + u("_metadata") +
       "}sb.";
  f += "\x80\x02](" + u("0") + u("1") + "e.";
  int64_t n = 7;
  f.append(reinterpret_cast<const char*>(&n), 8);
  for (int i = -1; i < 6; ++i) {
    const float v = static_cast<float>(i);
    f.append(reinterpret_cast<const char*>(&v), 4);
  }
  n = 1;
  f.append(reinterpret_cast<const char*>(&n), 8);
  const int64_t eight = 8;
  f.append(reinterpret_cast<const char*>(&eight), 8);
  return f;
}

// Reads bytes as a file with `reader`: true if it parsed, false if it threw gg::Error. Any other
// exception fails the test.
template <typename Reader>
bool parses(const gg::testing::TempDir& dir, const std::string& bytes, Reader reader,
            const std::string& what) {
  const fs::path file = dir / "probe.bin";
  std::ofstream(file, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  try {
    reader(file);
    return true;
  } catch (const gg::Error& e) {
    EXPECT_EQ(e.code(), gg::ExitCode::kBadInput) << what;
    EXPECT_EQ(e.file(), file.string()) << what;
    return false;
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": not a gg::Error: " << e.what();
    return false;
  }
}

TEST(Readers, TinyCaffemodelKnownContents) {
  gg::testing::TempDir dir;
  gg::write_file_atomic(dir / "tiny.caffemodel", tiny_caffemodel());
  EXPECT_EQ(detect_format(dir / "tiny.caffemodel"), WeightsFormat::kCaffemodel);
  const StateDict state = read_caffemodel(dir / "tiny.caffemodel");
  ASSERT_EQ(state.size(), 4u);
  EXPECT_EQ(state[0].first, "conv1.conv.weight");
  EXPECT_EQ(state[0].second.sizes(), torch::IntArrayRef({2, 1, 1, 1}));
  EXPECT_EQ(state[0].second[1][0][0][0].item<float>(), -2.0f);
  EXPECT_EQ(state[1].first, "conv1.conv.bias");
  EXPECT_TRUE(torch::equal(state[1].second, torch::tensor({0.25f, 0.5f})));
  EXPECT_EQ(state[2].first, "fc.weight");
  EXPECT_TRUE(
      torch::equal(state[2].second, torch::tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}).view({3, 2})));
  EXPECT_TRUE(torch::equal(state[3].second, torch::tensor({7.f, 8.f, 9.f})));
}

TEST(Readers, UnknownCaffeLayerWithWeightsIsNamed) {
  gg::testing::TempDir dir;
  const std::string layer = field_bytes(4, "fc8_imagenet") +
                            field_bytes(6, field_varint(4, 1) + field_bytes(5, floats({1})));
  gg::write_file_atomic(dir / "alex.caffemodel", field_bytes(2, layer));
  try {
    read_caffemodel(dir / "alex.caffemodel");
    FAIL();
  } catch (const gg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("fc8_imagenet"), std::string::npos) << e.what();
  }
}

TEST(Readers, TinyLegacyPthKnownContents) {
  gg::testing::TempDir dir;
  gg::write_file_atomic(dir / "tiny.pth", tiny_legacy_pth());
  EXPECT_EQ(detect_format(dir / "tiny.pth"), WeightsFormat::kTorchLegacy);
  const StateDict state = read_torch_checkpoint(dir / "tiny.pth");
  ASSERT_EQ(state.size(), 2u);
  EXPECT_EQ(state[0].first, "w");
  EXPECT_TRUE(torch::equal(state[0].second, torch::arange(6, torch::kFloat32).view({2, 3})));
  EXPECT_EQ(state[1].first, "n");
  EXPECT_EQ(state[1].second.scalar_type(), torch::kInt64);
  EXPECT_EQ(state[1].second.dim(), 0);
  EXPECT_EQ(state[1].second.item<int64_t>(), 8);
}

TEST(Readers, HostileSizesAreRefusedBeforeAllocating) {
  gg::testing::TempDir dir;
  // "w" as a [2^30] view with stride 0 of a 7-float storage: 4 GiB from 28 bytes.
  const std::string broadcast = std::string("K\x00J\x00\x00\x00\x40\x85K\x00\x85", 11);
  gg::write_file_atomic(dir / "broadcast.pth", tiny_legacy_pth(broadcast));
  try {
    read_torch_checkpoint(dir / "broadcast.pth");
    FAIL();
  } catch (const gg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("larger than the file"), std::string::npos) << e.what();
  }
  // A view reaching past its storage.
  gg::write_file_atomic(dir / "past.pth",
                        tiny_legacy_pth(std::string("K\x02K\x02K\x03\x86K\x03K\x01\x86", 12)));
  EXPECT_THROW(read_torch_checkpoint(dir / "past.pth"), gg::Error);
  // Two million one-byte pickle ops: refused at the object cap, not grown without bound.
  const std::string legacy = tiny_legacy_pth();
  const size_t object_start = legacy.find(
      "\x80\x02"
      "ccollections");
  ASSERT_NE(object_start, std::string::npos);
  gg::write_file_atomic(dir / "flood.pth", legacy.substr(0, object_start) + "\x80\x02" +
                                               std::string(2 << 20, 'N') + ".");
  EXPECT_THROW(read_torch_checkpoint(dir / "flood.pth"), gg::Error);
}

TEST(Readers, HashPrefixInNameIsVerified) {
  gg::testing::TempDir dir;
  const std::string bytes = tiny_legacy_pth();
  const std::string good = gg::sha256_hex(bytes).substr(0, 8);
  gg::write_file_atomic(dir / ("googlenet-" + good + ".pth"), bytes);
  EXPECT_EQ(read_torch_checkpoint(dir / ("googlenet-" + good + ".pth")).size(), 2u);
  const std::string bad = good[0] == '0' ? "1" + good.substr(1) : "0" + good.substr(1);
  gg::write_file_atomic(dir / ("googlenet-" + bad + ".pth"), bytes);
  EXPECT_THROW(read_torch_checkpoint(dir / ("googlenet-" + bad + ".pth")), gg::Error);
}

template <typename Reader>
void hammer(const std::string& bytes, Reader reader, const std::string& name, bool every_cut_fails,
            std::vector<size_t> cuts, int flips) {
  gg::testing::TempDir dir;
  ASSERT_TRUE(parses(dir, bytes, reader, name + " intact"));
  for (size_t cut : cuts) {
    const bool ok =
        parses(dir, bytes.substr(0, cut), reader, name + " cut at " + std::to_string(cut));
    if (every_cut_fails) {
      EXPECT_FALSE(ok) << name << " cut at " << cut;
    }
  }
  std::mt19937_64 rng(12345);
  for (int i = 0; i < flips; ++i) {
    std::string corrupt = bytes;
    const size_t at = rng() % corrupt.size();
    corrupt[at] = static_cast<char>(corrupt[at] ^ (1 + rng() % 255));
    parses(dir, corrupt, reader, name + " flip at " + std::to_string(at));
  }
}

std::vector<size_t> all_cuts(size_t n) {
  std::vector<size_t> cuts;
  for (size_t i = 0; i < n; ++i) cuts.push_back(i);
  return cuts;
}

TEST(Readers, HostileCaffemodel) {
  const std::string bytes = tiny_caffemodel();
  // A protobuf cut between two layers is still a valid message, so only "no crash" holds for
  // every cut; the loader then reports the missing tensors.
  hammer(
      bytes, [](const fs::path& p) { read_caffemodel(p); }, "caffemodel", false,
      all_cuts(bytes.size()), 400);
}

TEST(Readers, HostileLegacyPth) {
  const std::string bytes = tiny_legacy_pth();
  hammer(
      bytes, [](const fs::path& p) { read_torch_checkpoint(p); }, "legacy pth", true,
      all_cuts(bytes.size()), 400);
}

TEST(Readers, HostileZipPt) {
  const fs::path real = test::tv_fixtures() / "reference-io.pt";
  if (!fs::exists(real)) GG_MISSING("no " << real);
  const std::string bytes = gg::read_file(real);
  std::vector<size_t> cuts = {0,
                              1,
                              3,
                              4,
                              30,
                              100,
                              1000,
                              bytes.size() / 2,
                              bytes.size() - 23,
                              bytes.size() - 22,
                              bytes.size() - 21,
                              bytes.size() - 1};
  for (size_t i = 1; i < 24; ++i) cuts.push_back(bytes.size() * i / 24);
  // Flips are aimed at the structure (headers, pickle, central directory), not the float data.
  gg::testing::TempDir dir;
  hammer(
      bytes, [](const fs::path& p) { read_torch_checkpoint(p); }, "zip pt", true, cuts, 0);
  std::mt19937_64 rng(7);
  const std::string pickle_marker = "data.pkl";
  const size_t pickle_at = bytes.find(pickle_marker);
  ASSERT_NE(pickle_at, std::string::npos);
  for (int i = 0; i < 150; ++i) {
    std::string corrupt = bytes;
    const size_t at = i % 3 == 0 ? pickle_at + rng() % 600 : bytes.size() - 1 - rng() % 1200;
    corrupt[at] = static_cast<char>(corrupt[at] ^ (1 + rng() % 255));
    parses(
        dir, corrupt, [](const fs::path& p) { read_torch_checkpoint(p); },
        "zip flip at " + std::to_string(at));
  }
}

TEST(Readers, TruncatedRealCaffemodelFailsToLoad) {
  const fs::path real = test::bvlc_weights();
  if (!fs::exists(real)) GG_MISSING("no " << real);
  const std::string bytes = gg::read_file(real);
  gg::testing::TempDir dir;
  GoogLeNet net{GoogLeNetOptions{}};
  for (size_t cut :
       {size_t{10}, size_t{1000}, bytes.size() / 7, bytes.size() / 2, bytes.size() - 5}) {
    gg::write_file_atomic(dir / "cut.caffemodel", bytes.substr(0, cut));
    EXPECT_THROW(load_state_dict(net, read_pretrained(dir / "cut.caffemodel"), "cut"), gg::Error)
        << cut;
  }
}

TEST(Readers, UnknownFormatIsAClearError) {
  gg::testing::TempDir dir;
  gg::write_file_atomic(dir / "x.bin", "hello world");
  EXPECT_THROW(read_pretrained(dir / "x.bin"), gg::Error);
  EXPECT_THROW(read_pretrained(dir / "absent.pth"), gg::Error);
  gg::write_file_atomic(dir / "empty.pth", "");
  EXPECT_THROW(read_pretrained(dir / "empty.pth"), gg::Error);
}

}  // namespace
}  // namespace gg::model
