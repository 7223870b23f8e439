// Resuming from a checkpoint whose training log is corrupt: a clean gg::Error naming the log file,
// the line and the column, not a std::invalid_argument from number parsing.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "common/error.h"
#include "common/files.h"
#include "synth/synth.h"
#include "testing/testing.h"
#include "train/train.h"

namespace gg::train {
namespace {

fs::path bvlc_weights() { return testing::shared_dir() / "weights" / "bvlc_googlenet.caffemodel"; }

TEST(TrainResumeLog, CorruptLogIsABadInputErrorNamingFileAndLine) {
  if (!fs::exists(bvlc_weights())) GG_MISSING("no BVLC weights in ../shared");
  torch::set_num_threads(2);
  testing::TempDir dir;
  synth::SynthOptions so;
  so.lgg = 4, so.hgg = 4, so.seed = 11, so.difficulty = 0.0;
  so.size = {64, 64, 40};
  so.spacing_mm = synth::default_spacing_mm(so.size);
  so.show_progress = false;
  prep::PrepareOptions po;
  po.slices = 2, po.size = 64;  // GoogLeNet pools adaptively: a small input keeps this fast
  po.show_progress = false;
  const prep::SliceStore store =
      prep::prepare_cohort(synth::generate_cohort(dir / "cohort", so), dir / "store", po);
  data::SplitOptions sp;
  sp.train = 0.5, sp.val = 0.25, sp.test = 0.25, sp.seed = 3;
  const data::Split split = data::make_split(data::item_keys(store), sp);

  TrainConfig c;
  c.pretrained = bvlc_weights();
  c.batch_size = 2, c.epochs = 1;
  c.freeze_stages = 4;  // only the head learns
  c.checkpoint_every = 1, c.stop_after_iterations = 1;
  c.show_progress = false;
  const fs::path out = dir / "model";
  ASSERT_FALSE(train_sequence(store, split, io::Sequence::kT1, c, out, false).completed);
  const fs::path log = out / "checkpoints/t1/log.csv";
  ASSERT_TRUE(fs::exists(log));

  auto resume_error = [&](const std::string& text) {
    write_file_atomic(log, text);
    try {
      train_sequence(store, split, io::Sequence::kT1, c, out, true);
    } catch (const gg::Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kBadInput);
      return e.file() + ": " + e.problem();
    }
    return std::string("no error");
  };
  const std::string header =
      "iteration,epoch,images,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate\n";
  EXPECT_EQ(resume_error(header + "1,1,2,0.69,0.5,0.7,0.5,0.0001\n2,1,four,0.6,0.5,,,0.0001\n"),
            log.string() + ": line 3: images 'four' is not an integer");
  EXPECT_EQ(resume_error(header + "\n1,1,2,0.69,0.5,0.7,0.5x,0.0001\n"),
            log.string() + ": line 3: val_accuracy '0.5x' is not a number");
  EXPECT_EQ(resume_error(header + "1,1,2\n"), log.string() + ": line 2: 3 fields, expected 8");
}

}  // namespace
}  // namespace gg::train
