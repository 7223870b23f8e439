// Patient-level, image-level and K-fold splits; saving and loading split.csv.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "common/csv.h"
#include "common/error.h"
#include "common/files.h"
#include "data/data.h"

namespace gg::data {

namespace {

// Uniform integer in [0, n) by rejection (unbiased, and the same on every standard library).
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = rng();
  while (x >= limit);
  return x % n;
}

template <typename T>
void shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[uniform_below(rng, i)]);
}

int grade_slot(io::Grade g) { return g == io::Grade::kHGG ? 1 : 0; }

// The patients of each grade ([0] LGG, [1] HGG), sorted by id; checks the cohort can be split.
std::array<std::vector<std::string>, 2> patients_by_grade(const std::vector<ItemKey>& items) {
  if (items.empty()) throw_bad_input("", "no items to split", "prepare a cohort first");
  std::map<std::string, io::Grade> grade_of;
  for (const ItemKey& it : items) {
    if (it.grade == io::Grade::kUnknown)
      throw_bad_input("", "patient " + it.patient + " has no grade",
                      "training splits need every patient's grade (LGG or HGG)");
    auto [pos, inserted] = grade_of.emplace(it.patient, it.grade);
    if (!inserted && pos->second != it.grade)
      throw_bad_input("", "patient " + it.patient + " has items of both grades",
                      "fix the cohort's grades");
  }
  std::array<std::vector<std::string>, 2> out;
  for (const auto& [patient, grade] : grade_of) out[size_t(grade_slot(grade))].push_back(patient);
  for (int g = 0; g < 2; ++g)
    if (out[size_t(g)].empty())
      throw_bad_input("",
                      std::string("the cohort has only ") + (g == 0 ? "HGG" : "LGG") +
                          " patients (" + std::to_string(out[size_t(1 - g)].size()) + "), no " +
                          (g == 0 ? "LGG" : "HGG"),
                      "a grading model needs patients of both grades");
  return out;
}

void validate(const SplitOptions& o) {
  const double f[3] = {o.train, o.val, o.test};
  for (double x : f)
    if (!(x >= 0 && x <= 1))
      throw_bad_input("", "split fractions must be within [0, 1]", "use e.g. 0.70/0.15/0.15");
  if (std::abs(o.train + o.val + o.test - 1.0) > 1e-6 || o.train <= 0)
    throw_bad_input("", "split fractions must sum to 1 with a non-empty training part",
                    "use e.g. 0.70/0.15/0.15");
}

// Part sizes for n patients of one grade.
std::array<int64_t, 3> patient_counts(int64_t n, const SplitOptions& o) {
  int64_t val = std::llround(double(n) * o.val), test = std::llround(double(n) * o.test);
  if (n >= 3) {  // each part at least one patient of this grade (when its fraction asks for any)
    if (o.val > 0) val = std::max<int64_t>(val, 1);
    if (o.test > 0) test = std::max<int64_t>(test, 1);
  }
  while (val + test > n - 1 && (val > 0 || test > 0))
    (val >= test ? val : test) -= 1;  // keep ≥ 1 train
  return {n - val - test, val, test};
}

Split split_by_patient(const std::vector<ItemKey>& items, const SplitOptions& o) {
  auto patients = patients_by_grade(items);
  std::mt19937_64 rng(o.seed);
  std::map<std::string, Part> part_of;
  for (auto& list : patients) {
    shuffle(list, rng);
    const auto counts = patient_counts(static_cast<int64_t>(list.size()), o);
    for (size_t j = 0; j < list.size(); ++j) {
      const auto k = static_cast<int64_t>(j);
      part_of[list[j]] = k < counts[0]               ? Part::kTrain
                         : k < counts[0] + counts[1] ? Part::kVal
                                                     : Part::kTest;
    }
  }
  Split s{SplitBy::kPatient, o.seed, {}};
  s.part.reserve(items.size());
  for (const ItemKey& it : items) s.part.push_back(part_of.at(it.patient));
  return s;
}

Split split_by_image(const std::vector<ItemKey>& items, const SplitOptions& o) {
  patients_by_grade(items);  // the same cohort checks
  const auto n = static_cast<int64_t>(items.size());
  std::vector<int64_t> order(items.size());
  for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
  std::mt19937_64 rng(o.seed);
  shuffle(order, rng);
  const int64_t n_train = std::min<int64_t>(n, std::llround(double(n) * o.train));
  const int64_t n_val = std::min<int64_t>(n - n_train, std::llround(double(n) * o.val));
  Split s{SplitBy::kImage, o.seed, std::vector<Part>(items.size(), Part::kTest)};
  for (int64_t k = 0; k < n_train + n_val; ++k)
    s.part[size_t(order[size_t(k)])] = k < n_train ? Part::kTrain : Part::kVal;
  return s;
}

}  // namespace

const char* split_by_name(SplitBy by) { return by == SplitBy::kImage ? "image" : "patient"; }

SplitBy parse_split_by(const std::string& s) {
  if (s == "patient") return SplitBy::kPatient;
  if (s == "image") return SplitBy::kImage;
  throw_bad_input("", "unknown split '" + s + "'", "use patient or image");
}

const char* part_name(Part p) {
  switch (p) {
    case Part::kTrain:
      return "train";
    case Part::kVal:
      return "val";
    case Part::kTest:
      return "test";
  }
  return "";
}

Part parse_part(const std::string& s) {
  if (s == "train") return Part::kTrain;
  if (s == "val") return Part::kVal;
  if (s == "test") return Part::kTest;
  throw_bad_input("", "unknown part '" + s + "'", "use train, val or test");
}

std::vector<ItemKey> item_keys(const prep::SliceStore& store) {
  std::vector<ItemKey> keys;
  keys.reserve(store.items.size());
  for (const auto& it : store.items) keys.push_back({it.patient, it.grade, it.rank});
  return keys;
}

std::vector<int64_t> Split::items_in(Part p) const {
  std::vector<int64_t> out;
  for (size_t i = 0; i < part.size(); ++i)
    if (part[i] == p) out.push_back(static_cast<int64_t>(i));
  return out;
}

Split make_split(const std::vector<ItemKey>& items, const SplitOptions& options) {
  validate(options);
  return options.by == SplitBy::kImage ? split_by_image(items, options)
                                       : split_by_patient(items, options);
}

std::vector<Split> make_kfold(const std::vector<ItemKey>& items, int folds, uint64_t seed,
                              double val_fraction) {
  if (folds < 2)
    throw_bad_input("", "--folds must be at least 2, got " + std::to_string(folds),
                    "use e.g. --folds 5");
  if (!(val_fraction > 0 && val_fraction < 1))
    throw_bad_input("", "the validation fraction must lie in (0, 1)");
  auto patients = patients_by_grade(items);
  const size_t n_lgg = patients[0].size(), n_hgg = patients[1].size();
  const size_t rarer = std::min(n_lgg, n_hgg);
  if (size_t(folds) > rarer)
    throw_bad_input(
        "",
        fmt::format("--folds {} is more than the {} {} patients (the cohort has {} LGG, "
                    "{} HGG): every test fold needs patients of both grades",
                    folds, rarer, n_lgg <= n_hgg ? "LGG" : "HGG", n_lgg, n_hgg),
        fmt::format("use --folds {} or fewer", rarer));
  // Each fold's training folds must give a grade at least one train and one validation patient.
  for (int g = 0; g < 2; ++g) {
    const size_t n = patients[size_t(g)].size();
    const size_t largest_fold = (n + size_t(folds) - 1) / size_t(folds);
    if (n - largest_fold < 2)
      throw_bad_input("",
                      fmt::format("{} {} patients are too few for {} folds: each fold needs one "
                                  "for training and one for validation besides its test patients",
                                  n, g == 0 ? "LGG" : "HGG", folds),
                      "use fewer folds or a larger cohort");
  }
  std::mt19937_64 rng(seed);
  std::map<std::string, int> fold_of;
  int next = 0;
  for (auto& list : patients) {
    shuffle(list, rng);
    for (const auto& p : list) fold_of[p] = next++ % folds;
  }
  std::vector<Split> splits;
  for (int f = 0; f < folds; ++f) {
    std::set<std::string> val;
    std::mt19937_64 val_rng(seed ^ (0x9e3779b97f4a7c15ULL * uint64_t(f + 1)));
    for (const auto& list : patients) {  // sorted by id, then shuffled above: deterministic
      std::vector<std::string> rest;
      for (const auto& p : list)
        if (fold_of.at(p) != f) rest.push_back(p);
      shuffle(rest, val_rng);
      const auto n_val = std::clamp<int64_t>(std::llround(double(rest.size()) * val_fraction), 1,
                                             int64_t(rest.size()) - 1);
      val.insert(rest.begin(), rest.begin() + n_val);
    }
    Split s{SplitBy::kPatient, seed, {}};
    s.part.reserve(items.size());
    for (const ItemKey& it : items)
      s.part.push_back(fold_of.at(it.patient) == f ? Part::kTest
                       : val.count(it.patient)     ? Part::kVal
                                                   : Part::kTrain);
    splits.push_back(std::move(s));
  }
  return splits;
}

void save_folds(const std::vector<Split>& folds, const std::vector<ItemKey>& items,
                const fs::path& csv) {
  std::string s = "fold,patient,grade\n";
  for (size_t f = 0; f < folds.size(); ++f) {
    std::set<std::string> done;
    for (size_t i = 0; i < items.size(); ++i)
      if (folds[f].part[i] == Part::kTest && done.insert(items[i].patient).second)
        s += std::to_string(f) + "," + csv_field(items[i].patient) + "," +
             io::grade_name(items[i].grade) + "\n";
  }
  write_file_atomic(csv, s);
}

void save_split(const Split& split, const std::vector<ItemKey>& items, const fs::path& csv) {
  if (split.part.size() != items.size())
    throw_runtime(csv.string(), "split has " + std::to_string(split.part.size()) + " parts for " +
                                    std::to_string(items.size()) + " items");
  std::string s = "patient,grade,rank,part,by,seed\n";
  const std::string tail =
      std::string(",") + split_by_name(split.by) + "," + std::to_string(split.seed) + "\n";
  for (size_t i = 0; i < items.size(); ++i)
    s += csv_field(items[i].patient) + "," + io::grade_name(items[i].grade) + "," +
         std::to_string(items[i].rank) + "," + part_name(split.part[i]) + tail;
  write_file_atomic(csv, s);
}

Split load_split(const fs::path& csv, const std::vector<ItemKey>& items) {
  const std::string file = csv.string();
  const char* const fix = "make the split again with `gliomagrade split STORE` for this store";
  const CsvTable t = read_csv(csv);
  const int c_patient = t.column("patient"), c_rank = t.column("rank"), c_part = t.column("part");
  const int c_grade = t.column("grade"), c_by = t.column("by"), c_seed = t.column("seed");
  if (c_patient < 0 || c_rank < 0 || c_part < 0)
    throw_bad_input(file, "split file needs the columns patient, rank and part", fix);
  std::map<std::pair<std::string, int>, size_t> index_of;
  for (size_t i = 0; i < items.size(); ++i) index_of[{items[i].patient, items[i].rank}] = i;
  Split s;
  s.part.assign(items.size(), Part::kTrain);
  std::vector<bool> seen(items.size(), false);
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    const std::string where = "line " + std::to_string(t.line[r]) + ": ";
    const int rank = csv_int(row[size_t(c_rank)], t.place(r, c_rank), fix);
    const auto found = index_of.find({row[size_t(c_patient)], rank});
    if (found == index_of.end())
      throw_bad_input(file,
                      where + "patient " + row[size_t(c_patient)] + " rank " +
                          std::to_string(rank) +
                          " is not in the slice store (a split of another store?)",
                      fix);
    const size_t i = found->second;
    if (seen[i])
      throw_bad_input(
          file,
          where + "duplicate row for patient " + items[i].patient + " rank " + std::to_string(rank),
          fix);
    seen[i] = true;
    if (c_grade >= 0 && row[size_t(c_grade)] != io::grade_name(items[i].grade))
      throw_bad_input(file,
                      where + "grade " + row[size_t(c_grade)] + " but the store says " +
                          io::grade_name(items[i].grade) + " for patient " + items[i].patient,
                      fix);
    try {
      s.part[i] = parse_part(row[size_t(c_part)]);
      if (c_by >= 0 && r == 0) s.by = parse_split_by(row[size_t(c_by)]);
    } catch (const Error& e) {
      throw_bad_input(file, where + e.problem(), e.fix());
    }
    if (c_seed >= 0 && r == 0) s.seed = csv_uint64(row[size_t(c_seed)], t.place(r, c_seed), fix);
  }
  const auto missing = std::find(seen.begin(), seen.end(), false);
  if (missing != seen.end()) {
    const ItemKey& it = items[size_t(missing - seen.begin())];
    throw_bad_input(file,
                    "no row for patient " + it.patient + " rank " + std::to_string(it.rank) + " (" +
                        std::to_string(std::count(seen.begin(), seen.end(), false)) +
                        " store items missing)",
                    fix);
  }
  if (c_by < 0) {  // an older or hand-made file: a split is by patient if no patient spans parts
    std::map<std::string, Part> first_part;
    s.by = SplitBy::kPatient;
    for (size_t i = 0; i < items.size(); ++i)
      if (first_part.emplace(items[i].patient, s.part[i]).first->second != s.part[i])
        s.by = SplitBy::kImage;
  }
  return s;
}

SplitCounts count_split(const Split& split, const std::vector<ItemKey>& items) {
  SplitCounts c;
  std::set<std::pair<std::string, int>> counted;  // (patient, part)
  for (size_t i = 0; i < items.size() && i < split.part.size(); ++i) {
    const int p = static_cast<int>(split.part[i]), g = grade_slot(items[i].grade);
    ++c.items[p][g];
    if (counted.insert({items[i].patient, p}).second) ++c.patients[p][g];
  }
  return c;
}

}  // namespace gg::data
