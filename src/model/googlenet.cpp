// GoogLeNet in both variants. Layer list: Szegedy et al., "Going deeper with convolutions",
// CVPR 2015, table 1; BVLC's deploy.prototxt; torchvision 0.14 models/googlenet.py.
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "common/error.h"
#include "model/layers.h"
#include "model/model.h"

namespace gg::model {

namespace detail {

ConvBlockImpl::ConvBlockImpl(int64_t in_channels, int64_t out_channels, int64_t kernel,
                             int64_t stride, int64_t padding, bool batch_norm) {
  conv = register_module(
      "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, out_channels, kernel)
                                    .stride(stride)
                                    .padding(padding)
                                    .bias(!batch_norm)));
  if (batch_norm) {
    bn = register_module(
        "bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out_channels).eps(1e-3)));
  }
}

torch::Tensor ConvBlockImpl::forward(torch::Tensor x) {
  x = conv(x);
  if (bn) x = bn(x);
  return torch::relu_(x);
}

InceptionImpl::InceptionImpl(const InceptionChannels& ch, int64_t branch3_kernel, bool batch_norm) {
  branch1 = register_module("branch1", ConvBlock(ch.in, ch.b1, 1, 1, 0, batch_norm));
  branch2 = register_module(
      "branch2", torch::nn::Sequential(ConvBlock(ch.in, ch.b2_reduce, 1, 1, 0, batch_norm),
                                       ConvBlock(ch.b2_reduce, ch.b2, 3, 1, 1, batch_norm)));
  branch3 = register_module(
      "branch3", torch::nn::Sequential(ConvBlock(ch.in, ch.b3_reduce, 1, 1, 0, batch_norm),
                                       ConvBlock(ch.b3_reduce, ch.b3, branch3_kernel, 1,
                                                 branch3_kernel / 2, batch_norm)));
  branch4 = register_module(
      "branch4",
      torch::nn::Sequential(
          torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(1).padding(1).ceil_mode(true)),
          ConvBlock(ch.in, ch.b4_proj, 1, 1, 0, batch_norm)));
}

torch::Tensor InceptionImpl::forward(torch::Tensor x) {
  // (Stacking branch1's and the two reductions' 1x1 weights into one convolution was measured
  // 6-11% slower per training step at batch 32: the split outputs are copied before the next
  // convolutions and the stacked weights and gradients cost more than the larger GEMM saves.)
  return torch::cat({branch1(x), branch2->forward(x), branch3->forward(x), branch4->forward(x)}, 1);
}

InceptionAuxImpl::InceptionAuxImpl(int64_t in_channels, int64_t num_classes, double dropout)
    : dropout_p(dropout) {
  conv = register_module("conv", ConvBlock(in_channels, 128, 1, 1, 0, /*batch_norm=*/true));
  fc1 = register_module("fc1", torch::nn::Linear(2048, 1024));
  fc2 = register_module("fc2", torch::nn::Linear(1024, num_classes));
}

torch::Tensor InceptionAuxImpl::forward(torch::Tensor x) {
  x = torch::adaptive_avg_pool2d(x, {4, 4});
  x = conv(x);
  x = torch::flatten(x, 1);
  x = fc1(x);
  x = torch::relu_(x);
  x = torch::dropout(x, dropout_p, is_training());
  return fc2(x);
}

}  // namespace detail

namespace {

// Inception blocks in order 3a 3b 4a 4b 4c 4d 4e 5a 5b (paper, table 1).
const detail::InceptionChannels kInceptionChannels[] = {
    {192, 64, 96, 128, 16, 32, 32},     {256, 128, 128, 192, 32, 96, 64},
    {480, 192, 96, 208, 16, 48, 64},    {512, 160, 112, 224, 24, 64, 64},
    {512, 128, 128, 256, 24, 64, 64},   {512, 112, 144, 288, 32, 64, 64},
    {528, 256, 160, 320, 32, 128, 128}, {832, 256, 160, 320, 32, 128, 128},
    {832, 384, 192, 384, 48, 128, 128},
};
const char* const kInceptionNames[] = {"inception3a", "inception3b", "inception4a",
                                       "inception4b", "inception4c", "inception4d",
                                       "inception4e", "inception5a", "inception5b"};
// Index of the last inception block of freeze stages 2, 3, 4 (3b, 4e, 5b).
const int kStageLastInception[] = {-1, -1, 1, 6, 8};

torch::Tensor max_pool_ceil(const torch::Tensor& x, int64_t kernel) {
  // Caffe rounds pooled sizes up; with no padding PyTorch's ceil_mode gives the same sizes
  // (224 -> 112 -> 56 -> 28 -> 14 -> 7).
  return torch::max_pool2d(x, {kernel, kernel}, {2, 2}, {0, 0}, {1, 1}, /*ceil_mode=*/true);
}

// libtorch's Conv2d/Linear constructors draw their default init from the global generator. Our
// weights always come from a file or a seeded generator, so building a net must not disturb the
// global random stream that others (dropout, data order) may rely on: restore it afterwards.
class PreserveGlobalRng {
 public:
  PreserveGlobalRng() : generator_(at::detail::getDefaultCPUGenerator()) {
    std::lock_guard<std::mutex> lock(generator_.mutex());
    state_ = generator_.get_state();
  }
  ~PreserveGlobalRng() {
    std::lock_guard<std::mutex> lock(generator_.mutex());
    generator_.set_state(state_);
  }
  PreserveGlobalRng(const PreserveGlobalRng&) = delete;
  PreserveGlobalRng& operator=(const PreserveGlobalRng&) = delete;

 private:
  at::Generator generator_;
  at::Tensor state_;
};

void set_requires_grad(torch::nn::Module& module, bool on) {
  for (auto& p : module.parameters()) p.set_requires_grad(on);
}

}  // namespace

const char* variant_name(Variant variant) {
  return variant == Variant::kBvlc ? "bvlc" : "torchvision";
}

Variant parse_variant(const std::string& name) {
  if (name == "bvlc") return Variant::kBvlc;
  if (name == "torchvision") return Variant::kTorchvision;
  throw_bad_input("", "unknown GoogLeNet variant '" + name + "'", "use bvlc or torchvision");
}

GoogLeNetImpl::GoogLeNetImpl(const GoogLeNetOptions& options) : options_(options) {
  const bool tv = options.variant == Variant::kTorchvision;
  if (!tv && (options.aux_logits || options.transform_input)) {
    throw_bad_input("", "aux heads and transform_input exist only in the torchvision variant",
                    "use --variant torchvision, or leave them off");
  }
  if (options.num_classes < 1) throw_bad_input("", "num_classes must be at least 1");
  if (options.dropout > 1)
    throw_bad_input("", "dropout must be in [0, 1] (or -1 for the variant's own)");
  PreserveGlobalRng keep_global_rng;
  conv1_ = register_module("conv1", std::make_shared<detail::ConvBlockImpl>(3, 64, 7, 2, 3, tv));
  conv2_ = register_module("conv2", std::make_shared<detail::ConvBlockImpl>(64, 64, 1, 1, 0, tv));
  conv3_ = register_module("conv3", std::make_shared<detail::ConvBlockImpl>(64, 192, 3, 1, 1, tv));
  for (int i = 0; i < 9; ++i) {
    inceptions_.push_back(register_module(
        kInceptionNames[i],
        std::make_shared<detail::InceptionImpl>(kInceptionChannels[i], tv ? 3 : 5, tv)));
  }
  if (options.aux_logits) {
    aux1_ = register_module(
        "aux1", std::make_shared<detail::InceptionAuxImpl>(512, options.num_classes, 0.7));
    aux2_ = register_module(
        "aux2", std::make_shared<detail::InceptionAuxImpl>(528, options.num_classes, 0.7));
  }
  fc_ = register_module("fc", torch::nn::Linear(1024, options.num_classes));
}

double GoogLeNetImpl::dropout_p() const {
  if (options_.dropout >= 0) return options_.dropout;
  return options_.variant == Variant::kBvlc ? 0.4 : 0.2;
}

torch::Tensor GoogLeNetImpl::input_transform(torch::Tensor x) const {
  // torchvision's _transform_input: maps ImageNet-normalised input to the (x - 0.5) / 0.5
  // normalisation its published weights were trained with. Same ops, same float results.
  auto c0 = x.select(1, 0).unsqueeze(1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5;
  auto c1 = x.select(1, 1).unsqueeze(1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5;
  auto c2 = x.select(1, 2).unsqueeze(1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5;
  return torch::cat({c0, c1, c2}, 1);
}

GoogLeNetImpl::TrainOutputs GoogLeNetImpl::run(torch::Tensor x, bool want_aux,
                                               torch::Tensor* last_block, torch::Tensor* pooled,
                                               const Rows* dropout_rows,
                                               const FrozenNet* frozen_prefix) {
  if (x.dim() != 4 || x.size(1) != 3) {
    throw_bad_input("", "GoogLeNet input must be [N,3,H,W], got " + c10::str(x.sizes()));
  }
  const bool bvlc = options_.variant == Variant::kBvlc;
  const bool aux = want_aux && aux1_ && is_training();
  // Frozen stages in training: their eval-mode forward, pre-packed and without autograd (their
  // parameters need no gradient and nothing before them does). Not through the aux heads' inputs.
  int done = 0;  // freeze stages already computed
  if (frozen_prefix && is_training() && frozen_stages_ > 0) {
    done = aux ? std::min(frozen_stages_, 2) : frozen_stages_;
    x = frozen_prefix->through_stage(x, done);
  } else if (options_.transform_input) {
    x = input_transform(x);
  }
  if (done < 1) {
    x = conv1_->forward(x);
    x = max_pool_ceil(x, 3);
    if (bvlc) x = local_response_norm(x);
    x = conv2_->forward(x);
    x = conv3_->forward(x);
    if (bvlc) x = local_response_norm(x);
    x = max_pool_ceil(x, 3);
  }
  if (done < 2) {
    x = inceptions_[0]->forward(x);  // 3a
    x = inceptions_[1]->forward(x);  // 3b
    x = max_pool_ceil(x, 3);
  }
  TrainOutputs out;
  if (done < 3) {
    x = inceptions_[2]->forward(x);  // 4a
    if (aux) out.aux1 = aux1_->forward(x);
    for (int i = 3; i <= 5; ++i) x = inceptions_[i]->forward(x);  // 4b 4c 4d
    if (aux) out.aux2 = aux2_->forward(x);
    x = inceptions_[6]->forward(x);      // 4e
    x = max_pool_ceil(x, bvlc ? 3 : 2);  // torchvision's maxpool4 is 2x2; both give 7x7 at 224
  }
  if (done < 4) {
    x = inceptions_[7]->forward(x);  // 5a
    x = inceptions_[8]->forward(x);  // 5b
  }
  if (last_block) *last_block = x;
  // Caffe's pool5 is a 7x7 average pool, torchvision's an adaptive one: equal at 224x224.
  x = torch::flatten(torch::adaptive_avg_pool2d(x, {1, 1}), 1);
  if (pooled) *pooled = x;
  const double p = dropout_p();
  if (dropout_rows && is_training() && p > 0) {
    // ATen's CPU dropout: noise = empty_like(x).bernoulli_(1 - p).div_(1 - p); x * noise. Drawn
    // here for the global batch, so that each shard takes its own rows of one mask.
    auto noise = torch::empty({dropout_rows->global_batch, x.size(1)}, x.options());
    if (p < 1)
      noise.bernoulli_(1 - p).div_(1 - p);
    else
      noise.zero_();
    x = x * noise.narrow(0, dropout_rows->first, x.size(0));
  } else {
    x = torch::dropout(x, p, is_training());
  }
  out.logits = fc_(x);
  return out;
}

torch::Tensor GoogLeNetImpl::forward(torch::Tensor x) {
  return run(std::move(x), false, nullptr, nullptr).logits;
}

torch::Tensor GoogLeNetImpl::forward_shard(torch::Tensor x, int64_t global_batch, int64_t first_row,
                                           const FrozenNet* frozen_prefix) {
  if (first_row < 0 || first_row + x.size(0) > global_batch)
    throw_bad_input("", "shard rows outside the global batch");
  const Rows rows{global_batch, first_row};
  return run(std::move(x), false, nullptr, nullptr, &rows, frozen_prefix).logits;
}

torch::Tensor GoogLeNetImpl::features(torch::Tensor x) {
  torch::Tensor pooled;
  run(std::move(x), false, nullptr, &pooled);
  return pooled;
}

GoogLeNetImpl::TrainOutputs GoogLeNetImpl::forward_train(torch::Tensor x) {
  return run(std::move(x), true, nullptr, nullptr);
}

std::pair<torch::Tensor, torch::Tensor> GoogLeNetImpl::forward_with_last_block(torch::Tensor x) {
  torch::Tensor last;
  auto logits = run(std::move(x), false, &last, nullptr).logits;
  return {logits, last};
}

torch::Tensor GoogLeNetImpl::normalise_input(const torch::Tensor& rgb01) const {
  if (rgb01.dim() != 4 || rgb01.size(1) != 3) {
    throw_bad_input(
        "", "normalise_input expects [N,3,H,W] RGB in [0,1], got " + c10::str(rgb01.sizes()));
  }
  auto opts = rgb01.options();
  if (options_.variant == Variant::kBvlc) {
    // Caffe: BGR, 0-255, minus the per-channel mean (B 104, G 117, R 123).
    auto bgr = rgb01.flip({1}) * 255.0;
    auto mean = torch::tensor({104.0f, 117.0f, 123.0f}, opts).view({1, 3, 1, 1});
    return bgr - mean;
  }
  auto mean = torch::tensor({0.485f, 0.456f, 0.406f}, opts).view({1, 3, 1, 1});
  auto std = torch::tensor({0.229f, 0.224f, 0.225f}, opts).view({1, 3, 1, 1});
  return (rgb01 - mean) / std;
}

void GoogLeNetImpl::replace_classifier(int64_t num_classes, uint64_t seed) {
  if (num_classes < 1) throw_bad_input("", "num_classes must be at least 1");
  PreserveGlobalRng keep_global_rng;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto device = fc_->weight.device();
  const auto dtype = fc_->weight.scalar_type();
  auto fresh = [&](int64_t in_features) {
    torch::nn::Linear fc(in_features, num_classes);
    torch::NoGradGuard no_grad;
    // MATLAB's new fullyConnectedLayer: weights N(0, 0.01), bias 0.
    fc->weight.copy_(at::normal(0.0, 0.01, {num_classes, in_features}, gen));
    fc->bias.zero_();
    fc->to(device, dtype);
    return fc;
  };
  fc_ = replace_module("fc", fresh(1024));
  // Aux heads (torchvision) get fresh outputs too, so that they can be trained for the new task.
  if (aux1_) aux1_->fc2 = aux1_->replace_module("fc2", fresh(1024));
  if (aux2_) aux2_->fc2 = aux2_->replace_module("fc2", fresh(1024));
  options_.num_classes = num_classes;
}

std::vector<torch::Tensor> GoogLeNetImpl::classifier_parameters() {
  std::vector<torch::Tensor> params;
  for (auto* fc : {&fc_, aux1_ ? &aux1_->fc2 : nullptr, aux2_ ? &aux2_->fc2 : nullptr}) {
    if (!fc) continue;
    for (auto& p : (*fc)->parameters()) {
      if (p.requires_grad()) params.push_back(p);
    }
  }
  return params;
}

std::vector<torch::Tensor> GoogLeNetImpl::backbone_parameters() {
  std::vector<torch::Tensor> head = classifier_parameters();
  std::vector<torch::Tensor> params;
  for (auto& p : parameters()) {
    if (!p.requires_grad()) continue;
    bool is_head = false;
    for (auto& h : head) is_head = is_head || h.is_same(p);
    if (!is_head) params.push_back(p);
  }
  return params;
}

void GoogLeNetImpl::freeze_stages(int stages) {
  if (stages < 0 || stages > 4) {
    throw_bad_input("", "freeze stages must be 0..4, got " + std::to_string(stages),
                    "0 none, 1 stem, 2 + inception3, 3 + inception4, 4 + inception5");
  }
  frozen_stages_ = stages;
  const bool stem_trainable = stages < 1;
  for (auto* block : {&conv1_, &conv2_, &conv3_}) set_requires_grad(**block, stem_trainable);
  for (int i = 0; i < 9; ++i) set_requires_grad(*inceptions_[i], i > kStageLastInception[stages]);
  train(is_training());  // re-apply BatchNorm modes
}

void GoogLeNetImpl::train(bool on) {
  torch::nn::Module::train(on);
  if (!on || frozen_stages_ == 0) return;
  // Frozen stages keep their running statistics: their BatchNorms stay in eval mode.
  conv1_->eval();
  conv2_->eval();
  conv3_->eval();
  for (int i = 0; i <= kStageLastInception[frozen_stages_]; ++i) inceptions_[i]->eval();
}

void GoogLeNetImpl::init_weights(uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::NoGradGuard no_grad;
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<torch::nn::Conv2d>()) {
      const auto& w = conv->weight;
      const double fan_in = static_cast<double>(w.size(1) * w.size(2) * w.size(3));
      w.copy_(at::normal(0.0, std::sqrt(2.0 / fan_in), w.sizes(), gen));
      if (conv->bias.defined()) conv->bias.zero_();
    } else if (auto* linear = module->as<torch::nn::Linear>()) {
      linear->weight.copy_(at::normal(0.0, 0.01, linear->weight.sizes(), gen));
      linear->bias.zero_();
    } else if (auto* bn = module->as<torch::nn::BatchNorm2d>()) {
      bn->reset_parameters();
    }
  }
}

void GoogLeNetImpl::to_memory_format(torch::MemoryFormat format) {
  torch::NoGradGuard no_grad;
  for (auto& p : parameters()) {
    if (p.dim() == 4) p.set_data(p.data().contiguous(format));
  }
}

int64_t parameter_count(GoogLeNet& net) {
  int64_t n = 0;
  for (const auto& p : net->parameters()) n += p.numel();
  return n;
}

}  // namespace gg::model
