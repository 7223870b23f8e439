// Predictor on synthetic patients with an untrained test bundle: the same numbers as the slice
// store path, every way of choosing the slice, unregistered inputs, and every bad input.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "common/csv.h"
#include "common/error.h"
#include "common/files.h"
#include "eval/eval.h"
#include "fixture.h"
#include "infer/infer.h"
#include "prep/prep.h"

namespace gg::infer {
namespace {

using infer_testing::shared;

#define REQUIRE_WEIGHTS() \
  if (!infer_testing::have_weights()) GTEST_SKIP() << "no BVLC weights"

// One Predictor for the tests that use the plain test bundle (loading it takes seconds).
const Predictor& test_predictor() {
  static const Predictor* p = new Predictor(shared().bundle);
  return *p;
}

PredictOptions no_cam() {
  PredictOptions o;
  o.grad_cam = false;
  return o;
}

template <typename F>
Error error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "expected a gg::Error";
  return Error(ExitCode::kOk, "", "");
}

TEST(Predict, WithMaskEqualsTheSliceStorePath) {
  REQUIRE_WEIGHTS();
  const auto& d = shared();
  const Predictor& predictor = test_predictor();
  const io::Case& c = d.cases[0];
  const PatientPrediction p = predictor.predict(c, {});
  EXPECT_EQ(p.choice, SliceChoice::kMask);
  EXPECT_EQ(p.slices, infer_testing::kSlices);
  const io::Volume seg = io::read_volume(c.seg);
  EXPECT_EQ(p.centre_z, prep::largest_tumour_slice(seg));

  testing::TempDir tmp;
  prep::PrepareOptions po;
  po.slices = infer_testing::kSlices;
  po.show_progress = false;
  const prep::SliceStore store = prep::prepare_cohort({c}, tmp / "store", po);
  ASSERT_EQ(store.items.size(), size_t(infer_testing::kSlices));
  EXPECT_EQ(store.items[0].z, p.z_start);
  std::vector<int64_t> rows(store.items.size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = int64_t(i);
  for (io::Sequence seq : io::kSequences) {
    const auto expected = train::predict_items(
        d.bundle / (std::string(io::sequence_name(seq)) + ".pt"), "bvlc", store, seq, rows);
    const auto& got = p.sequences[size_t(seq)].p_slices;
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_NEAR(got[i], expected[i], 1e-5) << io::sequence_name(seq) << " " << i;
    std::vector<uint8_t> centre(224 * 224);
    prep::read_slices(store, seq, {p.centre_z - p.z_start}, centre.data());
    EXPECT_EQ(p.sequences[size_t(seq)].centre_slice, centre);
    EXPECT_EQ(p.sequences[size_t(seq)].heatmap.size(), size_t(224 * 224));
    // With a mask, the explanation is checked against it: the heatmap's mass on the tumour
    // beside its chance and resolution references.
    const auto& on_tumour = p.sequences[size_t(seq)].heatmap_on_tumour;
    ASSERT_TRUE(on_tumour.has_value());
    EXPECT_GE(on_tumour->mass_inside, 0.0);
    EXPECT_LE(on_tumour->mass_inside, 1.0);
    EXPECT_GT(on_tumour->tumour_share, 0.0) << "the centre slice is the largest tumour slice";
    EXPECT_GT(on_tumour->tracking_map_mass, on_tumour->tumour_share);
    EXPECT_EQ(on_tumour->peak_inside, on_tumour->peak_distance_px == 0.0);
  }
  const std::array<double, 3> probs{p.sequences[0].p_hgg, p.sequences[1].p_hgg,
                                    p.sequences[2].p_hgg};
  EXPECT_EQ(p.vote_hard, eval::hard_vote(probs));
  EXPECT_DOUBLE_EQ(p.vote_soft, eval::soft_vote(probs));
  EXPECT_EQ(p.grade, p.vote_hard ? io::Grade::kHGG : io::Grade::kLGG);
}

TEST(Predict, WithoutMaskLocatesTheTumourAndSliceOverrides) {
  REQUIRE_WEIGHTS();
  const auto& d = shared();
  const Predictor& predictor = test_predictor();
  io::Case c = d.cases[3];
  const int truth = prep::largest_tumour_slice(io::read_volume(c.seg));
  PredictOptions o;
  o.use_mask = false;
  o.grad_cam = false;
  const PatientPrediction a = predictor.predict(c, o);
  EXPECT_EQ(a.choice, SliceChoice::kAuto);
  EXPECT_LE(std::abs(a.centre_z - truth), 3);
  EXPECT_GT(a.location.confidence, 0.0);
  EXPECT_TRUE(a.sequences[0].heatmap.empty());
  EXPECT_FALSE(a.sequences[0].heatmap_on_tumour) << "no mask, nothing to measure";
  o.slice = 5;
  const PatientPrediction u = predictor.predict(c, o);
  EXPECT_EQ(u.choice, SliceChoice::kUser);
  EXPECT_EQ(u.centre_z, 5);
  EXPECT_EQ(u.z_start, 2);
  o.slice = 40;
  const Error e = error_of([&] { predictor.predict(c, o); });
  EXPECT_EQ(e.code(), ExitCode::kBadInput);
  EXPECT_EQ(e.file(), c.flair.string());
}

TEST(Predict, UnregisteredSequenceIsResampledWithANotice) {
  REQUIRE_WEIGHTS();
  const auto& d = shared();
  const Predictor& predictor = test_predictor();
  testing::TempDir tmp;
  io::Case c = d.cases[1];
  const PatientPrediction registered = predictor.predict(c, no_cam());
  const io::Volume t1 = io::read_volume(c.t1);
  io::Volume grid;  // a finer, shifted grid over the same head
  grid.size = {80, 80, 44};
  grid.spacing_mm = {t1.spacing_mm[0] * 0.8, t1.spacing_mm[1] * 0.8, t1.spacing_mm[2] * 0.9};
  grid.origin_mm = {t1.origin_mm[0] + 2, t1.origin_mm[1] - 1, t1.origin_mm[2] + 1};
  io::write_volume(io::resample_to_grid(t1, grid, io::Interpolation::kLinear, c.t1, c.t1),
                   tmp / "t1.nii.gz", false);
  c.t1 = tmp / "t1.nii.gz";
  const PatientPrediction p = predictor.predict(c, no_cam());
  ASSERT_EQ(p.notices.size(), 1u);
  EXPECT_NE(p.notices[0].find("t1.nii.gz was not on the FLAIR grid"), std::string::npos)
      << p.notices[0];
  EXPECT_EQ(p.centre_z, registered.centre_z);
  // Twice interpolated, so not identical, but the same image to the model.
  EXPECT_NEAR(p.sequences[0].p_hgg, registered.sequences[0].p_hgg, 0.05);
  EXPECT_EQ(p.sequences[2].p_slices, registered.sequences[2].p_slices);

  // Far away in physical space: another session or a broken header.
  io::Volume far = t1;
  far.origin_mm[2] += 1000;
  io::write_volume(far, tmp / "t2_far.nii.gz", true);
  io::Case bad = d.cases[1];
  bad.t2 = tmp / "t2_far.nii.gz";
  const Error e = error_of([&] { predictor.predict(bad, no_cam()); });
  EXPECT_EQ(e.code(), ExitCode::kBadInput);
  EXPECT_EQ(e.file(), bad.t2.string());
  EXPECT_NE(e.problem().find("does not overlap"), std::string::npos);
}

TEST(Predict, MaskOnAnotherGridIsRefusedUnlessResampled) {
  REQUIRE_WEIGHTS();
  const auto& d = shared();
  const Predictor& predictor = test_predictor();
  testing::TempDir tmp;
  io::Case c = d.cases[2];
  const io::Volume seg = io::read_volume(c.seg);
  io::Volume grid;
  grid.size = {32, 32, 40};
  grid.spacing_mm = {seg.spacing_mm[0] * 2, seg.spacing_mm[1] * 2, seg.spacing_mm[2]};
  grid.origin_mm = seg.origin_mm;
  io::write_volume(io::resample_to_grid(seg, grid, io::Interpolation::kNearest, c.seg, c.seg),
                   tmp / "seg.nii.gz", true);
  c.seg = tmp / "seg.nii.gz";
  PredictOptions o;
  o.grad_cam = false;
  const Error e = error_of([&] { predictor.predict(c, o); });
  EXPECT_EQ(e.code(), ExitCode::kBadInput);
  EXPECT_EQ(e.file(), c.seg.string());
  EXPECT_NE(e.problem().find("not on the FLAIR grid"), std::string::npos) << e.problem();
  o.resample_mask = true;
  const PatientPrediction p = predictor.predict(c, o);
  EXPECT_EQ(p.choice, SliceChoice::kMask);
  EXPECT_LE(std::abs(p.centre_z - prep::largest_tumour_slice(seg)), 1);
}

TEST(Predict, BadVolumesAreErrorsNamingTheFile) {
  REQUIRE_WEIGHTS();
  const auto& d = shared();
  const Predictor& predictor = test_predictor();
  testing::TempDir tmp;
  write_file_atomic(tmp / "truncated.nii.gz", read_file(d.cases[0].t2).substr(0, 300));
  io::Case c = d.cases[0];
  c.t2 = tmp / "truncated.nii.gz";
  Error e = error_of([&] { predictor.predict(c, no_cam()); });
  EXPECT_EQ(e.code(), ExitCode::kBadInput);
  EXPECT_EQ(e.file(), c.t2.string());

  io::Volume constant = io::read_volume(d.cases[0].t1);
  std::fill(constant.voxels.begin(), constant.voxels.end(), 7.0f);
  io::write_volume(constant, tmp / "constant.nii.gz", true);
  c = d.cases[0];
  c.t1 = tmp / "constant.nii.gz";
  e = error_of([&] { predictor.predict(c, no_cam()); });
  EXPECT_EQ(e.code(), ExitCode::kBadInput);
  EXPECT_EQ(e.file(), c.t1.string());

  io::Volume empty_mask = io::read_volume(d.cases[0].seg);
  std::fill(empty_mask.voxels.begin(), empty_mask.voxels.end(), 0.0f);
  io::write_volume(empty_mask, tmp / "empty_seg.nii.gz", true);
  c = d.cases[0];
  c.seg = tmp / "empty_seg.nii.gz";
  e = error_of([&] { predictor.predict(c, no_cam()); });
  EXPECT_EQ(e.code(), ExitCode::kBadInput);
  EXPECT_EQ(e.file(), c.seg.string());

  c = d.cases[0];
  c.flair = tmp / "missing_flair.nii.gz";
  e = error_of([&] { predictor.predict(c, no_cam()); });
  EXPECT_EQ(e.file(), c.flair.string());
}

// A copy of the test bundle with model.json edited by `edit`.
fs::path edited_bundle(const testing::TempDir& tmp,
                       const std::function<void(nlohmann::json&)>& edit) {
  const fs::path dir = tmp / "bundle";
  fs::copy(shared().bundle, dir, fs::copy_options::recursive);
  auto j = nlohmann::json::parse(read_file(dir / "model.json"));
  edit(j);
  write_file_atomic(dir / "model.json", j.dump(2));
  return dir;
}

TEST(Predictor, RejectsBundlesOfAnotherVersionVariantOrMissingASequence) {
  REQUIRE_WEIGHTS();
  {
    testing::TempDir tmp;
    const fs::path b =
        edited_bundle(tmp, [](nlohmann::json& j) { j["format"] = "gliomagrade-bundle/0"; });
    const Error e = error_of([&] { Predictor p(b); });
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_EQ(e.file(), (b / "model.json").string());
  }
  {
    testing::TempDir tmp;
    const fs::path b = edited_bundle(tmp, [](nlohmann::json& j) { j["variant"] = "inception_v3"; });
    const Error e = error_of([&] { Predictor p(b); });
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_EQ(e.file(), (b / "model.json").string());
    EXPECT_NE(e.problem().find("inception_v3"), std::string::npos);
  }
  {
    testing::TempDir tmp;
    const fs::path b = edited_bundle(tmp, [](nlohmann::json& j) { j["variant"] = "torchvision"; });
    const Error e = error_of([&] { Predictor p(b); });
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_EQ(e.file(), (b / "t1.pt").string());
    EXPECT_NE(e.problem().find("bvlc"), std::string::npos) << e.problem();
  }
  {
    testing::TempDir tmp;
    const fs::path b = edited_bundle(tmp, [](nlohmann::json& j) { j["sequences"] = {"t1", "t2"}; });
    fs::remove(b / "flair.pt");
    const Error e = error_of([&] { Predictor p(b); });
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_EQ(e.file(), (b / "model.json").string());
    EXPECT_NE(e.problem().find("no flair model"), std::string::npos) << e.problem();
  }
  {
    testing::TempDir tmp;
    const fs::path b = edited_bundle(tmp, [](nlohmann::json&) {});
    write_file_atomic(b / "t2.pt", read_file(b / "t2.pt").substr(0, 5000));
    const Error e = error_of([&] { Predictor p(b); });
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_EQ(e.file(), (b / "t2.pt").string());
  }
}

TEST(Outputs, JsonSummaryAndOverlaysAreWritten) {
  REQUIRE_WEIGHTS();
  const auto& d = shared();
  const Predictor& predictor = test_predictor();
  PredictOptions o;
  o.use_mask = false;
  const PatientPrediction p = predictor.predict(d.cases[2], o);
  testing::TempDir tmp;
  write_patient_outputs(p, d.bundle, tmp / "out");
  for (const char* f :
       {"prediction.json", "summary.png", "gradcam_t1.png", "gradcam_t2.png", "gradcam_flair.png"})
    EXPECT_TRUE(fs::exists(tmp / "out" / f)) << f;
  const auto j = nlohmann::json::parse(read_file(tmp / "out/prediction.json"));
  EXPECT_EQ(j["id"], d.cases[2].id);
  EXPECT_EQ(j["slices"]["choice"], "auto");
  EXPECT_EQ(j["slices"]["centre_z"], p.centre_z);
  EXPECT_EQ(j["sequences"]["flair"]["p_hgg_per_slice"].size(), size_t(infer_testing::kSlices));
  EXPECT_DOUBLE_EQ(j["votes"]["soft"]["p_hgg"].get<double>(), p.vote_soft);
  EXPECT_TRUE(j["slices"]["auto"].contains("confidence"));
  EXPECT_NE(j["disclaimer"].get<std::string>().find("RESEARCH USE ONLY"), std::string::npos);
  const std::string csv = predictions_csv({p});
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "id,true_grade,grade,vote_hard_score,vote_soft,p_t1,p_t2,p_flair,slice_choice,centre_z,"
            "confidence,gradcam_mass_in_tumour_t1,gradcam_mass_in_tumour_t2,"
            "gradcam_mass_in_tumour_flair,tumour_share");
}

// An id with a comma or a quote once broke predictions.csv (the id was written unquoted).
TEST(Outputs, PredictionsCsvQuotesIdsAndReadsBack) {
  PatientPrediction p;
  p.id = "Smith, \"J\" 01";
  p.true_grade = io::Grade::kHGG;
  p.grade = io::Grade::kHGG;
  p.choice = SliceChoice::kMask;
  p.centre_z = 40;
  explain::TumourOverlap o;
  o.mass_inside = 0.25, o.tumour_share = 0.0625;
  p.sequences[2].heatmap_on_tumour = o;
  const CsvTable t = parse_csv(predictions_csv({p}), "predictions.csv");
  ASSERT_EQ(t.rows.size(), 1u);
  EXPECT_EQ(t.rows[0][size_t(t.column("id"))], p.id);
  EXPECT_EQ(t.rows[0][size_t(t.column("slice_choice"))], "mask");
  EXPECT_EQ(t.rows[0][size_t(t.column("gradcam_mass_in_tumour_t1"))], "");
  EXPECT_EQ(t.rows[0][size_t(t.column("gradcam_mass_in_tumour_flair"))], "0.25");
  EXPECT_EQ(t.rows[0][size_t(t.column("tumour_share"))], "0.0625");
}

}  // namespace
}  // namespace gg::infer
