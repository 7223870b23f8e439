// Loading tensors into the net, pretrained nets, our own weight files, class names and top-k.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "common/files.h"
#include "model/byte_reader.h"
#include "model/model.h"

namespace gg::model {

namespace detail {

// torch.hub's check: "name-<hex>.ext" carries a prefix of the file's sha256 (8+ hex digits here).
std::string hash_prefix_in_name(const std::string& file_name) {
  static const std::regex kHash("-([a-f0-9]{8,})\\.");
  std::smatch m;
  return std::regex_search(file_name, m, kHash) ? m[1].str() : std::string();
}

}  // namespace detail

namespace {

constexpr char kWeightsMagic[] = "GGWEIGHTS1\n";
constexpr size_t kWeightsMagicSize = sizeof(kWeightsMagic) - 1;

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

bool is_aux(const std::string& name) {
  return starts_with(name, "aux1.") || starts_with(name, "aux2.");
}

bool is_classifier(const std::string& name) {
  return starts_with(name, "fc.") || starts_with(name, "aux1.fc2.") ||
         starts_with(name, "aux2.fc2.");
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Every parameter and buffer of the net by name, in registration order.
std::vector<std::pair<std::string, torch::Tensor>> net_tensors(GoogLeNet& net) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : net->named_parameters(true)) out.emplace_back(item.key(), item.value());
  for (const auto& item : net->named_buffers(true)) out.emplace_back(item.key(), item.value());
  return out;
}

std::string shape_string(const torch::Tensor& t) { return c10::str(t.sizes()); }

}  // namespace

const char* format_name(WeightsFormat format) {
  switch (format) {
    case WeightsFormat::kCaffemodel:
      return "caffemodel";
    case WeightsFormat::kTorchLegacy:
      return "torch-legacy";
    case WeightsFormat::kTorchZip:
      return "torch-zip";
    case WeightsFormat::kGliomagrade:
      return "gliomagrade";
  }
  return "?";
}

WeightsFormat detect_format(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_bad_input(path.string(), "cannot open weights file", "check the path");
  char head[16] = {};
  in.read(head, sizeof head);
  const std::string h(head, static_cast<size_t>(in.gcount()));
  if (starts_with(h, kWeightsMagic)) return WeightsFormat::kGliomagrade;
  if (starts_with(h, std::string("PK\x03\x04", 4))) return WeightsFormat::kTorchZip;
  // Legacy torch.save begins with the pickled magic number: PROTO 2, LONG1 10 bytes.
  if (starts_with(h, std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 14))) {
    return WeightsFormat::kTorchLegacy;
  }
  // A NetParameter starts with field 1 (name, string) or 2/100 (layers): key bytes 0x0a, 0x12, 0xa2
  // 0x06.
  if (!h.empty() && (h[0] == '\x0a' || h[0] == '\x12' || starts_with(h, "\xa2\x06")))
    return WeightsFormat::kCaffemodel;
  throw_bad_input(path.string(),
                  "unknown weights format (not a .caffemodel, torch.save or gliomagrade file)",
                  "give bvlc_googlenet.caffemodel or a torchvision googlenet .pth");
}

StateDict read_pretrained(const fs::path& path) {
  switch (detect_format(path)) {
    case WeightsFormat::kCaffemodel:
      return read_caffemodel(path);
    case WeightsFormat::kTorchLegacy:
    case WeightsFormat::kTorchZip:
      return read_torch_checkpoint(path);
    case WeightsFormat::kGliomagrade: {
      GoogLeNet net(read_weights_options(path));
      load_weights(net, path);
      StateDict state;
      for (auto& [name, t] : net_tensors(net)) state.emplace_back(name, t.detach());
      return state;
    }
  }
  throw_bad_input(path.string(), "unknown weights format");
}

Variant infer_variant(const StateDict& state) {
  for (const auto& [name, t] : state) {
    if (ends_with(name, ".bn.weight") || ends_with(name, ".bn.running_mean"))
      return Variant::kTorchvision;
  }
  return Variant::kBvlc;
}

void load_state_dict(GoogLeNet& net, const StateDict& state, const std::string& source_name,
                     bool allow_missing_classifier) {
  const Variant file_variant = infer_variant(state);
  if (file_variant != net->options().variant) {
    throw_bad_input(source_name,
                    std::string("holds ") + variant_name(file_variant) +
                        " GoogLeNet weights, the model is " + variant_name(net->options().variant),
                    std::string("use --variant ") + variant_name(file_variant));
  }
  auto targets = net_tensors(net);
  std::map<std::string, torch::Tensor> by_name(targets.begin(), targets.end());
  const bool net_has_aux = net->options().aux_logits;
  std::set<std::string> loaded;
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : state) {
    if (allow_missing_classifier && is_classifier(name)) continue;
    if (!net_has_aux && is_aux(name)) continue;  // aux heads of a training net, unused here
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      throw_bad_input(source_name,
                      "unexpected tensor '" + name + "' (not in " +
                          variant_name(net->options().variant) + " GoogLeNet)",
                      "check the file is a GoogLeNet of this variant");
    }
    if (!loaded.insert(name).second)
      throw_bad_input(source_name, "tensor '" + name + "' appears twice");
    if (it->second.sizes() != tensor.sizes()) {
      throw_bad_input(source_name,
                      "tensor '" + name + "' has shape " + shape_string(tensor) +
                          ", the model expects " + shape_string(it->second),
                      "check the number of classes and the variant");
    }
    it->second.copy_(tensor.to(it->second.scalar_type()));
  }
  for (const auto& [name, t] : targets) {
    if (loaded.count(name) || ends_with(name, "num_batches_tracked")) continue;
    if (allow_missing_classifier && is_classifier(name)) continue;
    throw_bad_input(source_name, "tensor '" + name + "' is missing",
                    "check the file is complete and of this variant");
  }
}

GoogLeNet load_pretrained(Variant variant, const fs::path& weights_path, bool transform_input) {
  const StateDict state = read_pretrained(weights_path);
  GoogLeNetOptions options;
  options.variant = variant;
  options.transform_input = variant == Variant::kTorchvision && transform_input;
  for (const auto& [name, t] : state) {
    if (name == "fc.weight" && t.dim() == 2) options.num_classes = t.size(0);
  }
  GoogLeNet net(options);
  load_state_dict(net, state, weights_path.string());
  net->eval();
  return net;
}

// File layout: magic "GGWEIGHTS1\n", u64 header length, JSON header (options, tensor table,
// data size and sha256), then the tensors' bytes (little-endian, contiguous, in table order).
void save_weights(GoogLeNet& net, const fs::path& path) {
  const auto& o = net->options();
  nlohmann::json header = {{"variant", variant_name(o.variant)},
                           {"num_classes", o.num_classes},
                           {"aux_logits", o.aux_logits},
                           {"transform_input", o.transform_input},
                           {"dropout", o.dropout}};
  std::string data;
  nlohmann::json table = nlohmann::json::array();
  for (auto& [name, t] : net_tensors(net)) {
    torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    if (c.scalar_type() != torch::kFloat32 && c.scalar_type() != torch::kInt64)
      c = c.to(torch::kFloat32);
    const size_t nbytes = c.numel() * c.element_size();
    table.push_back({{"name", name},
                     {"dtype", c.scalar_type() == torch::kInt64 ? "int64" : "float32"},
                     {"shape", c.sizes().vec()},
                     {"offset", data.size()},
                     {"nbytes", nbytes}});
    data.append(static_cast<const char*>(c.data_ptr()), nbytes);
  }
  header["tensors"] = table;
  header["data_bytes"] = data.size();
  header["data_sha256"] = sha256_hex(data);
  const std::string h = header.dump();
  std::string file(kWeightsMagic, kWeightsMagicSize);
  const uint64_t h_len = h.size();
  file.append(reinterpret_cast<const char*>(&h_len), 8);
  file += h;
  file += data;
  write_file_atomic(path, file);
}

namespace {

struct WeightsFile {
  nlohmann::json header;
  std::string_view data;
};

WeightsFile parse_weights(const std::string& bytes, const fs::path& path, bool check_data) {
  detail::ByteReader in(bytes, path.string(), "gliomagrade weights file");
  if (bytes.compare(0, kWeightsMagicSize, kWeightsMagic) != 0) {
    throw_bad_input(path.string(), "not a gliomagrade weights file (bad magic)",
                    "give a file written by `train`");
  }
  in.skip(kWeightsMagicSize);
  const uint64_t h_len = in.u64();
  if (h_len > (1u << 24)) in.fail("header length " + std::to_string(h_len) + " is implausible");
  WeightsFile w;
  try {
    w.header = nlohmann::json::parse(in.bytes(h_len));
    w.data = std::string_view(bytes).substr(in.pos());
    if (!check_data) return w;
    if (w.header.at("data_bytes").get<uint64_t>() != w.data.size()) {
      in.fail("data is " + std::to_string(w.data.size()) + " bytes, the header says " +
              std::to_string(w.header.at("data_bytes").get<uint64_t>()) + " (truncated?)");
    }
    if (w.header.at("data_sha256").get<std::string>() != sha256_hex(w.data))
      in.fail("checksum mismatch (corrupted)");
  } catch (const nlohmann::json::exception& e) {
    in.fail(std::string("bad header: ") + e.what());
  }
  return w;
}

GoogLeNetOptions options_from_header(const nlohmann::json& h) {
  GoogLeNetOptions o;
  o.variant = parse_variant(h.at("variant").get<std::string>());
  o.num_classes = h.at("num_classes").get<int64_t>();
  o.aux_logits = h.at("aux_logits").get<bool>();
  o.transform_input = h.at("transform_input").get<bool>();
  o.dropout = h.at("dropout").get<double>();
  return o;
}

}  // namespace

GoogLeNetOptions read_weights_options(const fs::path& path) {
  const std::string bytes = read_file(path);
  const WeightsFile w = parse_weights(bytes, path, /*check_data=*/false);
  try {
    return options_from_header(w.header);
  } catch (const nlohmann::json::exception& e) {
    throw_bad_input(path.string(), std::string("bad weights header: ") + e.what(),
                    "give a file written by `train`");
  }
}

void load_weights(GoogLeNet& net, const fs::path& path) {
  const std::string bytes = read_file(path);
  const WeightsFile w = parse_weights(bytes, path, /*check_data=*/true);
  const auto& o = net->options();
  GoogLeNetOptions f;
  StateDict state;
  try {
    f = options_from_header(w.header);
    for (const auto& entry : w.header.at("tensors")) {
      const auto name = entry.at("name").get<std::string>();
      const auto shape = entry.at("shape").get<std::vector<int64_t>>();
      const uint64_t offset = entry.at("offset").get<uint64_t>(),
                     nbytes = entry.at("nbytes").get<uint64_t>();
      const bool is_long = entry.at("dtype").get<std::string>() == "int64";
      int64_t numel = 1;
      for (int64_t d : shape) {
        if (d < 0 || d > (int64_t{1} << 32))
          throw_bad_input(path.string(), "tensor '" + name + "' has a bad shape");
        numel *= d;
      }
      if (offset > w.data.size() || nbytes > w.data.size() - offset ||
          static_cast<uint64_t>(numel) * 8 < nbytes ||
          nbytes != static_cast<uint64_t>(numel) * (is_long ? 8 : 4)) {
        throw_bad_input(path.string(), "tensor '" + name + "' lies outside the data",
                        "the file is corrupted");
      }
      auto t = torch::empty(shape, is_long ? torch::kInt64 : torch::kFloat32);
      std::memcpy(t.data_ptr(), w.data.data() + offset, nbytes);
      state.emplace_back(name, t);
    }
  } catch (const nlohmann::json::exception& e) {
    throw_bad_input(path.string(), std::string("bad weights header: ") + e.what(),
                    "give a file written by `train`");
  }
  if (f.variant != o.variant || f.num_classes != o.num_classes || f.aux_logits != o.aux_logits) {
    throw_bad_input(path.string(),
                    std::string("weights are for a ") + variant_name(f.variant) +
                        " GoogLeNet with " + std::to_string(f.num_classes) + " classes" +
                        (f.aux_logits ? " and aux heads" : "") + ", the model is " +
                        variant_name(o.variant) + " with " + std::to_string(o.num_classes) +
                        " classes" + (o.aux_logits ? " and aux heads" : ""),
                    "build the model with read_weights_options(file)");
  }
  load_state_dict(net, state, path.string());
}

std::vector<std::string> read_class_names(const fs::path& synset_words) {
  std::ifstream in(synset_words);
  if (!in)
    throw_bad_input(synset_words.string(), "cannot open class names", "give synset_words.txt");
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line) && names.size() <= 1000) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    names.push_back(space == std::string::npos ? line : line.substr(space + 1));
  }
  if (names.size() != 1000) {
    throw_bad_input(synset_words.string(),
                    "expected 1000 class names, found " + std::to_string(names.size()),
                    "give ImageNet's synset_words.txt");
  }
  return names;
}

std::vector<std::pair<int, float>> top_k(const torch::Tensor& logits_1xC, int k) {
  auto logits = logits_1xC.detach().to(torch::kCPU, torch::kFloat32).reshape({-1});
  auto probs = torch::softmax(logits, 0);
  k = std::max(0, std::min<int>(k, static_cast<int>(probs.numel())));
  auto [values, indices] = probs.topk(k);
  std::vector<std::pair<int, float>> out;
  for (int i = 0; i < k; ++i)
    out.emplace_back(static_cast<int>(indices[i].item<int64_t>()), values[i].item<float>());
  return out;
}

torch::Tensor hgg_probability(const torch::Tensor& logits_nx2) {
  TORCH_CHECK(logits_nx2.dim() == 2 && logits_nx2.size(1) == 2,
              "hgg_probability expects [N,2] logits");
  return torch::softmax(logits_nx2, 1).select(1, 1);
}

}  // namespace gg::model
