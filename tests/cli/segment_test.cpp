// End-to-end: `gliomagrade segment` on a crop of the real BraTS sample (the full case is the
// parity test's, tests/segment/): outputs on the input's grid, volumes that are the label map's,
// and one-line errors that leave nothing behind.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/files.h"
#include "io/io.h"
#include "testing/testing.h"

namespace gg {
namespace {

namespace fs = std::filesystem;
using testing::run_cli;

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

const char* const kSequences[] = {"t1", "t1ce", "t2", "flair", "seg"};

fs::path sample(const std::string& seq) {
  const fs::path p = testing::shared_dir() / "data/brats-sample/HGG/BraTS19_2013_10_1" /
                     ("BraTS19_2013_10_1_" + seq + ".nii.gz");
  if (!fs::exists(p)) throw std::runtime_error("fixture missing: " + p.string());
  return p;
}

// A 64x64x40 box of the case in its tumour (x 52..115, y 92..155, z 47..86 in LPS+; the
// tumour spans x 57..111, y 76..171, z 29..102).
io::Volume crop(const io::Volume& v) {
  const std::array<int, 3> lo{52, 92, 47}, size{64, 64, 40};
  io::Volume c = v;
  c.size = size;
  c.voxels.assign(size_t(size[0]) * size[1] * size[2], 0.f);
  for (int z = 0; z < size[2]; ++z)
    for (int y = 0; y < size[1]; ++y)
      for (int x = 0; x < size[0]; ++x) c.at(x, y, z) = v.at(lo[0] + x, lo[1] + y, lo[2] + z);
  for (int a = 0; a < 3; ++a) c.origin_mm[size_t(a)] += lo[size_t(a)] * v.spacing_mm[size_t(a)];
  return c;
}

struct Cropped {
  testing::TempDir dir;
  Cropped() {
    for (const char* s : kSequences)
      io::write_volume(crop(io::read_volume(sample(s))), dir / (std::string(s) + ".nii.gz"), true);
  }
  std::string inputs() const {
    std::string args;
    for (const char* s : {"t1", "t1ce", "t2", "flair"})
      args += std::string(" --") + s + " " + q(dir / (std::string(s) + ".nii.gz"));
    return args;
  }
};

TEST(SegmentCommand, WritesLabelsOnTheInputGridAndTheirVolumes) {
  Cropped c;
  const fs::path out = c.dir / "out";
  const auto r = run_cli("segment" + c.inputs() + " --out " + q(out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("whole tumour "), std::string::npos) << r.output;
  const io::Volume labels = io::read_volume(out / "labels.nii.gz");
  const io::Volume flair = io::read_volume(c.dir / "flair.nii.gz");
  ASSERT_TRUE(io::same_grid(labels, flair));
  // The volumes and the largest slice are the label map's own.
  size_t n[5] = {0, 0, 0, 0, 0};
  std::vector<size_t> area(size_t(labels.size[2]), 0);
  const size_t plane = size_t(labels.size[0]) * size_t(labels.size[1]);
  for (size_t i = 0; i < labels.voxels.size(); ++i) {
    const int l = int(labels.voxels[i]);
    ASSERT_TRUE(l == 0 || l == 1 || l == 2 || l == 4) << l;
    ++n[l];
    area[i / plane] += l > 0;
  }
  const auto j = nlohmann::json::parse(read_file(out / "segmentation.json"));
  const auto& v = j.at("volumes_ml");
  EXPECT_NEAR(v.at("whole_tumour").get<double>(), (n[1] + n[2] + n[4]) / 1000.0, 1e-9);
  EXPECT_NEAR(v.at("tumour_core").get<double>(), (n[1] + n[4]) / 1000.0, 1e-9);
  EXPECT_NEAR(v.at("enhancing").get<double>(), n[4] / 1000.0, 1e-9);
  EXPECT_NEAR(v.at("oedema").get<double>(), n[2] / 1000.0, 1e-9);
  EXPECT_EQ(j.at("largest_whole_tumour_axial_slice").get<long>(),
            std::max_element(area.begin(), area.end()) - area.begin());
  EXPECT_NE(j.at("model").at("licence").get<std::string>().find("SBIA_license.txt"),
            std::string::npos);
  // The crop holds most of the tumour: DeepMedic finds it there too.
  const io::Volume seg = io::read_volume(c.dir / "seg.nii.gz");
  size_t both = 0, ours = 0, truth = 0;
  for (size_t i = 0; i < seg.voxels.size(); ++i) {
    const bool a = labels.voxels[i] > 0, b = seg.voxels[i] > 0;
    both += a && b, ours += a, truth += b;
  }
  const double dice = 2.0 * double(both) / double(ours + truth);
  std::cout << "whole-tumour Dice on the crop vs its seg: " << dice << "; "
            << v.at("whole_tumour").get<double>() << " mL\n";
  EXPECT_GT(dice, 0.7);
}

TEST(SegmentCommand, BadInputIsOneLineAndWritesNothing) {
  Cropped c;
  const fs::path out = c.dir / "out";
  // T2 on another grid.
  io::Volume t2 = io::read_volume(c.dir / "t2.nii.gz");
  t2.spacing_mm = {1, 1, 2};
  io::write_volume(t2, c.dir / "t2.nii.gz", true);
  auto r = run_cli("segment" + c.inputs() + " --out " + q(out));
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("t2.nii.gz: is not on FLAIR's grid"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
  // A folder without the model.
  r = run_cli("segment" + c.inputs() + " --out " + q(out) + " --model " + q(c.dir.path()));
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("no DeepMedic model here"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace gg
