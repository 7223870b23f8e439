// The TensorFlow checkpoint reader on CaPTk's real DeepMedic checkpoint, and on damaged copies.
#include <fstream>

#include "common/files.h"
#include "segment/deepmedic.h"
#include "segment/tf_checkpoint.h"
#include "testing/testing.h"

namespace gg::segment {
namespace {

using gg::testing::expect_bad_input;
using gg::testing::shared_dir;
using gg::testing::TempDir;

fs::path model_dir() {
  const fs::path dir = shared_dir() / "weights" / "deepmedic-brats-captk";
  if (!fs::exists(dir / "model.ckpt.index"))
    ADD_FAILURE() << "fixture missing: " << dir / "model.ckpt.index";
  return dir;
}

// A copy of the checkpoint in `dir` with `edit` applied to the chosen file's bytes.
fs::path damaged_copy(const TempDir& dir, const std::string& which,
                      const std::function<void(std::string&)>& edit) {
  for (const char* ext : {".index", ".data-00000-of-00001"}) {
    std::string bytes = read_file(model_dir() / (std::string("model.ckpt") + ext));
    if (which == ext) edit(bytes);
    write_file_atomic(dir / (std::string("model.ckpt") + ext), bytes);
  }
  return dir / "model.ckpt";
}

TEST(TfCheckpoint, ReadsCaptkDeepMedic) {
  const TfCheckpoint ckpt = read_tf_checkpoint(model_dir() / "model.ckpt");
  size_t floats = 0, net = 0;
  for (const auto& [name, t] : ckpt.tensors) {
    floats += t.dtype == 1;
    net += name.rfind("net/", 0) == 0;
  }
  EXPECT_EQ(floats, 407u);
  EXPECT_EQ(net, 199u);  // the 151 used at inference + sharedNewMu_B, sharedNewVar_B per BN layer
  EXPECT_EQ(ckpt.tensors.size(), 408u);  // 199 under net/, the rest the trainer's
  EXPECT_EQ(ckpt.get("net/W", {10, 4, 3, 3, 3}).values.size(), 1080u);
  EXPECT_EQ(ckpt.get("net/W_26", {5, 80, 1, 1, 1}).values.size(), 400u);
  EXPECT_EQ(ckpt.get("net/W_24", {60, 75, 3, 3, 3}).values.size(), 121500u);
  EXPECT_EQ(ckpt.get("net/muBnsForRollingAverage_23", {60, 80}).values.size(), 4800u);
  EXPECT_EQ(ckpt.get("net/b_3", {5}).values.size(), 5u);
}

TEST(TfCheckpoint, EveryExpectedDeepMedicTensorIsThere) {
  const TfCheckpoint ckpt = read_tf_checkpoint(model_dir() / "model.ckpt");
  const auto cfg = read_deepmedic_config(model_dir() / "modelConfig.txt");
  const auto expected = expected_tensors(cfg);
  EXPECT_EQ(expected.size(), 27u + 4u + 24u * 5u);  // W, b, BN (4 each) + aPrelu
  for (const auto& e : expected) EXPECT_NO_THROW(ckpt.get(e.name, e.shape)) << e.name;
}

TEST(TfCheckpoint, MissingOrMisshapenTensorIsNamed) {
  const TfCheckpoint ckpt = read_tf_checkpoint(model_dir() / "model.ckpt");
  expect_bad_input([&] { ckpt.get("net/W_99", {1}); }, "model.ckpt.index", "'net/W_99' is missing");
  expect_bad_input(
      [&] {
        ckpt.get("net/W", {10, 4, 5, 5, 5});
      },
      "model.ckpt.index", "'net/W' has shape [10,4,3,3,3], expected [10,4,5,5,5]");
}

TEST(TfCheckpoint, TruncatedDataFileNamesTheTensor) {
  TempDir dir;
  const auto prefix =
      damaged_copy(dir, ".data-00000-of-00001", [](std::string& b) { b.resize(b.size() - 100); });
  expect_bad_input([&] { read_tf_checkpoint(prefix); }, "model.ckpt.data-00000-of-00001",
                   "truncated");
}

TEST(TfCheckpoint, TruncatedIndexFails) {
  for (size_t keep : {0ul, 20ul, 6000ul, 12059ul}) {
    TempDir dir;
    const auto prefix = damaged_copy(dir, ".index", [&](std::string& b) { b.resize(keep); });
    expect_bad_input([&] { read_tf_checkpoint(prefix); }, "model.ckpt.index", "");
  }
}

TEST(TfCheckpoint, CorruptedByteFailsTheCrcOfItsTensor) {
  // Find the tensor stored at a known offset, flip a byte inside it.
  const TfCheckpoint ckpt = read_tf_checkpoint(model_dir() / "model.ckpt");
  TempDir dir;
  const auto& w = ckpt.get("net/W_24", {60, 75, 3, 3, 3});
  const std::string data = read_file(model_dir() / "model.ckpt.data-00000-of-00001");
  const std::string needle(reinterpret_cast<const char*>(w.values.data()), 64);
  const size_t at = data.find(needle);
  ASSERT_NE(at, std::string::npos);
  const auto prefix =
      damaged_copy(dir, ".data-00000-of-00001", [&](std::string& b) { b[at + 1000] ^= 0x10; });
  expect_bad_input([&] { read_tf_checkpoint(prefix); }, "model.ckpt.data-00000-of-00001",
                   "tensor 'net/W_24' fails its crc32c");
}

TEST(TfCheckpoint, BadFooterMagic) {
  TempDir dir;
  const auto prefix = damaged_copy(dir, ".index", [](std::string& b) { b[b.size() - 1] ^= 0x01; });
  expect_bad_input([&] { read_tf_checkpoint(prefix); }, "model.ckpt.index", "bad footer magic");
}

TEST(TfCheckpoint, CorruptedIndexBlockFailsItsCrc) {
  TempDir dir;
  const auto prefix = damaged_copy(dir, ".index", [](std::string& b) { b[100] ^= 0x01; });
  expect_bad_input([&] { read_tf_checkpoint(prefix); }, "model.ckpt.index", "crc32c");
}

TEST(TfCheckpoint, MissingFile) {
  expect_bad_input([&] { read_tf_checkpoint("/nonexistent/model.ckpt"); },
                   "/nonexistent/model.ckpt.index", "");
}

TEST(Crc32c, KnownValues) {
  // RFC 3720 B.4: 32 bytes of zeros -> 0x8a9136aa; "123456789" -> 0xe3069283.
  const std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8a9136aau);
  EXPECT_EQ(crc32c("123456789", 9), 0xe3069283u);
}

}  // namespace
}  // namespace gg::segment
