// explain-internal: the one upsampling Grad-CAM maps go through, shared so that the tumour-overlap
// reference map is upsampled exactly as heatmaps are.
#pragma once

#include <torch/torch.h>

namespace gg::explain {

// [1,1,h,w] -> [1,1,size,size], bilinear, align_corners=false (pixel centres, edges held).
inline torch::Tensor upsample_map(const torch::Tensor& map, int size) {
  return torch::nn::functional::interpolate(map, torch::nn::functional::InterpolateFuncOptions()
                                                     .size(std::vector<int64_t>{size, size})
                                                     .mode(torch::kBilinear)
                                                     .align_corners(false));
}

}  // namespace gg::explain
