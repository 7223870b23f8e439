// DeepMedic 0.7.4's network in libtorch (deepmedic/neuralnet/{cnn3d,pathways,layers,ops}.py).
//
// Each layer is pre-activation, "ala He et al., Identity Mappings in Deep Residual Networks":
//   input -> batch norm (or a bias, in a pathway's first layer) -> activation -> dropout -> conv.
// The first layer of the normal and subsampled pathways has no BN and a linear activation; the
// FC pathway's first layer has both. At inference BN uses the mean of the rolling arrays of the
// last 60 batches' mu and var (ops.py applyBn: (x - mu) / sqrt(var + tiny) * g + b), and dropout
// multiplies its input by the keep probability (folded here into the next conv's weights).
// A residual connection at layer i adds to its output the centre of layer i-1's input, zero-padded
// in channels. Subsampled pathways' outputs are repeated by their factor and cropped to the normal
// output; all are concatenated (normal first) and fed to the FC pathway, whose first kernel
// (3x3x3 here) sees its input padded by edge mirroring; a bias and softmax close.
//
// Layout: TensorFlow's W is [out, in, r, c, z] over volumes indexed [r][c][z] (nibabel's x, y, z);
// ours are [z][y][x] (io::Volume), so W is permuted to [out, in, z, y, x].
#include "segment/deepmedic.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "common/error.h"

namespace gg::segment {

namespace {

std::string tf_name(const std::string& base, int index) {
  return "net/" + base + (index == 0 ? "" : "_" + std::to_string(index));
}

struct PathwaySpec {
  const PathwayConfig* config;
  int in_channels;
  bool is_fc;
};

std::vector<PathwaySpec> pathway_specs(const DeepMedicConfig& c) {
  std::vector<PathwaySpec> specs{{&c.normal, c.num_channels, false}};
  int concat = c.normal.fms.back();
  for (const auto& p : c.subsampled) {
    specs.push_back({&p, c.num_channels, false});
    concat += p.fms.back();
  }
  specs.push_back({&c.fc, concat, true});
  return specs;
}

// Walks the layers in DeepMedic's creation order, calling f(spec, layer index, input channels,
// use_bn, activation, names of its tensors) with per-kind counters as TensorFlow numbers them.
struct LayerNames {
  std::string g, beta, mu, var, bias, prelu, w;
};
template <typename F>
void for_each_layer(const DeepMedicConfig& c, F&& f) {
  int n_w = 0, n_b = 0, n_bn = 0, n_prelu = 0;
  for (const PathwaySpec& spec : pathway_specs(c)) {
    int in = spec.in_channels;
    for (size_t i = 0; i < spec.config->fms.size(); ++i) {
      const bool use_bn = i > 0 || spec.is_fc;
      const std::string act = (i == 0 && !spec.is_fc) ? "linear" : c.activation;
      LayerNames n;
      if (use_bn) {
        n.g = tf_name("gBn", n_bn), n.beta = tf_name("bBn", n_bn);
        n.mu = tf_name("muBnsForRollingAverage", n_bn),
        n.var = tf_name("varBnsForRollingAverage", n_bn);
        ++n_bn;
      } else {
        n.bias = tf_name("b", n_b++);
      }
      if (act == "prelu") n.prelu = tf_name("aPrelu", n_prelu++);
      n.w = tf_name("W", n_w++);
      f(spec, i, in, use_bn, act, n);
      in = spec.config->fms[i];
    }
  }
}

// --- the torch modules --------------------------------------------------------------------------

struct ConvLayerImpl : torch::nn::Module {
  // scale undefined: no BN, shift is the bias. prelu undefined unless activation is "prelu".
  ConvLayerImpl(std::string activation, torch::Tensor scale, torch::Tensor shift,
                torch::Tensor prelu, torch::Tensor weight)
      : activation(std::move(activation)) {
    const std::vector<int64_t> view{1, shift.size(0), 1, 1, 1};
    if (scale.defined()) this->scale = register_buffer("scale", scale.view(view));
    this->shift = register_buffer("shift", shift.view(view));
    if (prelu.defined()) this->prelu = register_buffer("prelu", prelu);
    this->weight = register_buffer("weight", weight);
  }
  torch::Tensor forward(torch::Tensor x) {
    x = scale.defined() ? torch::addcmul(shift, x, scale) : x + shift;
    if (activation == "prelu")
      x = torch::prelu(x, prelu);
    else if (activation == "relu")
      x = torch::relu(x);
    return torch::conv3d(x, weight);
  }
  std::string activation;
  torch::Tensor scale, shift, prelu, weight;
};
TORCH_MODULE(ConvLayer);

// Centre of `earlier` (pathways.py getMiddlePartOfFms: if even, one voxel left of the centre).
torch::Tensor centre_crop(const torch::Tensor& earlier, const torch::Tensor& like) {
  torch::Tensor out = earlier;
  for (int64_t d = 2; d < 5; ++d) {
    const int64_t start = (earlier.size(d) - 1) / 2 - (like.size(d) - 1) / 2;
    out = out.narrow(d, start, like.size(d));
  }
  return out;
}

struct PathwayImpl : torch::nn::Module {
  explicit PathwayImpl(std::vector<int> residual) : residual(std::move(residual)) {}
  void add(ConvLayer layer) {
    layers.push_back(register_module("layer" + std::to_string(layers.size()), layer));
  }
  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor previous_input;
    for (size_t i = 0; i < layers.size(); ++i) {
      torch::Tensor y = layers[i]->forward(x);
      if (std::find(residual.begin(), residual.end(), int(i)) != residual.end()) {
        // pathways.py makeResidualConnection: zero-pad the earlier maps' channels to the deeper's.
        torch::Tensor add = centre_crop(previous_input, y);
        if (add.size(1) <= y.size(1))
          y.narrow(1, 0, add.size(1)).add_(add);
        else
          y.add_(add.narrow(1, 0, y.size(1)));
      }
      previous_input = x;
      x = y;
    }
    return x;
  }
  std::vector<int> residual;
  std::vector<ConvLayer> layers;
};
TORCH_MODULE(Pathway);

// cnn3d.py padImageWithMirroring: pad/2 voxels before and (pad+1)/2 after, mirrored with the edge
// voxel included (for a 3x3x3 kernel: one copy of the edge voxel on each side).
torch::Tensor pad_mirroring(torch::Tensor x, const std::array<int, 3>& kernel_zyx) {
  for (int d = 0; d < 3; ++d) {
    const int64_t pad = kernel_zyx[d] - 1, left = pad / 2, right = (pad + 1) / 2, dim = 2 + d;
    const int64_t n = x.size(dim);
    std::vector<torch::Tensor> parts;
    if (left > 0) parts.push_back(x.narrow(dim, 0, left).flip({dim}));
    parts.push_back(x);
    if (right > 0) parts.push_back(x.narrow(dim, n - right, right).flip({dim}));
    x = torch::cat(parts, dim);
  }
  return x;
}

struct DeepMedicNetImpl : torch::nn::Module {
  torch::Tensor forward(const torch::Tensor& normal_in, const std::vector<torch::Tensor>& subs_in) {
    torch::Tensor normal_out = normal->forward(normal_in);
    std::vector<torch::Tensor> features{normal_out};
    for (size_t p = 0; p < subsampled.size(); ++p) {
      torch::Tensor y = subsampled[p]->forward(subs_in[p]);
      for (int d = 0; d < 3; ++d) {  // pathways.py repeatRcz5DimArrayByFactor, then crop
        y = y.repeat_interleave(factors_zyx[p][d], 2 + d);
        y = y.narrow(2 + d, 0, normal_out.size(2 + d));
      }
      features.push_back(y);
    }
    torch::Tensor x = pad_mirroring(torch::cat(features, 1), first_fc_kernel_zyx);
    x = fc->forward(x);
    return torch::softmax(x + class_bias.view({1, -1, 1, 1, 1}), 1);
  }
  Pathway normal{nullptr}, fc{nullptr};
  std::vector<Pathway> subsampled;
  std::vector<std::array<int, 3>> factors_zyx;
  std::array<int, 3> first_fc_kernel_zyx{1, 1, 1};
  torch::Tensor class_bias;
};
TORCH_MODULE(DeepMedicNet);

torch::Tensor to_tensor(const TfTensor& t) {
  return torch::from_blob(const_cast<float*>(t.values.data()), t.shape, torch::kFloat32).clone();
}

}  // namespace

std::vector<ExpectedTensor> expected_tensors(const DeepMedicConfig& c) {
  std::vector<ExpectedTensor> out;
  const int64_t rolling = c.bn_rolling_batches;
  for_each_layer(c, [&](const PathwaySpec& spec, size_t i, int in, bool use_bn, const std::string&,
                        const LayerNames& n) {
    if (use_bn) {
      out.push_back({n.g, {in}});
      out.push_back({n.beta, {in}});
      out.push_back({n.mu, {rolling, in}});
      out.push_back({n.var, {rolling, in}});
    } else {
      out.push_back({n.bias, {in}});
    }
    if (!n.prelu.empty()) out.push_back({n.prelu, {in}});
    const auto& k = spec.config->kernels[i];
    out.push_back({n.w, {spec.config->fms[i], in, k[0], k[1], k[2]}});
  });
  // layers.py SoftmaxLayer: one more bias, added to the last conv's output.
  int n_b = 0;
  for (const PathwaySpec& spec : pathway_specs(c)) n_b += spec.is_fc ? 0 : 1;
  out.push_back({tf_name("b", n_b), {c.num_classes}});
  return out;
}

struct DeepMedic::Impl {
  DeepMedicConfig config;
  DeepMedicNet net;
};

DeepMedic::DeepMedic(const DeepMedicConfig& c, const TfCheckpoint& ckpt)
    : impl_(std::make_unique<Impl>()) {
  impl_->config = c;
  torch::NoGradGuard no_grad;
  DeepMedicNet net;
  auto zyx = [](const std::array<int, 3>& rcz) {
    return std::array<int, 3>{rcz[2], rcz[1], rcz[0]};
  };
  net->first_fc_kernel_zyx = zyx(c.fc.kernels[0]);
  const auto specs = pathway_specs(c);
  std::vector<Pathway> pathways;
  for (const auto& spec : specs) pathways.emplace_back(spec.config->residual_layers);
  size_t pathway_index = 0;
  const PathwayConfig* current = specs[0].config;
  for_each_layer(c, [&](const PathwaySpec& spec, size_t i, int in, bool use_bn,
                        const std::string& act, const LayerNames& n) {
    if (spec.config != current) ++pathway_index, current = spec.config;
    torch::Tensor scale, shift, prelu;
    if (use_bn) {
      // ops.py applyBn at inference: the rolling arrays' means; tiny is float32's smallest normal.
      const auto mu = to_tensor(ckpt.get(n.mu, {c.bn_rolling_batches, in})).mean(0);
      const auto var = to_tensor(ckpt.get(n.var, {c.bn_rolling_batches, in})).mean(0) +
                       std::numeric_limits<float>::min();
      scale = to_tensor(ckpt.get(n.g, {in})) / var.sqrt();
      shift = to_tensor(ckpt.get(n.beta, {in})) - mu * scale;
    } else {
      shift = to_tensor(ckpt.get(n.bias, {in}));
    }
    if (!n.prelu.empty()) prelu = to_tensor(ckpt.get(n.prelu, {in}));
    const auto& k = spec.config->kernels[i];
    const double rate = spec.config->dropout.empty() ? 0.0 : spec.config->dropout[i];
    const double keep = rate > 0.001 ? 1.0 - rate : 1.0;  // ops.py applyDropout's threshold
    torch::Tensor w = to_tensor(ckpt.get(n.w, {spec.config->fms[i], in, k[0], k[1], k[2]}));
    ConvLayer layer(act, scale, shift, prelu, (w.permute({0, 1, 4, 3, 2}) * keep).contiguous());
    pathways[pathway_index]->add(layer);
  });
  net->normal = net->register_module("normal", pathways.front());
  for (size_t p = 0; p < c.subsampled.size(); ++p) {
    net->subsampled.push_back(
        net->register_module("subsampled" + std::to_string(p), pathways[1 + p]));
    net->factors_zyx.push_back(zyx(c.subsample_factors[p]));
  }
  net->fc = net->register_module("fc", pathways.back());
  net->class_bias = to_tensor(ckpt.get(expected_tensors(c).back().name, {c.num_classes}));
  net->eval();
  impl_->net = net;
}

void set_torch_threads(int n) { torch::set_num_threads(n); }

DeepMedic::~DeepMedic() = default;
DeepMedic::DeepMedic(DeepMedic&&) noexcept = default;
DeepMedic& DeepMedic::operator=(DeepMedic&&) noexcept = default;

const DeepMedicConfig& DeepMedic::config() const { return impl_->config; }

int DeepMedic::normal_input(int out) const { return out + impl_->config.receptive_field()[0] - 1; }

int DeepMedic::subsampled_input(size_t p, int out) const {
  // pathways.py calcInputRczDimsToProduceOutputFmsOfCompatibleDims (cubic segments here).
  const int f = impl_->config.subsample_factors[p][0];
  return impl_->config.receptive_field()[0] + (out + f - 1) / f - 1;
}

std::vector<float> DeepMedic::forward(const std::vector<float>& normal,
                                      const std::vector<std::vector<float>>& subsampled, int batch,
                                      int out) const {
  torch::NoGradGuard no_grad;
  const int64_t ch = impl_->config.num_channels;
  const int64_t n = normal_input(out);
  auto x =
      torch::from_blob(const_cast<float*>(normal.data()), {batch, ch, n, n, n}, torch::kFloat32);
  std::vector<torch::Tensor> subs;
  for (size_t p = 0; p < subsampled.size(); ++p) {
    const int64_t m = subsampled_input(p, out);
    subs.push_back(torch::from_blob(const_cast<float*>(subsampled[p].data()), {batch, ch, m, m, m},
                                    torch::kFloat32));
  }
  torch::Tensor probs = impl_->net->forward(x, subs).contiguous();
  return std::vector<float>(probs.data_ptr<float>(), probs.data_ptr<float>() + probs.numel());
}

}  // namespace gg::segment
