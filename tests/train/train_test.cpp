// Training on a tiny synthetic cohort: it must learn, be reproducible, and resume exactly.
#include "train/train.h"

#include <gtest/gtest.h>

#include <torch/torch.h>
#include <sstream>

#include "common/error.h"
#include "common/files.h"
#include "model/model.h"
#include "synth/synth.h"
#include "testing/fixture_cache.h"
#include "testing/testing.h"

namespace gg::train {
namespace {

fs::path bvlc_weights() { return testing::shared_dir() / "weights" / "bvlc_googlenet.caffemodel"; }

// One tiny cohort, store and split shared by the tests of this file (~10 s to build): the cohort
// and store are built once per build of this binary (testing/fixture_cache.h) and only read.
struct TinyCohort {
  fs::path dir;  // the cache entry: cohort/, store/
  prep::SliceStore store;
  data::Split split;
};

TinyCohort& tiny_cohort() {
  static TinyCohort* c = [] {
    auto* t = new TinyCohort;
    t->dir = testing::cached_fixture(
        "train_tiny_cohort", "lgg 8 hgg 8 seed 7 size 96x96x48 slices 4", [](const fs::path& dir) {
          synth::SynthOptions so;
          so.lgg = 8, so.hgg = 8, so.seed = 7, so.difficulty = 0.0;
          so.size = {96, 96, 48};
          so.spacing_mm = synth::default_spacing_mm(so.size);
          so.show_progress = false;
          const auto cases = synth::generate_cohort(dir / "cohort", so);
          prep::PrepareOptions po;
          po.slices = 4;
          po.show_progress = false;
          prep::prepare_cohort(cases, dir / "store", po);
        });
    t->store = prep::open_slice_store(t->dir / "store");
    const auto keys = data::item_keys(t->store);
    data::SplitOptions sp;
    sp.train = 0.5, sp.val = 0.25, sp.test = 0.25, sp.seed = 3;
    t->split = data::make_split(keys, sp);
    return t;
  }();
  return *c;
}

TrainConfig fast_config() {
  TrainConfig c;
  c.pretrained = bvlc_weights();
  c.batch_size = 4;
  c.epochs = 6;
  c.learning_rate = 1e-4;  // MATLAB's default; 1e-3 makes the head's loss spike
  c.freeze_stages = 3;     // only inception 5 and the head learn: a fast backward pass
  c.validate_every = 4;
  c.show_progress = false;
  return c;
}

torch::Tensor flat_weights(const fs::path& file) {
  model::GoogLeNetOptions o;
  o.num_classes = 2;
  model::GoogLeNet net(o);
  model::load_weights(net, file);
  std::vector<torch::Tensor> all;
  for (const auto& p : net->parameters()) all.push_back(p.detach().reshape({-1}));
  return torch::cat(all);
}

class TrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(bvlc_weights())) GG_MISSING("no BVLC weights in ../shared");
    torch::set_num_threads(2);
  }
};

TEST_F(TrainTest, LearnsTheTinyCohort) {
  auto& t = tiny_cohort();
  testing::TempDir out;
  const TrainResult r =
      train_sequence(t.store, t.split, io::Sequence::kFlair, fast_config(), out.path(), false);
  ASSERT_TRUE(r.completed);
  EXPECT_TRUE(fs::exists(out / "flair.pt"));
  const std::string log = gg::read_file(r.log_csv);
  EXPECT_GT(r.best_val_accuracy, 0.7)
      << "validation accuracy should be clearly above chance (0.5)\n"
      << log;

  // Loss falls: mean training loss of the last third of iterations below that of the first third.
  std::vector<double> losses;
  std::istringstream in(log);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {  // iteration,epoch,images,train_loss,...
    std::stringstream fields(line);
    std::string cell;
    for (int i = 0; i < 4; ++i) std::getline(fields, cell, ',');
    losses.push_back(std::stod(cell));
  }
  ASSERT_GE(losses.size(), 6u);
  const size_t third = losses.size() / 3;
  double first = 0, last = 0;
  for (size_t i = 0; i < third; ++i) first += losses[i], last += losses[losses.size() - 1 - i];
  EXPECT_LT(last, first);

  // Predictions are probabilities, one per item, and the same when asked twice.
  const auto test_items = t.split.items_in(data::Part::kTest);
  const auto p1 =
      predict_items(out / "flair.pt", "bvlc", t.store, io::Sequence::kFlair, test_items);
  const auto p2 =
      predict_items(out / "flair.pt", "bvlc", t.store, io::Sequence::kFlair, test_items);
  ASSERT_EQ(p1.size(), test_items.size());
  EXPECT_EQ(p1, p2);
  for (double p : p1) EXPECT_TRUE(p >= 0 && p <= 1);
}

TEST_F(TrainTest, ResumeAfterInterruptionGivesTheSameWeights) {
  auto& t = tiny_cohort();
  TrainConfig c = fast_config();
  c.epochs = 2;
  c.checkpoint_every = 2;

  testing::TempDir straight;
  ASSERT_TRUE(
      train_sequence(t.store, t.split, io::Sequence::kT1, c, straight.path(), false).completed);

  testing::TempDir interrupted;
  TrainConfig stop = c;
  stop.stop_after_iterations = 3;  // mid-epoch, one iteration past a checkpoint
  EXPECT_FALSE(train_sequence(t.store, t.split, io::Sequence::kT1, stop, interrupted.path(), false)
                   .completed);
  const TrainResult resumed =
      train_sequence(t.store, t.split, io::Sequence::kT1, c, interrupted.path(), true);
  ASSERT_TRUE(resumed.completed);

  const auto a = flat_weights(straight / "checkpoints/t1/weights.pt");
  const auto b = flat_weights(interrupted / "checkpoints/t1/weights.pt");
  EXPECT_TRUE(torch::equal(a, b)) << "max |diff| " << (a - b).abs().max().item<double>();
  EXPECT_EQ(gg::read_file(straight / "logs/train_t1.csv"),
            gg::read_file(interrupted / "logs/train_t1.csv"));
}

TEST_F(TrainTest, ResumeWithAnotherConfigIsRefused) {
  auto& t = tiny_cohort();
  TrainConfig c = fast_config();
  c.epochs = 1;
  c.stop_after_iterations = 1;
  c.checkpoint_every = 1;
  testing::TempDir out;
  train_sequence(t.store, t.split, io::Sequence::kT2, c, out.path(), false);
  c.stop_after_iterations = 0;
  c.learning_rate = 0.5;
  EXPECT_THROW(train_sequence(t.store, t.split, io::Sequence::kT2, c, out.path(), true), gg::Error);
}

TEST_F(TrainTest, ResumeWithoutCheckpointIsABadInputError) {
  auto& t = tiny_cohort();
  testing::TempDir out;
  try {
    train_sequence(t.store, t.split, io::Sequence::kT1, fast_config(), out.path(), true);
    FAIL();
  } catch (const gg::Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
  }
}

// A training part smaller than one mini-batch (a fold of a small CV) read past the end of the
// epoch's order and crashed; it now trains on one smaller batch per epoch.
TEST_F(TrainTest, ATrainingPartSmallerThanTheBatchTrains) {
  auto& t = tiny_cohort();
  TrainConfig c = fast_config();
  c.epochs = 2;
  c.batch_size = int(t.split.items_in(data::Part::kTrain).size()) + 3;
  testing::TempDir out;
  const TrainResult r = train_sequence(t.store, t.split, io::Sequence::kT2, c, out.path(), false);
  EXPECT_TRUE(r.completed);
  EXPECT_EQ(r.iterations, 2) << "one batch per epoch";
  EXPECT_TRUE(fs::exists(out / "t2.pt"));
}

TEST(TrainConfigJson, RoundTripsAndRejectsUnknownKeys) {
  TrainConfig c;
  c.epochs = 9;
  c.balance = Balance::kOversample;
  c.seed = 42;
  const TrainConfig back = config_from_json(config_to_json(c), "test");
  EXPECT_EQ(back.epochs, 9);
  EXPECT_EQ(back.balance, Balance::kOversample);
  EXPECT_EQ(back.seed, 42u);
  EXPECT_EQ(config_to_json(back), config_to_json(c));
  EXPECT_THROW(config_from_json(R"({"epochz": 3})", "test"), gg::Error);
  EXPECT_THROW(config_from_json(R"({"epochs": "three"})", "test"), gg::Error);
}

TEST(BundleInfo, RoundTripAndVersionCheck) {
  testing::TempDir dir;
  BundleInfo b;
  b.sequences = {"t1"};
  b.train_config_json = config_to_json(TrainConfig{});
  gg::write_file_atomic(dir / "t1.pt", "x");
  write_bundle_info(b, dir.path());
  EXPECT_EQ(read_bundle_info(dir.path()).sequences, std::vector<std::string>{"t1"});
  std::string text = gg::read_file(dir / "model.json");
  text.replace(text.find(kBundleFormat), std::string(kBundleFormat).size(), "gliomagrade-bundle/0");
  gg::write_file_atomic(dir / "model.json", text);
  EXPECT_THROW(read_bundle_info(dir.path()), gg::Error);
  fs::remove(dir / "t1.pt");
  EXPECT_THROW(read_bundle_info(dir.path()), gg::Error);
}

}  // namespace
}  // namespace gg::train
