// Tumour masks as users have them: BraTS labels (0, 1, 2, 4), binary whole-tumour masks (0/1 or
// 0/255), float masks (probabilities or interpolated labels in [0, 1]), and BraTS 2012-2016 labels
// where 3 is the non-enhancing core. Each is read into BraTS labels with a notice saying how.
#pragma once

#include <filesystem>
#include <string>

#include "io/io.h"

namespace gg::io {

// Rewrites `seg` in BraTS labels (0 background; 1, 2, 4 tumour) and returns the notice saying how
// its labels were taken ("" when they were BraTS labels already):
//   {0,1,2,4} with 2 or 4 present       BraTS labels, as they are;
//   {0,1}                               a binary whole-tumour mask: 1 is tumour;
//   {0,255}                             a binary mask saved as 8-bit image: 255 becomes 1;
//   {0,1,2,3,4} with 3 present          BraTS 2012-2016 (3 non-enhancing core): 3 becomes 1;
//   values in [0,1] not all 0 or 1      a float mask: >= 0.5 becomes 1, the rest 0.
// Throws gg::Error kBadInput naming `path` for anything else (negative, NaN, other labels: the
// first few are listed) and for a mask with no tumour voxel left.
std::string read_mask_labels(Volume& seg, const fs::path& path);

}  // namespace gg::io
