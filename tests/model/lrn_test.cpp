// The fused LRN against the composite one (forward and gradient) and a hand-computed value.
#include "model/model.h"
#include "parity_util.h"

namespace gg::model {
namespace {

TEST(Lrn, KnownValue) {
  // One pixel, channels (1, 2, 3): channel 0's window holds 1^2 + 2^2 + 3^2 = 14 (size 5).
  const auto x = torch::tensor({1.0, 2.0, 3.0}, torch::kFloat64).view({1, 3, 1, 1});
  const auto y = local_response_norm(x, 5, 1e-4, 0.75, 1.0);
  EXPECT_NEAR(y[0][0][0][0].item<double>(), 1.0 / std::pow(1 + 1e-4 / 5 * 14, 0.75), 1e-15);
  // Size 3: channel 0's window is channels 0..1 only.
  EXPECT_NEAR(local_response_norm(x, 3, 0.3, 0.5, 2.0)[0][0][0][0].item<double>(),
              1.0 / std::sqrt(2 + 0.1 * 5), 1e-15);
}

TEST(Lrn, FusedMatchesCompositeForwardAndBackward) {
  torch::manual_seed(3);
  for (int64_t size : {5, 3, 1}) {
    for (double beta : {0.75, 0.6}) {
      // Large values so that the normalisation matters; odd spatial size crosses tile edges.
      const auto x0 = torch::randn({2, 7, 9, 11}, torch::kFloat64) * 40;
      const auto dy = torch::randn({2, 7, 9, 11}, torch::kFloat64);
      auto x1 = x0.clone().requires_grad_(), x2 = x0.clone().requires_grad_();
      auto fused = local_response_norm(x1, size, 1e-3, beta, 1.5);
      auto composite = local_response_norm_composite(x2, size, 1e-3, beta, 1.5);
      EXPECT_LT((fused - composite).abs().max().item<double>(), 1e-12) << size << " " << beta;
      fused.backward(dy);
      composite.backward(dy);
      EXPECT_LT((x1.grad() - x2.grad()).abs().max().item<double>(), 1e-12) << size << " " << beta;
    }
  }
  // Channels-last input stays channels-last, forward and gradient.
  const auto xc =
      (torch::randn({2, 6, 5, 4}, torch::kFloat64) * 40).contiguous(at::MemoryFormat::ChannelsLast);
  auto x3 = xc.clone().requires_grad_(), x4 = xc.contiguous().requires_grad_();
  auto y3 = local_response_norm(x3), y4 = local_response_norm_composite(x4);
  EXPECT_TRUE(y3.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_LT((y3 - y4).abs().max().item<double>(), 1e-12);
  const auto dy = torch::randn({2, 6, 5, 4}, torch::kFloat64);
  y3.backward(dy);
  y4.backward(dy);
  EXPECT_LT((x3.grad() - x4.grad()).abs().max().item<double>(), 1e-12);

  const auto xf = torch::randn({3, 64, 13, 13}) * 30;
  EXPECT_LT(test::relative_error(local_response_norm(xf), local_response_norm_composite(xf)), 1e-6);
  const auto xb = xf.to(torch::kBFloat16);
  const auto yb = local_response_norm(xb);
  EXPECT_EQ(yb.scalar_type(), torch::kBFloat16);
  EXPECT_LT(test::relative_error(yb.to(torch::kFloat32), local_response_norm_composite(xf)), 1e-2);
}

}  // namespace
}  // namespace gg::model
