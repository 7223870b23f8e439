// The tiny `run` shared by the predict and export end-to-end tests: its synthetic cohort
// (results/cohort) and model bundle (results/model), made once per test binary.
#pragma once

#include <gtest/gtest.h>

#include "testing/testing.h"

namespace gg {

namespace fs = std::filesystem;

inline bool have_weights() {
  return fs::exists(testing::shared_dir() / "weights" / "bvlc_googlenet.caffemodel");
}

// One tiny run shared by the predict and export tests (~20 s): results/cohort and results/model.
inline const fs::path& tiny_results() {
  static testing::TempDir* dir = new testing::TempDir;
  static const fs::path results = [] {
    const fs::path out = *dir / "results";
    const auto r = testing::run_cli(
        "--quiet run --out '" + out.string() +
        "' --synth-lgg 3 --synth-hgg 3 --synth-size 64,64,40 --slices 4 --epochs 1 --batch 6 "
        "--freeze 4 --seed 3");
    if (r.exit_code != 0) ADD_FAILURE() << r.output;
    return out;
  }();
  return results;
}

inline std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

}  // namespace gg
