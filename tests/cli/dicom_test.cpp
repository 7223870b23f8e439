// End-to-end: `predict` reads DICOM series directories (written here as plain Part 10 bytes,
// explicit VR little endian, one MR slice per file: the cli suite links only gg_common, so no
// ITK/GDCM), and refuses broken headers with exactly one error line.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/files.h"
#include "testing/testing.h"
#include "tiny_cohort.h"
#include "tiny_run.h"

namespace gg {
namespace {

using cli_testing::kNx;
using cli_testing::kNy;
using cli_testing::kNz;
using testing::run_cli;

// DICOM slices on the grid of tiny_cohort.h's NIfTI files: LPS-identity orientation, 1 mm
// pixels, slice z at (0, 0, z) mm.
// One data element. Values are padded to even length: UI with NUL, text with a space.
inline std::string element(uint16_t group, uint16_t elem, const char* vr, std::string value) {
  const bool is_uid = std::strcmp(vr, "UI") == 0;
  const bool binary = std::strcmp(vr, "OB") == 0 || std::strcmp(vr, "OW") == 0 ||
                      std::strcmp(vr, "US") == 0 || std::strcmp(vr, "UL") == 0;
  if (value.size() % 2) value += is_uid || binary ? '\0' : ' ';
  std::string out(4, '\0');
  std::memcpy(&out[0], &group, 2);
  std::memcpy(&out[2], &elem, 2);
  out += vr;
  const bool long_form = std::strcmp(vr, "OB") == 0 || std::strcmp(vr, "OW") == 0;
  if (long_form) {
    const uint32_t n = uint32_t(value.size());
    out += std::string(2, '\0');
    out.append(reinterpret_cast<const char*>(&n), 4);
  } else {
    const uint16_t n = uint16_t(value.size());
    out.append(reinterpret_cast<const char*>(&n), 2);
  }
  return out + value;
}

inline std::string us(uint16_t v) { return std::string(reinterpret_cast<const char*>(&v), 2); }

// A complete DICOM file holding one nx×ny int16 slice at height z (mm).
inline std::string dicom_slice(const std::vector<int16_t>& pixels, int nx, int ny, int z,
                               const std::string& series_uid, const std::string& description) {
  const std::string mr = "1.2.840.10008.5.1.4.1.1.4";
  const std::string instance = series_uid + "." + std::to_string(z + 1);
  std::string meta = element(0x0002, 0x0001, "OB", std::string("\0\1", 2)) +
                     element(0x0002, 0x0002, "UI", mr) + element(0x0002, 0x0003, "UI", instance) +
                     element(0x0002, 0x0010, "UI", "1.2.840.10008.1.2.1");
  const uint32_t meta_length = uint32_t(meta.size());
  meta =
      element(0x0002, 0x0000, "UL", std::string(reinterpret_cast<const char*>(&meta_length), 4)) +
      meta;
  const std::string data =
      element(0x0008, 0x0016, "UI", mr) + element(0x0008, 0x0018, "UI", instance) +
      element(0x0008, 0x0060, "CS", "MR") + element(0x0008, 0x103E, "LO", description) +
      element(0x0018, 0x0050, "DS", "1") + element(0x0020, 0x000D, "UI", series_uid + ".0") +
      element(0x0020, 0x000E, "UI", series_uid) +
      element(0x0020, 0x0013, "IS", std::to_string(z + 1)) +
      element(0x0020, 0x0032, "DS", "0\\0\\" + std::to_string(z)) +
      element(0x0020, 0x0037, "DS", "1\\0\\0\\0\\1\\0") + element(0x0028, 0x0002, "US", us(1)) +
      element(0x0028, 0x0004, "CS", "MONOCHROME2") +
      element(0x0028, 0x0010, "US", us(uint16_t(ny))) +
      element(0x0028, 0x0011, "US", us(uint16_t(nx))) + element(0x0028, 0x0030, "DS", "1\\1") +
      element(0x0028, 0x0100, "US", us(16)) + element(0x0028, 0x0101, "US", us(16)) +
      element(0x0028, 0x0102, "US", us(15)) + element(0x0028, 0x0103, "US", us(1)) +
      element(0x7FE0, 0x0010, "OW",
              std::string(reinterpret_cast<const char*>(pixels.data()), pixels.size() * 2));
  return std::string(128, '\0') + "DICM" + meta + data;
}

// dir/<prefix>NNNN.dcm, one file per slice of an nx×ny×nz volume (x fastest).
inline void write_dicom_series(const fs::path& dir, const std::string& prefix,
                               const std::vector<int16_t>& voxels, int nx, int ny, int nz,
                               const std::string& series_uid, const std::string& description) {
  for (int z = 0; z < nz; ++z) {
    const auto first = voxels.begin() + long(size_t(z) * size_t(nx) * size_t(ny));
    const std::vector<int16_t> slice(first, first + long(size_t(nx) * size_t(ny)));
    char name[64];
    std::snprintf(name, sizeof name, "%s%04d.dcm", prefix.c_str(), z + 1);
    write_file_atomic(dir / name, dicom_slice(slice, nx, ny, z, series_uid, description));
  }
}

const std::string kModel = " --model ";

// One patient from tiny_cohort.h as NIfTI files and as DICOM series (t1, t2, flair in one
// directory, UIDs 1.2.3.4.{1,2,3}), the mask as NIfTI.
struct Patient {
  testing::TempDir tmp;
  Patient() {
    const char* seqs[] = {"t1", "t2", "flair"};
    for (int s = 0; s < 3; ++s) {
      const std::vector<int16_t> v = cli_testing::brain(s, 1);
      write_file_atomic(tmp / (std::string(seqs[s]) + ".nii"),
                        cli_testing::nifti({kNx, kNy, kNz}, v));
      write_dicom_series(tmp / "study", seqs[s], v, kNx, kNy, kNz, uid(s),
                         std::string("AX ") + seqs[s]);
      write_dicom_series(tmp / seqs[s], seqs[s], v, kNx, kNy, kNz, uid(s),
                         std::string("AX ") + seqs[s]);
    }
    write_file_atomic(tmp / "seg.nii", cli_testing::nifti({kNx, kNy, kNz}, cli_testing::mask(6)));
  }
  static std::string uid(int s) { return "1.2.3.4." + std::to_string(s + 1); }
  std::string args(const std::string& t1, const std::string& t2, const std::string& flair) const {
    return " --t1 " + q(tmp / t1) + " --t2 " + q(tmp / t2) + " --flair " + q(tmp / flair) +
           " --seg " + q(tmp / "seg.nii") + " --id P --no-gradcam --keep-grid --model " +
           q(tiny_results() / "model");
  }
};

std::vector<double> p_hgg(const std::string& json) {
  const auto j = nlohmann::json::parse(json);
  std::vector<double> out;
  for (const char* s : {"t1", "t2", "flair"})
    out.push_back(j["sequences"][s]["p_hgg"].get<double>());
  return out;
}

TEST(PredictDicom, SeriesDirectoriesGradeAsTheirNiftiTwins) {
  if (!have_weights()) GG_MISSING("no BVLC weights");
  const Patient p;
  const auto nifti =
      testing::run_cli_stdout("--quiet predict" + p.args("t1.nii", "t2.nii", "flair.nii"));
  ASSERT_EQ(nifti.exit_code, 0) << nifti.output;
  const auto dicom = testing::run_cli_stdout("--quiet predict" + p.args("t1", "t2", "flair"));
  ASSERT_EQ(dicom.exit_code, 0) << dicom.output;
  EXPECT_EQ(p_hgg(dicom.output), p_hgg(nifti.output));
}

TEST(PredictDicom, OneStudyDirectoryNeedsSeriesPerSequence) {
  if (!have_weights()) GG_MISSING("no BVLC weights");
  const Patient p;
  auto r = run_cli("--quiet predict" + p.args("study", "study", "study"));
  EXPECT_EQ(r.exit_code, 3) << r.output;
  for (int s = 0; s < 3; ++s)
    EXPECT_NE(r.output.find(Patient::uid(s)), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--series"), std::string::npos) << r.output;
  r = testing::run_cli_stdout(
      "--quiet predict" + p.args("study", "study", "study") + " --series t1=" + Patient::uid(0) +
      " --series t2=" + Patient::uid(1) + " --series flair=" + Patient::uid(2));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto nifti =
      testing::run_cli_stdout("--quiet predict" + p.args("t1.nii", "t2.nii", "flair.nii"));
  EXPECT_EQ(p_hgg(r.output), p_hgg(nifti.output));
  r = run_cli("--quiet predict" + p.args("study", "study", "study") + " --series t3=1.2");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

TEST(PredictDicom, MissingSliceIsOneErrorLine) {
  if (!have_weights()) GG_MISSING("no BVLC weights");
  const Patient p;
  fs::remove(p.tmp / "flair" / "flair0005.dcm");
  const auto r = run_cli("--quiet predict" + p.args("t1", "t2", "flair"));
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("missing slice"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("flair0004.dcm and flair0006.dcm"), std::string::npos) << r.output;
}

TEST(PredictHeaderChecks, BrokenNiftiHeaderIsExactlyOneErrorLine) {
  if (!have_weights()) GG_MISSING("no BVLC weights");
  const Patient p;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  struct Case {
    const char* name;
    size_t offset;
    float value;
    const char* what;
  };
  // pixdim[1] NaN and -1; srow_x[1] NaN (vnl used to abort the process on it).
  for (const Case& c : {Case{"nan_spacing.nii", 80, nan, "voxel spacing (pixdim) is nan"},
                        Case{"neg_spacing.nii", 80, -1.0f, "voxel spacing (pixdim) is -1"},
                        Case{"nan_sform.nii", 284, nan, "sform"}}) {
    std::string bytes = read_file(p.tmp / "t2.nii");
    std::memcpy(&bytes[c.offset], &c.value, 4);
    write_file_atomic(p.tmp / c.name, bytes);
    const auto r = run_cli("predict" + p.args("t1.nii", c.name, "flair.nii"));
    EXPECT_EQ(r.exit_code, 3) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    EXPECT_EQ(r.output.rfind("gliomagrade: error: ", 0), 0u) << r.output;
    EXPECT_NE(r.output.find(c.name), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(c.what), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("** ERROR"), std::string::npos) << r.output;
  }
}

}  // namespace
}  // namespace gg
