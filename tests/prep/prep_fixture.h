// Tiny hand-made patients for the prep tests: a brain box with graded intensities and a tumour
// blob whose largest slice is known.
#pragma once

#include <string>

#include "common/files.h"
#include "io/io.h"

namespace gg::prep::testing {

inline constexpr int kNx = 24, kNy = 20, kNz = 16;

// Brain = the box 2..21 × 2..17 × 1..14 (background 0 outside); intensity depends on position and
// sequence so every slice and sequence differs.
inline io::Volume brain_volume(io::Sequence seq, int patient_seed) {
  io::Volume v;
  v.size = {kNx, kNy, kNz};
  v.voxels.assign(size_t(kNx) * kNy * kNz, 0.0f);
  const int s = static_cast<int>(seq) + 1;
  for (int z = 1; z < kNz - 1; ++z)
    for (int y = 2; y < kNy - 2; ++y)
      for (int x = 2; x < kNx - 2; ++x)
        v.at(x, y, z) = float(50 + s * x + 2 * y + 3 * z + (x * y * s + patient_seed) % 7);
  return v;
}

// Tumour: in slice z, a square of side (z == centre ? 5 : 3) around (10, 10), for z in
// [centre-2, centre+2]; labels 1 in the middle, 2 around, 4 at one voxel.
inline io::Volume tumour_mask(int centre) {
  io::Volume m;
  m.size = {kNx, kNy, kNz};
  m.voxels.assign(size_t(kNx) * kNy * kNz, 0.0f);
  for (int z = std::max(0, centre - 2); z <= std::min(kNz - 1, centre + 2); ++z) {
    const int half = z == centre ? 2 : 1;
    for (int y = 10 - half; y <= 10 + half; ++y)
      for (int x = 10 - half; x <= 10 + half; ++x)
        m.at(x, y, z) = (x == 10 && y == 10) ? 1.0f : 2.0f;
  }
  m.at(11, 10, centre) = 4.0f;
  return m;
}

// Writes a patient in BraTS 2019 layout under root/<grade>/<id>/ and returns its case.
inline io::Case write_patient(const fs::path& root, const std::string& id, io::Grade grade,
                              int centre, int seed) {
  const fs::path dir = root / io::grade_name(grade) / id;
  io::Case c;
  c.id = id;
  c.grade = grade;
  c.t1 = dir / (id + "_t1.nii.gz");
  c.t2 = dir / (id + "_t2.nii.gz");
  c.flair = dir / (id + "_flair.nii.gz");
  c.seg = dir / (id + "_seg.nii.gz");
  for (io::Sequence s : io::kSequences)
    io::write_volume(brain_volume(s, seed), c.sequence_path(s), true);
  io::write_volume(tumour_mask(centre), c.seg, true);
  return c;
}

}  // namespace gg::prep::testing
