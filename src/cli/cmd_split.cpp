// `gliomagrade split`: train / validation / test parts of a slice store's items, by patient
// (stratified by grade, no leakage: the default), by image (the paper's protocol), or K-fold.
#include <fmt/format.h>

#include "cli/command.h"
#include "common/error.h"
#include "common/files.h"
#include "data/data.h"
#include "prep/prep.h"

namespace gg::cli {
namespace {

namespace fs = std::filesystem;

struct SplitArgs {
  fs::path store, out;
  std::string by = "patient";
  int folds = 0;
  data::SplitOptions options;
};

// The output may be replaced only if it is a split we wrote (never another file).
void check_output_file(const fs::path& out) {
  if (!fs::exists(out)) return;
  const std::string text = fs::is_regular_file(out) ? read_file(out) : std::string();
  if (text.rfind("patient,grade,rank,part", 0) != 0)
    throw_bad_input(out.string(), "already exists and is not a split file",
                    "choose another --out or remove it");
}

void print_counts(const data::Split& split, const std::vector<data::ItemKey>& items,
                  const fs::path& file) {
  const data::SplitCounts c = data::count_split(split, items);
  fmt::print("{:<6} {:>9} {:>9} {:>9} {:>9}\n", "part", "patients", "LGG", "HGG", "slices");
  for (data::Part p : {data::Part::kTrain, data::Part::kVal, data::Part::kTest}) {
    const int k = static_cast<int>(p);
    fmt::print(
        "{:<6} {:>9} {:>9} {:>9} {:>9}\n", data::part_name(p), c.patients[k][0] + c.patients[k][1],
        fmt::format("{}/{}", c.patients[k][0], c.items[k][0]),
        fmt::format("{}/{}", c.patients[k][1], c.items[k][1]), c.items[k][0] + c.items[k][1]);
  }
  fmt::print("(LGG, HGG columns: patients/slices)  split by {}, seed {}: {}\n",
             data::split_by_name(split.by), split.seed, file.string());
}

// Cohort problems (one grade only, missing grades) are about the store's index: name it.
template <typename F>
auto naming_store(const fs::path& store, F f) {
  try {
    return f();
  } catch (const Error& e) {
    if (!e.file().empty()) throw;
    throw Error(e.code(), (store / "index.csv").string(), e.problem(), e.fix());
  }
}

void add_split(CLI::App& app) {
  auto a = std::make_shared<SplitArgs>();
  auto* c = app.add_subcommand(
      "split",
      "Split a slice store into train / validation / test (by patient, by image, or K-fold)");
  c->add_option("store", a->store, "Slice store from `gliomagrade prepare`")->required();
  c->add_option("--out", a->out,
                "split.csv to write (patient,grade,rank,part,by,seed; one row per slice)")
      ->required();
  c->add_option(
       "--by", a->by,
       "patient: all slices of a patient in one part, stratified by grade (no leakage); "
       "image: one permutation of all slices, as the paper (slices of a patient in several parts)")
      ->check(CLI::IsMember({"patient", "image"}))
      ->capture_default_str();
  c->add_option("--folds", a->folds,
                "Patient-level stratified K-fold (K >= 2) instead: writes K files "
                "<out>-fold<k>.csv, fold k testing on fold k and validating on patients drawn "
                "from the other folds")
      ->check(CLI::Range(3, 100));
  c->add_option("--seed", a->options.seed, "Seed of the shuffles (same seed, same split)")
      ->capture_default_str();
  c->add_option("--train", a->options.train, "Fraction of patients (or slices) for training")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  c->add_option("--val", a->options.val, "Fraction for validation")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  c->add_option("--test", a->options.test, "Fraction for testing")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  c->footer(
      "By patient (default): 70/15/15 of the patients of each grade, so every part holds both "
      "grades.\n"
      "By image: reproduces the paper's 7:1.5:1.5 cut of all (patient, slice) items "
      "(4,690/1,005/1,005\n"
      "for BraTS 2019); its test slices have siblings in training, so scores are optimistic.\n"
      "The same split serves T1, T2 and FLAIR (they share items).\n"
      "Examples:\n"
      "  gliomagrade split store --out split.csv\n"
      "  gliomagrade split store --out split.csv --by image --seed 7\n"
      "  gliomagrade split store --out cv.csv --folds 5");
  c->callback([a] {
    if (a->folds > 0 && a->by == "image")
      throw_bad_input("",
                      "--folds makes patient-level folds; it cannot be combined with --by image",
                      "drop --by image, or drop --folds");
    const prep::SliceStore store = prep::open_slice_store(a->store);
    const auto items = data::item_keys(store);
    if (a->folds == 0) {
      a->options.by = data::parse_split_by(a->by);
      check_output_file(a->out);
      const data::Split split =
          naming_store(a->store, [&] { return data::make_split(items, a->options); });
      data::save_split(split, items, a->out);
      print_counts(split, items, a->out);
      return;
    }
    const auto splits =
        naming_store(a->store, [&] { return data::make_kfold(items, a->folds, a->options.seed); });
    const std::string stem = (a->out.parent_path() / a->out.stem()).string(),
                      ext = a->out.extension().string();
    for (size_t k = 0; k < splits.size(); ++k)
      check_output_file(fmt::format("{}-fold{}{}", stem, k + 1, ext.empty() ? ".csv" : ext));
    for (size_t k = 0; k < splits.size(); ++k) {
      const fs::path file = fmt::format("{}-fold{}{}", stem, k + 1, ext.empty() ? ".csv" : ext);
      data::save_split(splits[k], items, file);
      fmt::print("fold {} of {}\n", k + 1, splits.size());
      print_counts(splits[k], items, file);
    }
  });
}

}  // namespace
}  // namespace gg::cli

GG_REGISTER_COMMAND(split, 30, gg::cli::add_split);
