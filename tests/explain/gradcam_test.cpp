// Grad-CAM: where a model trained on synthetic gliomas looks, and the heatmap's invariants.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/error.h"
#include "common/files.h"
#include "explain/explain.h"
#include "model/model.h"
#include "synth/synth.h"
#include "testing/testing.h"
#include "train/train.h"

namespace gg::explain {
namespace {

fs::path bvlc_weights() { return testing::shared_dir() / "weights" / "bvlc_googlenet.caffemodel"; }

// A FLAIR model fine-tuned on a tiny, easy synthetic cohort (built once: ~40 s on 2 cores).
struct Trained {
  testing::TempDir dir;
  std::vector<io::Case> cases;
  prep::SliceStore store;
  data::Split split;
  fs::path bundle;
};

Trained& trained() {
  static Trained* t = [] {
    auto* x = new Trained;
    synth::SynthOptions so;
    so.lgg = 5, so.hgg = 5, so.seed = 21, so.difficulty = 0.0;
    so.size = {80, 80, 52};
    so.spacing_mm = synth::default_spacing_mm(so.size);
    so.reoriented_fraction = 0;
    so.show_progress = false;
    x->cases = synth::generate_cohort(x->dir / "cohort", so);
    prep::PrepareOptions po;
    po.slices = 3;
    po.show_progress = false;
    x->store = prep::prepare_cohort(x->cases, x->dir / "store", po);
    data::SplitOptions sp;
    sp.train = 0.6, sp.val = 0.2, sp.test = 0.2, sp.seed = 2;
    x->split = data::make_split(data::item_keys(x->store), sp);
    train::TrainConfig c;
    c.pretrained = bvlc_weights();
    c.batch_size = 6;
    c.epochs = 4;
    c.learning_rate = 1e-3;
    c.freeze_stages = 3;
    c.show_progress = false;
    x->bundle = x->dir / "bundle";
    train::train_sequence(x->store, x->split, io::Sequence::kFlair, c, x->bundle, false);
    return x;
  }();
  return *t;
}

// The tumour (label > 0) at store item `row`, resized as the store's slices are.
std::vector<uint8_t> tumour_at(const Trained& t, int64_t row) {
  const auto& item = t.store.items[size_t(row)];
  for (const auto& c : t.cases) {
    if (c.id != item.patient) continue;
    io::Volume seg = io::read_volume(c.seg);
    for (float& v : seg.voxels) v = v > 0 ? 1.0f : 0.0f;
    auto slice = prep::axial_slice_u8(seg, item.z, t.store.size);
    for (auto& v : slice) v = v >= 128;
    return slice;
  }
  throw std::runtime_error("no case " + item.patient);
}

// Issue 5 asks that "most of the heatmap's mass lies inside the tumour" for cases the model gets
// right. It does NOT hold for this model, and this test does not pretend it does: it measures and
// prints, and asserts only that the model gets the cases right and the fractions are valid.
// Measured (FLAIR model, inception 5 + head fine-tuned 4 epochs on 6 synthetic patients, 9 of 10
// middle slices right): mean mass inside the whole-tumour mask 0.088 (0.02-0.15), while the
// tumour covers 4-23% of the brain; the heatmap's peak lies within 16 px of the tumour in 5 of 9.
// The 7x7 map of the last block is coarse, and a model this small keys on more than the lesion.
TEST(GradCam, MeasuresHeatmapMassInsideTheTumourOfCorrectCases) {
  if (!fs::exists(bvlc_weights())) GTEST_SKIP() << "no BVLC weights";
  Trained& t = trained();
  const SliceModel model(t.bundle / "flair.pt", "bvlc");
  std::vector<double> fractions, enrichments;
  int peaks_near = 0;
  const int size = t.store.size;
  std::vector<uint8_t> slice(size_t(size) * size_t(size));
  for (size_t row = 0; row < t.store.items.size(); ++row) {
    const auto& item = t.store.items[row];
    if (item.rank != 1) continue;  // the largest-tumour slice of each patient
    prep::read_slices(t.store, io::Sequence::kFlair, {int64_t(row)}, slice.data());
    const Heatmap heat = model.grad_cam(slice.data(), size);
    const int truth = item.grade == io::Grade::kHGG ? kHgg : kLgg;
    if (heat.target_class != truth) continue;  // only cases the model gets right
    const auto tumour = tumour_at(t, int64_t(row));
    const double inside = mass_inside(heat, tumour);
    double brain = 0, tumour_px = 0;
    for (size_t i = 0; i < slice.size(); ++i) brain += slice[i] > 0, tumour_px += tumour[i] != 0;
    const double share = tumour_px / std::max(1.0, brain);
    // Peak within 16 px (half a Grad-CAM cell) of a tumour pixel.
    const size_t peak =
        size_t(std::max_element(heat.values.begin(), heat.values.end()) - heat.values.begin());
    const int px = int(peak % size_t(size)), py = int(peak / size_t(size));
    bool near = false;
    for (int y = std::max(0, py - 16); y < std::min(size, py + 17) && !near; ++y)
      for (int x = std::max(0, px - 16); x < std::min(size, px + 17) && !near; ++x)
        near = tumour[size_t(y) * size_t(size) + size_t(x)] != 0;
    peaks_near += near;
    std::printf(
        "  %s (%s, %s): P(HGG) %.3f, mass inside tumour %.3f, tumour share of brain %.3f, "
        "enrichment %.2f, peak %s\n",
        item.patient.c_str(), io::grade_name(item.grade), data::part_name(t.split.part[row]),
        heat.p_hgg, inside, share, inside / share, near ? "at the tumour" : "elsewhere");
    fractions.push_back(inside);
    enrichments.push_back(inside / share);
  }
  ASSERT_GE(fractions.size(), 6u) << "the model should get most of these easy cases right";
  const double n = double(fractions.size());
  const double mean = std::accumulate(fractions.begin(), fractions.end(), 0.0) / n;
  const double enrichment = std::accumulate(enrichments.begin(), enrichments.end(), 0.0) / n;
  std::printf(
      "  over %zu correct cases: mean mass inside the tumour %.3f, mean enrichment %.2f, peaks at "
      "the tumour %d\n",
      fractions.size(), mean, enrichment, peaks_near);
  for (double f : fractions) EXPECT_TRUE(f >= 0.0 && f <= 1.0) << f;
}

TEST(GradCam, HeatmapIsNormalisedAndMatchesPredict) {
  if (!fs::exists(bvlc_weights())) GTEST_SKIP() << "no BVLC weights";
  Trained& t = trained();
  const SliceModel model(t.bundle / "flair.pt", "bvlc");
  const int size = t.store.size;
  std::vector<uint8_t> slices(2 * size_t(size) * size_t(size));
  prep::read_slices(t.store, io::Sequence::kFlair, {0, 1}, slices.data());
  const auto p = model.predict(slices.data(), 2, size);
  const auto expected =
      train::predict_items(t.bundle / "flair.pt", "bvlc", t.store, io::Sequence::kFlair, {0, 1});
  EXPECT_NEAR(p[0], expected[0], 1e-6);
  EXPECT_NEAR(p[1], expected[1], 1e-6);
  // The fused path (one forward for the batch, the head differentiated again) equals the
  // reference Grad-CAM.
  for (int cls : {kHgg, kLgg}) {
    Heatmap fused;
    const auto q = model.predict_with_cam(slices.data(), 2, size, 1, &fused, cls, 1);
    const Heatmap reference = model.grad_cam(slices.data() + size_t(size) * size, size, cls);
    EXPECT_NEAR(q[0], p[0], 1e-6);
    EXPECT_NEAR(q[1], p[1], 1e-6);
    ASSERT_EQ(fused.values.size(), reference.values.size());
    double worst = 0;
    for (size_t i = 0; i < fused.values.size(); ++i)
      worst = std::max(worst, double(std::abs(fused.values[i] - reference.values[i])));
    EXPECT_LT(worst, 1e-4) << "class " << cls;
    EXPECT_EQ(fused.target_class, cls);
  }
  for (int cls : {kHgg, kLgg}) {
    const Heatmap h = model.grad_cam(slices.data() + size_t(size) * size, size, cls);
    EXPECT_EQ(h.target_class, cls);
    EXPECT_NEAR(h.p_hgg, p[1], 1e-5);
    ASSERT_EQ(h.values.size(), size_t(size) * size_t(size));
    const float peak = *std::max_element(h.values.begin(), h.values.end());
    EXPECT_TRUE(peak == 1.0f || peak == 0.0f) << peak;
    EXPECT_GE(*std::min_element(h.values.begin(), h.values.end()), 0.0f);
  }
}

TEST(GradCam, ExplainExamplesWritesOnePngPerPatient) {
  if (!fs::exists(bvlc_weights())) GTEST_SKIP() << "no BVLC weights";
  Trained& t = trained();
  testing::TempDir out;
  // The bundle here holds FLAIR only; give it model.json listing just that.
  train::BundleInfo info;
  info.slices = 3;
  info.sequences = {"flair"};
  train::write_bundle_info(info, t.bundle);
  const auto examples =
      explain_examples(t.bundle, t.store, t.split, data::Part::kTest, out.path(), 4);
  ASSERT_EQ(examples.size(), 2u);  // the test part holds one patient of each grade
  for (const auto& [caption, png] : examples) {
    EXPECT_TRUE(fs::exists(png)) << png;
    EXPECT_NE(caption.find("P(HGG)"), std::string::npos);
  }
}

TEST(SliceModel, RejectsWeightsOfAnotherVariantNamingTheFile) {
  if (!fs::exists(bvlc_weights())) GTEST_SKIP() << "no BVLC weights";
  Trained& t = trained();
  try {
    SliceModel m(t.bundle / "flair.pt", "torchvision");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_EQ(e.file(), (t.bundle / "flair.pt").string());
  }
}

TEST(Overlay, ColdRegionsShowThePlainSlice) {
  Heatmap h;
  h.size = 2;
  h.values = {0.0f, 1.0f, 0.0f, 0.5f};
  const std::vector<uint8_t> slice = {10, 20, 30, 40};
  const auto bgr = overlay_bgr(slice.data(), h, 0.5);
  ASSERT_EQ(bgr.size(), 12u);
  EXPECT_EQ(bgr[0], 10);
  EXPECT_EQ(bgr[1], 10);
  EXPECT_EQ(bgr[6], 30);
  EXPECT_NE(bgr[3 + 2], 20);  // the hot pixel is coloured (JET's red end)
  EXPECT_DOUBLE_EQ(mass_inside(h, {0, 1, 0, 0}), 1.0 / 1.5);
}

}  // namespace
}  // namespace gg::explain
