// Predictor on synthetic patients with an untrained test bundle: the same numbers as the slice
// store path, every way of choosing the slice, unregistered inputs, and every bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "common/csv.h"
#include "common/error.h"
#include "common/files.h"
#include "eval/eval.h"
#include "fixture.h"
#include "infer/infer.h"
#include "prep/prep.h"
#include "synth/synth.h"

namespace gg::infer {
namespace {

using infer_testing::shared;

#define REQUIRE_WEIGHTS() \
  if (!infer_testing::have_weights()) GG_MISSING("no BVLC weights")

// One Predictor for the tests that use the plain test bundle (loading it takes seconds).
const Predictor& test_predictor() {
  static const Predictor* p = new Predictor(shared().bundle);
  return *p;
}

// The synthetic fixtures are on a coarse grid (3.875 mm) and these tests check predict on the
// grid as given; resampling to 1 mm has its own tests.
PredictOptions native() {
  PredictOptions o;
  o.resample_to_training_grid = false;
  return o;
}

PredictOptions no_cam() {
  PredictOptions o = native();
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
  const PatientPrediction p = predictor.predict(c, native());
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
  PredictOptions o = native();
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
  // Registered (the default): the transform found is close to the identity (the same head on
  // another grid), the overlap with FLAIR is that of co-registered sequences.
  const PatientPrediction p = predictor.predict(c, no_cam());
  // One notice about T1 (the other: the synthetic cohort's 3.875 mm slices).
  auto about_t1 = [](const PatientPrediction& x) {
    std::vector<std::string> found;
    for (const auto& n : x.notices)
      if (n.find("t1.nii.gz") != std::string::npos) found.push_back(n);
    return found;
  };
  ASSERT_EQ(about_t1(p).size(), 1u);
  EXPECT_NE(about_t1(p)[0].find("t1.nii.gz was not on the FLAIR grid"), std::string::npos);
  EXPECT_NE(about_t1(p)[0].find("registered rigidly to FLAIR"), std::string::npos);
  EXPECT_EQ(p.alignment[0].method, SequenceAlignment::Method::kRegistered);
  EXPECT_EQ(p.alignment[1].method, SequenceAlignment::Method::kSameGrid);
  ASSERT_TRUE(p.alignment[0].registration);
  EXPECT_LT(p.alignment[0].registration->transform.angle_deg(), 1.0);
  EXPECT_GT(p.alignment[0].dice, 0.9);
  EXPECT_EQ(std::count(p.quality.flags.begin(), p.quality.flags.end(), "registration_poor"), 0)
      << p.quality.summary;
  EXPECT_EQ(p.centre_z, registered.centre_z);
  // Twice interpolated, so not identical, but the same image to the model.
  EXPECT_NEAR(p.sequences[0].p_hgg, registered.sequences[0].p_hgg, 0.05);
  EXPECT_EQ(p.sequences[2].p_slices, registered.sequences[2].p_slices);
  const auto j = nlohmann::json::parse(prediction_json(p, d.bundle));
  EXPECT_EQ(j["registration"]["t1"]["method"], "registered");
  EXPECT_LT(j["registration"]["t1"]["mattes_mi_after"].get<double>(),
            j["registration"]["t1"]["mattes_mi_before"].get<double>() + 1e-9);
  write_registration_png(p, tmp / "registration.png");
  EXPECT_GT(fs::file_size(tmp / "registration.png"), 1000u);

  // --no-register: physical space only, as before registration existed.
  PredictOptions physical = no_cam();
  physical.register_sequences = false;
  const PatientPrediction q = predictor.predict(c, physical);
  ASSERT_EQ(about_t1(q).size(), 1u);
  EXPECT_NE(about_t1(q)[0].find("resampled into it in physical space"), std::string::npos);
  EXPECT_EQ(q.alignment[0].method, SequenceAlignment::Method::kPhysicalSpace);
  EXPECT_NEAR(q.sequences[0].p_hgg, registered.sequences[0].p_hgg, 0.05);

  // Far away in physical space: another session or a broken header.
  io::Volume far = t1;
  far.origin_mm[2] += 1000;
  io::write_volume(far, tmp / "t2_far.nii.gz", true);
  io::Case bad = d.cases[1];
  bad.t2 = tmp / "t2_far.nii.gz";
  const Error e = error_of([&] { predictor.predict(bad, no_cam()); });
  EXPECT_EQ(e.code(), ExitCode::kBadInput);
  EXPECT_EQ(e.file(), bad.t2.string());
  EXPECT_NE(e.problem().find("do not overlap"), std::string::npos) << e.problem();
}

// The same head moved by `voxels` along x on the same grid: a sequence that is not co-registered.
io::Volume shifted_x(io::Volume v, int voxels) {
  io::Volume out = v;
  for (int z = 0; z < v.size[2]; ++z)
    for (int y = 0; y < v.size[1]; ++y)
      for (int x = 0; x < v.size[0]; ++x)
        out.voxels[size_t(x) + size_t(v.size[0]) * (size_t(y) + size_t(v.size[1]) * size_t(z))] =
            x >= voxels ? v.at(x - voxels, y, z) : 0.0f;
  return out;
}

// The guard against the bundle's training profile (model.json "training_data"): a patient like
// the training ones raises nothing; a wrong sequence, a sequence that is not co-registered, raise
// their flags.
TEST(Predict, QualityGuardComparesWithTheTrainingProfile) {
  REQUIRE_WEIGHTS();
  const auto& d = shared();
  testing::TempDir tmp;
  prep::PrepareOptions po;
  po.slices = infer_testing::kSlices;
  po.threads = 2;
  po.show_progress = false;
  const prep::SliceStore store = prep::prepare_cohort(d.cases, tmp / "store", po);
  std::vector<std::string> ids;
  for (const auto& c : d.cases) ids.push_back(c.id);
  const prep::DataProfile profile = prep::profile_patients(store, ids);
  ASSERT_TRUE(profile.has_geometry);
  EXPECT_EQ(profile.patients, 4);
  EXPECT_NEAR(profile.spacing_mm[2], 3.875, 1e-9);
  infer_testing::write_test_bundle(tmp / "bundle");
  train::BundleInfo info = train::read_bundle_info(tmp / "bundle");
  info.training_data_json = prep::data_profile_to_json(profile);
  train::write_bundle_info(info, tmp / "bundle");
  const Predictor predictor(tmp / "bundle");

  const io::Case& c = d.cases[0];
  const PatientPrediction ok = predictor.predict(c, no_cam());
  EXPECT_TRUE(ok.quality.flags.empty()) << ok.quality.summary;  // 3.875 mm, as in training
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_TRUE(ok.intensity[k].checked);
    EXPECT_LE(ok.intensity[k].distance, ok.intensity[k].training_max + 1e-9) << k;
  }

  // Another scanner's grid (2.5 mm, 300 mm across): brought back to the training grid, centred
  // on the head, so that the model sees the brain at the size it was trained on.
  io::Case wide = c;
  {
    io::Volume grid;
    const io::Volume flair = io::read_volume(c.flair);
    grid.size = {120, 120, flair.size[2]};
    grid.spacing_mm = {2.5, 2.5, flair.spacing_mm[2]};
    grid.origin_mm = flair.origin_mm;
    for (int a = 0; a < 2; ++a)
      grid.origin_mm[a] += 0.5 * (flair.size[a] - 1) * flair.spacing_mm[a] - 0.5 * 119 * 2.5;
    for (io::Sequence seq : io::kSequences) {
      const fs::path out = tmp / ("wide_" + std::string(io::sequence_name(seq)) + ".nii.gz");
      io::write_volume(io::resample_to_grid(io::read_volume(c.sequence_path(seq)), grid,
                                            io::Interpolation::kLinear, out, out),
                       out, true);
    }
    wide.t1 = tmp / "wide_t1.nii.gz", wide.t2 = tmp / "wide_t2.nii.gz";
    wide.flair = tmp / "wide_flair.nii.gz", wide.seg = "";
  }
  PredictOptions at_centre = no_cam();
  at_centre.resample_to_training_grid = true;
  const PatientPrediction wide_p = predictor.predict(wide, at_centre);
  EXPECT_TRUE(wide_p.grid.resampled);
  EXPECT_EQ(wide_p.grid.spacing_mm, profile.spacing_mm);
  EXPECT_EQ(wide_p.grid.size[0], int(std::lround(profile.field_of_view_mm[0] / 3.875)));
  // No geometric flag. (The intensity check may fire here: interpolating a 3.875 mm head twice
  // blurs its edges, and the profile of 4 near-identical synthetic patients is narrow.)
  for (const char* geometric : {"thick_slices", "registration_poor", "not_skull_stripped"})
    EXPECT_EQ(std::count(wide_p.quality.flags.begin(), wide_p.quality.flags.end(), geometric), 0)
        << wide_p.quality.summary;
  PredictOptions kept = at_centre;
  kept.resample_to_training_grid = false;
  const PatientPrediction kept_p = predictor.predict(wide, kept);
  EXPECT_FALSE(kept_p.grid.resampled);
  // The FLAIR model on the training grid sees (nearly) what it saw on the original volume.
  const PatientPrediction auto_ok = predictor.predict(
      [&] {
        io::Case x = c;
        x.seg = "";
        return x;
      }(),
      at_centre);
  EXPECT_NEAR(wide_p.sequences[2].p_hgg, auto_ok.sequences[2].p_hgg, 0.1);

  io::Case wrong = c;  // T2 given as FLAIR
  wrong.flair = c.t2;
  const PatientPrediction w = predictor.predict(wrong, no_cam());
  EXPECT_EQ(std::count(w.quality.flags.begin(), w.quality.flags.end(), "intensity_out_of_range"), 1)
      << w.quality.summary << " distance " << w.intensity[2].distance << " training max "
      << w.intensity[2].training_max;

  io::Case moved = c;
  moved.t2 = tmp / "t2_moved.nii.gz";
  io::write_volume(shifted_x(io::read_volume(c.t2), 10), moved.t2, true);
  const PatientPrediction m = predictor.predict(moved, no_cam());
  EXPECT_EQ(m.alignment[1].method, SequenceAlignment::Method::kSameGrid);
  EXPECT_LT(m.alignment[1].dice, kPoorRegistrationDice);
  EXPECT_EQ(m.quality.flags, std::vector<std::string>{"registration_poor"}) << m.quality.summary;
  const auto j = nlohmann::json::parse(prediction_json(m, tmp / "bundle"));
  EXPECT_EQ(j["quality"]["flags"], nlohmann::json::array({"registration_poor"}));
  EXPECT_LT(j["registration"]["t2"]["dice_with_flair"].get<double>(), kPoorRegistrationDice);
  EXPECT_GT(j["intensity_vs_training"]["flair"]["limit"].get<double>(), 0);
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
  PredictOptions o = native();
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

// Clinical FLAIR is often 5 mm axial: predict resamples to 1 mm in the FLAIR frame, so that a
// 20-slice window spans 20 mm of brain as in training (BraTS), and flags the thick slices.
TEST(Predict, FiveMillimetreSlicesAreResampledTo1mmAndFlagged) {
  REQUIRE_WEIGHTS();
  const auto& d = shared();
  testing::TempDir tmp;
  infer_testing::write_test_bundle(tmp / "bundle20", 20);
  const Predictor predictor(tmp / "bundle20");
  const io::Case& c = d.cases[1];
  const io::Volume flair = io::read_volume(c.flair);  // 64x64x40, 3.875 mm
  io::Volume thick;                                   // the same head in 5 mm slices
  thick.size = {64, 64, 31};
  thick.spacing_mm = {flair.spacing_mm[0], flair.spacing_mm[1], 5.0};
  thick.origin_mm = flair.origin_mm;
  io::Case t = c;
  for (io::Sequence seq : io::kSequences) {
    const fs::path out = tmp / (std::string(io::sequence_name(seq)) + ".nii.gz");
    io::write_volume(io::resample_to_grid(io::read_volume(c.sequence_path(seq)), thick,
                                          io::Interpolation::kLinear, out, out),
                     out, true);
  }
  t.t1 = tmp / "t1.nii.gz", t.t2 = tmp / "t2.nii.gz", t.flair = tmp / "flair.nii.gz";
  t.seg = tmp / "seg.nii.gz";
  io::write_volume(io::resample_to_grid(io::read_volume(c.seg), thick, io::Interpolation::kNearest,
                                        t.seg, t.seg),
                   t.seg, true);

  PredictOptions o;
  o.grad_cam = false;
  const PatientPrediction p = predictor.predict(t, o);
  EXPECT_TRUE(p.grid.resampled);
  EXPECT_EQ(p.grid.input_size, thick.size);
  EXPECT_EQ(p.grid.spacing_mm, (std::array<double, 3>{1, 1, 1}));
  EXPECT_EQ(p.grid.size, (std::array<int, 3>{248, 248, 155}));  // 64 x 3.875 mm, 31 x 5 mm
  EXPECT_EQ(p.depth, 155);
  EXPECT_EQ(p.slices, 20);
  EXPECT_GE(p.z_start, 0);
  EXPECT_LE(p.z_start + p.slices, p.depth);
  // The window is centred on the tumour's largest slice, now in 1 mm steps: the 3.875 mm mask's
  // slice lies at truth * 3.875 mm from FLAIR's first slice centre, i.e. index +1.4375 on the
  // 1 mm grid (whose first centre is half a 1 mm voxel inside the volume's edge); the 5 mm mask
  // is coarser than that, hence the tolerance.
  const double truth_mm = prep::largest_tumour_slice(io::read_volume(c.seg)) * 3.875 + 1.4375;
  EXPECT_NEAR(p.centre_z, truth_mm, 8.0);
  const auto j = nlohmann::json::parse(prediction_json(p, tmp / "bundle20"));
  EXPECT_DOUBLE_EQ(j["grid"]["window_mm"].get<double>(), 20.0);
  EXPECT_EQ(j["sequences"]["flair"]["p_hgg_per_slice"].size(), 20u);
  EXPECT_EQ(j["quality"]["flags"], nlohmann::json::array({"thick_slices"}));
  std::string notices;
  for (const auto& n : p.notices) notices += n + "\n";
  EXPECT_NE(notices.find("FLAIR slices are 5 mm apart"), std::string::npos) << notices;
  EXPECT_NE(notices.find("interpolated, not measured"), std::string::npos) << notices;
  EXPECT_NE(notices.find("resampled to the training grid 1x1x1 mm (248x248x155 voxels"),
            std::string::npos)
      << notices;

  // --slice indexes the file as given: 5 mm slice 15 lies 77 mm above the 1 mm grid's first.
  o.slice = 15;
  const PatientPrediction u = predictor.predict(t, o);
  EXPECT_EQ(u.choice, SliceChoice::kUser);
  EXPECT_EQ(u.centre_z, 77);
  o.slice = 31;  // outside the 31 slices of the file, though inside the 155 of the 1 mm grid
  EXPECT_EQ(error_of([&] { predictor.predict(t, o); }).file(), t.flair.string());
}

// BraTS input (1 mm) is left as it is, bit for bit, and raises no quality flag.
TEST(Predict, BratsSampleIsNotResampledAndRaisesNoFlag) {
  REQUIRE_WEIGHTS();
  const fs::path dir = testing::shared_dir() / "data/brats-sample/HGG/BraTS19_2013_10_1";
  if (!fs::exists(dir)) GG_MISSING("no " << dir);
  io::Case c;
  c.id = "BraTS19_2013_10_1";
  c.t1 = dir / "BraTS19_2013_10_1_t1.nii.gz";
  c.t2 = dir / "BraTS19_2013_10_1_t2.nii.gz";
  c.flair = dir / "BraTS19_2013_10_1_flair.nii.gz";
  PredictOptions o;  // the defaults: 1 mm, automatic localisation (no mask)
  o.grad_cam = false;
  const PatientPrediction p = test_predictor().predict(c, o);
  EXPECT_FALSE(p.grid.resampled);
  EXPECT_EQ(p.grid.size, (std::array<int, 3>{240, 240, 155}));
  EXPECT_TRUE(p.notices.empty());
  EXPECT_TRUE(p.quality.flags.empty());
  EXPECT_EQ(p.quality.summary, "");
  const PatientPrediction native_grid = test_predictor().predict(c, no_cam());
  EXPECT_EQ(p.centre_z, native_grid.centre_z);
  for (size_t k = 0; k < 3; ++k)
    EXPECT_EQ(p.sequences[k].p_slices, native_grid.sequences[k].p_slices);
}

// Three equal bright regions compete: the automatic slice choice is a guess and says so.
TEST(Predict, CompetingHyperintensitiesRaiseLowLocalisationConfidence) {
  REQUIRE_WEIGHTS();
  testing::TempDir tmp;
  io::Volume v;  // 1 mm, a box of "brain" with a little texture and three 6 mm bright cubes
  v.size = {64, 64, 40};
  v.voxels.assign(size_t(v.num_voxels()), 0.0f);
  for (int z = 4; z < 36; ++z)
    for (int y = 8; y < 56; ++y)
      for (int x = 8; x < 56; ++x) v.at(x, y, z) = float(100 + (x + 2 * y + 3 * z) % 7);
  for (const auto& corner : {std::array<int, 3>{14, 14, 10}, std::array<int, 3>{40, 14, 17},
                             std::array<int, 3>{27, 40, 24}})
    for (int z = 0; z < 6; ++z)
      for (int y = 0; y < 6; ++y)
        for (int x = 0; x < 6; ++x) v.at(corner[0] + x, corner[1] + y, corner[2] + z) = 400;
  io::write_volume(v, tmp / "p_flair.nii.gz", true);
  io::Case c;
  c.id = "P";
  c.t1 = c.t2 = c.flair = tmp / "p_flair.nii.gz";
  PredictOptions o;
  o.grad_cam = false;
  const PatientPrediction p = test_predictor().predict(c, o);
  EXPECT_FALSE(p.grid.resampled);
  EXPECT_EQ(p.choice, SliceChoice::kAuto);
  EXPECT_EQ(p.location.components, 3);
  EXPECT_LT(p.location.confidence, kLowLocalisationConfidence);
  EXPECT_EQ(p.quality.flags, std::vector<std::string>{"low_localisation_confidence"});
  EXPECT_NE(p.quality.summary.find("low confidence"), std::string::npos) << p.quality.summary;
  // A slice given by the user is not a guess.
  o.slice = 20;
  EXPECT_TRUE(test_predictor().predict(c, o).quality.flags.empty());
}

// A head that still has its skull and scalp is flagged; its brain mask (--brain-mask) makes it
// the skull-stripped brain again, voxel for voxel; empty or mismatched masks are errors.
TEST(Predict, SkullIsFlaggedAndABrainMaskStripsIt) {
  REQUIRE_WEIGHTS();
  testing::TempDir tmp;
  synth::SynthOptions so;
  so.size = {64, 64, 40};
  so.spacing_mm = synth::default_spacing_mm(so.size);
  const synth::SyntheticPatient brain = synth::make_patient(0, io::Grade::kLGG, so);
  so.skull = true;
  const synth::SyntheticPatient head = synth::make_patient(0, io::Grade::kLGG, so);
  auto write_case = [&](const synth::SyntheticPatient& s, const std::string& name) {
    io::Case c;
    c.id = name;
    c.t1 = tmp / (name + "_t1.nii.gz"), c.t2 = tmp / (name + "_t2.nii.gz");
    c.flair = tmp / (name + "_flair.nii.gz");
    io::write_volume(s.t1, c.t1, true), io::write_volume(s.t2, c.t2, true);
    io::write_volume(s.flair, c.flair, true);
    return c;
  };
  const io::Case b = write_case(brain, "brain"), h = write_case(head, "head");
  PredictOptions o = no_cam();
  o.use_mask = false;
  const PatientPrediction stripped = test_predictor().predict(b, o);
  // Bright scalp hides the lesion from the automatic localisation: the error says why.
  const Error located = error_of([&] { test_predictor().predict(h, o); });
  EXPECT_EQ(located.file(), h.flair.string());
  EXPECT_NE(located.problem().find("not skull-stripped"), std::string::npos) << located.problem();
  EXPECT_NE(located.fix().find("--brain-mask"), std::string::npos);
  PredictOptions at_slice = o;
  at_slice.slice = stripped.centre_z;
  const PatientPrediction unstripped = test_predictor().predict(h, at_slice);
  auto has = [](const PatientPrediction& p, const std::string& flag) {
    return std::count(p.quality.flags.begin(), p.quality.flags.end(), flag) == 1;
  };
  EXPECT_FALSE(has(stripped, "not_skull_stripped")) << stripped.skull.outline_ml;
  EXPECT_TRUE(has(unstripped, "not_skull_stripped")) << unstripped.skull.outline_ml;
  EXPECT_NE(unstripped.quality.summary.find("not skull-stripped"), std::string::npos);

  io::Volume mask = brain.flair;
  for (float& v : mask.voxels) v = v > 0 ? 1.0f : 0.0f;
  io::write_volume(mask, tmp / "brain_mask.nii.gz", true);
  o.brain_mask = tmp / "brain_mask.nii.gz";
  const PatientPrediction masked = test_predictor().predict(h, o);
  EXPECT_FALSE(has(masked, "not_skull_stripped")) << masked.skull.outline_ml;
  EXPECT_EQ(masked.brain_mask, o.brain_mask);
  for (size_t k = 0; k < 3; ++k)
    EXPECT_EQ(masked.sequences[k].p_slices, stripped.sequences[k].p_slices) << k;
  std::string notices;
  for (const auto& n : masked.notices) notices += n + "\n";
  EXPECT_NE(notices.find("brain mask brain_mask.nii.gz applied"), std::string::npos) << notices;

  io::Volume empty = mask;
  std::fill(empty.voxels.begin(), empty.voxels.end(), 0.0f);
  io::write_volume(empty, tmp / "empty_mask.nii.gz", true);
  o.brain_mask = tmp / "empty_mask.nii.gz";
  Error e = error_of([&] { test_predictor().predict(h, o); });
  EXPECT_EQ(e.file(), o.brain_mask.string());
  EXPECT_NE(e.problem().find("empty"), std::string::npos) << e.problem();

  io::Volume far = mask;
  far.origin_mm[0] += 1000;
  io::write_volume(far, tmp / "far_mask.nii.gz", true);
  o.brain_mask = tmp / "far_mask.nii.gz";
  e = error_of([&] { test_predictor().predict(h, o); });
  EXPECT_EQ(e.file(), o.brain_mask.string());
  EXPECT_NE(e.problem().find("does not overlap"), std::string::npos) << e.problem();

  io::Volume elsewhere = mask;  // another scan's mask: mostly on background here
  for (size_t i = 0; i < elsewhere.voxels.size(); ++i)
    elsewhere.voxels[i] = head.flair.voxels[i] == 0;
  io::write_volume(elsewhere, tmp / "other_mask.nii.gz", true);
  o.brain_mask = tmp / "other_mask.nii.gz";
  e = error_of([&] { test_predictor().predict(h, o); });
  EXPECT_EQ(e.file(), o.brain_mask.string());
  EXPECT_NE(e.problem().find("does not match this scan"), std::string::npos) << e.problem();
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
  PredictOptions o = native();
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
