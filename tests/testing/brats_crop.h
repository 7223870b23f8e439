// A 64x64x40 crop of the real BraTS 2019 sample through its tumour (t1, t1ce, t2, flair, seg),
// for tests that run DeepMedic in seconds instead of the full case's minute. Header-only: the
// tests that include it link gg_io.
#pragma once

#include <array>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "io/io.h"
#include "testing/testing.h"

namespace gg::testing {

// ../shared's BraTS 2019 sample volume of `seq` (t1, t1ce, t2, flair, seg). Throws naming the path
// when it is missing (the fixtures are part of CI).
inline fs::path brats_sample(const std::string& seq) {
  const fs::path p = shared_dir() / "data/brats-sample/HGG/BraTS19_2013_10_1" /
                     ("BraTS19_2013_10_1_" + seq + ".nii.gz");
  if (!fs::exists(p)) throw std::runtime_error("fixture missing: " + p.string());
  return p;
}

// The box x 52..115, y 92..155, z 47..86 (LPS+) of `v`, in the tumour (which spans x 57..111,
// y 76..171, z 29..102); the origin moves with it, so the crop lies where it lay.
inline io::Volume brats_crop(const io::Volume& v) {
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

// Writes <dir>/{t1,t1ce,t2,flair,seg}.nii.gz, the crop of each (int16, as BraTS).
inline void write_brats_crop(const fs::path& dir) {
  fs::create_directories(dir);
  for (const char* s : {"t1", "t1ce", "t2", "flair", "seg"})
    io::write_volume(brats_crop(io::read_volume(brats_sample(s))),
                     dir / (std::string(s) + ".nii.gz"), true);
}

}  // namespace gg::testing
