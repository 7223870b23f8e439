// A bundle's sequence model for inference and Grad-CAM.
#include <torch/torch.h>

#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "common/error.h"
#include "explain/explain.h"
#include "explain/upsample.h"
#include "model/model.h"
#include "train/train.h"

namespace gg::explain {

struct SliceModel::Impl {
  fs::path weights;
  model::GoogLeNet net{nullptr};
  torch::Device device{torch::kCPU};
  // Built once per model: predict, and Grad-CAM's forward up to the last block, run it.
  std::optional<model::FrozenNet> frozen;
};

namespace {

// The network's input as predict_items builds it (model::slices_to_input, channels-last), on the
// model's device.
torch::Tensor network_input(const model::GoogLeNet& net, const uint8_t* slices, int64_t n, int size,
                            torch::Device device) {
  return model::slices_to_input(net, slices, n, size, true).to(device);
}

}  // namespace

SliceModel::SliceModel(const fs::path& weights, const std::string& variant,
                       const std::string& device)
    : impl_(std::make_unique<Impl>()) {
  impl_->device = model::resolve_device(device);
  impl_->weights = weights;
  if (!fs::exists(weights))
    throw_bad_input(weights.string(), "weights file does not exist",
                    "copy the whole model bundle directory");
  const model::GoogLeNetOptions o = model::read_weights_options(weights);
  if (o.variant != model::parse_variant(variant) || o.num_classes != 2)
    throw_bad_input(
        weights.string(),
        fmt::format("holds a {}-class {} GoogLeNet, but the bundle says 2-class {}", o.num_classes,
                    model::variant_name(o.variant), variant),
        "use the weights the bundle was written with (model.json and <seq>.pt belong together)");
  impl_->net = model::GoogLeNet(o);
  model::load_weights(impl_->net, weights);
  impl_->net->to(impl_->device);
  impl_->net->to_memory_format(torch::MemoryFormat::ChannelsLast);
  impl_->net->eval();
  impl_->frozen.emplace(impl_->net);
}

SliceModel::~SliceModel() = default;
SliceModel::SliceModel(SliceModel&&) noexcept = default;
SliceModel& SliceModel::operator=(SliceModel&&) noexcept = default;

const fs::path& SliceModel::weights_path() const { return impl_->weights; }

std::vector<double> SliceModel::predict(const uint8_t* slices, int64_t n, int size,
                                        int batch_size) const {
  const auto logits = model::batched_logits(*impl_->frozen, slices, n, size, batch_size, true);
  const auto prob = model::hgg_probability(logits).to(torch::kFloat64).cpu().contiguous();
  return std::vector<double>(prob.data_ptr<double>(), prob.data_ptr<double>() + prob.numel());
}

namespace {

// Grad-CAM from the last block's activations [1,1024,h,w] and their gradient, as the paper says:
// channel weights = spatial mean of the gradient, ReLU of the weighted sum, bilinear upsampling to
// the input size, divided by the maximum.
std::vector<float> cam_from(const torch::Tensor& activations, const torch::Tensor& gradients,
                            int size) {
  torch::NoGradGuard no_grad;
  auto weights = gradients.mean({2, 3}, /*keepdim=*/true);  // [1,1024,1,1]
  auto cam = torch::relu((weights * activations.detach()).sum(1, /*keepdim=*/true));  // [1,1,h,w]
  cam = upsample_map(cam, size);
  const double peak = cam.max().item<double>();
  if (peak > 0)
    cam = cam / peak;
  else
    cam.zero_();
  cam = cam.clamp(0, 1).cpu().contiguous();
  return std::vector<float>(cam.data_ptr<float>(),
                            cam.data_ptr<float>() + size_t(size) * size_t(size));
}

int chosen_class(int target_class, double p_hgg) {
  return target_class >= 0 ? target_class : (p_hgg >= 0.5 ? kHgg : kLgg);
}

}  // namespace

Heatmap SliceModel::grad_cam(const uint8_t* slice, int size, int target_class) const {
  const auto& frozen = *impl_->frozen;
  // Grad-CAM needs the gradient at the last block only: the forward up to it runs frozen (no
  // graph), the head (average pool, fc) eager with autograd from the last block on.
  auto last = frozen.last_block(network_input(frozen.net(), slice, 1, size, impl_->device))
                  .detach()
                  .requires_grad_(true);
  auto logits = frozen.head(last);
  Heatmap h;
  h.size = size;
  h.p_hgg = torch::softmax(logits, 1)[0][kHgg].item<double>();
  h.target_class = chosen_class(target_class, h.p_hgg);
  auto grads = torch::autograd::grad({logits[0][h.target_class]}, {last})[0];
  h.values = cam_from(last, grads, size);
  h.grid = int(last.size(2));
  return h;
}

std::vector<double> SliceModel::predict_with_cam(const uint8_t* slices, int64_t n, int size,
                                                 int64_t cam_index, Heatmap* cam, int target_class,
                                                 int batch_size) const {
  if (cam_index < 0 || cam_index >= n)
    throw std::out_of_range("predict_with_cam: cam_index outside the batch");
  const auto& frozen = *impl_->frozen;
  std::vector<double> p;
  p.reserve(size_t(n));
  const size_t bytes = size_t(size) * size_t(size);
  torch::Tensor last_block;
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t count = std::min<int64_t>(batch_size, n - start);
    torch::NoGradGuard no_grad;
    auto last = frozen.last_block(
        network_input(frozen.net(), slices + size_t(start) * bytes, count, size, impl_->device));
    auto logits = frozen.head(last);
    if (cam_index >= start && cam_index < start + count)
      last_block = last.select(0, cam_index - start).unsqueeze(0);
    auto prob = torch::softmax(logits, 1).select(1, 1).to(torch::kFloat64).cpu().contiguous();
    p.insert(p.end(), prob.data_ptr<double>(), prob.data_ptr<double>() + count);
  }
  auto activations = last_block.contiguous().detach().requires_grad_(true);
  auto logits = frozen.head(activations);
  cam->size = size;
  cam->p_hgg = p[size_t(cam_index)];
  cam->target_class = chosen_class(target_class, cam->p_hgg);
  auto grads = torch::autograd::grad({logits[0][cam->target_class]}, {activations})[0];
  cam->values = cam_from(activations, grads, size);
  cam->grid = int(activations.size(2));
  return p;
}

BundleModels load_bundle_models(const fs::path& bundle_dir, const std::string& device) {
  const train::BundleInfo info = train::read_bundle_info(bundle_dir);
  BundleModels b;
  for (const auto& s : info.sequences) {
    b.sequences.push_back(io::parse_sequence(s));
    b.models.emplace_back(train::BundlePaths{bundle_dir}.weights(s), info.variant, device);
  }
  return b;
}

}  // namespace gg::explain
