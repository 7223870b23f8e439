// predict with a T1ce and no mask: DeepMedic segments the patient and its label map places the
// window through the very code a given mask takes (issue 19, part 3). On a 64x64x40 crop of the
// real BraTS sample, with the untrained test bundle (the numbers are the plumbing's).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/files.h"
#include "fixture.h"
#include "infer/infer.h"
#include "prep/prep.h"
#include "segment/segment.h"
#include "testing/brats_crop.h"

namespace gg::infer {
namespace {

using infer_testing::shared;

struct CropCase {
  testing::TempDir dir;
  io::Case c;
  CropCase() {
    testing::write_brats_crop(dir.path());
    c.id = "crop";
    c.t1 = dir / "t1.nii.gz", c.t1ce = dir / "t1ce.nii.gz", c.t2 = dir / "t2.nii.gz";
    c.flair = dir / "flair.nii.gz";
  }
};

const Predictor& test_predictor() {
  static const Predictor* p = new Predictor(shared().bundle);
  return *p;
}

// The model in ../shared, named: find_deepmedic_model's search starts from the gliomagrade
// executable's folder or the working directory, neither of which is a test binary's under ctest.
fs::path deepmedic_model() { return testing::shared_dir() / "weights" / "deepmedic-brats-captk"; }

PredictOptions segmenting() {
  PredictOptions o;
  o.deepmedic_model = deepmedic_model();
  o.resample_to_training_grid = false;  // the crop is 1 mm already; its field of view is small
  o.grad_cam = false;
  o.segmentation.skip_background_tiles = true;
  return o;
}

TEST(PredictWithT1ce, SegmentsAndTakesTheWindowAsPrepareTakesItFromAMask) {
  ASSERT_TRUE(infer_testing::have_weights()) << "missing " << infer_testing::bvlc_weights();
  CropCase crop;
  const PatientPrediction p = test_predictor().predict(crop.c, segmenting());
  ASSERT_EQ(p.choice, SliceChoice::kSegmentation);
  ASSERT_TRUE(p.segmentation);
  EXPECT_STREQ(localisation_method_name(p.choice), "deepmedic");

  // The label map is `segment`'s for the same inputs, and the centre its largest slice.
  segment::SegmentOptions so;
  so.skip_background_tiles = true;
  const segment::CaseSegmentation expected =
      segment::segment_case(segment::find_deepmedic_model(deepmedic_model()),
                            {crop.c.t1, crop.c.t1ce, crop.c.t2, crop.c.flair}, so);
  EXPECT_EQ(p.segmentation->voxels, expected.labels.voxels);
  EXPECT_EQ(p.centre_z, expected.largest_slice);
  EXPECT_NEAR(p.volumes.whole_ml, expected.volumes.whole_ml, 1e-9);
  EXPECT_GT(p.volumes.whole_ml, 10.0);

  // Byte for byte what `prepare` stores for this patient with that label map as its mask.
  io::Case with_mask = crop.c;
  with_mask.seg = crop.dir / "deepmedic.nii.gz";
  io::write_volume(*p.segmentation, with_mask.seg, true);
  prep::PrepareOptions po;
  po.slices = infer_testing::kSlices;
  po.show_progress = false;
  const prep::SliceStore store = prep::prepare_cohort({with_mask}, crop.dir / "store", po);
  ASSERT_EQ(store.items.size(), size_t(infer_testing::kSlices));
  EXPECT_EQ(store.items[0].z, p.z_start);
  for (io::Sequence seq : io::kSequences) {
    std::vector<uint8_t> centre(224 * 224);
    prep::read_slices(store, seq, {p.centre_z - p.z_start}, centre.data());
    EXPECT_EQ(p.sequences[size_t(seq)].centre_slice, centre) << io::sequence_name(seq);
  }

  // And predict --seg with that map gives the same window and the same numbers.
  PredictOptions given = segmenting();
  const PatientPrediction m = test_predictor().predict(with_mask, given);
  EXPECT_EQ(m.choice, SliceChoice::kMask);
  EXPECT_EQ(m.z_start, p.z_start);
  for (size_t k = 0; k < 3; ++k) EXPECT_DOUBLE_EQ(m.sequences[k].p_hgg, p.sequences[k].p_hgg);
}

TEST(PredictWithT1ce, LocateHeuristicSkipsTheSegmentationAndDeepMedicNeedsT1ce) {
  ASSERT_TRUE(infer_testing::have_weights()) << "missing " << infer_testing::bvlc_weights();
  CropCase crop;
  PredictOptions o = segmenting();
  o.locate = Locate::kHeuristic;
  const PatientPrediction h = test_predictor().predict(crop.c, o);
  EXPECT_EQ(h.choice, SliceChoice::kAuto);
  EXPECT_FALSE(h.segmentation);

  io::Case no_t1ce = crop.c;
  no_t1ce.t1ce.clear();
  o.locate = Locate::kDeepMedic;
  testing::expect_bad_input([&] { test_predictor().predict(no_t1ce, o); }, "flair.nii.gz",
                            "needs the patient's T1ce");
}

TEST(PredictWithT1ce, CommandWritesTheLabelMapAndTheVolumes) {
  ASSERT_TRUE(infer_testing::have_weights()) << "missing " << infer_testing::bvlc_weights();
  CropCase crop;
  const fs::path out = crop.dir / "out";
  auto q = [](const fs::path& p) { return "'" + p.string() + "'"; };
  const auto r =
      testing::run_cli("--quiet predict --t1 " + q(crop.c.t1) + " --t1ce " + q(crop.c.t1ce) +
                       " --t2 " + q(crop.c.t2) + " --flair " + q(crop.c.flair) + " --model " +
                       q(shared().bundle) + " --keep-grid --no-gradcam --out " + q(out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(read_file(out / "flair" / "prediction.json"));
  EXPECT_EQ(j["localisation"]["method"], "deepmedic");
  EXPECT_GT(j["localisation"]["volumes_ml"]["whole_tumour"].get<double>(), 10.0);
  EXPECT_EQ(j["slices"]["choice"], "deepmedic");
  EXPECT_EQ(j["inputs"]["t1ce"], crop.c.t1ce.string());
  const io::Volume labels = io::read_volume(out / "flair" / "labels.nii.gz");
  EXPECT_TRUE(io::same_grid(labels, io::read_volume(crop.c.flair)));
  EXPECT_NE(r.output.find("segmented by DeepMedic"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace gg::infer
