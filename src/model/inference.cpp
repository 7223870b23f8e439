// Slices to network input, and the batched inference loop every caller shares.
#include <torch/torch.h>

#include <algorithm>

#include "common/error.h"
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

namespace {

// The loop shared by the eager and the frozen forms: `forward` on each batch of slices.
template <class Forward>
torch::Tensor logits_in_batches(const GoogLeNet& net, const Forward& forward, const uint8_t* slices,
                                int64_t n, int size, int64_t batch, bool channels_last,
                                const std::function<void(int64_t)>& on_batch) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  const size_t bytes = size_t(size) * size_t(size);
  const auto params = net->parameters();
  const torch::Device device = params.empty() ? torch::Device(torch::kCPU) : params[0].device();
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t count = std::min(batch, n - start);
    const auto x = slices_to_input(net, slices + size_t(start) * bytes, count, size, channels_last);
    parts.push_back(forward(x.to(device)).to(torch::kCPU));
    if (on_batch) on_batch(count);
  }
  if (parts.empty()) return torch::empty({0, net->options().num_classes}, torch::kFloat32);
  return torch::cat(parts, 0);
}

}  // namespace

torch::Tensor batched_logits(GoogLeNet& net, const uint8_t* slices, int64_t n, int size,
                             int64_t batch, bool channels_last,
                             const std::function<void(int64_t)>& on_batch, bool eager) {
  const auto params = net->parameters();
  const bool float32 = std::all_of(params.begin(), params.end(), [](const torch::Tensor& p) {
    return p.scalar_type() == torch::kFloat32;
  });
  if (!eager && float32 && n > 0)
    return batched_logits(FrozenNet(net, std::min(batch, n), size), slices, n, size, batch,
                          channels_last, on_batch);
  const bool was_training = net->is_training();
  net->eval();
  auto logits = logits_in_batches(
      net, [&](const torch::Tensor& x) { return net->forward(x); }, slices, n, size, batch,
      channels_last, on_batch);
  if (was_training) net->train();
  return logits;
}

torch::Tensor batched_logits(const FrozenNet& net, const uint8_t* slices, int64_t n, int size,
                             int64_t batch, bool channels_last,
                             const std::function<void(int64_t)>& on_batch) {
  return logits_in_batches(
      net.net(), [&](const torch::Tensor& x) { return net.forward(x); }, slices, n, size, batch,
      channels_last, on_batch);
}

torch::Device resolve_device(const std::string& spec) {
  const char* const fix =
      "Debian's libtorch is CPU-only: build gliomagrade against a CUDA LibTorch from pytorch.org "
      "(cmake -DCMAKE_PREFIX_PATH=/path/to/libtorch; see the README, GPUs), or use --device cpu";
  if (spec == "cpu") return torch::kCPU;
  if (spec == "auto")
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::kCPU;
  int index = 0;
  if (spec.rfind("cuda:", 0) == 0) {
    const std::string n = spec.substr(5);
    if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos)
      throw_bad_input("", "--device " + spec + ": expected cuda:N with N a GPU index");
    index = std::stoi(n);
  } else if (spec != "cuda") {
    throw_bad_input("", "--device " + spec + ": expected cpu, cuda, cuda:N or auto");
  }
  if (!torch::cuda::is_available())
    throw_bad_input("",
                    "--device " + spec +
                        (at::hasCUDA() ? ": this libtorch has CUDA but sees no GPU"
                                       : ": this gliomagrade's libtorch was built without CUDA"),
                    fix);
  if (index >= int(torch::cuda::device_count()))
    throw_bad_input("", "--device " + spec + ": only " +
                            std::to_string(torch::cuda::device_count()) + " GPU(s) visible");
  return torch::Device(torch::kCUDA, int8_t(index));
}

}  // namespace gg::model
