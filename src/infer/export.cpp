// `gliomagrade export`: a bundle's sequence models as TorchScript. libtorch's C++ API cannot
// script a C++ nn::Module, so each exported module is built directly: the trained tensors become
// attributes of a torch::jit::Module, and the GoogLeNet graph (eval mode) is defined as
// TorchScript source generated here from the same layer table as model/googlenet.cpp.
#include <torch/script.h>
#include <torch/torch.h>

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "common/files.h"
#include "infer/infer.h"
#include "model/model.h"

namespace gg::infer {

namespace {

using nlohmann::json;

inline constexpr const char* kExportFormat = "gliomagrade-torchscript/1";
const char* const kInceptions[] = {"inception3a", "inception3b", "inception4a",
                                   "inception4b", "inception4c", "inception4d",
                                   "inception4e", "inception5a", "inception5b"};

std::string attr(std::string name) {
  std::replace(name.begin(), name.end(), '.', '_');
  return name;
}

// A conv block (conv [+ BatchNorm] + ReLU) applied to `input`, as a TorchScript expression.
std::string conv(const std::string& block, const std::string& input, int stride, int padding,
                 bool batch_norm) {
  const std::string p = "self." + attr(block);
  if (batch_norm)
    return fmt::format(
        "self.conv_bn_relu({}, {}_conv_weight, {}_bn_weight, {}_bn_bias, {}_bn_running_mean, "
        "{}_bn_running_var, {}, {})",
        input, p, p, p, p, p, stride, padding);
  return fmt::format("self.conv_relu({}, {}_conv_weight, {}_conv_bias, {}, {})", input, p, p,
                     stride, padding);
}

// The whole network as TorchScript source for one variant (mirrors GoogLeNetImpl::run in eval
// mode).
std::string script_source(const model::GoogLeNetOptions& o) {
  const bool tv = o.variant == model::Variant::kTorchvision;
  const int k3 = tv ? 3 : 5;
  std::string s;
  s += R"(
def conv_relu(self, x: Tensor, w: Tensor, b: Tensor, stride: int, padding: int) -> Tensor:
    return torch.relu(torch.conv2d(x, w, b, [stride, stride], [padding, padding]))

def conv_bn_relu(self, x: Tensor, w: Tensor, g: Tensor, b: Tensor, rm: Tensor, rv: Tensor, stride: int, padding: int) -> Tensor:
    y = torch.conv2d(x, w, None, [stride, stride], [padding, padding])
    return torch.relu(torch.batch_norm(y, g, b, rm, rv, False, 0.1, 0.001, True))

def lrn(self, x: Tensor) -> Tensor:
    sq = torch.constant_pad_nd((x * x).unsqueeze(1), [0, 0, 0, 0, 2, 2])
    mean_sq = torch.avg_pool3d(sq, [5, 1, 1], [1, 1, 1]).squeeze(1)
    return x * (mean_sq * 0.0001 + 1.0).pow(-0.75)

def pool(self, x: Tensor, k: int) -> Tensor:
    return torch.max_pool2d(x, [k, k], [2, 2], [0, 0], [1, 1], True)
)";
  for (const char* name : kInceptions) {
    const std::string b = name;
    s += fmt::format(R"(
def {0}(self, x: Tensor) -> Tensor:
    b1 = {1}
    b2 = {2}
    b3 = {3}
    b4 = {4}
    return torch.cat([b1, b2, b3, b4], 1)
)",
                     b, conv(b + ".branch1", "x", 1, 0, tv),
                     conv(b + ".branch2.1", conv(b + ".branch2.0", "x", 1, 0, tv), 1, 1, tv),
                     conv(b + ".branch3.1", conv(b + ".branch3.0", "x", 1, 0, tv), 1, k3 / 2, tv),
                     conv(b + ".branch4.1",
                          "torch.max_pool2d(x, [3, 3], [1, 1], [1, 1], [1, 1], True)", 1, 0, tv));
  }
  // Input convention (GoogLeNetImpl::normalise_input, then torchvision's transform_input).
  s += "\ndef normalise(self, x: Tensor) -> Tensor:\n";
  if (!tv) {
    s += "    return x.flip([1]) * 255.0 - self.input_mean\n";
  } else {
    s += "    x = (x - self.input_mean) / self.input_std\n";
    if (o.transform_input)
      s += "    c0 = x.select(1, 0).unsqueeze(1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5\n"
           "    c1 = x.select(1, 1).unsqueeze(1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5\n"
           "    c2 = x.select(1, 2).unsqueeze(1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5\n"
           "    x = torch.cat([c0, c1, c2], 1)\n";
    s += "    return x\n";
  }
  s += "\ndef logits(self, x: Tensor) -> Tensor:\n    x = self.normalise(x)\n";
  s += "    x = self.pool(" + conv("conv1", "x", 2, 3, tv) + ", 3)\n";
  if (!tv) s += "    x = self.lrn(x)\n";
  s += "    x = " + conv("conv3", conv("conv2", "x", 1, 0, tv), 1, 1, tv) + "\n";
  if (!tv) s += "    x = self.lrn(x)\n";
  s += "    x = self.pool(x, 3)\n";
  s += "    x = self.pool(self.inception3b(self.inception3a(x)), 3)\n";
  s += "    x = "
       "self.inception4e(self.inception4d(self.inception4c(self.inception4b(self.inception4a(x)))))"
       "\n";
  s += fmt::format("    x = self.pool(x, {})\n", tv ? 2 : 3);
  s += "    x = self.inception5b(self.inception5a(x))\n";
  s += "    x = torch.flatten(torch.adaptive_avg_pool2d(x, [1, 1]), 1)\n";
  s += "    return torch.linear(x, self.fc_weight, self.fc_bias)\n";
  s += "\ndef forward(self, x: Tensor) -> Tensor:\n    return torch.softmax(self.logits(x), "
       "1).select(1, 1)\n";
  return s;
}

torch::jit::Module script_module(model::GoogLeNet& net, const std::string& sequence) {
  torch::jit::Module m("gliomagrade.GoogLeNet_" + sequence);
  m.register_attribute("training", c10::BoolType::get(), false);
  for (const auto& p : net->named_parameters())
    m.register_parameter(attr(p.key()), p.value().detach().clone(), false);
  for (const auto& b : net->named_buffers())
    if (b.key().find("num_batches_tracked") == std::string::npos)
      m.register_buffer(attr(b.key()), b.value().detach().clone());
  if (net->options().variant == model::Variant::kBvlc) {
    m.register_buffer("input_mean", torch::tensor({104.0f, 117.0f, 123.0f}).view({1, 3, 1, 1}));
  } else {
    m.register_buffer("input_mean", torch::tensor({0.485f, 0.456f, 0.406f}).view({1, 3, 1, 1}));
    m.register_buffer("input_std", torch::tensor({0.229f, 0.224f, 0.225f}).view({1, 3, 1, 1}));
  }
  m.define(script_source(net->options()));
  return m;
}

}  // namespace

std::vector<ExportedModel> export_torchscript(const fs::path& bundle_dir, const fs::path& out_dir,
                                              const std::string& device, bool frozen) {
  // Validates model.json, the variant, every sequence's weights, and the device.
  const Predictor checked(bundle_dir, device);
  const torch::Device on = model::resolve_device(device);
  const train::BundleInfo& info = checked.bundle();
  StagingDir staging(out_dir);
  std::vector<ExportedModel> exported;
  json models = json::object();
  for (io::Sequence seq : io::kSequences) {
    const std::string name = io::sequence_name(seq);
    const fs::path weights = train::BundlePaths{bundle_dir}.weights(name);
    model::GoogLeNet net(model::read_weights_options(weights));
    model::load_weights(net, weights);
    net->eval();
    torch::jit::Module m = script_module(net, name);
    m.to(on);
    if (frozen) {
      m.eval();
      m = torch::jit::freeze(m, std::vector<std::string>{"logits"});
    }
    const fs::path file = staging.path() / (name + ".pt");
    // Serialised in memory, then written by write_file_atomic: libtorch's own file writer throws
    // from its destructor when a write fails (a full disk), which aborts the process.
    std::ostringstream bytes;
    try {
      m.save(bytes);
    } catch (const c10::Error& e) {
      throw_runtime(file.string(),
                    std::string("cannot serialise TorchScript: ") + e.what_without_backtrace());
    }
    const std::string data = bytes.str();
    write_file_atomic(file, data);
    models[name] = {{"file", name + ".pt"}, {"sha256", sha256_hex(data)}};
    exported.push_back({name, out_dir / (name + ".pt")});
  }
  json j = {{"format", kExportFormat},
            {"variant", info.variant},
            {"frozen", frozen},
            {"classes", {"LGG", "HGG"}},
            {"models", models},
            {"input",
             {{"shape", {"N", 3, info.input_size, info.input_size}},
              {"dtype", "float32"},
              {"description",
               "RGB in [0,1]: the grey uint8 slice / 255 replicated to 3 channels; rows "
               "anterior->posterior, columns patient right->left (canonical LPS+ axial slice)"}}},
            {"methods",
             {{"forward", "P(HGG) [N] = softmax(logits)[:, 1]"},
              {"logits", "[N,2] logits, class 0 LGG, 1 HGG"}}},
            {"preprocessing",
             {{"slices", info.slices},
              {"low_percentile", info.low_percentile},
              {"high_percentile", info.high_percentile},
              {"size", info.input_size},
              {"how",
               "per volume: brain voxels (nonzero) clipped to the percentiles and scaled to [0,1], "
               "background 0; axial slice resized to size x size (area interpolation); uint8 "
               "round(255 v)"}}},
            {"vote",
             "hard majority of the three per-sequence P(HGG) >= 0.5 (the paper's); soft: mean "
             "P(HGG) >= 0.5"},
            {"bundle", json::parse(read_file(train::BundlePaths{bundle_dir}.info()))},
            {"device", on.str()},
            {"libtorch", TORCH_VERSION}};
  write_file_atomic(staging.path() / "export.json", j.dump(2) + "\n");
  staging.commit();
  return exported;
}

}  // namespace gg::infer
