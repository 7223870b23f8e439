// Tumour mask labels (io/mask.h).
#include "io/mask.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "common/error.h"

namespace gg::io {

std::string read_mask_labels(Volume& seg, const fs::path& path) {
  std::set<float> labels;  // the distinct integer labels (up to a few past the known)
  bool fractional = false, out_of_range = false;
  std::set<float> bad;  // for the error: the first values that fit no convention
  for (float x : seg.voxels) {
    if (!std::isfinite(x) || x < 0) {
      out_of_range = true;
      if (bad.size() < 5) bad.insert(x);
    } else if (x != std::floor(x)) {
      fractional = true;
      if (x > 1 && bad.size() < 5) bad.insert(x);
    } else if (labels.size() < 8) {
      labels.insert(x);
    }
  }
  auto only = [&](std::initializer_list<float> allowed) {
    for (float l : labels)
      if (std::find(allowed.begin(), allowed.end(), l) == allowed.end()) return false;
    return true;
  };
  auto relabel = [&](auto f) {
    for (float& x : seg.voxels) x = f(x);
  };
  std::string notice;
  if (!out_of_range && fractional && bad.empty() && only({0, 1})) {
    relabel([](float x) { return x >= 0.5f ? 1.0f : 0.0f; });
    notice = "float mask (values between 0 and 1): voxels >= 0.5 taken as tumour";
  } else if (out_of_range || fractional) {
    const std::string list = fmt::format("{}", fmt::join(bad, ", "));
    throw_bad_input(path.string(), "mask has values that are no labels: " + list,
                    "give a label map (BraTS 0/1/2/4, binary 0/1 or 0/255) or a float mask in "
                    "[0, 1]");
  } else if (only({0, 1, 2, 4})) {
    if (labels.count(1) && !labels.count(2) && !labels.count(4))
      notice = "binary mask (0/1): 1 taken as whole tumour";
  } else if (only({0, 255})) {
    relabel([](float x) { return x > 0 ? 1.0f : 0.0f; });
    notice = "binary mask (0/255): 255 taken as whole tumour";
  } else if (only({0, 1, 2, 3, 4})) {
    relabel([](float x) { return x == 3 ? 1.0f : x; });
    notice = "BraTS 2012-2016 labels: 3 (non-enhancing core) taken as 1 (tumour core)";
  } else {
    std::set<float> unknown;
    for (float l : labels)
      if (l != 0 && l != 1 && l != 2 && l != 4) unknown.insert(l);
    throw_bad_input(
        path.string(),
        fmt::format("mask has labels outside {{0,1,2,4}}: {}", fmt::join(unknown, ", ")),
        "give a BraTS segmentation (0 background, 1 necrosis, 2 oedema, 4 enhancing), "
        "a binary mask (0/1, 0/255), BraTS 2015 labels (0-4) or a float mask in [0, 1]");
  }
  bool any = false;
  for (float x : seg.voxels) any = any || x > 0;
  if (!any)
    throw_bad_input(path.string(), "mask is empty (no voxel with a tumour label)",
                    "give the patient's tumour segmentation, or leave it out to locate the tumour "
                    "automatically");
  return notice.empty() ? notice : path.filename().string() + ": " + notice;
}

}  // namespace gg::io
