// End-to-end: `gliomagrade synth` on a tiny grid, with its preview, and its refusals.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "common/files.h"
#include "testing/testing.h"

namespace gg {
namespace {

using testing::run_cli;

uint32_t big_endian32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | uint8_t(s[at + i]);
  return v;
}

TEST(SynthCommand, WritesTheBraTSLayoutAndAPreview) {
  testing::TempDir dir;
  const fs::path out = dir / "cohort";
  const auto r = run_cli("--quiet synth --out '" + out.string() +
                         "' --lgg 2 --hgg 3 --size 48,48,32 --seed 4 --preview --threads 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* id : {"HGG/Synth_HGG_001/Synth_HGG_001", "HGG/Synth_HGG_003/Synth_HGG_003",
                         "LGG/Synth_LGG_002/Synth_LGG_002"})
    for (const char* seq : {"_t1", "_t2", "_flair", "_seg"})
      EXPECT_TRUE(fs::exists(out / (std::string(id) + seq + ".nii.gz"))) << id << seq;
  EXPECT_FALSE(fs::exists(out / "LGG" / "Synth_LGG_003"));
  EXPECT_NE(r.output.find("5 patients (2 LGG, 3 HGG)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("2 stored in another orientation"), std::string::npos) << r.output;

  // A PNG (signature, IHDR): 4 tiles × 5 rows (up to 3 patients per grade); decoding: test_synth.
  const std::string png = read_file(out / "preview.png");
  ASSERT_GT(png.size(), 1000u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  EXPECT_EQ(big_endian32(png, 16), 800u);
  EXPECT_EQ(big_endian32(png, 20), 26u + 5 * 200 + 40);

  const std::string truth = read_file(out / "synth_truth.csv");
  EXPECT_EQ(truth.rfind("id,grade,aggressiveness,", 0), 0u);
}

TEST(SynthCommand, SameSeedSameFiles) {
  testing::TempDir dir;
  for (const char* name : {"a", "b"}) {
    const auto r = run_cli("--quiet synth --out '" + (dir / name).string() +
                           "' --lgg 1 --hgg 1 --size 40,40,32");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  // gzip headers carry no timestamp here, so equal voxels mean equal bytes; compare the seg and
  // FLAIR.
  for (const char* f : {"HGG/Synth_HGG_001/Synth_HGG_001_flair.nii.gz",
                        "LGG/Synth_LGG_001/Synth_LGG_001_seg.nii.gz"})
    EXPECT_EQ(sha256_file(dir / "a" / f), sha256_file(dir / "b" / f)) << f;
}

TEST(SynthCommand, PreviewOutWritesElsewhere) {
  testing::TempDir dir;
  const auto r = run_cli("--quiet synth --out '" + (dir / "c").string() +
                         "' --lgg 1 --hgg 1 --size 40,40,32 --preview-out '" +
                         (dir / "sheet.png").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir / "sheet.png"));
  EXPECT_FALSE(fs::exists(dir / "c" / "preview.png"));
}

TEST(SynthCommand, RefusesANonEmptyOut) {
  testing::TempDir dir;
  write_file_atomic(dir / "busy" / "keep.txt", "x");
  const auto r = run_cli("--quiet synth --out '" + (dir / "busy").string() +
                         "' --lgg 1 --hgg 1 --size 40,40,32");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("not empty"), std::string::npos) << r.output;
  EXPECT_EQ(read_file(dir / "busy" / "keep.txt"), "x");
  EXPECT_FALSE(fs::exists(dir / "busy" / "HGG"));
}

TEST(SynthCommand, RejectsBadOptions) {
  testing::TempDir dir;
  const std::string out = " --out '" + (dir / "x").string() + "'";
  EXPECT_EQ(run_cli("synth" + out + " --difficulty 1.5").exit_code, 2);
  EXPECT_EQ(run_cli("synth" + out + " --size 64,64").exit_code, 2);
  const auto tiny_fov = run_cli("synth" + out + " --size 64,64,40 --spacing 1");
  EXPECT_EQ(tiny_fov.exit_code, 3) << tiny_fov.output;
  EXPECT_NE(tiny_fov.output.find("too small to hold a head"), std::string::npos) << tiny_fov.output;
  EXPECT_FALSE(fs::exists(dir / "x"));
}

TEST(SynthCommand, HelpTeachesWithAnExample) {
  const auto r = run_cli("synth --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("--difficulty"), std::string::npos);
  EXPECT_NE(r.output.find("gliomagrade synth --out cohort"), std::string::npos);
}

}  // namespace
}  // namespace gg
