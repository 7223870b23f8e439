// `gliomagrade weights info|classify|fetch`: a user's tools for the ImageNet weights the method
// transfers from — what a weights file is, whether it loads into our GoogLeNet, what it sees in
// a photo (a quick check of a download), and fetching the published files.
#include <fmt/format.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdlib>
#include <memory>

#include "cli/command.h"
#include "common/error.h"
#include "common/files.h"
#include "model/fetch.h"
#include "model/model.h"

namespace {

namespace fs = std::filesystem;
namespace model = gg::model;

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

// Which NetParameter field holds the layers: 2 = V1 `layers` (2014 files), 100 = V2 `layer`.
// Informational only: scans top-level fields and stops quietly at anything malformed (the
// real, bounds-checked reader is model::read_caffemodel).
std::string caffemodel_generation(const std::string& bytes) {
  size_t pos = 0;
  auto varint = [&](uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64 && pos < bytes.size(); shift += 7) {
      const auto b = static_cast<unsigned char>(bytes[pos++]);
      *v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  };
  bool v1 = false, v2 = false;
  uint64_t key = 0, value = 0;
  while (pos < bytes.size() && varint(&key)) {
    const uint64_t field = key >> 3, wire = key & 7;
    if (wire == 0) {
      if (!varint(&value)) break;
    } else if (wire == 1 || wire == 5) {
      pos += wire == 1 ? 8 : 4;
    } else if (wire == 2) {
      if (!varint(&value) || value > bytes.size() - pos) break;
      v1 |= field == 2;
      v2 |= field == 100;
      pos += value;
    } else {
      break;
    }
  }
  if (v1 && v2) return "V1 `layers` and V2 `layer`";
  return v1 ? "V1 `layers`" : v2 ? "V2 `layer`" : "no layers found";
}

// A net shaped for the state's tensors: the variant by names, aux heads when the file has them.
model::GoogLeNetOptions options_for(const model::StateDict& state) {
  model::GoogLeNetOptions o;
  o.variant = model::infer_variant(state);
  for (const auto& [name, tensor] : state)
    if (o.variant == model::Variant::kTorchvision && name.rfind("aux1.", 0) == 0)
      o.aux_logits = true;
  o.transform_input = o.variant == model::Variant::kTorchvision;
  return o;
}

void set_threads() {
  if (const int n = gg::cli::global_options().threads; n > 0) torch::set_num_threads(n);
}

// --- info ---------------------------------------------------------------------------------

void run_info(const fs::path& file) {
  // Everything is read and loaded before anything is printed: a bad file gives only the error.
  const model::WeightsFormat format = model::detect_format(file);
  std::string format_text = model::format_name(format);
  if (format == model::WeightsFormat::kCaffemodel)
    format_text += " (" + caffemodel_generation(gg::read_file(file)) + ")";
  const std::string sha256 = gg::sha256_file(file);
  std::string tensors;
  model::GoogLeNet net{nullptr};
  if (format == model::WeightsFormat::kGliomagrade) {
    net = model::GoogLeNet(model::read_weights_options(file));
    model::load_weights(net, file);
  } else {
    const model::StateDict state = model::read_pretrained(file);
    int64_t values = 0;
    for (const auto& [name, tensor] : state) values += tensor.numel();
    tensors = fmt::format("{} ({} values)", state.size(), with_commas(values));
    net = model::GoogLeNet(options_for(state));
    model::load_state_dict(net, state, file.string());  // throws, naming the tensor, if not
  }

  const auto& o = net->options();
  fmt::print("file         {}\n", file.string());
  fmt::print("format       {}\n", format_text);
  fmt::print("size         {} bytes\n", with_commas(static_cast<int64_t>(fs::file_size(file))));
  fmt::print("sha256       {}\n", sha256);
  // torchvision-style names carry a sha256 prefix ("googlenet-1378be20.pth").
  if (const std::string h = model::hash_prefix_from_name(file.filename().string()); !h.empty())
    fmt::print("name hash    {} ({})\n", h,
               sha256.rfind(h, 0) == 0 ? "sha256 matches" : "sha256 does NOT match: corrupt?");
  fmt::print("variant      {}\n", model::variant_name(o.variant));
  if (!tensors.empty()) fmt::print("tensors      {}\n", tensors);
  fmt::print("loads        yes: GoogLeNet {}, {} classes{}, {} parameters\n",
             model::variant_name(o.variant), o.num_classes, o.aux_logits ? ", aux heads" : "",
             with_commas(model::parameter_count(net)));
}

// --- classify -----------------------------------------------------------------------------

// synset_words.txt: --synsets, else beside the weights file, else $GG_SHARED_DIR/fixtures/bvlc,
// else the development checkout's ../shared/fixtures/bvlc (absent in an installed build).
fs::path find_synsets(const fs::path& given, const fs::path& weights) {
  if (!given.empty()) return given;
  const fs::path in_shared = "fixtures/bvlc/synset_words.txt";
  std::vector<fs::path> candidates{weights.parent_path() / "synset_words.txt"};
  if (const char* shared = std::getenv("GG_SHARED_DIR"))
    candidates.push_back(fs::path(shared) / in_shared);
  candidates.push_back(fs::path(__FILE__).parent_path() / "../../../shared" / in_shared);
  for (const auto& c : candidates)
    if (fs::is_regular_file(c)) return c;
  return {};
}

// PNG/JPEG/... -> [1,3,224,224] RGB in [0,1] (resized, grey replicated, alpha dropped).
torch::Tensor read_photo(const fs::path& image) {
  cv::Mat bgr;
  try {
    bgr = cv::imread(image.string(), cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    gg::throw_bad_input(image.string(), std::string("cannot decode image: ") + e.what());
  }
  if (bgr.empty())
    gg::throw_bad_input(image.string(), "cannot read image", "pass a PNG or JPEG photo");
  cv::Mat rgb, resized;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  // Area averaging when shrinking (a photo is usually larger): like PIL's antialiased bilinear,
  // unlike plain bilinear sampling, it does not alias fine texture.
  const bool shrinking = rgb.cols >= 224 && rgb.rows >= 224;
  cv::resize(rgb, resized, cv::Size(224, 224), 0, 0, shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
  torch::Tensor hwc = torch::from_blob(resized.data, {224, 224, 3}, torch::kUInt8);
  return hwc.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32).div(255.0).contiguous();
}

void run_classify(const fs::path& weights, const fs::path& image, int top,
                  const fs::path& synsets) {
  set_threads();
  if (model::detect_format(weights) == model::WeightsFormat::kGliomagrade)
    gg::throw_bad_input(weights.string(), "a gliomagrade trained model, not ImageNet weights",
                        "classify takes bvlc_googlenet.caffemodel or a torchvision .pth");
  const model::StateDict state = model::read_pretrained(weights);
  model::GoogLeNetOptions o = options_for(state);
  o.aux_logits = false;
  model::GoogLeNet net(o);
  model::load_state_dict(net, state, weights.string());
  net->eval();
  const fs::path names_file = find_synsets(synsets, weights);
  const std::vector<std::string> names =
      names_file.empty() ? std::vector<std::string>{} : model::read_class_names(names_file);

  const torch::Tensor x = read_photo(image);
  torch::NoGradGuard no_grad;
  const torch::Tensor logits = net->forward(net->normalise_input(x));
  fmt::print("{} with {} ({}):\n", image.filename().string(), weights.filename().string(),
             model::variant_name(o.variant));
  for (const auto& [cls, p] : model::top_k(logits, top)) {
    const std::string name = names.empty() ? "" : names[static_cast<size_t>(cls)];
    fmt::print("  {:6.4f}  {:4d}  {}\n", p, cls, name);
  }
  if (names.empty())
    fmt::print("(class names: pass --synsets synset_words.txt, the 1000 ImageNet classes)\n");
}

// --- fetch --------------------------------------------------------------------------------

void run_fetch(const std::string& which, const fs::path& dir, const model::FetchOptions& options) {
  const fs::path dest = model::fetch_destination(which, dir, options.url);
  const bool was_there = fs::exists(dest) && !options.overwrite;
  const fs::path got = model::fetch_weights(which, dir, options);
  const model::ExpectedContent check =
      model::fetch_expected_content(which, options.url, options.sha256);
  const std::string how =
      !check.sha1.empty() ? "sha1 " + check.sha1 : "sha256 starts with " + check.sha256_prefix;
  fmt::print("{} {} ({})\n",
             was_there ? "already there, verified:" : "downloaded, verified:", got.string(), how);
  fmt::print("check it with: gliomagrade weights classify {} PHOTO.png\n", got.string());
}

void add_weights(CLI::App& app) {
  auto* w = app.add_subcommand("weights", "Inspect, check and download ImageNet GoogLeNet weights");
  w->require_subcommand(1);
  w->footer(
      "The method transfers an ImageNet-pretrained GoogLeNet: `bvlc` (BVLC's Caffe model, the one\n"
      "MATLAB's googlenet imports; the default) or `torchvision` (googlenet-1378be20.pth).\n"
      "Examples:\n"
      "  gliomagrade weights info bvlc_googlenet.caffemodel\n"
      "  gliomagrade weights classify bvlc_googlenet.caffemodel cat.png --synsets "
      "synset_words.txt\n"
      "  gliomagrade weights fetch torchvision --dir weights");

  auto* info =
      w->add_subcommand("info", "What a weights file is and whether it loads into our GoogLeNet");
  auto info_file = std::make_shared<fs::path>();
  info->add_option("FILE", *info_file,
                   "A .caffemodel (Caffe V1/V2), a torch.save .pth (legacy or zip) or a weights "
                   "file written by gliomagrade")
      ->required()
      ->check(CLI::ExistingFile);
  info->footer(
      "Prints format, variant (from the tensor names), number of tensors and values, sha256,\n"
      "and loads the file into the network. Exit 3 with a one-line error if it does not.");
  info->callback([info_file] { run_info(*info_file); });

  auto* cls =
      w->add_subcommand("classify", "Top ImageNet classes of a photo: a check that weights work");
  auto weights = std::make_shared<fs::path>(), image = std::make_shared<fs::path>(),
       synsets = std::make_shared<fs::path>();
  auto top = std::make_shared<int>(5);
  cls->add_option("FILE", *weights, "ImageNet weights (.caffemodel or torchvision .pth)")
      ->required()
      ->check(CLI::ExistingFile);
  cls->add_option("IMAGE", *image, "A photo (PNG or JPEG); resized to 224x224")
      ->required()
      ->check(CLI::ExistingFile);
  cls->add_option("--top", *top, "How many classes to print")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cls->add_option(
         "--synsets", *synsets,
         "ImageNet class names, one per line (synset_words.txt). Default: one beside FILE,\n"
         "else $GG_SHARED_DIR/fixtures/bvlc/synset_words.txt, else the checkout's\n"
         "../shared; without one, classes print as numbers")
      ->check(CLI::ExistingFile);
  cls->footer(
      "Example: gliomagrade weights classify bvlc_googlenet.caffemodel chelsea.png\n"
      "  ->   0.6199   285  Egyptian cat   (the BVLC weights see the cat; probability, class, "
      "name)");
  cls->callback([=] { run_classify(*weights, *image, *top, *synsets); });

  auto* fetch = w->add_subcommand("fetch", "Download published weights (needs internet), verified");
  auto which = std::make_shared<std::string>();
  auto dir = std::make_shared<fs::path>(".");
  auto fo = std::make_shared<model::FetchOptions>();
  fetch->add_option("VARIANT", *which, "bvlc or torchvision")
      ->required()
      ->check(CLI::IsMember({"bvlc", "torchvision"}));
  fetch->add_option("--dir", *dir, "Directory to put the file in")->capture_default_str();
  fetch->add_option("--url", fo->url,
                    "Download from this URL (a mirror, or file:///path) instead of the public one");
  fetch->add_option("--sha256", fo->sha256,
                    "Accept a file with this sha256 (8-64 hex digits, a prefix) instead of the "
                    "published check");
  fetch->add_flag("--overwrite", fo->overwrite, "Replace a file already there that does not match");
  fetch->footer(fmt::format(
      "bvlc:        {}\n             checked against BVLC's published sha1 {}\n"
      "torchvision: {}\n             sha256 must start with the hex in the file name, as "
      "torchvision checks\n"
      "The file is written under a temporary name and renamed only once verified: a failed\n"
      "download leaves nothing. Without internet, copy the file by hand into --dir.",
      model::kBvlcWeightsUrl, model::kBvlcWeightsSha1, model::kTorchvisionWeightsUrl));
  fetch->callback([=] {
    fo->download.show_progress = !gg::cli::global_options().quiet;
    run_fetch(*which, *dir, *fo);
  });
}

}  // namespace

GG_REGISTER_COMMAND(weights, 90, add_weights);
