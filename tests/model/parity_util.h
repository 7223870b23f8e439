// Shared by the model tests: fixture paths, raw float32 files, and the parity measure.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/files.h"
#include "model/model.h"
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

// A float64 copy of `net` (same options, weights, buffers, frozen stages and mode): the exact
// function that a float32 net only approximates.
inline GoogLeNet float64_copy(GoogLeNet& net) {
  GoogLeNet copy(net->options());
  torch::NoGradGuard no_grad;
  auto from_params = net->named_parameters();
  for (auto& p : copy->named_parameters()) p.value().copy_(from_params[p.key()]);
  auto from_buffers = net->named_buffers();
  for (auto& b : copy->named_buffers()) b.value().copy_(from_buffers[b.key()]);
  copy->freeze_stages(net->frozen_stages());
  copy->to(torch::kFloat64);
  copy->train(net->is_training());
  return copy;
}

// How far a fast form may be from the eager float32 net, given the eager net's own rounding on
// this CPU (`eager_noise`: eager float32 against float64, relative_error). oneDNN and ATen sum in
// an order set by the CPU's vector width (AVX2, AVX-512), so a fixed bound near float noise that
// holds on one CPU fails on another (issue 23: 1.1e-5 against 1e-5 on an AVX-512 Xeon). Two
// float32 computations of one function each sit within about eager_noise of it, so they differ by
// up to about twice that; 4x leaves room for the fast form rounding differently, and the floor
// keeps today's bound where the CPU's noise is smaller. A real mistake (a wrong BatchNorm fold, a
// dropped bias) is orders of magnitude above either.
inline double float_noise_bound(double eager_noise, double floor = 1e-5) {
  return std::max(floor, 4 * eager_noise);
}

}  // namespace gg::model::test
