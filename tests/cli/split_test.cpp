// End-to-end `gliomagrade split` on a store prepared from a tiny cohort.
#include <gtest/gtest.h>

#include "common/files.h"
#include "testing/testing.h"
#include "tiny_cohort.h"

namespace gg {
namespace {

using testing::run_cli;
using testing::TempDir;

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

// A store of 3 LGG + 7 HGG patients × 4 slices = 40 items.
fs::path make_store(const TempDir& dir, int lgg = 3, int hgg = 7) {
  cli_testing::write_cohort(dir / "data", lgg, hgg);
  const auto r = run_cli("--quiet prepare " + quoted(dir / "data") + " --out " +
                         quoted(dir / "store") + " --slices 4 --size 16");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return dir / "store";
}

size_t count_lines_with(const std::string& text, const std::string& s) {
  size_t n = 0;
  for (size_t p = text.find(s); p != std::string::npos; p = text.find(s, p + 1)) ++n;
  return n;
}

TEST(SplitCommand, ByPatientPrintsCountsPerPartAndGrade) {
  TempDir dir;
  const fs::path store = make_store(dir);
  const auto r = run_cli("split " + quoted(store) + " --out " + quoted(dir / "split.csv"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // LGG 3 → 1/1/1 patients; HGG 7 → val round(1.05)=1, test 1, train 5.
  EXPECT_NE(r.output.find("train          6       1/4      5/20        24"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("val            2       1/4       1/4         8"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("test           2       1/4       1/4         8"), std::string::npos)
      << r.output;
  const std::string csv = read_file(dir / "split.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 41);
  EXPECT_EQ(count_lines_with(csv, ",train,patient,1\n"), 24u);
}

TEST(SplitCommand, ByImageAndSeed) {
  TempDir dir;
  const fs::path store = make_store(dir);
  auto r = run_cli("split " + quoted(store) + " --out " + quoted(dir / "a.csv") +
                   " --by image --seed 9");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // 40 items: train round(28)=28, val round(6)=6, test 6.
  EXPECT_NE(r.output.find("split by image, seed 9"), std::string::npos) << r.output;
  const std::string a = read_file(dir / "a.csv");
  EXPECT_EQ(count_lines_with(a, ",train,image,9\n"), 28u);
  EXPECT_EQ(count_lines_with(a, ",val,image,9\n"), 6u);
  EXPECT_EQ(count_lines_with(a, ",test,image,9\n"), 6u);
  r = run_cli("split " + quoted(store) + " --out " + quoted(dir / "b.csv") +
              " --by image --seed 9");
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(read_file(dir / "b.csv"), a);  // same seed, same split
  // Rewriting our own split file is allowed.
  EXPECT_EQ(
      run_cli("split " + quoted(store) + " --out " + quoted(dir / "b.csv") + " --seed 3").exit_code,
      0);
}

TEST(SplitCommand, KFoldWritesOneFilePerFold) {
  TempDir dir;
  const fs::path store = make_store(dir, 5, 5);
  const auto r =
      run_cli("split " + quoted(store) + " --out " + quoted(dir / "cv.csv") + " --folds 5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (int k = 1; k <= 5; ++k)
    EXPECT_TRUE(fs::exists(dir / ("cv-fold" + std::to_string(k) + ".csv"))) << k;
  EXPECT_EQ(count_lines_with(r.output, "\ntest           2 "), 5u)
      << r.output;  // 10 patients / 5 folds
}

TEST(SplitCommandBadInput, MoreFoldsThanPatientsOfTheRarerGrade) {
  TempDir dir;
  const fs::path store = make_store(dir);  // 3 LGG, 7 HGG
  const auto r =
      run_cli("split " + quoted(store) + " --out " + quoted(dir / "cv.csv") + " --folds 5");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("--folds 5 is more than the 3 LGG patients (the cohort has 3 LGG, 7 "
                          "HGG)"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(dir / "cv-fold1.csv"));
}

TEST(SplitCommandBadInput, OneGradeOnly) {
  TempDir dir;
  const fs::path store = make_store(dir, 0, 3);
  const auto r = run_cli("split " + quoted(store) + " --out " + quoted(dir / "split.csv"));
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  EXPECT_NE(r.output.find((store / "index.csv").string() +
                          ": the cohort has only HGG patients (3), no LGG"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(dir / "split.csv"));
}

TEST(SplitCommandBadInput, NotAStoreAndForeignOutput) {
  TempDir dir;
  auto r = run_cli("split " + quoted(dir.path()) + " --out " + quoted(dir / "s.csv"));
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("store.json: not a slice store"), std::string::npos) << r.output;
  const fs::path store = make_store(dir);
  write_file_atomic(dir / "notes.csv", "a,b\n1,2\n");
  r = run_cli("split " + quoted(store) + " --out " + quoted(dir / "notes.csv"));
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("notes.csv: already exists and is not a split file"), std::string::npos)
      << r.output;
  EXPECT_EQ(read_file(dir / "notes.csv"), "a,b\n1,2\n");
  r = run_cli("split " + quoted(store) + " --out " + quoted(dir / "x.csv") +
              " --folds 3 --by image");
  EXPECT_EQ(r.exit_code, 3) << r.output;
}

}  // namespace
}  // namespace gg

namespace gg {
namespace {

// The pipeline's first three commands on a tiny synthetic cohort (some of it stored reoriented).
TEST(SynthPrepareSplit, EndToEnd) {
  TempDir dir;
  auto r = run_cli("--quiet synth --out " + quoted(dir / "cohort") +
                   " --lgg 3 --hgg 4 --size 48,48,32 --seed 3 --reoriented 0.5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_cli("--quiet prepare " + quoted(dir / "cohort") + " --out " + quoted(dir / "store") +
              " --slices 6 --size 32");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("7 patients (3 LGG, 4 HGG): 42 slices"), std::string::npos) << r.output;
  EXPECT_EQ(fs::file_size(dir / "store/t2.u8"), 32u + 42u * 32u * 32u);
  r = run_cli("split " + quoted(dir / "store") + " --out " + quoted(dir / "split.csv"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // LGG 3 → 1/1/1, HGG 4 → val round(0.6)=1, test 1, train 2.
  EXPECT_NE(r.output.find("train          3       1/6      2/12        18"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("test           2       1/6       1/6        12"), std::string::npos)
      << r.output;
  const std::string csv = read_file(dir / "split.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 43);
}

}  // namespace
}  // namespace gg
