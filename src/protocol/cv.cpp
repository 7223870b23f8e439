// Patient-level K-fold cross-validation with out-of-fold predictions pooled.
#include <fmt/format.h>

#include "common/error.h"
#include "common/files.h"
#include "protocol/internal.h"

namespace gg::protocol::detail {

std::string cv_protocol_name(int folds, int repeats) {
  return fmt::format(
      "patient-level {}-fold cross-validation{} (out-of-fold predictions pooled: every patient "
      "scored once{}, by models that never saw any of its slices)",
      folds, repeats > 1 ? fmt::format(", {} repetitions", repeats) : "",
      repeats > 1 ? " per repetition" : "");
}

std::vector<data::Split> cv_folds(const std::vector<data::ItemKey>& keys, int folds, int r,
                                  uint64_t seed) {
  // Repetition r deals the folds with seed + r: the same fold assignment on every machine.
  return data::make_kfold(keys, folds, seed + uint64_t(r));
}

fs::path cv_fold_dir(const fs::path& dir, int r, int f) {
  return dir / "cv" / fmt::format("r{}", r + 1) / fmt::format("fold{}", f + 1);
}

CvOutcome cross_validate(const prep::SliceStore& store, int folds, int repeats, uint64_t seed,
                         const train::TrainConfig& config, const fs::path& dir, bool resume,
                         bool continue_trainings, bool show_progress, const std::string& label) {
  const auto keys = data::item_keys(store);
  CvOutcome out;
  for (int r = 0; r < repeats; ++r) {
    out.splits.push_back(cv_folds(keys, folds, r, seed));
    const fs::path repeat_dir = cv_fold_dir(dir, r, 0).parent_path();
    data::save_folds(out.splits.back(), keys, repeat_dir / "folds.csv");
    std::vector<eval::SlicePrediction> pooled;
    out.per_fold.emplace_back();
    out.bundles.emplace_back();
    out.seconds.emplace_back();
    for (int f = 0; f < folds; ++f) {
      const auto t0 = std::chrono::steady_clock::now();
      const data::Split& split = out.splits[size_t(r)][size_t(f)];
      const fs::path fold_dir = cv_fold_dir(dir, r, f);
      const fs::path bundle = fold_dir / "model";
      const fs::path predictions = fold_dir / "predictions.csv";
      out.bundles.back().push_back(bundle);
      std::vector<eval::SlicePrediction> rows;
      if (resume && fs::exists(predictions)) {
        rows = eval::read_predictions_csv(predictions);  // a fold finished before the interruption
      } else {
        fmt::print(stderr, "-- {}repetition {}/{}, fold {}/{}\n", label, r + 1, repeats, f + 1,
                   folds);
        data::save_split(split, keys, fold_dir / "split.csv");
        fs::create_directories(bundle);
        const auto results =
            train_bundle(store, split, {io::Sequence::kT1, io::Sequence::kT2, io::Sequence::kFlair},
                         config, bundle, continue_trainings);
        if (!results.empty() && !results.back().completed) return out;  // stopped as asked
        rows = predict_part(bundle, store, split, data::Part::kTest, show_progress);
        for (auto& row : rows) row.repeat = r + 1, row.fold = f + 1;
        eval::write_predictions_csv(rows, predictions);  // the fold's completion marker
      }
      out.per_fold.back().push_back(
          eval::evaluate(rows, fmt::format("fold {} of {} (repetition {})", f + 1, folds, r + 1)));
      pooled.insert(pooled.end(), rows.begin(), rows.end());
      out.seconds.back().push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    // Every patient exactly once per repetition: the folds partition the cohort.
    if (pooled.size() != store.items.size())
      throw_runtime(repeat_dir.string(),
                    fmt::format("the folds' test parts hold {} slices, the store {}", pooled.size(),
                                store.items.size()));
    out.pooled.push_back(eval::evaluate(pooled, cv_protocol_name(folds, repeats)));
    out.rows.insert(out.rows.end(), pooled.begin(), pooled.end());
  }
  out.completed = true;
  return out;
}

}  // namespace gg::protocol::detail
