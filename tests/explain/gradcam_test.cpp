// Grad-CAM: where a model trained on synthetic gliomas looks, and the heatmap's invariants.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <numeric>
#include <set>

#include "common/error.h"
#include "common/files.h"
#include "explain/explain.h"
#include "explain/upsample.h"
#include "model/model.h"
#include "synth/synth.h"
#include "testing/testing.h"
#include "train/train.h"

namespace gg::explain {
namespace {

fs::path bvlc_weights() { return testing::shared_dir() / "weights" / "bvlc_googlenet.caffemodel"; }

// A FLAIR model fine-tuned on a tiny, easy synthetic cohort (~40 s on 2 cores to build). The
// cohort, store and trained bundle are built once per build of this binary
// (testing/fixture_cache.h) and shared read-only; the bundle is copied into `dir` per process,
// because tests write model.json into it.
struct Trained {
  testing::TempDir dir;
  std::vector<io::Case> cases;
  prep::SliceStore store;
  data::Split split;
  fs::path bundle;
};

Trained& trained() {
  // Destroyed at exit, so the per-process copy of the bundle is removed.
  static const std::unique_ptr<Trained> t = [] {
    auto x = std::make_unique<Trained>();
    data::SplitOptions sp;
    sp.train = 0.6, sp.val = 0.2, sp.test = 0.2, sp.seed = 2;
    const fs::path entry = testing::cached_fixture(
        "explain_trained_flair",
        "lgg 5 hgg 5 seed 21 size 80x80x52 slices 3 split 2 epochs 4\nweights " +
            testing::optional_file_fingerprint(bvlc_weights()),
        [&](const fs::path& dir) {
          synth::SynthOptions so;
          so.lgg = 5, so.hgg = 5, so.seed = 21, so.difficulty = 0.0;
          so.size = {80, 80, 52};
          so.spacing_mm = synth::default_spacing_mm(so.size);
          so.reoriented_fraction = 0;
          so.show_progress = false;
          const auto cases = synth::generate_cohort(dir / "cohort", so);
          prep::PrepareOptions po;
          po.slices = 3;
          po.show_progress = false;
          const auto store = prep::prepare_cohort(cases, dir / "store", po);
          const auto split = data::make_split(data::item_keys(store), sp);
          train::TrainConfig c;
          c.pretrained = bvlc_weights();
          c.batch_size = 6;
          c.epochs = 4;
          c.learning_rate = 1e-3;
          c.freeze_stages = 3;
          c.show_progress = false;
          train::train_sequence(store, split, io::Sequence::kFlair, c, dir / "bundle", false);
        });
    x->cases = io::discover_cohort(entry / "cohort");
    x->store = prep::open_slice_store(entry / "store");
    x->split = data::make_split(data::item_keys(x->store), sp);
    x->bundle = x->dir / "bundle";
    fs::copy(entry / "bundle", x->bundle, fs::copy_options::recursive);
    return x;
  }();
  return *t;
}

// model.json for the fixture's bundle, which holds FLAIR only.
void write_flair_only_bundle_info(const Trained& t) {
  train::BundleInfo info;
  info.slices = 3;
  info.sequences = {"flair"};
  train::write_bundle_info(info, t.bundle);
}

// The tumour (label > 0) at store item `row`, resized as the store's slices are.
std::vector<uint8_t> tumour_at(const Trained& t, int64_t row) {
  const auto& item = t.store.items[size_t(row)];
  for (const auto& c : t.cases) {
    if (c.id != item.patient) continue;
    return prep::tumour_slice_mask(io::read_volume(c.seg), item.z, t.store.size);
  }
  throw std::runtime_error("no case " + item.patient);
}

// Issue 5 asks that "most of the heatmap's mass lies inside the tumour" for cases the model gets
// right. That does NOT hold for this model (nor for the demo's full-size models), and this test
// does not pretend it does. It asserts what does hold, the mass inside the tumour well above
// chance (a uniform map scores the tumour's share of the slice), and prints every case's figures
// beside the tumour-tracking reference: a map that follows the tumour on the 7x7 grid, which
// itself keeps under half its mass inside tumours this small. Measured here (9 correct cases):
// mass inside 0.088, chance 0.037 (x2.3), tracking map 0.419.
TEST(GradCam, HeatmapMassConcentratesOnTheTumourOfCorrectCases) {
  if (!fs::exists(bvlc_weights())) GG_MISSING("no BVLC weights");
  Trained& t = trained();
  const SliceModel model(t.bundle / "flair.pt", "bvlc");
  double mass = 0, chance = 0, tracking = 0;
  int correct = 0, peaks_inside = 0, peaks_near = 0, majority = 0;
  const int size = t.store.size;
  std::vector<uint8_t> slice(size_t(size) * size_t(size));
  for (size_t row = 0; row < t.store.items.size(); ++row) {
    const auto& item = t.store.items[row];
    if (item.rank != 1) continue;  // the largest-tumour slice of each patient
    prep::read_slices(t.store, io::Sequence::kFlair, {int64_t(row)}, slice.data());
    const Heatmap heat = model.grad_cam(slice.data(), size);
    const int truth = item.grade == io::Grade::kHGG ? kHgg : kLgg;
    if (heat.target_class != truth) continue;  // only cases the model gets right
    EXPECT_EQ(heat.grid, 7);
    const TumourOverlap o = tumour_overlap(heat, tumour_at(t, int64_t(row)));
    ASSERT_TRUE(o.mass_inside >= 0.0 && o.mass_inside <= 1.0) << o.mass_inside;
    std::printf(
        "  %s (%s, %s): P(HGG) %.3f, mass inside the tumour %.3f (chance %.3f, tracking map "
        "%.3f), peak %s (%.0f px away)\n",
        item.patient.c_str(), io::grade_name(item.grade), data::part_name(t.split.part[row]),
        heat.p_hgg, o.mass_inside, o.tumour_share, o.tracking_map_mass,
        o.peak_inside ? "inside" : "outside", o.peak_distance_px);
    ++correct;
    mass += o.mass_inside, chance += o.tumour_share, tracking += o.tracking_map_mass;
    peaks_inside += o.peak_inside, peaks_near += o.peak_distance_px <= 16;  // half a cell
    majority += o.mass_inside > 0.5;
  }
  ASSERT_GE(correct, 6) << "the model should get most of these easy cases right";
  mass /= correct, chance /= correct, tracking /= correct;
  std::printf(
      "  over %d correct cases: mean mass inside the tumour %.3f, chance %.3f (x%.1f), tracking "
      "map %.3f; peaks inside %d, within 16 px %d; mass > 0.5 in %d\n",
      correct, mass, chance, mass / chance, tracking, peaks_inside, peaks_near, majority);
  EXPECT_GT(mass, 1.8 * chance) << "the heatmap should favour the tumour well above chance";
  EXPECT_GT(tracking, chance);
}

TEST(GradCam, LocalisationScoresEveryTestPatientWithAMask) {
  if (!fs::exists(bvlc_weights())) GG_MISSING("no BVLC weights");
  Trained& t = trained();
  write_flair_only_bundle_info(t);
  std::map<std::string, fs::path> masks;
  for (const auto& c : t.cases) masks[c.id] = c.seg;
  const auto rows = heatmap_localisation(t.bundle, t.store, t.split, data::Part::kVal, masks);
  std::set<std::string> val_patients;
  for (int64_t i : t.split.items_in(data::Part::kVal))
    val_patients.insert(t.store.items[size_t(i)].patient);
  ASSERT_EQ(rows.size(), val_patients.size());
  for (const auto& r : rows) {
    EXPECT_TRUE(val_patients.count(r.patient)) << r.patient;
    EXPECT_EQ(r.sequence, io::Sequence::kFlair);
    EXPECT_GT(r.overlap.tumour_share, 0.0) << "scored at the largest-tumour slice";
    EXPECT_TRUE(r.overlap.mass_inside >= 0 && r.overlap.mass_inside <= 1);
    EXPECT_TRUE(r.p_hgg_tumour_blanked >= 0 && r.p_hgg_tumour_blanked <= 1);
    EXPECT_NE(r.p_hgg_tumour_blanked, r.p_hgg) << "blanking the tumour changes the input";
  }
  const std::string md = localisation_markdown(rows);
  EXPECT_NE(md.find("| flair | "), std::string::npos) << md;
  EXPECT_EQ(localisation_csv(rows).find("patient,grade,sequence,"), 0u);
  // A patient without a mask is left out.
  masks.erase(*val_patients.begin());
  EXPECT_EQ(heatmap_localisation(t.bundle, t.store, t.split, data::Part::kVal, masks).size(),
            val_patients.size() - 1);
}

// Issue 13: under the image split a test patient's largest-tumour slice is usually a training
// slice. The check scored it anyway (a training slice is no test evidence) and, finding it
// missing from the part, blamed the user's masks. Now it scores the test slice nearest to z*.
TEST(GradCam, LocalisationUnderTheImageSplitScoresOnlySlicesOfThePart) {
  if (!fs::exists(bvlc_weights())) GG_MISSING("no BVLC weights");
  Trained& t = trained();
  write_flair_only_bundle_info(t);
  data::SplitOptions sp;
  sp.by = data::SplitBy::kImage, sp.seed = 4;
  const data::Split split = data::make_split(data::item_keys(t.store), sp);
  std::map<std::string, fs::path> masks;
  for (const auto& c : t.cases) masks[c.id] = c.seg;
  const auto rows = heatmap_localisation(t.bundle, t.store, split, data::Part::kTest, masks);
  std::set<std::pair<std::string, int>> test_slices;
  for (int64_t i : split.items_in(data::Part::kTest))
    test_slices.insert({t.store.items[size_t(i)].patient, t.store.items[size_t(i)].z});
  ASSERT_FALSE(rows.empty());
  int shifted = 0;
  for (const auto& r : rows) {
    EXPECT_TRUE(test_slices.count({r.patient, r.z})) << r.patient << " z " << r.z;
    if (r.z == r.z_largest) continue;
    ++shifted;
    EXPECT_FALSE(test_slices.count({r.patient, r.z_largest})) << "z* is scored when in the part";
  }
  EXPECT_GT(shifted, 0) << "seed 4 must put some test patient's z* in another part";
  const std::string md = localisation_markdown(rows);
  EXPECT_NE(md.find("have their largest-tumour slice in another part"), std::string::npos) << md;
  EXPECT_NE(localisation_csv(rows).find("z,z_largest"), std::string::npos);
}

// The error is meant for masks the store was not prepared from: z* outside the patient's slices.
TEST(GradCam, LocalisationRefusesAMaskTheStoreWasNotPreparedFrom) {
  if (!fs::exists(bvlc_weights())) GG_MISSING("no BVLC weights");
  Trained& t = trained();
  write_flair_only_bundle_info(t);
  const auto val = t.split.items_in(data::Part::kVal);
  const std::string patient = t.store.items[size_t(val.at(0))].patient;
  std::map<std::string, fs::path> masks;
  for (const auto& c : t.cases) {
    if (c.id != patient) continue;
    io::Volume seg = io::read_volume(c.seg);
    std::fill(seg.voxels.begin(), seg.voxels.end(), 0.0f);
    seg.at(seg.size[0] / 2, seg.size[1] / 2, 0) = 1.0f;  // a tumour at z 0, far from the window
    masks[patient] = t.dir / "other_seg.nii.gz";
    io::write_volume(seg, masks[patient], true);
  }
  ASSERT_EQ(masks.size(), 1u);
  testing::expect_bad_input(
      [&] { heatmap_localisation(t.bundle, t.store, t.split, data::Part::kVal, masks); },
      "other_seg.nii.gz", "is not among the slice store's slices of patient " + patient);
}

TEST(Localisation, MarkdownAveragesCorrectCasesOnly) {
  std::vector<LocalisationRow> rows(3);
  for (auto& r : rows) r.sequence = io::Sequence::kT2, r.grade = io::Grade::kHGG;
  rows[0].explained_class = kHgg, rows[0].overlap.mass_inside = 0.2;
  rows[0].overlap.tumour_share = 0.05, rows[0].overlap.tracking_map_mass = 0.5;
  rows[0].overlap.peak_inside = true, rows[0].p_hgg_tumour_blanked = 0.8;
  rows[1] = rows[0];
  rows[1].overlap.mass_inside = 0.4, rows[1].overlap.peak_inside = false;
  rows[1].p_hgg_tumour_blanked = 0.3;
  rows[2] = rows[0];
  rows[2].explained_class = kLgg, rows[2].overlap.mass_inside = 0.9;  // wrong: not averaged
  const std::string md = localisation_markdown(rows);
  EXPECT_NE(md.find("| t2 | 2 / 3 | 0.300 | 0.050 | 0.500 | 1 / 2 | 1 / 2 |"), std::string::npos)
      << md;
  EXPECT_EQ(md.find("| t1 |"), std::string::npos) << "no rows, no line";
  EXPECT_EQ(localisation_markdown({}), "");
}

TEST(GradCam, HeatmapIsNormalisedAndMatchesPredict) {
  if (!fs::exists(bvlc_weights())) GG_MISSING("no BVLC weights");
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

// Grad-CAM as it was before the frozen forward: the eager net with autograd from the input.
std::vector<float> eager_grad_cam(const fs::path& weights, const uint8_t* slice, int size,
                                  int target_class) {
  model::GoogLeNet net(model::read_weights_options(weights));
  model::load_weights(net, weights);
  net->eval();
  auto x = model::slices_to_input(net, slice, 1, size).detach().requires_grad_(true);
  auto [logits, last] = net->forward_with_last_block(x);
  auto grads = torch::autograd::grad({logits[0][target_class]}, {last})[0];
  torch::NoGradGuard no_grad;
  auto cam = torch::relu((grads.mean({2, 3}, true) * last.detach()).sum(1, true));
  cam = upsample_map(cam, size);
  cam = (cam / cam.max()).clamp(0, 1).contiguous();
  return std::vector<float>(cam.data_ptr<float>(), cam.data_ptr<float>() + cam.numel());
}

TEST(GradCam, FrozenForwardGivesTheEagerHeatmap) {
  if (!fs::exists(bvlc_weights())) GG_MISSING("no BVLC weights");
  Trained& t = trained();
  const SliceModel model(t.bundle / "flair.pt", "bvlc");
  const int size = t.store.size;
  std::vector<uint8_t> slice(size_t(size) * size_t(size));
  prep::read_slices(t.store, io::Sequence::kFlair, {0}, slice.data());
  for (int cls : {kHgg, kLgg}) {
    const Heatmap h = model.grad_cam(slice.data(), size, cls);
    const auto eager = eager_grad_cam(t.bundle / "flair.pt", slice.data(), size, cls);
    ASSERT_EQ(h.values.size(), eager.size());
    double worst = 0;
    for (size_t i = 0; i < eager.size(); ++i)
      worst = std::max(worst, double(std::abs(h.values[i] - eager[i])));
    std::cout << "class " << cls << ": max |frozen - eager| heatmap difference " << worst << "\n";
    EXPECT_LT(worst, 1e-4) << "class " << cls;
  }
}

TEST(GradCam, ExplainExamplesWritesOnePngPerPatient) {
  if (!fs::exists(bvlc_weights())) GG_MISSING("no BVLC weights");
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
  if (!fs::exists(bvlc_weights())) GG_MISSING("no BVLC weights");
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

// A 224x224 tumour mask holding the square [y0, y1) x [x0, x1).
std::vector<uint8_t> square_tumour(int y0, int y1, int x0, int x1) {
  std::vector<uint8_t> m(224 * 224, 0);
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) m[size_t(y) * 224 + size_t(x)] = 1;
  return m;
}

TEST(TumourOverlap, UniformMapScoresChance) {
  Heatmap h;
  h.size = 224, h.grid = 7;
  h.values.assign(224 * 224, 0.25f);
  const auto tumour = square_tumour(64, 128, 32, 96);  // 64x64 px
  const TumourOverlap o = tumour_overlap(h, tumour);
  EXPECT_DOUBLE_EQ(o.tumour_share, 64.0 * 64.0 / (224.0 * 224.0));
  EXPECT_NEAR(o.mass_inside, o.tumour_share, 1e-9);
  EXPECT_TRUE(o.peak_inside == false);  // first maximum: pixel (0, 0)
  EXPECT_DOUBLE_EQ(o.peak_distance_px, std::hypot(64.0, 32.0));
}

TEST(TumourOverlap, TrackingMapIsTheTumourAtGridResolution) {
  // A tumour of exactly two 32-px cells: the tracking map is those cells upsampled, which spills
  // into the neighbouring cells (bilinear), so it scores between chance and 1.
  const auto tumour = square_tumour(64, 96, 96, 160);
  Heatmap h;
  h.size = 224, h.grid = 7;
  h.values.assign(224 * 224, 0.0f);
  h.values[size_t(80) * 224 + 120] = 1.0f;  // a single hot pixel inside
  const TumourOverlap o = tumour_overlap(h, tumour);
  EXPECT_DOUBLE_EQ(o.mass_inside, 1.0);
  EXPECT_TRUE(o.peak_inside);
  EXPECT_DOUBLE_EQ(o.peak_distance_px, 0.0);
  EXPECT_GT(o.tracking_map_mass, 0.5);
  EXPECT_LT(o.tracking_map_mass, 1.0);
  // Scoring the tracking map itself as a heatmap gives the same figure.
  Heatmap same = h;
  double total = 0, inside = 0;
  for (int y = 0; y < 224; ++y)
    for (int x = 0; x < 224; ++x) {
      // Bilinear tent of each tumour cell, evaluated by hand at pixel centres.
      const auto tent = [](double p, double centre) {
        return std::max(0.0, 1 - std::abs(p - centre) / 32);
      };
      const auto clamp = [](double p) { return std::min(std::max(p, 16.0), 208.0); };
      const double v =
          tent(clamp(y + 0.5), 80) * (tent(clamp(x + 0.5), 112) + tent(clamp(x + 0.5), 144));
      same.values[size_t(y) * 224 + size_t(x)] = float(v);
      total += v;
      inside += tumour[size_t(y) * 224 + size_t(x)] ? v : 0;
    }
  EXPECT_NEAR(o.tracking_map_mass, inside / total, 1e-6);
  EXPECT_NEAR(tumour_overlap(same, tumour).mass_inside, o.tracking_map_mass, 1e-6);
}

TEST(TumourOverlap, RejectsMismatchedSizes) {
  Heatmap h;
  h.size = 224, h.grid = 7;
  h.values.assign(224 * 224, 0.0f);
  EXPECT_THROW(tumour_overlap(h, std::vector<uint8_t>(10, 0)), std::invalid_argument);
  h.grid = 0;
  EXPECT_THROW(tumour_overlap(h, square_tumour(0, 1, 0, 1)), std::invalid_argument);
}

}  // namespace
}  // namespace gg::explain
