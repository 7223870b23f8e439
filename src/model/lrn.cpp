// Local response normalisation across channels (Krizhevsky et al. 2012, sec. 3.3), Caffe's form:
//   s_c = k + alpha/size * sum_{c' = c-size/2 .. c+size/2} x_c'^2,   y_c = x_c * s_c^-beta
// and its gradient (as Caffe's LRNLayer::CrossChannelBackward_cpu):
//   dx_c = dy_c * s_c^-beta - (2 alpha beta / size) * x_c * sum_{c' : c in window(c')} dy_c' y_c' /
//   s_c'
//
// The composite form (pad + avg_pool3d over channels) took 21% of BVLC's inference time and 31% of
// its training step at batch 32 on CPU, so CPU float/double tensors use a fused kernel here:
// one pass over each spatial tile with the channel sums in a small buffer, and an analytic backward
// (a custom autograd Function), for NCHW and channels-last layouts. Other devices and dtypes use
// the composite form.
#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

#include "model/model.h"

namespace gg::model {

namespace {

constexpr int64_t kTile = 64;  // spatial positions per task: C x kTile floats stay in cache

struct LrnParams {
  int64_t size;
  double alpha, beta, k;
};

// s^-beta, with the common beta = 0.75 as two square roots (much cheaper than pow).
template <typename T>
inline T inv_pow(T s, T beta) {
  if (beta == T(0.75)) {
    const T r = std::sqrt(s);
    return T(1) / (r * std::sqrt(r));
  }
  return std::pow(s, -beta);
}

// Calls body(n, p0, p1) for every image n and spatial tile [p0, p1), in parallel.
template <typename Body>
void for_each_tile(int64_t batch, int64_t plane, Body body) {
  const int64_t tiles = (plane + kTile - 1) / kTile;
  at::parallel_for(0, batch * tiles, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / tiles, p0 = (t % tiles) * kTile;
      body(n, p0, std::min(plane, p0 + kTile));
    }
  });
}

template <typename T>
void lrn_forward(const T* x, T* y, T* scale, int64_t batch, int64_t channels, int64_t plane,
                 const LrnParams& prm) {
  const int64_t half = prm.size / 2;
  const T coef = static_cast<T>(prm.alpha / prm.size), k = static_cast<T>(prm.k),
          beta = static_cast<T>(prm.beta);
  for_each_tile(batch, plane, [&](int64_t n, int64_t p0, int64_t p1) {
    const int64_t len = p1 - p0;
    std::vector<T> squares(static_cast<size_t>(channels * len));
    const int64_t base = n * channels * plane + p0;
    for (int64_t c = 0; c < channels; ++c) {
      const T* xr = x + base + c * plane;
      T* sq = squares.data() + c * len;
      for (int64_t p = 0; p < len; ++p) sq[p] = xr[p] * xr[p];
    }
    std::vector<T> sum(static_cast<size_t>(len));
    for (int64_t c = 0; c < channels; ++c) {
      std::fill(sum.begin(), sum.end(), T(0));
      for (int64_t w = std::max<int64_t>(0, c - half); w <= std::min(channels - 1, c + half); ++w) {
        const T* sq = squares.data() + w * len;
        for (int64_t p = 0; p < len; ++p) sum[p] += sq[p];
      }
      const T* xr = x + base + c * plane;
      T* yr = y + base + c * plane;
      if (scale) {
        T* sr = scale + base + c * plane;
        for (int64_t p = 0; p < len; ++p) {
          const T s = k + coef * sum[p];
          sr[p] = s;
          yr[p] = xr[p] * inv_pow(s, beta);
        }
      } else {
        for (int64_t p = 0; p < len; ++p) yr[p] = xr[p] * inv_pow(k + coef * sum[p], beta);
      }
    }
  });
}

template <typename T>
void lrn_backward(const T* dy, const T* x, const T* y, const T* scale, T* dx, int64_t batch,
                  int64_t channels, int64_t plane, const LrnParams& prm) {
  const int64_t half = prm.size / 2;
  const T coef = static_cast<T>(2 * prm.alpha * prm.beta / prm.size),
          beta = static_cast<T>(prm.beta);
  for_each_tile(batch, plane, [&](int64_t n, int64_t p0, int64_t p1) {
    const int64_t len = p1 - p0;
    const int64_t base = n * channels * plane + p0;
    std::vector<T> ratio(static_cast<size_t>(channels * len));  // dy y / s per channel
    for (int64_t c = 0; c < channels; ++c) {
      const int64_t off = base + c * plane;
      T* r = ratio.data() + c * len;
      for (int64_t p = 0; p < len; ++p) r[p] = dy[off + p] * y[off + p] / scale[off + p];
    }
    std::vector<T> sum(static_cast<size_t>(len));
    for (int64_t c = 0; c < channels; ++c) {
      std::fill(sum.begin(), sum.end(), T(0));
      // Odd size: c is in window(c') exactly when c' is in window(c).
      for (int64_t w = std::max<int64_t>(0, c - half); w <= std::min(channels - 1, c + half); ++w) {
        const T* r = ratio.data() + w * len;
        for (int64_t p = 0; p < len; ++p) sum[p] += r[p];
      }
      const int64_t off = base + c * plane;
      for (int64_t p = 0; p < len; ++p) {
        dx[off + p] = dy[off + p] * inv_pow(scale[off + p], beta) - coef * x[off + p] * sum[p];
      }
    }
  });
}

// Channels-last (NHWC): each pixel's channels are contiguous; the window sums run over a
// zero-padded copy of that pixel's squares (or ratios).
template <typename T, typename Body>
void for_each_pixel_block(int64_t pixels, int64_t channels, int64_t half, Body body) {
  at::parallel_for(0, pixels, std::max<int64_t>(1, 4096 / channels),
                   [&](int64_t begin, int64_t end) {
                     std::vector<T> padded(static_cast<size_t>(channels + 2 * half), T(0)),
                         sum(static_cast<size_t>(channels));
                     for (int64_t i = begin; i < end; ++i)
                       body(i * channels, padded.data() + half, sum.data());
                   });
}

template <typename T>
void lrn_forward_nhwc(const T* x, T* y, T* scale, int64_t pixels, int64_t channels,
                      const LrnParams& prm) {
  const int64_t half = prm.size / 2, size = prm.size;
  const T coef = static_cast<T>(prm.alpha / prm.size), k = static_cast<T>(prm.k),
          beta = static_cast<T>(prm.beta);
  for_each_pixel_block<T>(pixels, channels, half, [&](int64_t off, T* sq, T* sum) {
    for (int64_t c = 0; c < channels; ++c) sq[c] = x[off + c] * x[off + c];
    // Window offsets outermost: every inner loop runs over contiguous channels (vectorises).
    std::fill(sum, sum + channels, T(0));
    for (int64_t j = -half; j < size - half; ++j) {
      for (int64_t c = 0; c < channels; ++c) sum[c] += sq[c + j];
    }
    for (int64_t c = 0; c < channels; ++c) sum[c] = k + coef * sum[c];
    if (scale) std::copy(sum, sum + channels, scale + off);
    for (int64_t c = 0; c < channels; ++c) y[off + c] = x[off + c] * inv_pow(sum[c], beta);
  });
}

template <typename T>
void lrn_backward_nhwc(const T* dy, const T* x, const T* y, const T* scale, T* dx, int64_t pixels,
                       int64_t channels, const LrnParams& prm) {
  const int64_t half = prm.size / 2, size = prm.size;
  const T coef = static_cast<T>(2 * prm.alpha * prm.beta / prm.size),
          beta = static_cast<T>(prm.beta);
  for_each_pixel_block<T>(pixels, channels, half, [&](int64_t off, T* ratio, T* sum) {
    for (int64_t c = 0; c < channels; ++c) ratio[c] = dy[off + c] * y[off + c] / scale[off + c];
    std::fill(sum, sum + channels, T(0));
    for (int64_t j = -half; j < size - half; ++j) {
      for (int64_t c = 0; c < channels; ++c) sum[c] += ratio[c + j];
    }
    for (int64_t c = 0; c < channels; ++c) {
      dx[off + c] = dy[off + c] * inv_pow(scale[off + c], beta) - coef * x[off + c] * sum[c];
    }
  });
}

// Runs the forward kernel in the input's layout (NCHW or channels-last, so that a channels-last
// net stays so). The scale is computed into a tensor only when a backward pass will need it.
struct FusedForward {
  torch::Tensor x, y, scale;
  bool nhwc;
};
FusedForward fused_forward(const torch::Tensor& input, const LrnParams& prm, bool keep_scale) {
  const bool nhwc = !input.is_contiguous() && input.is_contiguous(at::MemoryFormat::ChannelsLast);
  const auto format = nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  FusedForward out{input.contiguous(format), {}, {}, nhwc};
  out.y = torch::empty_like(out.x, format);
  if (keep_scale) out.scale = torch::empty_like(out.x, format);
  const int64_t batch = out.x.size(0), channels = out.x.size(1),
                plane = out.x.size(2) * out.x.size(3);
  AT_DISPATCH_FLOATING_TYPES(out.x.scalar_type(), "fused_lrn_forward", [&] {
    scalar_t* scale = keep_scale ? out.scale.data_ptr<scalar_t>() : nullptr;
    if (nhwc) {
      lrn_forward_nhwc<scalar_t>(out.x.data_ptr<scalar_t>(), out.y.data_ptr<scalar_t>(), scale,
                                 batch * plane, channels, prm);
    } else {
      lrn_forward<scalar_t>(out.x.data_ptr<scalar_t>(), out.y.data_ptr<scalar_t>(), scale, batch,
                            channels, plane, prm);
    }
  });
  return out;
}

class FusedLrn : public torch::autograd::Function<FusedLrn> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input,
                               int64_t size, double alpha, double beta, double k) {
    auto [x, y, scale, nhwc] =
        fused_forward(input, LrnParams{size, alpha, beta, k}, /*keep_scale=*/true);
    ctx->saved_data["nhwc"] = nhwc;
    ctx->save_for_backward({x, y, scale});
    ctx->saved_data["size"] = size;
    ctx->saved_data["alpha"] = alpha;
    ctx->saved_data["beta"] = beta;
    return y;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &y = saved[1], &scale = saved[2];
    const bool nhwc = ctx->saved_data["nhwc"].toBool();
    const auto format = nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
    const auto dy = grad_outputs[0].contiguous(format);
    auto dx = torch::empty_like(x, format);
    const LrnParams prm{ctx->saved_data["size"].toInt(), ctx->saved_data["alpha"].toDouble(),
                        ctx->saved_data["beta"].toDouble(), 0};
    const int64_t batch = x.size(0), channels = x.size(1), plane = x.size(2) * x.size(3);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_lrn_backward", [&] {
      if (nhwc) {
        lrn_backward_nhwc<scalar_t>(dy.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
                                    y.data_ptr<scalar_t>(), scale.data_ptr<scalar_t>(),
                                    dx.data_ptr<scalar_t>(), batch * plane, channels, prm);
      } else {
        lrn_backward<scalar_t>(dy.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
                               y.data_ptr<scalar_t>(), scale.data_ptr<scalar_t>(),
                               dx.data_ptr<scalar_t>(), batch, channels, plane, prm);
      }
    });
    return {dx, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor local_response_norm_composite(const torch::Tensor& x, int64_t size, double alpha,
                                            double beta, double k) {
  TORCH_CHECK(x.dim() == 4, "local_response_norm expects [N,C,H,W]");
  // Sum of squares over a window of `size` channels centred on each channel (zero padded), as a
  // 3-D average pool over the channel axis; avg_pool3d divides by `size` (count_include_pad), which
  // is exactly Caffe's alpha/size scaling.
  auto squares = (x * x).unsqueeze(1);
  squares = torch::constant_pad_nd(squares, {0, 0, 0, 0, size / 2, (size - 1) / 2});
  auto mean_sq = torch::avg_pool3d(squares, {size, 1, 1}, {1, 1, 1}).squeeze(1);
  return x * (mean_sq * alpha + k).pow(-beta);
}

torch::Tensor local_response_norm(const torch::Tensor& x, int64_t size, double alpha, double beta,
                                  double k) {
  TORCH_CHECK(x.dim() == 4, "local_response_norm expects [N,C,H,W]");
  if (!x.device().is_cpu() || size % 2 == 0 || size < 1)
    return local_response_norm_composite(x, size, alpha, beta, k);
  const auto dtype = x.scalar_type();
  const bool reduced = dtype == torch::kBFloat16 || dtype == torch::kFloat16;
  if (dtype != torch::kFloat32 && dtype != torch::kFloat64 && !reduced) {
    return local_response_norm_composite(x, size, alpha, beta, k);
  }
  // Reduced precision (autocast): normalise in float32, hand back the input's type.
  const auto input = reduced ? x.to(torch::kFloat32) : x;
  torch::Tensor y;
  if (torch::GradMode::is_enabled() && x.requires_grad()) {
    y = FusedLrn::apply(input, size, alpha, beta, k);
  } else {
    y = fused_forward(input, LrnParams{size, alpha, beta, k}, /*keep_scale=*/false).y;
  }
  return reduced ? y.to(dtype) : y;
  return local_response_norm_composite(x, size, alpha, beta, k);
}

}  // namespace gg::model
