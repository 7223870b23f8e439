// data: splitting the slice store's items into train / validation / test.
//
// Two protocols (DESIGN.md "Split"):
//  - by patient (default, no leakage): stratified by grade, 70/15/15 of the patients of each grade,
//    every slice of a patient in the same part;
//  - by image (the paper's protocol): one seeded permutation of all (patient, slice) items, cut
//    7 : 1.5 : 1.5 (4,690 / 1,005 / 1,005 for BraTS 2019's 335 × 20 items). Slices of one
//    patient land in different parts, so its test scores are optimistic: it exists to reproduce.
// One split serves all three sequences (items are shared). Everything is deterministic in the seed:
// shuffles use std::mt19937_64 and our own Fisher–Yates (std::shuffle's algorithm is not portable).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "io/io.h"
#include "prep/prep.h"

namespace gg::data {

namespace fs = std::filesystem;

enum class SplitBy { kPatient, kImage };
const char* split_by_name(SplitBy by);         // "patient", "image"
SplitBy parse_split_by(const std::string& s);  // inverse; throws kBadInput otherwise

enum class Part { kTrain = 0, kVal = 1, kTest = 2 };
const char* part_name(Part p);          // "train", "val", "test"
Part parse_part(const std::string& s);  // inverse; throws kBadInput otherwise

struct SplitOptions {
  SplitBy by = SplitBy::kPatient;
  double train = 0.70, val = 0.15, test = 0.15;  // fractions; must sum to 1
  uint64_t seed = 1;
};

// One per store item, in the store's order.
struct ItemKey {
  std::string patient;
  io::Grade grade;
  int rank;
};
std::vector<ItemKey> item_keys(const prep::SliceStore& store);

struct Split {
  SplitBy by = SplitBy::kPatient;
  uint64_t seed = 1;
  std::vector<Part> part;                       // part[i] for item i
  std::vector<int64_t> items_in(Part p) const;  // ascending item indices
};

// Patient split: per grade, the patients (sorted by id, then shuffled) are cut with
// n_val = round(n·val), n_test = round(n·test), n_train = the rest; when a grade has ≥ 3 patients
// each part gets at least one of it. Image split: a permutation of all items cut at
// round(N·train) and round(N·val), the test part the rest.
// Throws kBadInput (no file) for: no items, a patient of unknown grade, only one grade, fractions
// outside [0,1] or not summing to 1.
Split make_split(const std::vector<ItemKey>& items, const SplitOptions& options);

// Patient-level stratified K-fold (K >= 2): the patients of each grade, sorted by id and
// shuffled, are dealt to the folds in turn (LGG first, HGG continuing where LGG stopped, so fold
// sizes differ by <= 1 and every fold holds patients of both grades). Split f has test = fold f;
// from the other folds, per grade, round(n · val_fraction) patients (at least 1) are drawn for
// validation (a shuffle keyed by seed and f) and the rest train; by = kPatient, seed = seed.
// The default val_fraction, 0.15 / 0.85, makes validation ~15% of the cohort as in the single
// split. (Validation is drawn from the training folds rather than being the next fold: K = 2 works,
// and training keeps (K-1)/K of the data less validation, not (K-2)/K.)
// Throws kBadInput for K < 2, K above the patients of the rarer grade (the counts in the message:
// a test fold without one grade has no AUC), a grade too small for every fold to keep a training
// and a validation patient of it, or the make_split cohort errors.
inline constexpr double kKFoldValFraction = 0.15 / 0.85;
std::vector<Split> make_kfold(const std::vector<ItemKey>& items, int folds, uint64_t seed,
                              double val_fraction = kKFoldValFraction);

// The fold (0..K-1) of each patient in make_kfold's splits: the patients of the test part.
// Writes one row per (fold, patient): fold,patient,grade. Atomic.
void save_folds(const std::vector<Split>& folds, const std::vector<ItemKey>& items,
                const fs::path& csv);

// Writes patient,grade,rank,part,by,seed (one row per item, item order). Atomic.
void save_split(const Split& split, const std::vector<ItemKey>& items, const fs::path& csv);

// Reads a split written by save_split and checks it matches `items` (the same (patient, rank)
// pairs, each once, grades equal). Throws kBadInput naming the csv for a missing column, an unknown
// part (with its line), a row for an unknown item, a missing or duplicate item.
Split load_split(const fs::path& csv, const std::vector<ItemKey>& items);

// Counts of items and patients per part and grade (index [part][0 = LGG, 1 = HGG]).
struct SplitCounts {
  int64_t items[3][2] = {};
  int64_t patients[3][2] = {};
};
SplitCounts count_split(const Split& split, const std::vector<ItemKey>& items);

}  // namespace gg::data
