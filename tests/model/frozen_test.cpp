// FrozenNet (BatchNorm folded, pre-packed conv + ReLU, index-free pooling) against the eager net
// it was frozen from, and its kernels against ATen's.
#include "model/layers.h"
#include "model/model.h"
#include "parity_util.h"

namespace gg::model {
namespace {

using test::bvlc_fixtures;
using test::bvlc_weights;
using test::float64_copy;
using test::float_noise_bound;
using test::read_f32;
using test::relative_error;
using test::tv_fixtures;

// max|frozen - eager| / max|eager| where no float64 reference is at hand (the head alone, and
// bounds with the float noise measured: float_noise_bound's floor).
constexpr double kTolerance = 1e-5;

// The eager float32 net's own rounding on this CPU for input x: against its float64 copy.
double eager_noise(GoogLeNet& exact, const torch::Tensor& x, const torch::Tensor& eager) {
  return relative_error(eager, exact->forward(x.to(torch::kFloat64)).to(torch::kFloat32));
}

// A batch of n native-scale inputs: the fixture image first (when given), then seeded noise.
torch::Tensor batch_of(int64_t n, const torch::Tensor& first, double scale, double shift) {
  auto x = torch::rand({n, 3, 224, 224}, at::detail::createCPUGenerator(n)) * scale + shift;
  if (first.defined()) x[0].copy_(first[0]);
  return x;
}

// Frozen against eager at batch 1, 10 and 32, NCHW and channels-last input, within the eager
// net's own float noise on this CPU.
void expect_parity(GoogLeNet& net, const torch::Tensor& image, double scale, double shift) {
  torch::NoGradGuard no_grad;
  net->eval();
  GoogLeNet exact = float64_copy(net);
  const FrozenNet frozen(net, /*batch=*/10);
  for (int64_t n : {1, 10, 32}) {
    const auto x = batch_of(n, image, scale, shift);
    const auto eager = net->forward(x);
    const double noise = eager_noise(exact, x, eager);
    for (bool channels_last : {false, true}) {
      const auto input = channels_last ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x;
      const double error = relative_error(frozen.forward(input), eager);
      std::cout << "batch " << n << (channels_last ? " channels-last" : " NCHW")
                << ": frozen vs eager rel error " << error << ", eager vs float64 " << noise
                << "\n";
      EXPECT_LT(error, float_noise_bound(noise))
          << "batch " << n << " channels_last " << channels_last;
    }
  }
}

TEST(FrozenNet, BvlcMatchesEagerOnRealWeights) {
  if (!fs::exists(bvlc_weights())) GG_MISSING("no " << bvlc_weights());
  GoogLeNet net = load_pretrained(Variant::kBvlc, bvlc_weights());
  const auto chelsea = read_f32(bvlc_fixtures() / "chelsea.input.f32", {1, 3, 224, 224});
  expect_parity(net, chelsea, 255.0, -117.0);
  // The weights are stored channels-last for the trainer's fast path: the same result.
  net->to_memory_format(torch::MemoryFormat::ChannelsLast);
  torch::NoGradGuard no_grad;
  GoogLeNet exact = float64_copy(net);
  const auto x = batch_of(4, chelsea, 255.0, -117.0);
  const auto eager = net->forward(x);
  EXPECT_LT(relative_error(FrozenNet(net).forward(x), eager),
            float_noise_bound(eager_noise(exact, x, eager)));
}

TEST(FrozenNet, TorchvisionMatchesEagerOnFixtureWeights) {
  const fs::path weights = tv_fixtures() / "googlenet-random-legacy.pth";
  if (!fs::exists(weights)) GG_MISSING("no " << weights);
  GoogLeNet net = load_pretrained(Variant::kTorchvision, weights, /*transform_input=*/true);
  expect_parity(net, {}, 4.0, -2.0);
}

TEST(FrozenNet, FoldsNonTrivialBatchNormStatistics) {
  // Seeded running statistics and affine parameters far from the defaults, so that the fold
  // (not just the identity BatchNorm of a fresh net) is what is checked; two-class head.
  GoogLeNetOptions o;
  o.variant = Variant::kTorchvision;
  o.num_classes = 2;
  GoogLeNet net(o);
  net->init_weights(3);
  auto gen = at::detail::createCPUGenerator(5);
  torch::NoGradGuard no_grad;
  for (auto& item : net->named_buffers()) {
    if (item.key().find("running_mean") != std::string::npos)
      item.value().copy_(torch::randn(item.value().sizes(), gen) * 0.2);
    if (item.key().find("running_var") != std::string::npos)
      item.value().copy_(torch::rand(item.value().sizes(), gen) * 2 + 0.1);
  }
  for (auto& item : net->named_parameters()) {
    if (item.key().find(".bn.weight") != std::string::npos)
      item.value().copy_(torch::rand(item.value().sizes(), gen) + 0.5);
    if (item.key().find(".bn.bias") != std::string::npos)
      item.value().copy_(torch::randn(item.value().sizes(), gen) * 0.1);
  }
  net->eval();
  GoogLeNet exact = float64_copy(net);
  const auto x = batch_of(3, {}, 4.0, -2.0);
  const FrozenNet frozen(net);
  const auto eager = net->forward(x);
  const double bound = float_noise_bound(eager_noise(exact, x, eager));
  EXPECT_LT(relative_error(frozen.forward(x), eager), bound);
  // last_block + head is forward, and head is the eager head.
  auto [logits, last] = net->forward_with_last_block(x);
  auto [exact_logits, exact_last] = exact->forward_with_last_block(x.to(torch::kFloat64));
  EXPECT_LT(relative_error(frozen.last_block(x), last),
            float_noise_bound(relative_error(last, exact_last.to(torch::kFloat32))));
  EXPECT_LT(relative_error(frozen.head(last), logits), 1e-6);
}

TEST(FrozenNet, HeadIsDifferentiableInTheLastBlock) {
  GoogLeNetOptions o;
  o.num_classes = 2;
  GoogLeNet net(o);
  net->init_weights(1);
  const FrozenNet frozen(net);
  auto last = frozen.last_block(batch_of(1, {}, 255.0, -117.0));
  EXPECT_FALSE(last.requires_grad());
  auto act = last.detach().requires_grad_(true);
  auto grad = torch::autograd::grad({frozen.head(act)[0][1]}, {act})[0];
  EXPECT_EQ(grad.sizes(), torch::IntArrayRef({1, 1024, 7, 7}));
  EXPECT_GT(grad.abs().sum().item<double>(), 0);
}

// Training with frozen stages runs them through FrozenNet::through_stage: the same logits and the
// same gradients of the trainable parameters as the eager net, and none for the frozen ones.
// "The same" for gradients is measured against the eager net's own float noise: its gradients
// for the input scaled by 1 + 1e-6 (train-mode BatchNorm over 3 images amplifies rounding: ~0.5%
// for torchvision's seeded init, ~1e-4 for BVLC).
std::vector<torch::Tensor> trainable_gradients(GoogLeNet& net, const torch::Tensor& x,
                                               const FrozenNet* prefix, torch::Tensor* logits) {
  net->zero_grad();
  *logits = net->forward_shard(x, x.size(0), 0, prefix);
  logits->pow(2).sum().backward();
  std::vector<torch::Tensor> grads;
  for (const auto& p : net->parameters()) {
    if (!p.requires_grad()) {
      EXPECT_FALSE(p.grad().defined()) << "a frozen parameter got a gradient";
      continue;
    }
    EXPECT_TRUE(p.grad().defined());
    if (p.grad().defined()) grads.push_back(p.grad().flatten().to(torch::kFloat64));
  }
  return grads;
}

double norm_error(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  const auto x = torch::cat(a), y = torch::cat(b);
  return ((x - y).norm() / y.norm()).item<double>();
}

void expect_training_prefix_parity(Variant variant, int stages) {
  GoogLeNetOptions o;
  o.variant = variant;
  o.num_classes = 2;
  o.dropout = 0;  // the forwards below are then the same function
  GoogLeNet net(o);
  net->init_weights(11);
  net->freeze_stages(stages);
  net->to_memory_format(torch::MemoryFormat::ChannelsLast);
  net->train();
  const auto x = batch_of(3, {}, 4.0, -2.0).contiguous(torch::MemoryFormat::ChannelsLast);
  GoogLeNet exact = float64_copy(net);
  const FrozenNet prefix(net, 3);
  torch::Tensor eager_logits, fast_logits, nudged_logits;
  const auto eager = trainable_gradients(net, x, nullptr, &eager_logits);
  const auto fast = trainable_gradients(net, x, &prefix, &fast_logits);
  const auto nudged = trainable_gradients(net, x * (1 + 1e-6), nullptr, &nudged_logits);
  ASSERT_FALSE(eager.empty());
  ASSERT_EQ(fast.size(), eager.size());
  torch::Tensor exact_logits;
  {
    torch::NoGradGuard no_grad;
    exact_logits = exact->forward_shard(x.to(torch::kFloat64), x.size(0), 0).to(torch::kFloat32);
  }
  const double logits_error = relative_error(fast_logits, eager_logits);
  const double logits_noise = relative_error(eager_logits, exact_logits);
  const double error = norm_error(fast, eager), noise = norm_error(nudged, eager);
  std::cout << variant_name(variant) << " freeze " << stages << ": logits rel error "
            << logits_error << ", eager vs float64 " << logits_noise
            << "; gradients ||fast - eager|| / ||eager|| " << error
            << ", eager's own for a 1e-6 input change " << noise << " (" << eager.size()
            << " tensors)\n";
  EXPECT_LT(logits_error, float_noise_bound(logits_noise));
  EXPECT_LE(error, std::max(1e-5, 3 * noise));
}

TEST(FrozenNet, TrainingThroughFrozenStagesMatchesEager) {
  for (int stages = 1; stages <= 4; ++stages) {
    expect_training_prefix_parity(Variant::kBvlc, stages);
    expect_training_prefix_parity(Variant::kTorchvision, stages);
  }
}

TEST(FrozenNet, RefusesANonFloatNet) {
  GoogLeNet net(GoogLeNetOptions{});
  net->to(torch::kFloat64);
  EXPECT_THROW(FrozenNet{net}, gg::Error);
}

TEST(NhwcKernels, MaxPoolEqualsAtenBitForBit) {
  struct Case {
    int64_t c, h, w, kernel, stride, padding;
    bool ceil;
  };
  // GoogLeNet's pools (3/2 ceil, 3/1/1 ceil, torchvision's 2/2 ceil) on odd and even sizes.
  for (const Case& k : {Case{64, 112, 112, 3, 2, 0, true}, Case{5, 13, 13, 3, 2, 0, true},
                        Case{7, 14, 15, 2, 2, 0, true}, Case{3, 7, 7, 3, 1, 1, true},
                        Case{16, 9, 10, 3, 2, 1, false}, Case{4, 3, 3, 3, 2, 0, true}}) {
    auto x = torch::randn({2, k.c, k.h, k.w}, at::detail::createCPUGenerator(k.h))
                 .contiguous(torch::MemoryFormat::ChannelsLast);
    const auto ours = detail::max_pool_inference(x, k.kernel, k.stride, k.padding, k.ceil);
    const auto aten = torch::max_pool2d(x, {k.kernel, k.kernel}, {k.stride, k.stride},
                                        {k.padding, k.padding}, {1, 1}, k.ceil);
    ASSERT_EQ(ours.sizes(), aten.sizes()) << k.h << "x" << k.w << " k" << k.kernel;
    EXPECT_TRUE(ours.is_contiguous(torch::MemoryFormat::ChannelsLast));
    EXPECT_TRUE(torch::equal(ours, aten)) << k.h << "x" << k.w << " k" << k.kernel;
  }
  // NCHW input takes ATen's path and still agrees.
  auto nchw = torch::randn({1, 3, 8, 8});
  EXPECT_TRUE(torch::equal(detail::max_pool_inference(nchw, 3, 2, 0, true),
                           torch::max_pool2d(nchw, {3, 3}, {2, 2}, {0, 0}, {1, 1}, true)));
}

TEST(NhwcKernels, MaxPoolPropagatesNaN) {
  auto x = torch::zeros({1, 2, 3, 3}).contiguous(torch::MemoryFormat::ChannelsLast);
  x[0][1][1][1] = std::nanf("");
  const auto y = detail::max_pool_inference(x, 3, 2, 0, true);
  EXPECT_TRUE(std::isnan(y[0][1][0][0].item<float>()));
  EXPECT_EQ(y[0][0][0][0].item<float>(), 0.0f);
}

TEST(NhwcKernels, ConcatEqualsAten) {
  std::vector<torch::Tensor> parts;
  for (int64_t c : {3, 16, 1, 7})
    parts.push_back(torch::randn({2, c, 5, 6}).contiguous(torch::MemoryFormat::ChannelsLast));
  const auto ours = detail::cat_channels(parts);
  EXPECT_TRUE(ours.is_contiguous(torch::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(torch::equal(ours, torch::cat(parts, 1)));
  parts[1] = parts[1].contiguous();  // mixed formats: ATen's path
  EXPECT_TRUE(torch::equal(detail::cat_channels(parts), torch::cat(parts, 1)));
}

}  // namespace
}  // namespace gg::model
