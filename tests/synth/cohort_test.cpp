// The cohort on disk: BraTS 2019 layout, storage orientations that io::read_volume must undo,
// thread-count independence, and refusal to overwrite.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "common/error.h"
#include "common/files.h"
#include "io/io.h"
#include "synth/synth.h"
#include "testing/testing.h"

namespace gg::synth {
namespace {

SynthOptions tiny_options() {
  SynthOptions o;
  o.lgg = 2;
  o.hgg = 3;
  o.size = {48, 48, 32};
  o.spacing_mm = default_spacing_mm(o.size);
  o.show_progress = false;
  o.threads = 2;
  return o;
}

// Physical position of voxel index i: origin + D · diag(spacing) · i.
std::array<double, 3> physical(const io::Volume& v, const std::array<int, 3>& i) {
  std::array<double, 3> p = v.origin_mm;
  for (int r = 0; r < 3; ++r)
    for (int a = 0; a < 3; ++a) p[r] += v.direction[3 * r + a] * v.spacing_mm[a] * i[a];
  return p;
}

TEST(StoredOrientation, FirstOfEachGradeAndAFractionAreReoriented) {
  SynthOptions o;
  o.reoriented_fraction = 0.2;
  int reoriented = 0;
  for (int i = 0; i < 46; ++i)
    reoriented += !stored_orientation(i, io::Grade::kHGG, o).is_canonical();
  EXPECT_EQ(reoriented, 10);  // ceil(46 · 0.2)
  EXPECT_FALSE(stored_orientation(0, io::Grade::kLGG, o).is_canonical());
  EXPECT_TRUE(stored_orientation(1, io::Grade::kLGG, o).is_canonical());
  o.reoriented_fraction = 0;
  EXPECT_TRUE(stored_orientation(0, io::Grade::kLGG, o).is_canonical());
  EXPECT_EQ(StoredOrientation{}.name(), "LPS");
  EXPECT_EQ((StoredOrientation{{0, 1, 2}, {true, true, false}}.name()), "RAS");
  EXPECT_EQ((StoredOrientation{{2, 0, 1}, {false, false, true}}.name()), "SLA");
}

TEST(StoredOrientation, VoxelsKeepTheirPhysicalPosition) {
  io::Volume c;
  c.size = {4, 3, 2};
  c.spacing_mm = {1, 2, 3};
  c.origin_mm = {-5, 7, 11};
  for (int i = 0; i < 24; ++i) c.voxels.push_back(float(i));
  const StoredOrientation o{{2, 0, 1}, {true, false, true}};
  const io::Volume s = to_stored_orientation(c, o);
  EXPECT_EQ(s.size, (std::array<int, 3>{2, 4, 3}));
  EXPECT_EQ(s.spacing_mm, (std::array<double, 3>{3, 1, 2}));
  EXPECT_EQ(s.direction, (std::array<double, 9>{0, 1, 0, 0, 0, -1, -1, 0, 0}));
  for (int z = 0; z < 3; ++z)
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 2; ++x) {
        const auto p = physical(s, {x, y, z});
        const int cx = int(std::lround(p[0] - c.origin_mm[0])),
                  cy = int(std::lround((p[1] - c.origin_mm[1]) / 2)),
                  cz = int(std::lround((p[2] - c.origin_mm[2]) / 3));
        ASSERT_EQ(s.at(x, y, z), c.at(cx, cy, cz)) << x << "," << y << "," << z;
      }
}

TEST(Cohort, BraTSLayoutReadsBackEqualToTheCanonicalPatients) {
  testing::TempDir tmp;
  const SynthOptions o = tiny_options();
  const std::vector<io::Case> cases = generate_cohort(tmp / "cohort", o);
  ASSERT_EQ(cases.size(), 5u);
  EXPECT_EQ(cases[0].id, "Synth_HGG_001");
  EXPECT_EQ(cases[4].id, "Synth_LGG_002");
  EXPECT_EQ(cases[0].t1, tmp / "cohort" / "HGG" / "Synth_HGG_001" / "Synth_HGG_001_t1.nii.gz");
  EXPECT_TRUE(fs::exists(tmp / "cohort" / "synth_truth.csv"));

  // What io sees is what we return.
  const std::vector<io::Case> found = io::discover_cohort(tmp / "cohort");
  ASSERT_EQ(found.size(), cases.size());
  int reoriented = 0;
  for (size_t k = 0; k < cases.size(); ++k) {
    const io::Case& c = cases[k];
    EXPECT_EQ(found[k].id, c.id);
    EXPECT_EQ(found[k].grade, c.grade);
    EXPECT_EQ(fs::canonical(found[k].seg), fs::canonical(c.seg));
    const int index = std::stoi(c.id.substr(c.id.size() - 3)) - 1;
    reoriented += !stored_orientation(index, c.grade, o).is_canonical();
    const SyntheticPatient p = make_patient(index, c.grade, o);
    const std::pair<const io::Volume*, fs::path> pairs[] = {
        {&p.t1, c.t1}, {&p.t2, c.t2}, {&p.flair, c.flair}, {&p.seg, c.seg}};
    for (const auto& [expected, path] : pairs) {
      SCOPED_TRACE(path.string());
      const io::Volume read = io::read_volume(path);
      ASSERT_EQ(read.size, expected->size);
      EXPECT_EQ(read.direction, (std::array<double, 9>{1, 0, 0, 0, 1, 0, 0, 0, 1}));
      for (int a = 0; a < 3; ++a) {
        EXPECT_NEAR(read.spacing_mm[a], expected->spacing_mm[a], 1e-4);
        EXPECT_NEAR(read.origin_mm[a], expected->origin_mm[a], 1e-3);
      }
      ASSERT_TRUE(read.voxels == expected->voxels);
    }
    EXPECT_NO_THROW(io::check_mask(io::read_volume(c.seg), c.seg));
  }
  EXPECT_EQ(reoriented, 2);  // the first patient of each grade
}

TEST(Cohort, SameFilesWhateverTheThreadCount) {
  testing::TempDir tmp;
  SynthOptions o = tiny_options();
  o.lgg = 1;
  o.hgg = 2;
  o.threads = 1;
  const auto one = generate_cohort(tmp / "one", o);
  o.threads = 3;
  const auto three = generate_cohort(tmp / "three", o);
  ASSERT_EQ(one.size(), three.size());
  for (size_t k = 0; k < one.size(); ++k)
    EXPECT_EQ(io::read_volume(one[k].flair).voxels, io::read_volume(three[k].flair).voxels);
}

TEST(Cohort, RefusesANonEmptyOutputAndLeavesItAlone) {
  testing::TempDir tmp;
  fs::create_directories(tmp / "busy");
  write_file_atomic(tmp / "busy" / "notes.txt", "mine");
  try {
    generate_cohort(tmp / "busy", tiny_options());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_EQ(e.file(), (tmp / "busy").string());
  }
  std::set<std::string> left;
  for (const auto& e : fs::directory_iterator(tmp.path()))
    left.insert(e.path().filename().string());
  EXPECT_EQ(left, (std::set<std::string>{"busy"}));  // no staging directory left behind
  EXPECT_EQ(read_file(tmp / "busy" / "notes.txt"), "mine");
}

}  // namespace
}  // namespace gg::synth
