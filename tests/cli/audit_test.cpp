// End-to-end: `audit` on a tiny synthetic cohort: the four protocols, the inflation and the
// shuffled-label control, with golden values.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/files.h"
#include "testing/golden.h"
#include "testing/testing.h"
#include "tiny_run.h"

namespace gg {
namespace {

using testing::run_cli;

// Tiny but long enough for memorisation to show: the last inception stage and the head train for
// 4 epochs without augmentation (which would blur patients). (b) and (d) run as 3-fold CV so that
// every patient is a test patient: with a single split (d) would rest on 2 test patients, and a
// two-patient AUC is a coin flip, not a chance band. Measured (slice AUC): seed 5 (this test)
// c 0.929, d 0.485; seed 6 c 0.964, d 0.358. Without the folds, seeds 5-7 gave d 0.48-0.75 and
// c as low as 0.50: too noisy to test.
const std::string kAuditOptions =
    " --synth-lgg 6 --synth-hgg 6 --synth-size 64,64,40 --slices 6 --epochs 4 --batch 6 "
    "--freeze 3 --lr 1e-3 --validate-every 100 --translate 0 --no-flip --folds 3 --seed 5";

TEST(AuditCommand, ShuffledLabelsSitAtChanceUnderThePatientSplitAndAboveItUnderTheImageSplit) {
  if (!have_weights()) GG_MISSING("no BVLC weights");
  testing::TempDir dir;
  const fs::path out = dir / "audit";
  const auto r = run_cli("--quiet audit --out " + q(out) + kAuditOptions);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* f :
       {"audit.md", "audit.json", "audit.png", "a_image/predictions.csv", "a_image/model/flair.pt",
        "d_patient_shuffled/cv/r1/fold3/model/t2.pt", "run.json", "provenance.json"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  const auto j = nlohmann::json::parse(read_file(out / "audit.json"));
  const auto auc = [&](const char* p, const char* level) {
    return j["protocols"][p][level]["auc"].get<double>();
  };
  const double c = auc("c_image_shuffled", "slice"), d = auc("d_patient_shuffled", "slice");
  std::printf("  slice AUC: (a) %.3f (b) %.3f (c) %.3f (d) %.3f; (c) vs chance p = %s\n",
              auc("a_image", "slice"), auc("b_patient", "slice"), c, d,
              j["c_above_chance"]["slice_p"].dump().c_str());
  EXPECT_LT(std::abs(d - 0.5), 0.25) << "(d): shuffled grades, unseen patients: chance";
  EXPECT_GT(c, d + 0.2) << "(c) recognises patients seen in training";
  EXPECT_GT(j["image_split_leak"]["test_patients_with_slices_in_training"].get<int>(), 0);
  // Across CPUs the numbers agree only up to float rounding: oneDNN's AVX2 and AVX-512 kernels
  // sum in different orders, and the near-tied probabilities of the chance-level protocols swap
  // ranks (golden from an AVX-512 Zen 4; on an AVX2 Zen 3, (b)'s slice AUC moved by one pair of
  // 1296: 7.7e-4). 0.005 allows a few swapped pairs or a slice or two; a patient is 1/12.
  testing::expect_golden(out / "audit.json", "audit_tiny.json", 0.005);
  const std::string md = read_file(out / "audit.md");
  EXPECT_NE(md.find("Inflation (a − b)"), std::string::npos) << md;
  EXPECT_NE(md.find("Control (c vs d)"), std::string::npos) << md;
  EXPECT_NE(md.find("Synthetic cohort"), std::string::npos) << md;
}

TEST(AuditCommandBadInput, FoldsBelowTwoAndResumeWithOtherOptions) {
  testing::TempDir dir;
  auto r = run_cli("--quiet audit --out " + q(dir / "a") + " --folds 1");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("--folds must be at least 2"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "a"));
  // A results directory of `run` is not an audit to resume.
  write_file_atomic(dir / "b/run.json", R"({"command": "run", "complete": false, "options": {}})");
  r = run_cli("--quiet audit --out " + q(dir / "b") + " --resume");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("not the record of a `audit` results directory"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace gg
