// A tiny BraTS-2019-layout cohort written as plain NIfTI-1 bytes, for the end-to-end tests of
// `prepare` and `split` (the cli suite links only gg_common, so no ITK here).
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include "common/files.h"

namespace gg::cli_testing {

namespace fs = std::filesystem;

inline constexpr int kNx = 16, kNy = 16, kNz = 12;

// NIfTI-1 single file: 348-byte header + 4 extension bytes + voxels. datatype 4 (int16) or 16
// (float32). sform = LPS identity (srow_x = -1, srow_y = -1 in RAS terms).
template <typename T>
std::string nifti(const std::vector<int>& dims, const std::vector<T>& voxels) {
  std::string h(352, '\0');
  auto i16 = [&](size_t off, int16_t v) { std::memcpy(&h[off], &v, 2); };
  auto i32 = [&](size_t off, int32_t v) { std::memcpy(&h[off], &v, 4); };
  auto f32 = [&](size_t off, float v) { std::memcpy(&h[off], &v, 4); };
  i32(0, 348);
  i16(40, int16_t(dims.size()));
  for (size_t i = 0; i < 7; ++i) i16(42 + 2 * i, int16_t(i < dims.size() ? dims[i] : 1));
  const bool is_float = sizeof(T) == 4;
  i16(70, is_float ? 16 : 4);
  i16(72, is_float ? 32 : 16);
  for (int i = 0; i < 8; ++i) f32(76 + 4 * i, 1.0f);
  f32(108, 352.0f);
  f32(112, 1.0f);
  i16(254, 1);      // sform_code: scanner
  f32(280, -1.0f);  // srow_x
  f32(300, -1.0f);  // srow_y
  f32(320, 1.0f);   // srow_z
  std::memcpy(&h[344], "n+1\0", 4);
  h.append(reinterpret_cast<const char*>(voxels.data()), voxels.size() * sizeof(T));
  return h;
}

inline size_t voxel(int x, int y, int z) {
  return size_t(x) + size_t(kNx) * (size_t(y) + size_t(kNy) * size_t(z));
}

// A brain box with graded intensities (background 0).
inline std::vector<int16_t> brain(int sequence, int seed) {
  std::vector<int16_t> v(size_t(kNx) * kNy * kNz, 0);
  for (int z = 1; z < kNz - 1; ++z)
    for (int y = 2; y < kNy - 2; ++y)
      for (int x = 2; x < kNx - 2; ++x)
        v[voxel(x, y, z)] = int16_t(100 + (sequence + 1) * x + 3 * y + 5 * z + (x * y + seed) % 9);
  return v;
}

// A tumour blob largest at slice `centre`.
inline std::vector<int16_t> mask(int centre) {
  std::vector<int16_t> m(size_t(kNx) * kNy * kNz, 0);
  for (int z = std::max(0, centre - 1); z <= std::min(kNz - 1, centre + 1); ++z) {
    const int half = z == centre ? 2 : 1;
    for (int y = 8 - half; y <= 8 + half; ++y)
      for (int x = 8 - half; x <= 8 + half; ++x) m[voxel(x, y, z)] = z == centre ? 4 : 2;
  }
  return m;
}

inline fs::path patient_file(const fs::path& root, const std::string& grade, const std::string& id,
                             const std::string& seq) {
  return root / grade / id / (id + "_" + seq + ".nii");
}

// root/{LGG,HGG}/<id>/<id>_{t1,t2,flair,seg}.nii: `lgg` + `hgg` patients L0.., H0...
inline void write_cohort(const fs::path& root, int lgg, int hgg) {
  for (int g = 0; g < 2; ++g) {
    const std::string grade = g == 0 ? "LGG" : "HGG";
    for (int i = 0; i < (g == 0 ? lgg : hgg); ++i) {
      const std::string id = (g == 0 ? "L" : "H") + std::to_string(i);
      const char* seqs[] = {"t1", "t2", "flair"};
      for (int s = 0; s < 3; ++s)
        write_file_atomic(patient_file(root, grade, id, seqs[s]),
                          nifti({kNx, kNy, kNz}, brain(s, i)));
      write_file_atomic(patient_file(root, grade, id, "seg"),
                        nifti({kNx, kNy, kNz}, mask(3 + i % 6)));
    }
  }
}

}  // namespace gg::cli_testing
