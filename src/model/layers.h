// Internal to gg::model: the building blocks of GoogLeNet. Module and parameter names follow
// torchvision 0.14 (BasicConv2d = conv [+ bn], Inception = branch1..branch4, InceptionAux).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace gg::model::detail {

// conv -> [BatchNorm eps 1e-3] -> ReLU. With batch_norm the conv has no bias (torchvision's
// BasicConv2d); without, it has one (Caffe's convolution + ReLU).
class ConvBlockImpl : public torch::nn::Module {
 public:
  ConvBlockImpl(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride,
                int64_t padding, bool batch_norm);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};  // null without batch_norm
};
TORCH_MODULE(ConvBlock);

struct InceptionChannels {
  int64_t in, b1, b2_reduce, b2, b3_reduce, b3, b4_proj;
};

// Four branches concatenated over channels: 1x1 | 1x1 -> 3x3 | 1x1 -> k3 x k3 | maxpool 3x3 s1 ->
// 1x1. branch3's kernel k3 is 5 in Caffe's GoogLeNet and 3 in torchvision's.
class InceptionImpl : public torch::nn::Module {
 public:
  InceptionImpl(const InceptionChannels& ch, int64_t branch3_kernel, bool batch_norm);
  torch::Tensor forward(torch::Tensor x);

  ConvBlock branch1{nullptr};
  torch::nn::Sequential branch2{nullptr}, branch3{nullptr}, branch4{nullptr};
};
TORCH_MODULE(Inception);

// torchvision's InceptionAux: adaptive avg pool 4x4 -> conv 1x1 128 -> fc1 2048->1024 + ReLU ->
// dropout -> fc2.
class InceptionAuxImpl : public torch::nn::Module {
 public:
  InceptionAuxImpl(int64_t in_channels, int64_t num_classes, double dropout);
  torch::Tensor forward(torch::Tensor x);

  ConvBlock conv{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  double dropout_p;
};
TORCH_MODULE(InceptionAux);

}  // namespace gg::model::detail

namespace gg::model::detail {

// max_pool2d (dilation 1) for inference: a float32 channels-last CPU tensor that needs no
// gradient takes an index-free kernel (pool.cpp, bit-identical results); anything else goes to
// torch::max_pool2d.
torch::Tensor max_pool_inference(const torch::Tensor& x, int64_t kernel, int64_t stride,
                                 int64_t padding, bool ceil_mode);
// torch::cat(parts, 1) for inference: float32 channels-last CPU tensors of one batch and spatial
// size that need no gradient are copied pixel by pixel (nhwc.cpp); anything else goes to
// torch::cat.
torch::Tensor cat_channels(const std::vector<torch::Tensor>& parts);

}  // namespace gg::model::detail
