// Inference kernels for float32 channels-last CPU tensors: max pooling without the int64 indices
// that ATen's max_pool2d_with_indices writes for a backward that inference never runs, and the
// inception blocks' channel concatenation as one pass of row copies.
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "model/layers.h"

namespace gg::model::detail {

namespace {

// ATen's pooling_output_shape (dilation 1): with ceil_mode the last window may start inside the
// padding on the right only if it still covers an input pixel.
int64_t pooled_size(int64_t in, int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode) {
  const int64_t span = in + 2 * padding - kernel + (ceil_mode ? stride - 1 : 0);
  int64_t out = span / stride + 1;
  if (ceil_mode && (out - 1) * stride >= in + padding) --out;
  return out;
}

// dst = max(dst, src) elementwise; NaN propagates as in ATen's max pool. Vectorises at -O3.
inline void max_into(float* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float a = src[i], b = dst[i];
    dst[i] = (a > b || a != a) ? a : b;
  }
}

}  // namespace

torch::Tensor max_pool_inference(const torch::Tensor& x, int64_t kernel, int64_t stride,
                                 int64_t padding, bool ceil_mode) {
  const bool fast = x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && x.dim() == 4 &&
                    x.is_contiguous(torch::MemoryFormat::ChannelsLast) && !x.requires_grad() &&
                    x.size(2) > 0 && x.size(3) > 0 && padding < kernel;
  if (!fast)
    return torch::max_pool2d(x, {kernel, kernel}, {stride, stride}, {padding, padding}, {1, 1},
                             ceil_mode);
  // Named in the autograd profiler's output (bench_model --profile), as a dispatched op would be.
  RECORD_FUNCTION("gg::max_pool_inference", std::vector<c10::IValue>{x});
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t oh = pooled_size(h, kernel, stride, padding, ceil_mode);
  const int64_t ow = pooled_size(w, kernel, stride, padding, ceil_mode);
  auto y =
      torch::empty({n, c, oh, ow}, x.options().memory_format(torch::MemoryFormat::ChannelsLast));
  const float* in = x.data_ptr<float>();
  float* out = y.data_ptr<float>();
  const int64_t row_len = w * c;
  // Separable: per output row, the max over the window's input rows (one row of w x c), then per
  // output pixel the max over the window's columns of that row. Max is exact, so the result
  // equals ATen's to the bit.
  at::parallel_for(0, n * oh, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(row_len));
    for (int64_t i = begin; i < end; ++i) {
      const int64_t img = i / oh, r = i % oh;
      const int64_t r0 = std::max<int64_t>(r * stride - padding, 0);
      const int64_t r1 = std::min<int64_t>(r * stride - padding + kernel, h);
      const float* src = in + (img * h + r0) * row_len;
      std::copy(src, src + row_len, row.begin());
      for (int64_t rr = r0 + 1; rr < r1; ++rr)
        max_into(row.data(), src + (rr - r0) * row_len, row_len);
      float* dst = out + (img * oh + r) * ow * c;
      for (int64_t col = 0; col < ow; ++col, dst += c) {
        const int64_t c0 = std::max<int64_t>(col * stride - padding, 0);
        const int64_t c1 = std::min<int64_t>(col * stride - padding + kernel, w);
        std::copy(row.data() + c0 * c, row.data() + (c0 + 1) * c, dst);
        for (int64_t cc = c0 + 1; cc < c1; ++cc) max_into(dst, row.data() + cc * c, c);
      }
    }
  });
  return y;
}

torch::Tensor cat_channels(const std::vector<torch::Tensor>& parts) {
  bool fast = !parts.empty();
  for (const auto& p : parts)
    fast = fast && p.device().is_cpu() && p.scalar_type() == torch::kFloat32 && p.dim() == 4 &&
           p.is_contiguous(torch::MemoryFormat::ChannelsLast) && !p.requires_grad() &&
           p.size(0) == parts[0].size(0) && p.size(2) == parts[0].size(2) &&
           p.size(3) == parts[0].size(3);
  if (!fast) return torch::cat(parts, 1);
  RECORD_FUNCTION("gg::cat_channels", std::vector<c10::IValue>{});
  int64_t channels = 0;
  for (const auto& p : parts) channels += p.size(1);
  const auto& first = parts[0];
  const int64_t pixels = first.size(0) * first.size(2) * first.size(3);
  auto y = torch::empty({first.size(0), channels, first.size(2), first.size(3)},
                        first.options().memory_format(torch::MemoryFormat::ChannelsLast));
  float* out = y.data_ptr<float>();
  std::vector<std::pair<const float*, int64_t>> src;
  for (const auto& p : parts) src.emplace_back(p.data_ptr<float>(), p.size(1));
  // In NHWC each pixel's channels are contiguous: output pixel = the parts' pixels side by side.
  at::parallel_for(0, pixels, 256, [&](int64_t begin, int64_t end) {
    for (int64_t px = begin; px < end; ++px) {
      float* dst = out + px * channels;
      for (const auto& [data, c] : src) {
        std::memcpy(dst, data + px * c, size_t(c) * sizeof(float));
        dst += c;
      }
    }
  });
  return y;
}

}  // namespace gg::model::detail
