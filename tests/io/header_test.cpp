// Header geometry: spacing must be finite and > 0, origin and direction finite, in every format;
// broken NIfTI headers are one kBadInput line and nothing from the NIfTI library on stderr.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "common/error.h"
#include "common/files.h"
#include "io/io.h"
#include "testing/testing.h"

namespace gg::io {
namespace {

using gg::testing::TempDir;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// A 4×4×4 int16 NIfTI-1 file with an LPS-identity sform (sform_code 1) and qform_code 0; `edit`
// then changes header fields in place.
std::string nifti1(const std::function<void(std::string&)>& edit = {}) {
  std::string h(352, '\0');
  auto i16 = [&](size_t off, int16_t v) { std::memcpy(&h[off], &v, 2); };
  auto f32 = [&](size_t off, float v) { std::memcpy(&h[off], &v, 4); };
  const int32_t sizeof_hdr = 348;
  std::memcpy(&h[0], &sizeof_hdr, 4);
  i16(40, 3);
  for (int i = 1; i < 8; ++i) i16(40 + 2 * i, i <= 3 ? 4 : 1);
  i16(70, 4);   // int16
  i16(72, 16);  // bitpix
  for (int i = 0; i < 8; ++i) f32(76 + 4 * i, 1.0f);
  f32(108, 352.0f);
  f32(112, 1.0f);
  i16(254, 1);      // sform_code
  f32(280, -1.0f);  // srow_x: RAS x = -LPS x
  f32(300, -1.0f);
  f32(320, 1.0f);
  std::memcpy(&h[344], "n+1\0", 4);
  if (edit) edit(h);
  std::string voxels(4 * 4 * 4 * 2, '\0');
  for (size_t i = 0; i < voxels.size(); i += 2) voxels[i] = char(i % 97);
  return h + voxels;
}

void put_f32(std::string& h, size_t off, float v) { std::memcpy(&h[off], &v, 4); }
void put_i16(std::string& h, size_t off, int16_t v) { std::memcpy(&h[off], &v, 2); }
// qform only (sform_code 0, qform_code 1, identity quaternion).
void use_qform(std::string& h) {
  put_i16(h, 254, 0);
  put_i16(h, 252, 1);
}

// Reads `path`, expecting one kBadInput line naming the file with `what` in it, and nothing at
// all printed to stderr meanwhile (no "** ERROR" from nifti1_io, no ITK warning).
void expect_refused_quietly(const fs::path& path, const std::string& what) {
  ::testing::internal::CaptureStderr();
  std::string problem, printed;
  ExitCode code = ExitCode::kOk;
  std::string file;
  try {
    read_volume(path);
  } catch (const Error& e) {
    code = e.code(), file = e.file(), problem = e.problem(), printed = format_error(e);
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(code, ExitCode::kBadInput) << path;
  EXPECT_NE(file.find(path.filename().string()), std::string::npos) << file;
  EXPECT_NE(problem.find(what), std::string::npos) << problem;
  EXPECT_EQ(printed.find('\n'), std::string::npos) << printed;
  EXPECT_NE(printed.find("(fix: "), std::string::npos) << printed;
  EXPECT_EQ(err.find("** ERROR"), std::string::npos) << err;
  EXPECT_EQ(err, "");
}

TEST(HeaderGeometry, ValidHeaderIsRead) {
  TempDir dir;
  write_file_atomic(dir / "ok.nii", nifti1());
  const Volume v = read_volume(dir / "ok.nii");
  EXPECT_EQ(v.size, (std::array<int, 3>{4, 4, 4}));
  EXPECT_EQ(v.spacing_mm, (std::array<double, 3>{1, 1, 1}));
}

TEST(HeaderGeometry, NanSpacingIsRefused) {
  TempDir dir;
  // nifti1_io turns a NaN pixdim into 1 mm without a word; with an sform ITK ignores it.
  write_file_atomic(dir / "nan_qform.nii", nifti1([](std::string& h) {
                      use_qform(h);
                      put_f32(h, 80, kNaN);
                    }));
  write_file_atomic(dir / "nan_sform.nii", nifti1([](std::string& h) { put_f32(h, 84, kNaN); }));
  expect_refused_quietly(dir / "nan_qform.nii", "voxel spacing (pixdim) is nan x 1 x 1 mm");
  expect_refused_quietly(dir / "nan_sform.nii", "voxel spacing (pixdim) is 1 x nan x 1 mm");
}

TEST(HeaderGeometry, NegativeAndZeroSpacingAreRefused) {
  TempDir dir;
  // ITK reports a negative pixdim under a qform as a negative spacing (which resampling
  // would follow); nifti1_io turns 0 into 1 mm.
  write_file_atomic(dir / "neg.nii", nifti1([](std::string& h) {
                      use_qform(h);
                      put_f32(h, 80, -2.0f);
                    }));
  write_file_atomic(dir / "zero.nii", nifti1([](std::string& h) {
                      put_i16(h, 254, 0);
                      put_f32(h, 88, 0.0f);
                    }));
  expect_refused_quietly(dir / "neg.nii", "-2 x 1 x 1 mm: it must be finite and positive");
  expect_refused_quietly(dir / "zero.nii", "1 x 1 x 0 mm: it must be finite and positive");
}

TEST(HeaderGeometry, NonFiniteOriginIsRefused) {
  TempDir dir;
  // qoffset_x = Inf becomes origin 0 in nifti1_io; srow_x[3] = Inf aborts the process in vnl.
  write_file_atomic(dir / "inf_qoffset.nii", nifti1([](std::string& h) {
                      use_qform(h);
                      put_f32(h, 268, kInf);
                    }));
  write_file_atomic(dir / "inf_srow.nii", nifti1([](std::string& h) { put_f32(h, 292, kInf); }));
  expect_refused_quietly(dir / "inf_qoffset.nii", "qform");
  expect_refused_quietly(dir / "inf_srow.nii", "sform (srow_x/y/z) holds NaN or infinite");
}

TEST(HeaderGeometry, NanDirectionIsRefused) {
  TempDir dir;
  write_file_atomic(dir / "nan_srow.nii", nifti1([](std::string& h) { put_f32(h, 284, kNaN); }));
  write_file_atomic(dir / "nan_quatern.nii", nifti1([](std::string& h) {
                      use_qform(h);
                      put_f32(h, 256, kNaN);
                    }));
  expect_refused_quietly(dir / "nan_srow.nii", "sform (srow_x/y/z) holds NaN or infinite");
  expect_refused_quietly(dir / "nan_quatern.nii", "qform (quatern_b/c/d");
}

TEST(HeaderGeometry, BadDimensionsAndDatatypeDoNotLeakNiftiErrors) {
  TempDir dir;
  // Both made nifti1_io print "** ERROR: nifti_convert_nhdr2nim: ..." before our error.
  write_file_atomic(dir / "dim.nii", nifti1([](std::string& h) { put_i16(h, 42, 0); }));
  write_file_atomic(dir / "ndim.nii", nifti1([](std::string& h) { put_i16(h, 40, 9); }));
  write_file_atomic(dir / "type.nii", nifti1([](std::string& h) { put_i16(h, 70, 3); }));
  expect_refused_quietly(dir / "dim.nii", "dim[1] = 0");
  expect_refused_quietly(dir / "ndim.nii", "dim[0] = 9");
  expect_refused_quietly(dir / "type.nii", "unknown datatype code 3");
}

TEST(HeaderGeometry, Nifti2IsRefusedAsNifti2) {
  TempDir dir;
  std::string h(544, '\0');
  const int32_t sizeof_hdr = 540;
  std::memcpy(&h[0], &sizeof_hdr, 4);
  std::memcpy(&h[4], "n+2\0\r\n\032\n", 8);
  auto i64 = [&](size_t off, int64_t v) { std::memcpy(&h[off], &v, 8); };
  auto f64 = [&](size_t off, double v) { std::memcpy(&h[off], &v, 8); };
  put_i16(h, 12, 4);
  put_i16(h, 14, 16);
  i64(16, 3);
  for (int i = 1; i < 8; ++i) i64(16 + 8 * size_t(i), i <= 3 ? 4 : 1);
  for (int i = 0; i < 8; ++i) f64(104 + 8 * size_t(i), 1.0);
  i64(168, 544);
  write_file_atomic(dir / "two.nii", h + std::string(4 * 4 * 4 * 2, '\1'));
  expect_refused_quietly(dir / "two.nii", "is a NIfTI-2 file");
}

TEST(HeaderGeometry, MhaWithNegativeSpacingIsRefused) {
  TempDir dir;
  const std::string header =
      "ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\nElementSpacing = 1 -1.5 1\n"
      "ElementType = MET_SHORT\nElementDataFile = LOCAL\n";
  std::string voxels(4 * 4 * 4 * 2, '\0');
  for (size_t i = 0; i < voxels.size(); i += 2) voxels[i] = char(i % 51);
  write_file_atomic(dir / "neg.mha", header + voxels);
  expect_refused_quietly(dir / "neg.mha", "voxel spacing is 1 x -1.5 x 1 mm");
}

TEST(SameGrid, NonFiniteValuesAreNeverTheSameGrid) {
  Volume a;
  a.size = {2, 2, 2};
  Volume b = a;
  EXPECT_TRUE(same_grid(a, b));
  a.spacing_mm[0] = b.spacing_mm[0] = std::nan("");
  EXPECT_FALSE(same_grid(a, b));
  a = b = Volume{};
  a.origin_mm[2] = b.origin_mm[2] = std::numeric_limits<double>::infinity();
  EXPECT_FALSE(same_grid(a, b));
  a = b = Volume{};
  a.direction[4] = std::nan("");
  EXPECT_FALSE(same_grid(a, b));
}

}  // namespace
}  // namespace gg::io
