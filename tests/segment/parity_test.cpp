// DeepMedic on the real BraTS sample case against the reference label map of an independent
// PyTorch re-implementation of DeepMedic 0.7.4 (../shared/fixtures/deepmedic/) and against the
// case's own segmentation.
#include <chrono>

#include "segment/segment.h"
#include "testing/testing.h"

namespace gg::segment {
namespace {

using gg::testing::shared_dir;

io::Volume read_fixture(const fs::path& path) {
  if (!fs::exists(path)) throw std::runtime_error("fixture missing: " + path.string());
  return io::read_volume(path);
}

double dice(const std::vector<uint8_t>& a, const io::Volume& b, int label) {
  size_t both = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const bool x = label < 0 ? a[i] > 0 : a[i] == label;
    const int bv = static_cast<int>(std::lround(b.voxels[i]));
    const bool y = label < 0 ? bv > 0 : bv == label;
    both += x && y, na += x, nb += y;
  }
  return na + nb == 0 ? 1.0 : 2.0 * double(both) / double(na + nb);
}

int largest_axial_slice(const std::vector<uint8_t>& labels, const std::array<int, 3>& size) {
  int best = -1;
  size_t best_count = 0;
  const size_t slice = size_t(size[0]) * size[1];
  for (int z = 0; z < size[2]; ++z) {
    size_t n = 0;
    for (size_t i = 0; i < slice; ++i) n += labels[size_t(z) * slice + i] > 0;
    if (n > best_count) best_count = n, best = z;
  }
  return best;
}

TEST(DeepMedicParity, BratsSampleMatchesReferenceAndGroundTruth) {
  const fs::path case_dir = shared_dir() / "data/brats-sample/HGG/BraTS19_2013_10_1";
  const fs::path reference_path =
      shared_dir() / "fixtures/deepmedic/BraTS19_2013_10_1_deepmedic_labels.nii.gz";
  const fs::path model = shared_dir() / "weights/deepmedic-brats-captk";
  auto seq = [&](const char* s) {
    return read_fixture(case_dir / ("BraTS19_2013_10_1_" + std::string(s) + ".nii.gz"));
  };
  const io::Volume t1 = seq("t1"), t1ce = seq("t1ce"), t2 = seq("t2"), flair = seq("flair");
  const io::Volume seg = seq("seg"), reference = read_fixture(reference_path);

  SegmentOptions options;
  options.threads = 2;
  // Tiles of background only hold no tumour (measured: the same labels, voxel for voxel), and
  // skipping them halves the run.
  options.skip_background_tiles = true;
  const auto start = std::chrono::steady_clock::now();
  const Segmentation s = segment_brats(model, t1, t1ce, t2, flair, options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(s.size, t1.size);
  ASSERT_TRUE(io::same_grid(reference, t1));

  size_t counts[5] = {0, 0, 0, 0, 0};
  for (uint8_t l : s.labels) ++counts[l < 5 ? l : 3];
  const double wt_ref = dice(s.labels, reference, -1), wt_gt = dice(s.labels, seg, -1);
  std::printf(
      "segment_brats: %.1f s (preprocess %.1f, network %.1f; %d tiles, %d skipped, 2 threads)\n",
      seconds, s.seconds_preprocess, s.seconds_network, s.tiles, s.tiles_skipped);
  std::printf("voxels per label 1/2/4: %zu / %zu / %zu (label 3: %zu)\n", counts[1], counts[2],
              counts[4], counts[3]);
  std::printf("Dice vs reference: whole %.4f, label 1 %.4f, 2 %.4f, 4 %.4f\n", wt_ref,
              dice(s.labels, reference, 1), dice(s.labels, reference, 2),
              dice(s.labels, reference, 4));
  std::printf("Dice vs seg: whole %.4f, label 1 %.4f, 2 %.4f, 4 %.4f\n", wt_gt,
              dice(s.labels, seg, 1), dice(s.labels, seg, 2), dice(s.labels, seg, 4));
  std::printf("largest whole-tumour axial slice z: %d\n", largest_axial_slice(s.labels, s.size));
  EXPECT_GE(wt_ref, 0.99);
  EXPECT_GE(dice(s.labels, reference, 1), 0.99);
  EXPECT_GE(dice(s.labels, reference, 2), 0.99);
  EXPECT_GE(dice(s.labels, reference, 4), 0.99);
  EXPECT_GE(wt_gt, 0.85);
  EXPECT_EQ(counts[3], 0u);
}

}  // namespace
}  // namespace gg::segment
