// Slices to network input, and the batched inference loop every caller shares.
#include <torch/torch.h>

#include <algorithm>

#include "model/model.h"

namespace gg::model {

torch::Tensor slices_to_input(const GoogLeNet& net, const uint8_t* slices, int64_t n, int size,
                              bool channels_last) {
  auto grey = torch::from_blob(const_cast<uint8_t*>(slices), {n, 1, size, size}, torch::kUInt8)
                  .to(torch::kFloat32)
                  .mul_(1.0f / 255.0f);
  auto x = net->normalise_input(grey.expand({n, 3, size, size}).contiguous());
  return channels_last ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x;
}

torch::Tensor batched_logits(GoogLeNet& net, const uint8_t* slices, int64_t n, int size,
                             int64_t batch, bool channels_last,
                             const std::function<void(int64_t)>& on_batch) {
  torch::NoGradGuard no_grad;
  const bool was_training = net->is_training();
  net->eval();
  std::vector<torch::Tensor> parts;
  const size_t bytes = size_t(size) * size_t(size);
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t count = std::min(batch, n - start);
    parts.push_back(net->forward(
        slices_to_input(net, slices + size_t(start) * bytes, count, size, channels_last)));
    if (on_batch) on_batch(count);
  }
  if (was_training) net->train();
  if (parts.empty()) return torch::empty({0, net->options().num_classes}, torch::kFloat32);
  return torch::cat(parts, 0);
}

}  // namespace gg::model
