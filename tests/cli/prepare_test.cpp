// End-to-end `gliomagrade prepare`: a tiny cohort written as NIfTI bytes, then every bad input of
// issue 2 item 6 through the command line: exit code 3, one error line naming the file, and no
// store (nor staging directory) left behind.
#include <gtest/gtest.h>

#include <functional>
#include <limits>

#include "common/files.h"
#include "testing/testing.h"
#include "tiny_cohort.h"

namespace gg {
namespace {

using namespace cli_testing;
using testing::run_cli;
using testing::TempDir;

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

std::string prepare_args(const fs::path& data, const fs::path& out, const std::string& extra = "") {
  return "--quiet prepare " + quoted(data) + " --out " + quoted(out) + " --slices 4 --size 16 " +
         extra;
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(PrepareCommand, WritesStoreThenReusesIt) {
  TempDir dir;
  write_cohort(dir / "data", 2, 4);
  auto r = run_cli(prepare_args(dir / "data", dir / "store", "--threads 2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("wrote a slice store for 6 patients (2 LGG, 4 HGG): 24 slices"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("store: " + (dir / "store").string()), std::string::npos) << r.output;
  for (const char* f : {"index.csv", "t1.u8", "t2.u8", "flair.u8", "store.json"})
    EXPECT_TRUE(fs::exists(dir / "store" / f)) << f;
  EXPECT_EQ(fs::file_size(dir / "store/flair.u8"), 32u + 24u * 16u * 16u);
  const std::string index = read_file(dir / "store/index.csv");
  EXPECT_EQ(index.substr(0, index.find('\n')), "row,patient,grade,sequence,z,rank,offset");
  EXPECT_NE(index.find("\n0,H0,HGG,t1,1,0,32\n"), std::string::npos)
      << index.substr(0, 200);  // H0: z*=3, 1..4

  r = run_cli(prepare_args(dir / "data", dir / "store"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("reused the slice store"), std::string::npos) << r.output;
}

TEST(PrepareCommand, ManifestAndPng) {
  TempDir dir;
  write_cohort(dir / "data", 1, 1);
  write_file_atomic(
      dir / "data/cohort.csv",
      "id,grade,t1,t2,flair,seg\n"
      "a,LGG,LGG/L0/L0_t1.nii,LGG/L0/L0_t2.nii,LGG/L0/L0_flair.nii,LGG/L0/L0_seg.nii\n"
      "b,HGG,HGG/H0/H0_t1.nii,HGG/H0/H0_t2.nii,HGG/H0/H0_flair.nii,HGG/H0/H0_seg.nii\n");
  const auto r = run_cli(prepare_args(dir / "data/cohort.csv", dir / "store", "--png"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("2 patients (1 LGG, 1 HGG)"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(dir / "store/png/a/t2_r0_z1.png"));
}

TEST(PrepareCommand, HelpTeaches) {
  const auto r = run_cli("prepare --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* s : {"--slices", "--png", "--threads", "z*-10 .. z*+9", "Example"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s;
}

// ---- bad input ----

struct BadCase {
  const char* name;
  std::function<void(const fs::path& data)> damage;  // makes the cohort bad
  const char* file;                                  // expected in the error line
  const char* what;                                  // expected in the error line
};

std::string grade_file(const char* grade, const char* id, const char* seq) {
  return std::string(grade) + "/" + id + "/" + id + "_" + seq + ".nii";
}

const BadCase kBadCases[] = {
    {"unreadable_not_nifti",
     [](const fs::path& d) {
       write_file_atomic(d / grade_file("HGG", "H1", "t2"), "hello, not an image");
     },
     "H1_t2.nii", ""},
    {"truncated",
     [](const fs::path& d) {
       const fs::path f = d / grade_file("HGG", "H1", "flair");
       const std::string b = read_file(f);
       write_file_atomic(f, b.substr(0, b.size() - 100));
     },
     "H1_flair.nii", "truncated"},
    {"two_d",
     [](const fs::path& d) {
       write_file_atomic(d / grade_file("LGG", "L0", "t1"),
                         nifti({kNx, kNy}, std::vector<int16_t>(kNx * kNy, 5)));
     },
     "L0_t1.nii", "2-D"},
    {"four_d",
     [](const fs::path& d) {
       std::vector<int16_t> v = brain(0, 0);
       v.insert(v.end(), v.begin(), v.end());
       write_file_atomic(d / grade_file("LGG", "L0", "t1"), nifti({kNx, kNy, kNz, 2}, v));
     },
     "L0_t1.nii", "2 volumes"},
    {"different_grids",
     [](const fs::path& d) {
       write_file_atomic(
           d / grade_file("HGG", "H2", "t1"),
           nifti({kNx, kNy, kNz - 2}, std::vector<int16_t>(kNx * kNy * (kNz - 2), 7)));
     },
     "H2_t1.nii", "not on the mask's grid"},
    {"missing_sequence",
     [](const fs::path& d) { fs::remove(d / grade_file("HGG", "H1", "flair")); }, "H1_flair.nii",
     "missing flair"},
    {"empty_mask",
     [](const fs::path& d) {
       write_file_atomic(d / grade_file("HGG", "H0", "seg"),
                         nifti({kNx, kNy, kNz}, std::vector<int16_t>(kNx * kNy * kNz, 0)));
     },
     "H0_seg.nii", "mask is empty"},
    {"unknown_labels",
     [](const fs::path& d) {
       auto m = mask(5);
       m[voxel(8, 8, 5)] = 7;  // 3 is BraTS 2015's non-enhancing core: read
       write_file_atomic(d / grade_file("HGG", "H0", "seg"), nifti({kNx, kNy, kNz}, m));
     },
     "H0_seg.nii", "labels outside {0,1,2,4}"},
    {"nan_voxels",
     [](const fs::path& d) {
       std::vector<float> v(kNx * kNy * kNz, 10.0f);
       v[100] = std::numeric_limits<float>::quiet_NaN();
       write_file_atomic(d / grade_file("HGG", "H2", "t2"), nifti({kNx, kNy, kNz}, v));
     },
     "H2_t2.nii", "NaN or infinite"},
    {"inf_voxels",
     [](const fs::path& d) {
       std::vector<float> v(kNx * kNy * kNz, 10.0f);
       v[7] = std::numeric_limits<float>::infinity();
       write_file_atomic(d / grade_file("HGG", "H2", "t2"), nifti({kNx, kNy, kNz}, v));
     },
     "H2_t2.nii", "NaN or infinite"},
    {"constant_volume",
     [](const fs::path& d) {
       write_file_atomic(d / grade_file("LGG", "L0", "flair"),
                         nifti({kNx, kNy, kNz}, std::vector<int16_t>(kNx * kNy * kNz, 300)));
     },
     "L0_flair.nii", "constant"},
    {"duplicate_patient_ids", [](const fs::path& d) { fs::copy(d / "HGG/H1", d / "LGG/H1"); },
     "data", "duplicate patient id 'H1'"},
    {"unrecognised_layout",
     [](const fs::path& d) { fs::rename(d / "HGG", d / "high"), fs::rename(d / "LGG", d / "low"); },
     "data", "not a recognised cohort layout"},
};

class PrepareBadInput : public ::testing::TestWithParam<BadCase> {};

TEST_P(PrepareBadInput, OneLineErrorExit3NothingLeft) {
  const BadCase& c = GetParam();
  TempDir dir;
  write_cohort(dir / "data", 2, 3);
  c.damage(dir / "data");
  const auto r = run_cli(prepare_args(dir / "data", dir / "store"));
  EXPECT_EQ(r.exit_code, 3) << r.output;
  ASSERT_FALSE(r.output.empty());
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  EXPECT_EQ(r.output.rfind("gliomagrade: error: ", 0), 0u) << r.output;
  EXPECT_NE(r.output.find(c.file), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(c.what), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(fix: "), std::string::npos) << r.output;
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"data"}) << "left output behind";
}

INSTANTIATE_TEST_SUITE_P(Cases, PrepareBadInput, ::testing::ValuesIn(kBadCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(PrepareCommandBadInput, OutputDirectoryHoldsSomethingElse) {
  TempDir dir;
  write_cohort(dir / "data", 1, 1);
  write_file_atomic(dir / "out/thesis.tex", "precious");
  const auto r = run_cli(prepare_args(dir / "data", dir / "out"));
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find((dir / "out").string() + ": output directory already holds other files"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(entries(dir / "out"), std::vector<std::string>{"thesis.tex"});
  EXPECT_EQ(entries(dir.path()), (std::vector<std::string>{"data", "out"}));
}

}  // namespace
}  // namespace gg
