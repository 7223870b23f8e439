// read_volume / write_volume: round trips, voxel types, reorientation, and every unreadable input.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>

#include "common/error.h"
#include "common/files.h"
#include "io/io.h"
#include "testing/testing.h"

namespace gg::io {
namespace {

using gg::testing::TempDir;

// A 4×3×2 volume whose voxel (x,y,z) holds 100z + 10y + x, so any axis mix-up shows.
Volume coded_volume() {
  Volume v;
  v.size = {4, 3, 2};
  v.spacing_mm = {1.0, 2.0, 3.0};
  v.origin_mm = {10.0, 20.0, 30.0};
  v.voxels.resize(24);
  for (int z = 0; z < 2; ++z)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 4; ++x) v.at(x, y, z) = float(100 * z + 10 * y + x);
  return v;
}

ExitCode code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return ExitCode::kOk;
}

// A minimal NIfTI-1 file: 348-byte header + 4 extension bytes, then the voxel bytes as given.
// datatype: 2 uint8, 4 int16, 16 float32. No qform/sform.
std::string nifti_file(std::vector<int16_t> dims, int16_t datatype, int16_t bitpix,
                       const std::string& voxels, float slope = 1.0f, float intercept = 0.0f) {
  std::string h(352, '\0');
  auto put_i32 = [&](size_t off, int32_t v) { std::memcpy(&h[off], &v, 4); };
  auto put_i16 = [&](size_t off, int16_t v) { std::memcpy(&h[off], &v, 2); };
  auto put_f32 = [&](size_t off, float v) { std::memcpy(&h[off], &v, 4); };
  put_i32(0, 348);
  put_i16(40, static_cast<int16_t>(dims.size()));
  for (size_t i = 0; i < dims.size(); ++i) put_i16(42 + 2 * i, dims[i]);
  for (size_t i = dims.size() + 1; i < 8; ++i) put_i16(40 + 2 * i, 1);
  put_i16(70, datatype);
  put_i16(72, bitpix);
  for (int i = 0; i < 8; ++i) put_f32(76 + 4 * i, 1.0f);  // pixdim
  put_f32(108, 352.0f);                                   // vox_offset
  put_f32(112, slope);                                    // scl_slope
  put_f32(116, intercept);                                // scl_inter
  std::memcpy(&h[344], "n+1\0", 4);
  return h + voxels;
}

std::string nifti_bytes(std::vector<int16_t> dims, const std::vector<int16_t>& data) {
  return nifti_file(std::move(dims), 4, 16,
                    std::string(reinterpret_cast<const char*>(data.data()), data.size() * 2));
}

std::string gzip(const std::string& raw) {
  z_stream s{};
  deflateInit2(&s, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&s, raw.size()) + 64, '\0');
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  s.avail_in = static_cast<uInt>(raw.size());
  s.next_out = reinterpret_cast<Bytef*>(&out[0]);
  s.avail_out = static_cast<uInt>(out.size());
  deflate(&s, Z_FINISH);
  out.resize(s.total_out);
  deflateEnd(&s);
  return out;
}

TEST(ReadVolume, FloatRoundTripKeepsValuesAndGeometry) {
  TempDir dir;
  const Volume v = coded_volume();
  write_volume(v, dir / "a.nii.gz", /*as_int16=*/false);
  const Volume r = read_volume(dir / "a.nii.gz");
  EXPECT_EQ(r.size, (std::array<int, 3>{4, 3, 2}));
  EXPECT_DOUBLE_EQ(r.spacing_mm[1], 2.0);
  EXPECT_DOUBLE_EQ(r.origin_mm[2], 30.0);
  EXPECT_EQ(r.voxels, v.voxels);
  EXPECT_FLOAT_EQ(r.at(3, 2, 1), 123.0f);
}

TEST(ReadVolume, Int16RoundsAndReadsAsFloat) {
  TempDir dir;
  Volume v = coded_volume();
  v.at(0, 0, 0) = 7.6f;
  v.at(1, 0, 0) = -3.2f;
  write_volume(v, dir / "a.nii", /*as_int16=*/true);
  const Volume r = read_volume(dir / "a.nii");
  EXPECT_FLOAT_EQ(r.at(0, 0, 0), 8.0f);
  EXPECT_FLOAT_EQ(r.at(1, 0, 0), -3.0f);
  EXPECT_FLOAT_EQ(r.at(2, 1, 1), 112.0f);
}

TEST(ReadVolume, NrrdAndMhaAreRead) {
  TempDir dir;
  const Volume v = coded_volume();
  write_volume(v, dir / "a.nrrd", false);
  write_volume(v, dir / "a.mha", false);
  EXPECT_EQ(read_volume(dir / "a.nrrd").voxels, v.voxels);
  EXPECT_EQ(read_volume(dir / "a.mha").voxels, v.voxels);
}

TEST(ReadVolume, WriteLeavesNoTemporary) {
  TempDir dir;
  write_volume(coded_volume(), dir / "a.nii.gz", false);
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST(ReadVolume, RasFlippedFileIsReorientedToLps) {
  // Stored with x towards Right and y towards Anterior (direction diag(-1,-1,1)), as many
  // non-BraTS NIfTI files are: reading must flip x and y back to LPS+.
  TempDir dir;
  Volume v = coded_volume();
  v.direction = {-1, 0, 0, 0, -1, 0, 0, 0, 1};
  write_volume(v, dir / "ras.nii.gz", false);
  const Volume r = read_volume(dir / "ras.nii.gz");
  EXPECT_EQ(r.size, (std::array<int, 3>{4, 3, 2}));
  EXPECT_EQ(r.direction, (std::array<double, 9>{1, 0, 0, 0, 1, 0, 0, 0, 1}));
  // Stored voxel (x,y,z) sits at LPS index (3-x, 2-y, z).
  EXPECT_FLOAT_EQ(r.at(3, 2, 0), 0.0f);
  EXPECT_FLOAT_EQ(r.at(0, 0, 1), 123.0f);
  // The physical point of the new (0,0,0) is the old (3,2,0): origin - (3*1, 2*2, 0).
  EXPECT_NEAR(r.origin_mm[0], 10.0 - 3.0, 1e-6);
  EXPECT_NEAR(r.origin_mm[1], 20.0 - 4.0, 1e-6);
  EXPECT_NEAR(r.origin_mm[2], 30.0, 1e-6);
}

TEST(ReadVolume, PermutedAxesAreReordered) {
  // File axis 0 runs Superior, axis 1 Left, axis 2 Posterior (a sagittal-ish storage order).
  TempDir dir;
  Volume v;
  v.size = {2, 4, 3};                         // (S, L, P)
  v.direction = {0, 1, 0, 0, 0, 1, 1, 0, 0};  // column c = physical direction of file axis c
  v.voxels.resize(24);
  for (int s = 0; s < 2; ++s)
    for (int l = 0; l < 4; ++l)
      for (int p = 0; p < 3; ++p) v.at(s, l, p) = float(100 * s + 10 * p + l);
  write_volume(v, dir / "perm.nii.gz", false);
  const Volume r = read_volume(dir / "perm.nii.gz");
  ASSERT_EQ(r.size, (std::array<int, 3>{4, 3, 2}));
  for (int z = 0; z < 2; ++z)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 4; ++x) EXPECT_FLOAT_EQ(r.at(x, y, z), float(100 * z + 10 * y + x));
}

// Physical position of voxel (x,y,z): origin + D · diag(spacing) · index.
std::array<double, 3> physical(const Volume& v, int x, int y, int z) {
  const double idx[3] = {double(x) * v.spacing_mm[0], double(y) * v.spacing_mm[1],
                         double(z) * v.spacing_mm[2]};
  std::array<double, 3> p = v.origin_mm;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) p[size_t(r)] += v.direction[size_t(r * 3 + c)] * idx[c];
  return p;
}

TEST(ReadVolume, ReorientKeepsEveryVoxelsPhysicalPosition) {
  // Stored axes: 0 runs Inferior (-z), 1 runs Right (-x), 2 runs Posterior (+y); anisotropic
  // spacing and an offset origin. Every voxel holds its own stored linear index.
  TempDir dir;
  Volume v;
  v.size = {5, 4, 3};
  v.spacing_mm = {2.0, 0.5, 3.0};
  v.origin_mm = {7.0, -3.0, 11.0};
  v.direction = {0, -1, 0, 0, 0, 1, -1, 0, 0};
  v.voxels.resize(60);
  for (size_t i = 0; i < 60; ++i) v.voxels[i] = float(i);
  write_volume(v, dir / "odd.nii.gz", false);
  const Volume r = read_volume(dir / "odd.nii.gz");
  ASSERT_EQ(r.size, (std::array<int, 3>{4, 3, 5}));
  EXPECT_EQ(r.spacing_mm, (std::array<double, 3>{0.5, 3.0, 2.0}));
  EXPECT_EQ(r.direction, (std::array<double, 9>{1, 0, 0, 0, 1, 0, 0, 0, 1}));
  for (int z = 0; z < 5; ++z)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 4; ++x) {
        const auto i = static_cast<int>(r.at(x, y, z));
        const auto want = physical(v, i % 5, (i / 5) % 4, i / 20);
        const auto got = physical(r, x, y, z);
        for (int k = 0; k < 3; ++k)
          EXPECT_NEAR(got[size_t(k)], want[size_t(k)], 1e-9) << x << y << z;
      }
  EXPECT_FLOAT_EQ(r.at(0, 0, 0), 4.0f + 5.0f * 3.0f);  // stored (4, 3, 0): most superior and left
}

TEST(ReadVolume, Uint8AndInt16NiftiFromBytes) {
  TempDir dir;
  std::vector<int16_t> data(2 * 2 * 2);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<int16_t>(i * 100 - 300);
  write_file_atomic(dir / "i16.nii", nifti_bytes({2, 2, 2}, data));
  const Volume r = read_volume(dir / "i16.nii");
  EXPECT_FLOAT_EQ(r.at(0, 0, 0), -300.0f);
  EXPECT_FLOAT_EQ(r.at(1, 1, 1), 400.0f);
}

TEST(ReadVolume, Uint8VoxelsAndRescaleSlope) {
  TempDir dir;
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[size_t(i)] = static_cast<char>(250 - i);
  write_file_atomic(dir / "u8.nii", nifti_file({2, 2, 2}, 2, 8, bytes));
  const Volume r = read_volume(dir / "u8.nii");
  EXPECT_FLOAT_EQ(r.voxels[0], 250.0f);
  EXPECT_FLOAT_EQ(r.voxels[7], 243.0f);
  // scl_slope/scl_inter: value = 2·stored + 10.
  write_file_atomic(dir / "scaled.nii", nifti_file({2, 2, 2}, 2, 8, bytes, 2.0f, 10.0f));
  const Volume s = read_volume(dir / "scaled.nii");
  EXPECT_FLOAT_EQ(s.voxels[0], 510.0f);
  EXPECT_FLOAT_EQ(s.voxels[7], 496.0f);
}

TEST(ReadVolume, FourDWithOneVolumeIsAccepted) {
  TempDir dir;
  std::vector<int16_t> data(8, 5);
  data[7] = 9;
  write_file_atomic(dir / "t1.nii", nifti_bytes({2, 2, 2, 1}, data));
  const Volume r = read_volume(dir / "t1.nii");
  EXPECT_EQ(r.size, (std::array<int, 3>{2, 2, 2}));
  EXPECT_FLOAT_EQ(r.at(1, 1, 1), 9.0f);
}

TEST(ReadVolume, RealBratsCaseIsCanonical) {
  const fs::path seg = gg::testing::shared_dir() /
                       "data/brats-sample/HGG/BraTS19_2013_10_1/BraTS19_2013_10_1_seg.nii.gz";
  if (!fs::exists(seg)) GG_MISSING("no " << seg);
  const Volume r = read_volume(seg);
  EXPECT_EQ(r.size, (std::array<int, 3>{240, 240, 155}));
  EXPECT_EQ(r.direction, (std::array<double, 9>{1, 0, 0, 0, 1, 0, 0, 0, 1}));
  EXPECT_NO_THROW(check_mask(r, seg));
}

// ---- bad input: each a kBadInput error naming the file ----

void expect_bad_input(const fs::path& path, const std::string& fragment) {
  try {
    read_volume(path);
    FAIL() << "no error for " << path;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_EQ(e.file(), path.string());
    EXPECT_NE(e.problem().find(fragment), std::string::npos) << e.problem();
    EXPECT_EQ(e.problem().find('\n'), std::string::npos) << "multi-line: " << e.problem();
  }
}

TEST(ReadVolumeBadInput, MissingFile) {
  TempDir dir;
  expect_bad_input(dir / "nope.nii.gz", "not found");
}

TEST(ReadVolumeBadInput, NotAnImage) {
  TempDir dir;
  write_file_atomic(dir / "notes.nii", "this is a text file, not a NIfTI volume\n");
  expect_bad_input(dir / "notes.nii", "");
  write_file_atomic(dir / "notes.txt", "hello");
  expect_bad_input(dir / "notes.txt", "not an image");
}

TEST(ReadVolumeBadInput, TruncatedGzip) {
  TempDir dir;
  Volume v;
  v.size = {32, 32, 32};
  v.voxels.resize(32 * 32 * 32);
  for (size_t i = 0; i < v.voxels.size(); ++i) v.voxels[i] = float((i * 7919) % 1000);
  write_volume(v, dir / "full.nii.gz", false);
  const std::string bytes = read_file(dir / "full.nii.gz");
  write_file_atomic(dir / "cut.nii.gz", bytes.substr(0, bytes.size() / 2));
  expect_bad_input(dir / "cut.nii.gz", "");
}

TEST(ReadVolumeBadInput, TruncatedUncompressed) {
  TempDir dir;
  std::vector<int16_t> data(4 * 4 * 4, 1);
  const std::string bytes = nifti_bytes({4, 4, 4}, data);
  write_file_atomic(dir / "cut.nii", bytes.substr(0, bytes.size() - 40));
  expect_bad_input(dir / "cut.nii", "");
}

TEST(ReadVolumeBadInput, TwoDImage) {
  TempDir dir;
  write_file_atomic(dir / "slice.nii.gz", gzip(nifti_bytes({4, 4}, std::vector<int16_t>(16, 1))));
  expect_bad_input(dir / "slice.nii.gz", "2-D");
}

TEST(ReadVolumeBadInput, SingleSliceThreeDImage) {
  TempDir dir;
  write_file_atomic(dir / "slice.nii", nifti_bytes({4, 4, 1}, std::vector<int16_t>(16, 1)));
  expect_bad_input(dir / "slice.nii", "");
}

TEST(ReadVolumeBadInput, FourDImage) {
  TempDir dir;
  write_file_atomic(dir / "dwi.nii.gz",
                    gzip(nifti_bytes({2, 2, 2, 3}, std::vector<int16_t>(24, 1))));
  expect_bad_input(dir / "dwi.nii.gz", "3 volumes");
}

TEST(ReadVolumeBadInput, NanAndInfInFloatNifti) {
  // The NIfTI library turns NaN/Inf into 0 while reading: read_volume must catch them first.
  TempDir dir;
  Volume v = coded_volume();
  v.at(1, 1, 1) = std::numeric_limits<float>::quiet_NaN();
  v.at(2, 1, 1) = -std::numeric_limits<float>::infinity();
  write_volume(v, dir / "nan.nii.gz", false);
  write_volume(v, dir / "nan.nii", false);
  expect_bad_input(dir / "nan.nii.gz", "2 voxels are NaN or infinite");
  expect_bad_input(dir / "nan.nii", "2 voxels are NaN or infinite");
  // Other formats keep NaN, and check_intensities reports them.
  write_volume(v, dir / "nan.nrrd", false);
  const Volume r = read_volume(dir / "nan.nrrd");
  EXPECT_TRUE(std::isnan(r.at(1, 1, 1)));
  EXPECT_THROW(check_intensities(r, dir / "nan.nrrd"), Error);
}

TEST(ReadVolumeBadInput, ErrorsAreBadInputNotRuntime) {
  TempDir dir;
  EXPECT_EQ(code_of([&] { read_volume(dir / "x.nii"); }), ExitCode::kBadInput);
}

}  // namespace
}  // namespace gg::io
