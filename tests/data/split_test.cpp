// Splits: the paper's image-level counts, patient-level stratification, K-fold, save/load.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "common/error.h"
#include "common/files.h"
#include "data/data.h"
#include "testing/testing.h"

namespace gg::data {
namespace {

using gg::testing::TempDir;

// lgg patients "L000".. then hgg "H000".., `slices` items each (ordered by patient id, then rank).
std::vector<ItemKey> fake_items(int lgg, int hgg, int slices) {
  std::vector<std::pair<std::string, io::Grade>> patients;
  char id[16];
  for (int i = 0; i < lgg; ++i)
    std::snprintf(id, sizeof id, "L%03d", i), patients.push_back({id, io::Grade::kLGG});
  for (int i = 0; i < hgg; ++i)
    std::snprintf(id, sizeof id, "H%03d", i), patients.push_back({id, io::Grade::kHGG});
  std::sort(patients.begin(), patients.end());
  std::vector<ItemKey> items;
  for (const auto& [p, g] : patients)
    for (int r = 0; r < slices; ++r) items.push_back({p, g, r});
  return items;
}

std::map<std::string, std::set<Part>> parts_per_patient(const Split& s,
                                                        const std::vector<ItemKey>& items) {
  std::map<std::string, std::set<Part>> m;
  for (size_t i = 0; i < items.size(); ++i) m[items[i].patient].insert(s.part[i]);
  return m;
}

TEST(ImageSplit, PaperCountsFor335PatientsOf20Slices) {
  const auto items = fake_items(76, 259, 20);
  ASSERT_EQ(items.size(), 6700u);
  SplitOptions o;
  o.by = SplitBy::kImage;
  const Split s = make_split(items, o);
  EXPECT_EQ(s.by, SplitBy::kImage);
  EXPECT_EQ(s.items_in(Part::kTrain).size(), 4690u);
  EXPECT_EQ(s.items_in(Part::kVal).size(), 1005u);
  EXPECT_EQ(s.items_in(Part::kTest).size(), 1005u);
  // A permutation of items, not of patients: most patients have slices in several parts.
  int spanning = 0;
  for (const auto& [p, parts] : parts_per_patient(s, items)) spanning += parts.size() > 1;
  EXPECT_GT(spanning, 300);
}

TEST(ImageSplit, SeedReproducesAndChanges) {
  const auto items = fake_items(5, 10, 20);
  SplitOptions o;
  o.by = SplitBy::kImage;
  o.seed = 7;
  EXPECT_EQ(make_split(items, o).part, make_split(items, o).part);
  SplitOptions other = o;
  other.seed = 8;
  EXPECT_NE(make_split(items, o).part, make_split(items, other).part);
}

TEST(PatientSplit, StratifiedCountsOnBratsSizes) {
  const auto items = fake_items(76, 259, 20);
  const Split s = make_split(items, SplitOptions{});
  const SplitCounts c = count_split(s, items);
  // LGG 76: val round(11.4)=11, test 11, train 54. HGG 259: round(38.85)=39, 39, 181.
  EXPECT_EQ(c.patients[0][0], 54);
  EXPECT_EQ(c.patients[1][0], 11);
  EXPECT_EQ(c.patients[2][0], 11);
  EXPECT_EQ(c.patients[0][1], 181);
  EXPECT_EQ(c.patients[1][1], 39);
  EXPECT_EQ(c.patients[2][1], 39);
  EXPECT_EQ(c.items[0][1], 181 * 20);
  for (const auto& [p, parts] : parts_per_patient(s, items)) EXPECT_EQ(parts.size(), 1u) << p;
}

TEST(PatientSplit, SmallCohortGetsEveryGradeInEveryPart) {
  const auto items = fake_items(3, 5, 2);
  const SplitCounts c = count_split(make_split(items, SplitOptions{}), items);
  for (int p = 0; p < 3; ++p)
    for (int g = 0; g < 2; ++g) EXPECT_GE(c.patients[p][g], 1) << p << " " << g;
  EXPECT_EQ(c.patients[0][0], 1);  // LGG 3: 1/1/1
  EXPECT_EQ(c.patients[0][1], 3);  // HGG 5: val round(0.75)=1, test 1, train 3
}

TEST(PatientSplit, DifferentSeedsGiveDifferentPatients) {
  const auto items = fake_items(20, 40, 1);
  SplitOptions a, b;
  b.seed = 2;
  EXPECT_NE(make_split(items, a).part, make_split(items, b).part);
  EXPECT_EQ(make_split(items, a).part, make_split(items, a).part);
}

TEST(SplitBadInput, OneGradeOnly) {
  try {
    make_split(fake_items(0, 10, 2), SplitOptions{});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_NE(e.problem().find("only HGG patients (10), no LGG"), std::string::npos) << e.problem();
  }
  SplitOptions image;
  image.by = SplitBy::kImage;
  EXPECT_THROW(make_split(fake_items(4, 0, 2), image), Error);
  EXPECT_THROW(make_kfold(fake_items(4, 0, 2), 3, 1), Error);
}

TEST(SplitBadInput, UnknownGradeAndBadFractions) {
  auto items = fake_items(3, 3, 1);
  items[2].grade = io::Grade::kUnknown;
  EXPECT_THROW(make_split(items, SplitOptions{}), Error);
  SplitOptions o;
  o.train = 0.8;  // sums to 1.1
  EXPECT_THROW(make_split(fake_items(3, 3, 1), o), Error);
  EXPECT_THROW(make_split({}, SplitOptions{}), Error);
}

TEST(KFold, FoldsPartitionPatientsAndValidationComesFromTheTrainingFolds) {
  const auto items = fake_items(10, 20, 3);
  const auto folds = make_kfold(items, 5, 3);
  ASSERT_EQ(folds.size(), 5u);
  std::map<std::string, int> times_in_test;
  for (size_t f = 0; f < folds.size(); ++f) {
    const SplitCounts c = count_split(folds[f], items);
    EXPECT_EQ(c.patients[2][0], 2);  // 10 LGG dealt over 5 folds
    EXPECT_EQ(c.patients[2][1], 4);  // 20 HGG
    // Validation: round(8 · 0.15/0.85) = 1 LGG and round(16 · 0.15/0.85) = 3 HGG of the others.
    EXPECT_EQ(c.patients[1][0], 1);
    EXPECT_EQ(c.patients[1][1], 3);
    EXPECT_EQ(c.patients[0][0] + c.patients[0][1], 30 - 6 - 4);
    for (const auto& [p, parts] : parts_per_patient(folds[f], items)) {
      EXPECT_EQ(parts.size(), 1u) << "no patient in two parts";
      times_in_test[p] += *parts.begin() == Part::kTest;
    }
  }
  ASSERT_EQ(times_in_test.size(), 30u);
  for (const auto& [p, n] : times_in_test) EXPECT_EQ(n, 1) << p;
  // Deterministic in the seed; another seed deals other folds.
  EXPECT_EQ(make_kfold(items, 5, 3)[2].part, folds[2].part);
  EXPECT_NE(make_kfold(items, 5, 4)[2].part, folds[2].part);
}

TEST(KFold, TwoFoldsWork) {
  const auto items = fake_items(4, 6, 2);
  const auto folds = make_kfold(items, 2, 1);
  ASSERT_EQ(folds.size(), 2u);
  for (const auto& f : folds) {
    const SplitCounts c = count_split(f, items);
    EXPECT_EQ(c.patients[2][0], 2);
    EXPECT_GE(c.patients[1][0], 1);
    EXPECT_GE(c.patients[0][0], 1);
  }
}

TEST(KFoldBadInput, SaysWhatIsWrong) {
  testing::expect_bad_input([] { make_kfold(fake_items(4, 6, 1), 1, 1); }, "",
                            "--folds must be at least 2, got 1");
  testing::expect_bad_input(
      [] { make_kfold(fake_items(4, 9, 1), 5, 1); }, "",
      "--folds 5 is more than the 4 LGG patients (the cohort has 4 LGG, 9 HGG)");
  testing::expect_bad_input([] { make_kfold(fake_items(2, 9, 1), 2, 1); }, "",
                            "2 LGG patients are too few for 2 folds");
  testing::expect_bad_input([] { make_kfold(fake_items(0, 9, 1), 2, 1); }, "",
                            "the cohort has only HGG patients");
}

TEST(SaveLoad, RoundTrip) {
  TempDir dir;
  const auto items = fake_items(4, 6, 3);
  SplitOptions o;
  o.by = SplitBy::kImage;
  o.seed = 42;
  const Split s = make_split(items, o);
  save_split(s, items, dir / "split.csv");
  const std::string text = read_file(dir / "split.csv");
  EXPECT_EQ(text.substr(0, text.find('\n')), "patient,grade,rank,part,by,seed");
  const Split r = load_split(dir / "split.csv", items);
  EXPECT_EQ(r.part, s.part);
  EXPECT_EQ(r.by, SplitBy::kImage);
  EXPECT_EQ(r.seed, 42u);
}

TEST(SaveLoad, MinimalColumnsInferPatientSplit) {
  TempDir dir;
  const auto items = fake_items(1, 2, 2);  // H000 H001 L000
  write_file_atomic(dir / "s.csv",
                    "patient,rank,part\nH000,0,train\nH000,1,train\nH001,0,test\nH001,1,test\n"
                    "L000,1,val\nL000,0,val\n");
  const Split s = load_split(dir / "s.csv", items);
  EXPECT_EQ(s.by, SplitBy::kPatient);
  EXPECT_EQ(s.part, (std::vector<Part>{Part::kTrain, Part::kTrain, Part::kTest, Part::kTest,
                                       Part::kVal, Part::kVal}));
}

void expect_load_error(const fs::path& csv, const std::vector<ItemKey>& items,
                       const std::string& what) {
  try {
    load_split(csv, items);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_EQ(e.file(), csv.string());
    EXPECT_NE(e.problem().find(what), std::string::npos) << e.problem();
  }
}

TEST(SaveLoad, MismatchesAreNamed) {
  TempDir dir;
  const auto items = fake_items(1, 1, 1);  // H000, L000
  write_file_atomic(dir / "a.csv", "patient,rank,part\nH000,0,train\n");
  expect_load_error(dir / "a.csv", items, "no row for patient L000 rank 0");
  write_file_atomic(dir / "b.csv", "patient,rank,part\nH000,0,train\nL000,0,holdout\n");
  expect_load_error(dir / "b.csv", items, "line 3: unknown part 'holdout'");
  write_file_atomic(dir / "c.csv", "patient,rank,part\nH000,0,train\nL000,0,val\nX,0,test\n");
  expect_load_error(dir / "c.csv", items, "line 4: patient X rank 0 is not in the slice store");
  write_file_atomic(dir / "d.csv", "patient,rank,part\nH000,0,train\nH000,0,val\n");
  expect_load_error(dir / "d.csv", items, "duplicate row");
  write_file_atomic(dir / "e.csv", "patient,part\nH000,train\n");
  expect_load_error(dir / "e.csv", items, "needs the columns");
  write_file_atomic(dir / "f.csv", "patient,grade,rank,part\nH000,LGG,0,train\nL000,LGG,0,val\n");
  expect_load_error(dir / "f.csv", items, "grade LGG but the store says HGG");
}

TEST(Names, PartsAndSplitBy) {
  EXPECT_STREQ(part_name(Part::kVal), "val");
  EXPECT_EQ(parse_part("test"), Part::kTest);
  EXPECT_EQ(parse_split_by("image"), SplitBy::kImage);
  EXPECT_THROW(parse_split_by("slice"), Error);
}

}  // namespace
}  // namespace gg::data
