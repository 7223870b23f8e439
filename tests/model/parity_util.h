// Shared by the model tests: fixture paths, raw float32 files, and the parity measure.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/files.h"
#include "testing/testing.h"

namespace gg::model::test {

namespace fs = std::filesystem;

inline fs::path bvlc_weights() {
  return gg::testing::shared_dir() / "weights" / "bvlc_googlenet.caffemodel";
}
inline fs::path bvlc_fixtures() { return gg::testing::shared_dir() / "fixtures" / "bvlc"; }
inline fs::path tv_fixtures() { return gg::testing::shared_dir() / "fixtures" / "torchvision"; }

// A raw little-endian float32 file as a tensor of `shape`.
inline torch::Tensor read_f32(const fs::path& path, std::vector<int64_t> shape) {
  const std::string bytes = gg::read_file(path);
  auto t = torch::empty(shape, torch::kFloat32);
  EXPECT_EQ(bytes.size(), static_cast<size_t>(t.numel()) * 4) << path;
  std::memcpy(t.data_ptr(), bytes.data(),
              std::min(bytes.size(), static_cast<size_t>(t.numel()) * 4));
  return t;
}

// max |a - b| / max |b|: the error relative to the reference tensor's scale.
inline double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max()).item<double>();
}

}  // namespace gg::model::test
