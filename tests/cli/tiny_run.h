// The tiny `run` and CV shared by the end-to-end tests of predict, export, CV and --jobs: its
// synthetic cohort (results/cohort) and model bundle (results/model), made once per build (fixture
// cache).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "common/csv.h"
#include "testing/fixture_cache.h"
#include "testing/testing.h"

namespace gg {

namespace fs = std::filesystem;

inline bool have_weights() {
  return fs::exists(testing::shared_dir() / "weights" / "bvlc_googlenet.caffemodel");
}

// The tiny run's options: 6 patients, 4 slices each, one epoch.
inline const std::string kTinyRunOptions =
    " --synth-lgg 3 --synth-hgg 3 --synth-size 64,64,40 --slices 4 --epochs 1 --batch 6 "
    "--freeze 4 --seed 3";

// One tiny run shared by the predict and export tests (~20 s): results/cohort and results/model.
// Built once per build of gliomagrade (testing/fixture_cache.h) and shared by every test process:
// read-only (tests that edit a bundle copy it first).
inline const fs::path& tiny_results() {
  static const fs::path results = [] {
    const std::string& options = kTinyRunOptions;
    // The run reads the pretrained weights too (found beside the executable or through these).
    std::string params = "run" + options + "\nweights " +
                         testing::optional_file_fingerprint(testing::shared_dir() / "weights" /
                                                            "bvlc_googlenet.caffemodel");
    for (const char* var : {"GLIOMAGRADE_WEIGHTS", "GLIOMAGRADE_WEIGHTS_DIR"})
      params += std::string("\n") + var + "=" + (std::getenv(var) ? std::getenv(var) : "");
    try {
      const fs::path entry = testing::cached_fixture(
          "cli_tiny_run", params,
          [&](const fs::path& dir) {
            const auto r = testing::run_cli("--quiet run --out '" + (dir / "results").string() +
                                            "'" + options);
            if (r.exit_code != 0) throw std::runtime_error(r.output);
          },
          testing::exe_path());
      return entry / "results";
    } catch (const std::exception& e) {
      ADD_FAILURE() << "the tiny run failed: " << e.what();
      return (*new testing::TempDir) / "results";  // absent: the tests fail on it
    }
  }();
  return results;
}

inline std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

// 4 LGG + 5 HGG, 3 slices each, 3 folds: 9 trainings of one epoch.
inline const std::string kCvOptions =
    " --synth-lgg 4 --synth-hgg 5 --synth-size 64,64,40 --slices 3 --epochs 1 --batch 5 "
    "--freeze 3 --seed 5 --folds 3";

// The uninterrupted CV, built once per build of gliomagrade (read-only): shared by the CV and
// the --jobs/--task tests.
inline const fs::path& tiny_cv() {
  static const fs::path out = [] {
    const fs::path entry = testing::cached_fixture(
        "cli_tiny_cv",
        "run" + kCvOptions + "\nweights " +
            testing::optional_file_fingerprint(testing::shared_dir() / "weights" /
                                               "bvlc_googlenet.caffemodel"),
        [](const fs::path& dir) {
          const auto r = testing::run_cli("--quiet run --out " + q(dir / "cv") + kCvOptions);
          if (r.exit_code != 0) throw std::runtime_error(r.output);
        },
        testing::exe_path());
    return entry / "cv";
  }();
  return out;
}

// Same rows and labels; P(HGG) columns equal up to float rounding (1 and 2 compute threads sum
// convolutions in another order: ~1e-7 measured).
inline void expect_same_predictions(const fs::path& a, const fs::path& b) {
  const CsvTable x = read_csv(a), y = read_csv(b);
  ASSERT_EQ(x.header, y.header);
  ASSERT_EQ(x.rows.size(), y.rows.size());
  for (size_t i = 0; i < x.rows.size(); ++i)
    for (size_t c = 0; c < x.header.size(); ++c) {
      const std::string& name = x.header[c];
      if (name.rfind("p_", 0) == 0)
        EXPECT_NEAR(std::stod(x.rows[i][c]), std::stod(y.rows[i][c]), 1e-5) << name << " row " << i;
      else
        EXPECT_EQ(x.rows[i][c], y.rows[i][c]) << name << " row " << i;
    }
}

}  // namespace gg
