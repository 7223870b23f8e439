// prepare_cohort end to end on tiny hand-made patients: store layout, contents, reuse, and every
// bad input (one error naming the file, nothing left behind).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "common/csv.h"
#include "common/error.h"
#include "common/files.h"
#include "io/io.h"
#include "prep/prep.h"
#include "prep_fixture.h"
#include "testing/testing.h"

namespace gg::prep {
namespace {

using gg::testing::TempDir;
using testing::write_patient;

PrepareOptions tiny_options() {
  PrepareOptions o;
  o.slices = 6;
  o.size = 16;
  o.threads = 2;
  o.show_progress = false;
  return o;
}

std::vector<io::Case> tiny_cohort(const fs::path& root) {
  return {write_patient(root, "P3", io::Grade::kHGG, 7, 3),
          write_patient(root, "P1", io::Grade::kLGG, 1, 1),
          write_patient(root, "P2", io::Grade::kHGG, 14, 2)};
}

// Entries of a directory's parent other than the given ones: staged leftovers show up here.
std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(PrepareCohort, WritesItemsInPatientOrderWithShiftedWindows) {
  TempDir dir;
  const auto cases = tiny_cohort(dir / "data");
  const SliceStore store = prepare_cohort(cases, dir / "store", tiny_options());
  EXPECT_FALSE(store.reused);
  ASSERT_EQ(store.items.size(), 18u);
  EXPECT_EQ(store.items[0].patient, "P1");
  EXPECT_EQ(store.items[0].grade, io::Grade::kLGG);
  EXPECT_EQ(store.items[0].z, 0);  // centre 1: window 1-3.. shifted to 0..5
  EXPECT_EQ(store.items[5].z, 5);
  EXPECT_EQ(store.items[6].patient, "P2");
  EXPECT_EQ(store.items[6].z, 10);  // centre 14 of 16: window 10..15
  EXPECT_EQ(store.items[12].patient, "P3");
  EXPECT_EQ(store.items[12].z, 4);  // centre 7: 7-3 .. 7+2
  EXPECT_EQ(store.items[17].rank, 5);
  EXPECT_EQ(entries(dir.path()), (std::vector<std::string>{"data", "store"}));
  EXPECT_EQ(entries(dir / "store"),
            (std::vector<std::string>{"flair.u8", "index.csv", "store.json", "t1.u8", "t2.u8"}));
  EXPECT_EQ(fs::file_size(dir / "store/t1.u8"), 32u + 18u * 16u * 16u);
}

TEST(PrepareCohort, IndexCsvHasOneLinePerItemAndSequence) {
  TempDir dir;
  prepare_cohort(tiny_cohort(dir / "data"), dir / "store", tiny_options());
  const CsvTable t = read_csv(dir / "store/index.csv");
  for (const char* c : {"row", "patient", "grade", "sequence", "z", "rank", "offset"})
    EXPECT_GE(t.column(c), 0) << c;
  ASSERT_EQ(t.rows.size(), 54u);
  EXPECT_EQ(t.rows[0], (std::vector<std::string>{"0", "P1", "LGG", "t1", "0", "0", "32"}));
  EXPECT_EQ(t.rows[2], (std::vector<std::string>{"0", "P1", "LGG", "flair", "0", "0", "32"}));
  EXPECT_EQ(t.rows[53], (std::vector<std::string>{"17", "P3", "HGG", "flair", "9", "5",
                                                  std::to_string(32 + 17 * 256)}));
}

TEST(PrepareCohort, RowsEqualTheSliceFunctions) {
  TempDir dir;
  const auto cases = tiny_cohort(dir / "data");
  const SliceStore written = prepare_cohort(cases, dir / "store", tiny_options());
  const SliceStore store = open_slice_store(dir / "store");
  EXPECT_EQ(store.key, written.key);
  EXPECT_EQ(store.items.size(), 18u);
  EXPECT_EQ(store.size, 16);
  EXPECT_EQ(store.slices_per_patient, 6);
  // Item 14 = P3 rank 2 = z 6; compare with normalise + slice of P3's T2.
  std::vector<uint8_t> rows(2 * 256);
  read_slices(store, io::Sequence::kT2, {14, 0}, rows.data());
  const io::Volume t2 = normalise_intensities(io::read_volume(cases[0].t2), 0.5, 99.5);
  const auto expected = axial_slice_u8(t2, 6, 16);
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), rows.begin()));
  const io::Volume p1_t2 = normalise_intensities(io::read_volume(cases[1].t2), 0.5, 99.5);
  const auto expected0 = axial_slice_u8(p1_t2, 0, 16);
  EXPECT_TRUE(std::equal(expected0.begin(), expected0.end(), rows.begin() + 256));
  EXPECT_THROW(read_slices(store, io::Sequence::kT1, {18}, rows.data()), std::out_of_range);
}

TEST(PrepareCohort, ReorientedInputGivesTheSameRows) {
  TempDir dir;
  const io::Case lps = write_patient(dir / "a", "P", io::Grade::kHGG, 7, 0);
  // The same patient stored RAS (x and y flipped): reading reorients it back.
  io::Case ras = lps;
  for (int k = 0; k < 4; ++k) {
    const fs::path& src = k < 3 ? lps.sequence_path(io::kSequences[size_t(k)]) : lps.seg;
    io::Volume v = io::read_volume(src);
    io::Volume flipped = v;
    for (int z = 0; z < v.size[2]; ++z)
      for (int y = 0; y < v.size[1]; ++y)
        for (int x = 0; x < v.size[0]; ++x)
          flipped.at(v.size[0] - 1 - x, v.size[1] - 1 - y, z) = v.at(x, y, z);
    flipped.direction = {-1, 0, 0, 0, -1, 0, 0, 0, 1};
    flipped.origin_mm = {double(v.size[0] - 1), double(v.size[1] - 1), 0};
    const fs::path dst = dir / "b" / src.filename();
    io::write_volume(flipped, dst, true);
    (k == 0 ? ras.t1 : k == 1 ? ras.t2 : k == 2 ? ras.flair : ras.seg) = dst;
  }
  prepare_cohort({lps}, dir / "s1", tiny_options());
  prepare_cohort({ras}, dir / "s2", tiny_options());
  for (io::Sequence s : io::kSequences)
    EXPECT_EQ(read_file(tensor_path(dir / "s1", s)), read_file(tensor_path(dir / "s2", s)))
        << io::sequence_name(s);
}

TEST(PrepareCohort, RerunReusesAndOptionChangeRebuilds) {
  TempDir dir;
  const auto cases = tiny_cohort(dir / "data");
  const SliceStore first = prepare_cohort(cases, dir / "store", tiny_options());
  const auto mtime = fs::last_write_time(dir / "store/t1.u8");
  const SliceStore again = prepare_cohort(cases, dir / "store", tiny_options());
  EXPECT_TRUE(again.reused);
  EXPECT_EQ(again.key, first.key);
  EXPECT_EQ(fs::last_write_time(dir / "store/t1.u8"), mtime);
  PrepareOptions other = tiny_options();
  other.slices = 4;
  const SliceStore rebuilt = prepare_cohort(cases, dir / "store", other);
  EXPECT_FALSE(rebuilt.reused);
  EXPECT_NE(rebuilt.key, first.key);
  EXPECT_EQ(open_slice_store(dir / "store").items.size(), 12u);
  // A changed input file changes the key.
  io::write_volume(testing::brain_volume(io::Sequence::kT1, 99), cases[0].t1, true);
  EXPECT_FALSE(prepare_cohort(cases, dir / "store", other).reused);
}

TEST(PrepareCohort, ThreadCountDoesNotChangeTheStore) {
  TempDir dir;
  const auto cases = tiny_cohort(dir / "data");
  PrepareOptions one = tiny_options();
  one.threads = 1;
  prepare_cohort(cases, dir / "s1", one);
  prepare_cohort(cases, dir / "s2", tiny_options());
  for (io::Sequence s : io::kSequences)
    EXPECT_EQ(read_file(tensor_path(dir / "s1", s)), read_file(tensor_path(dir / "s2", s)));
  EXPECT_EQ(read_file(dir / "s1/index.csv"), read_file(dir / "s2/index.csv"));
}

TEST(PrepareCohort, PngExport) {
  TempDir dir;
  PrepareOptions o = tiny_options();
  o.export_png = true;
  prepare_cohort({write_patient(dir / "data", "P1", io::Grade::kLGG, 7, 1)}, dir / "store", o);
  EXPECT_TRUE(fs::is_regular_file(dir / "store/png/P1/flair_r0_z4.png"));
  EXPECT_TRUE(fs::is_regular_file(dir / "store/png/P1/t1_r5_z9.png"));
  int count = 0;
  for (const auto& e : fs::directory_iterator(dir / "store/png/P1")) count += e.is_regular_file();
  EXPECT_EQ(count, 18);
}

TEST(PrepareCohort, AskingForPngsRebuildsAStoreWithout) {
  TempDir dir;
  const auto cases = tiny_cohort(dir / "data");
  prepare_cohort(cases, dir / "store", tiny_options());
  PrepareOptions png = tiny_options();
  png.export_png = true;
  EXPECT_FALSE(prepare_cohort(cases, dir / "store", png).reused);
  EXPECT_TRUE(fs::is_directory(dir / "store/png/P2"));
  EXPECT_TRUE(prepare_cohort(cases, dir / "store", png).reused);
  PrepareOptions more_threads = png;
  more_threads.threads = 1;
  EXPECT_TRUE(prepare_cohort(cases, dir / "store", more_threads).reused);
}

// ---- bad input: kBadInput naming the file, and no store (nor staging dir) left behind ----

template <typename F>
void expect_bad_input(const fs::path& root, F f, const std::string& file_part,
                      const std::string& what_part) {
  gg::testing::expect_bad_input(f, file_part, what_part);
  EXPECT_EQ(entries(root), (std::vector<std::string>{"data"})) << "left something behind";
}

struct BadInput : ::testing::Test {
  TempDir dir;
  std::vector<io::Case> cases = tiny_cohort(dir / "data");
  void prepare() { prepare_cohort(cases, dir / "store", tiny_options()); }
  void expect(const std::string& file_part, const std::string& what_part) {
    expect_bad_input(
        dir.path(), [&] { prepare(); }, file_part, what_part);
  }
};

TEST_F(BadInput, SequenceOnAnotherGrid) {
  io::Volume v = testing::brain_volume(io::Sequence::kT2, 2);
  v.spacing_mm = {1, 1, 1.5};
  io::write_volume(v, cases[2].t2, true);  // P2
  expect("P2_t2.nii.gz", "not on the mask's grid (spacing");
}

TEST_F(BadInput, MaskOnAnotherGrid) {
  io::Volume m = testing::tumour_mask(7);
  m.origin_mm = {0, 5, 0};
  io::write_volume(m, cases[0].seg, true);  // P3: the sequences now differ from it
  expect("P3_t1.nii.gz", "origin");
}

TEST_F(BadInput, EmptyMask) {
  io::Volume m = testing::tumour_mask(7);
  std::fill(m.voxels.begin(), m.voxels.end(), 0.0f);
  io::write_volume(m, cases[1].seg, true);
  expect("P1_seg.nii.gz", "mask is empty");
}

TEST_F(BadInput, UnknownMaskLabels) {
  io::Volume m = testing::tumour_mask(7);
  m.at(0, 0, 0) = 7;  // (3 is BraTS 2015's non-enhancing core: read, with a notice)
  io::write_volume(m, cases[1].seg, true);
  expect("P1_seg.nii.gz", "labels outside {0,1,2,4}: 7");
}

TEST_F(BadInput, NanVoxels) {
  io::Volume v = testing::brain_volume(io::Sequence::kFlair, 2);
  v.at(5, 5, 5) = std::numeric_limits<float>::quiet_NaN();
  io::write_volume(v, cases[2].flair, false);  // float32 keeps the NaN
  expect("P2_flair.nii.gz", "NaN or infinite");
}

TEST_F(BadInput, InfVoxels) {
  io::Volume v = testing::brain_volume(io::Sequence::kT1, 2);
  v.at(5, 5, 5) = -std::numeric_limits<float>::infinity();
  io::write_volume(v, cases[2].t1, false);
  expect("P2_t1.nii.gz", "NaN or infinite");
}

TEST_F(BadInput, ConstantVolume) {
  io::Volume v = testing::brain_volume(io::Sequence::kT1, 2);
  std::fill(v.voxels.begin(), v.voxels.end(), 7.0f);
  io::write_volume(v, cases[2].t1, true);
  expect("P2_t1.nii.gz", "constant");
}

TEST_F(BadInput, ConstantBrain) {
  io::Volume v = testing::brain_volume(io::Sequence::kT1, 2);
  for (float& x : v.voxels) x = x != 0 ? 300.0f : 0.0f;
  io::write_volume(v, cases[2].t1, true);
  expect("P2_t1.nii.gz", "brain intensities are constant");
}

TEST_F(BadInput, TruncatedVolume) {
  const std::string bytes = read_file(cases[0].flair);
  write_file_atomic(cases[0].flair, bytes.substr(0, bytes.size() * 2 / 3));
  expect("P3_flair.nii.gz", "");
}

TEST_F(BadInput, NotNifti) {
  write_file_atomic(cases[0].t2, "not an image at all");
  expect("P3_t2.nii.gz", "");
}

TEST_F(BadInput, FourDVolume) {
  // Rewrite P1's T1 as a 4-D file with 2 volumes via the header's dim[0]/dim[4] (uncompressed).
  io::Volume v = testing::brain_volume(io::Sequence::kT1, 1);
  v.size[2] = testing::kNz / 2;  // keep the byte count: 2 × (24×20×8)
  v.voxels.resize(size_t(v.num_voxels()));
  const fs::path nii = cases[1].t1.parent_path() / "P1_t1.nii";
  io::write_volume(v, nii, true);
  std::string bytes = read_file(nii);
  const int16_t dims[5] = {4, testing::kNx, testing::kNy, testing::kNz / 4, 2};
  std::memcpy(&bytes[40], dims, sizeof dims);
  write_file_atomic(nii, bytes);
  cases[1].t1 = nii;
  expect("P1_t1.nii", "2 volumes");
}

TEST_F(BadInput, MissingMask) {
  cases[1].seg.clear();
  expect("P1", "has no mask");
}

TEST_F(BadInput, TooManySlices) {
  PrepareOptions o = tiny_options();
  o.slices = 17;  // volumes have 16
  expect_bad_input(
      dir.path(), [&] { prepare_cohort(cases, dir / "store", o); }, "P1_seg.nii.gz",
      "cannot take 17 slices");
}

// When every patient fails, the error names the first in order, whatever the threads' timing
// (it used to name whichever failed first, so TooManySlices failed now and then under load).
TEST_F(BadInput, ParallelFailuresReportTheFirstPatientInOrder) {
  PrepareOptions o = tiny_options();
  o.slices = 17;
  o.threads = 3;
  for (int attempt = 0; attempt < 20; ++attempt) {
    try {
      prepare_cohort(cases, dir / "store", o);
      FAIL() << "no error";
    } catch (const Error& e) {
      ASSERT_NE(e.file().find("P1_seg.nii.gz"), std::string::npos) << "attempt " << attempt;
    }
  }
}

TEST_F(BadInput, OutputDirectoryHoldsSomethingElse) {
  write_file_atomic(dir / "store/notes.txt", "mine");
  try {
    prepare();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_EQ(e.file(), (dir / "store").string());
  }
  EXPECT_EQ(entries(dir / "store"), (std::vector<std::string>{"notes.txt"}));
  EXPECT_EQ(entries(dir.path()), (std::vector<std::string>{"data", "store"}));
}

TEST_F(BadInput, FailedRebuildKeepsTheOldStore) {
  prepare();
  const std::string index = read_file(dir / "store/index.csv");
  write_file_atomic(cases[0].t2, "broken");
  EXPECT_THROW(prepare(), Error);
  EXPECT_EQ(read_file(dir / "store/index.csv"), index);
  EXPECT_EQ(entries(dir.path()), (std::vector<std::string>{"data", "store"}));
}

TEST(OpenSliceStore, CorruptStoresAreNamed) {
  TempDir dir;
  prepare_cohort(tiny_cohort(dir / "data"), dir / "store", tiny_options());
  const std::string t1 = read_file(dir / "store/t1.u8");
  write_file_atomic(dir / "store/t1.u8", t1.substr(0, t1.size() - 10));
  try {
    open_slice_store(dir / "store");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_EQ(e.file(), (dir / "store/t1.u8").string());
  }
  fs::remove(dir / "store/store.json");
  EXPECT_THROW(open_slice_store(dir / "store"), Error);
  EXPECT_THROW(open_slice_store(dir / "nowhere"), Error);
}

TEST(OpenSliceStore, BadNumberInIndexNamesLineAndColumn) {
  TempDir dir;
  prepare_cohort(tiny_cohort(dir / "data"), dir / "store", tiny_options());
  const fs::path index = dir / "store/index.csv";
  std::string text = read_file(index);
  const std::string row = "\n0,P1,LGG,t2,0,0,32\n";  // line 3
  ASSERT_NE(text.find(row), std::string::npos);
  text.replace(text.find(row), row.size(), "\n0,P1,LGG,t2,zero,0,32\n");
  write_file_atomic(index, text);
  try {
    open_slice_store(dir / "store");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_EQ(e.file(), index.string());
    EXPECT_EQ(e.problem(), "line 3: z 'zero' is not an integer");
  }
}

}  // namespace
}  // namespace gg::prep
