// FrozenNet: GoogLeNet's eval-mode forward with BatchNorm folded, conv + bias + ReLU as
// pre-packed oneDNN primitives and index-free max pooling (issue 11).
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/torch.h>

#include <array>

#include "common/error.h"
#include "model/layers.h"
#include "model/model.h"

namespace gg::model {

namespace {

// libtorch 1.13's prepacked oneDNN convolution (the ops torch.jit.freeze's MKL-DNN rewrite
// emits): conv2d_prepack(W, B, stride, padding, dilation, groups, input_size, attr) -> a
// ConvOpContext holding the weights reordered once into oneDNN's layout and the primitive for
// input_size; conv2d_run(X, ctx) runs it (other input sizes rebuild the primitive per call).
// Absent from a libtorch built without oneDNN: then convolutions run unpacked.
struct PrepackedOps {
  c10::optional<c10::OperatorHandle> prepack, run;
};
const PrepackedOps& prepacked_ops() {
  static const PrepackedOps ops = [] {
    PrepackedOps o;
    auto& d = c10::Dispatcher::singleton();
    o.prepack = d.findSchema({"mkldnn_prepacked::conv2d_prepack", ""});
    o.run = d.findSchema({"mkldnn_prepacked::conv2d_run", ""});
    if (!o.prepack || !o.run) o = {};
    return o;
  }();
  return ops;
}

int64_t conv_out(int64_t in, int64_t kernel, int64_t stride, int64_t padding) {
  return (in + 2 * padding - kernel) / stride + 1;
}
int64_t pool_out(int64_t in, int64_t kernel, int64_t stride, int64_t padding) {
  int64_t out = (in + 2 * padding - kernel + stride - 1) / stride + 1;  // ceil mode
  if ((out - 1) * stride >= in + padding) --out;
  return out;
}

// conv [+ BatchNorm folded] + ReLU.
struct FrozenConv {
  torch::Tensor weight, bias;  // folded; weight channels-last
  int64_t stride = 1, padding = 0;
  c10::IValue packed;  // ConvOpContext, or None

  torch::Tensor operator()(const torch::Tensor& x) const {
    if (packed.isNone()) {
      auto y = torch::conv2d(x, weight, bias, stride, padding);
      return y.relu_();
    }
    torch::jit::Stack stack{x, packed};
    prepacked_ops().run->callBoxed(&stack);
    return stack.back().toTensor();
  }
};

// BatchNorm in eval mode is y = (x - mean) / sqrt(var + eps) * gamma + beta, an affine map per
// channel, so conv (no bias) + BN = conv with weight W * s and bias beta - mean * s,
// s = gamma / sqrt(var + eps) (computed in double, rounded once).
FrozenConv freeze_conv(const detail::ConvBlockImpl& block, int64_t batch, int64_t channels,
                       int64_t hw) {
  torch::NoGradGuard no_grad;
  const auto& conv = block.conv;
  FrozenConv f;
  f.stride = conv->options.stride()->at(0);
  f.padding = c10::get<torch::ExpandingArray<2>>(conv->options.padding())->at(0);
  if (block.bn) {
    const auto& bn = block.bn;
    auto s = bn->weight.detach().to(torch::kFloat64) /
             (bn->running_var.to(torch::kFloat64) + bn->options.eps()).sqrt();
    f.weight = (conv->weight.detach().to(torch::kFloat64) * s.view({-1, 1, 1, 1}))
                   .to(torch::kFloat32)
                   .contiguous(torch::MemoryFormat::ChannelsLast);
    f.bias = (bn->bias.detach().to(torch::kFloat64) - bn->running_mean.to(torch::kFloat64) * s)
                 .to(torch::kFloat32);
  } else {
    f.weight = conv->weight.detach().clone(torch::MemoryFormat::ChannelsLast);
    f.bias = conv->bias.detach().clone();
  }
  const auto& ops = prepacked_ops();
  if (ops.prepack && f.weight.device().is_cpu()) {
    const std::vector<int64_t> pair_s{f.stride, f.stride}, pair_p{f.padding, f.padding};
    const std::vector<int64_t> input{batch, channels, hw, hw};
    torch::jit::Stack stack{
        f.weight,           f.bias, pair_s, pair_p, std::vector<int64_t>{1, 1}, int64_t{1}, input,
        std::string("relu")};
    ops.prepack->callBoxed(&stack);
    f.packed = stack.back();
  }
  return f;
}

const detail::ConvBlockImpl& conv_block(const torch::nn::Module& m) {
  return *m.as<detail::ConvBlockImpl>();
}

struct FrozenInception {
  FrozenConv b1, b2_reduce, b2, b3_reduce, b3, b4;

  torch::Tensor operator()(const torch::Tensor& x) const {
    auto pooled = detail::max_pool_inference(x, 3, 1, 1, /*ceil_mode=*/true);
    return detail::cat_channels({b1(x), b2(b2_reduce(x)), b3(b3_reduce(x)), b4(pooled)});
  }
};

FrozenInception freeze_inception(const detail::InceptionImpl& m, int64_t batch, int64_t hw) {
  const int64_t in = m.branch1->conv->options.in_channels();
  const auto& b2r = conv_block(*m.branch2->ptr(0));
  const auto& b3r = conv_block(*m.branch3->ptr(0));
  FrozenInception f;
  f.b1 = freeze_conv(*m.branch1, batch, in, hw);
  f.b2_reduce = freeze_conv(b2r, batch, in, hw);
  f.b2 = freeze_conv(conv_block(*m.branch2->ptr(1)), batch, b2r.conv->options.out_channels(), hw);
  f.b3_reduce = freeze_conv(b3r, batch, in, hw);
  f.b3 = freeze_conv(conv_block(*m.branch3->ptr(1)), batch, b3r.conv->options.out_channels(), hw);
  f.b4 = freeze_conv(conv_block(*m.branch4->ptr(1)), batch, in, hw);
  return f;
}

}  // namespace

struct FrozenNet::Impl {
  GoogLeNet net{nullptr};
  bool bvlc = true, transform_input = false;
  FrozenConv conv1, conv2, conv3;
  std::array<FrozenInception, 9> inceptions;
  torch::Tensor fc_weight, fc_bias;
};

FrozenNet::FrozenNet(GoogLeNet net, int64_t batch, int64_t image_size) {
  auto impl = std::make_shared<Impl>();
  for (const auto& p : net->parameters())
    if (p.scalar_type() != torch::kFloat32)
      throw_bad_input("", "only a float32 GoogLeNet can be frozen for inference");
  const auto& o = net->options();
  impl->bvlc = o.variant == Variant::kBvlc;
  impl->transform_input = o.transform_input;
  const auto named = net->named_children();
  const auto child = [&](const std::string& name) -> const torch::nn::Module& {
    return *named[name];
  };
  // Spatial sizes along the network, for the primitives' input shapes (224 -> 112 -> 56 -> 28 ->
  // 14 -> 7).
  int64_t hw = image_size;
  impl->conv1 = freeze_conv(conv_block(child("conv1")), batch, 3, hw);
  hw = pool_out(conv_out(hw, 7, 2, 3), 3, 2, 0);
  impl->conv2 = freeze_conv(conv_block(child("conv2")), batch, 64, hw);
  impl->conv3 = freeze_conv(conv_block(child("conv3")), batch, 64, hw);
  hw = pool_out(hw, 3, 2, 0);
  const char* const names[] = {"inception3a", "inception3b", "inception4a",
                               "inception4b", "inception4c", "inception4d",
                               "inception4e", "inception5a", "inception5b"};
  for (int i = 0; i < 9; ++i) {
    if (i == 2) hw = pool_out(hw, 3, 2, 0);
    if (i == 7) hw = pool_out(hw, impl->bvlc ? 3 : 2, 2, 0);
    impl->inceptions[size_t(i)] =
        freeze_inception(*child(names[i]).as<detail::InceptionImpl>(), batch, hw);
  }
  const auto& fc = *child("fc").as<torch::nn::LinearImpl>();
  impl->fc_weight = fc.weight.detach().clone();
  impl->fc_bias = fc.bias.detach().clone();
  impl->net = std::move(net);
  impl_ = std::move(impl);
}

torch::Tensor FrozenNet::through_stage(const torch::Tensor& input, int stages) const {
  if (input.dim() != 4 || input.size(1) != 3)
    throw_bad_input("", "GoogLeNet input must be [N,3,H,W], got " + c10::str(input.sizes()));
  if (stages < 1 || stages > 4)
    throw_bad_input("", "through_stage: stages must be 1..4, got " + std::to_string(stages));
  torch::NoGradGuard no_grad;
  const Impl& m = *impl_;
  const bool bvlc = m.bvlc;
  auto x = input.contiguous(torch::MemoryFormat::ChannelsLast);
  if (m.transform_input)
    x = m.net->input_transform(x).contiguous(torch::MemoryFormat::ChannelsLast);
  // The layer sequence of GoogLeNetImpl::run in eval mode, cut where the freeze stages end.
  x = detail::max_pool_inference(m.conv1(x), 3, 2, 0, true);
  if (bvlc) x = local_response_norm(x);
  x = m.conv3(m.conv2(x));
  if (bvlc) x = local_response_norm(x);
  x = detail::max_pool_inference(x, 3, 2, 0, true);
  if (stages == 1) return x;
  x = m.inceptions[1](m.inceptions[0](x));
  x = detail::max_pool_inference(x, 3, 2, 0, true);
  if (stages == 2) return x;
  for (size_t i = 2; i <= 6; ++i) x = m.inceptions[i](x);
  x = detail::max_pool_inference(x, bvlc ? 3 : 2, 2, 0, true);
  if (stages == 3) return x;
  return m.inceptions[8](m.inceptions[7](x));
}

torch::Tensor FrozenNet::last_block(const torch::Tensor& input) const {
  return through_stage(input, 4);
}

torch::Tensor FrozenNet::head(const torch::Tensor& last) const {
  // Caffe's pool5 (7x7 average) and torchvision's adaptive pool agree at 224x224; dropout is the
  // identity in eval mode.
  return torch::linear(torch::flatten(torch::adaptive_avg_pool2d(last, {1, 1}), 1),
                       impl_->fc_weight, impl_->fc_bias);
}

torch::Tensor FrozenNet::forward(const torch::Tensor& x) const {
  torch::NoGradGuard no_grad;
  return head(last_block(x));
}

const GoogLeNet& FrozenNet::net() const { return impl_->net; }

bool FrozenNet::prepacked() const { return !impl_->conv1.packed.isNone(); }

}  // namespace gg::model
