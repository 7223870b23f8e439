// End-to-end: `run` on a tiny synthetic cohort, then `train` and `evaluate` on its store and split.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/csv.h"
#include "common/files.h"
#include "testing/testing.h"

namespace gg {
namespace {

using testing::run_cli;

const char* kTinyRun =
    "--quiet run --out '{}' --synth-lgg 4 --synth-hgg 5 --synth-size 80,80,40 --slices 3 "
    "--epochs 1 --batch 5 --freeze 3 --seed 5";

std::string tiny_run_args(const fs::path& out) {
  std::string s = kTinyRun;
  return s.replace(s.find("{}"), 2, out.string());
}

bool have_weights() {
  return fs::exists(testing::shared_dir() / "weights" / "bvlc_googlenet.caffemodel");
}

TEST(RunCommand, WholeProtocolOnTinySyntheticCohort) {
  if (!have_weights()) GTEST_SKIP() << "no BVLC weights";
  testing::TempDir dir;
  const fs::path out = dir / "results";
  const auto r = run_cli(tiny_run_args(out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* f :
       {"config.json", "provenance.json", "split.csv", "predictions.csv", "metrics.json",
        "table.md", "report.html", "model/model.json", "model/t1.pt", "model/t2.pt",
        "model/flair.pt", "model/logs/train_flair.csv", "store/index.csv"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  EXPECT_NE(r.output.find("| T1"), std::string::npos) << "the table is printed at the end";
  EXPECT_FALSE(fs::is_empty(out / "gradcam")) << "Grad-CAM overlays of test patients";
  EXPECT_NE(read_file(out / "report.html").find("Grad-CAM"), std::string::npos);
  // Every test patient's heatmaps scored against its mask: one row per patient and sequence.
  const CsvTable localisation = read_csv(out / "gradcam/localisation.csv");
  ASSERT_FALSE(localisation.rows.empty());
  EXPECT_EQ(localisation.rows.size() % 3, 0u);
  EXPECT_NE(read_file(out / "report.html").find("Where the models look"), std::string::npos);
  EXPECT_NE(r.output.find("synthetic"), std::string::npos);
  const auto metrics = nlohmann::json::parse(read_file(out / "metrics.json"));
  EXPECT_FALSE(metrics.empty());
  const auto prov = nlohmann::json::parse(read_file(out / "provenance.json"));
  EXPECT_TRUE(prov.contains("versions"));
  EXPECT_TRUE(prov["stages"].contains("split"));

  // train + evaluate as separate commands on the run's store and split.
  const auto t = run_cli("--quiet train '" + (out / "store").string() + "' --split '" +
                         (out / "split.csv").string() + "' --out '" + (dir / "model").string() +
                         "' --sequences t1,t2,flair --epochs 1 --batch 5 --freeze 3 --seed 5");
  ASSERT_EQ(t.exit_code, 0) << t.output;
  EXPECT_TRUE(fs::exists(dir / "model/model.json"));
  const auto e = run_cli("--quiet evaluate --model '" + (dir / "model").string() + "' --store '" +
                         (out / "store").string() + "' --split '" + (out / "split.csv").string() +
                         "' --out '" + (dir / "eval").string() + "'");
  ASSERT_EQ(e.exit_code, 0) << e.output;
  EXPECT_TRUE(fs::exists(dir / "eval/metrics.json"));
  EXPECT_TRUE(fs::exists(dir / "eval/report.html"));
  EXPECT_TRUE(fs::exists(dir / "eval/gradcam/localisation.csv")) << "masks found via store.json";
  // Same seed, same data: the separately trained bundle scores exactly as the run's.
  EXPECT_EQ(read_file(dir / "eval/predictions.csv"), read_file(out / "predictions.csv"));
}

TEST(RunCommand, RefusesAForeignOutputDirectory) {
  testing::TempDir dir;
  write_file_atomic(dir / "results/thesis.tex", "mine");
  const auto r = run_cli(tiny_run_args(dir / "results"));
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("results"), std::string::npos);
  EXPECT_EQ(read_file(dir / "results/thesis.tex"), "mine");
}

TEST(TrainCommand, MissingWeightsSaysHowToFetch) {
  testing::TempDir dir;
  const auto r =
      run_cli("train '" + dir.path().string() + "' --split /dev/null --out x --weights '" +
              (dir / "none.caffemodel").string() + "'");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("none.caffemodel"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("gliomagrade weights fetch bvlc"), std::string::npos) << r.output;
}

TEST(Cli, UnknownCommandSuggestsTheNearestOne) {
  const auto r = run_cli("trian");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("did you mean 'train'"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace gg
