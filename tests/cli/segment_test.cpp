// End-to-end: `gliomagrade segment` on a crop of the real BraTS sample (the full case is the
// parity test's, tests/segment/): outputs on the input's grid, volumes that are the label map's,
// and one-line errors that leave nothing behind.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/files.h"
#include "io/io.h"
#include "testing/brats_crop.h"
#include "testing/testing.h"

namespace gg {
namespace {

namespace fs = std::filesystem;
using testing::run_cli;

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

struct Cropped {
  testing::TempDir dir;
  Cropped() { testing::write_brats_crop(dir.path()); }
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
