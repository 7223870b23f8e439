// GoogLeNet (Inception v1) in libtorch, in two variants with their published ImageNet weights,
// the readers for those weight files, the two-class output module of the transfer-learning method,
// and saving/loading our own trained weights.
//
//   bvlc         BVLC GoogLeNet exactly as Caffe's deploy.prototxt (the net MATLAB's `googlenet`
//                imports): conv+bias+ReLU, LRN after pool1 and conv2, ceil-mode max pools, 5x5 in
//                branch 3, dropout 0.4. Native input: BGR, 0-255, minus mean (104, 117, 123).
//   torchvision  torchvision 0.14 `googlenet`: conv (no bias) + BatchNorm (eps 1e-3) + ReLU, 3x3 in
//                branch 3, optional aux heads and transform_input, dropout 0.2. Native input:
//                ImageNet mean/std normalised RGB. Parameter names equal torchvision's, so its
//                state_dict files load as they are.
//
// Both variants name their modules the same way (conv1, conv2, conv3, inception3a..5b with
// branch1, branch2.{0,1}, branch3.{0,1}, branch4.1, each a "conv" [+ "bn"], aux1/aux2, fc), so
// the rest of the program does not care which is in use. Caffe layer names are mapped onto these
// by read_caffemodel (e.g. "inception_3a/5x5_reduce" -> "inception3a.branch3.0.conv").
//
// Every reader throws gg::Error (kBadInput) naming the file and what is wrong for a missing,
// truncated, corrupted or unsupported file; lengths in files are checked against the bytes left,
// so a hostile file cannot make a reader crash, hang or allocate more than the file's size.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"

namespace gg::model {

namespace fs = std::filesystem;

enum class Variant { kBvlc, kTorchvision };
const char* variant_name(Variant variant);  // "bvlc" / "torchvision"
// Throws gg::Error (kBadInput) for anything but "bvlc" / "torchvision".
Variant parse_variant(const std::string& name);

struct GoogLeNetOptions {
  Variant variant = Variant::kBvlc;
  int64_t num_classes = 1000;
  // torchvision only: the two auxiliary heads (used in training).
  bool aux_logits = false;
  // torchvision only: re-normalise the input as torchvision's published weights expect.
  bool transform_input = false;
  // -1: the variant's own (bvlc 0.4, torchvision 0.2).
  double dropout = -1;
};

// Local response normalisation across channels with Caffe's semantics:
//   y = x / (k + alpha/size * sum_{c' in window(c)} x_{c'}^2)^beta, window of `size` centred on c,
//   zero outside the channel range. Input [N,C,H,W]. Differentiable (first order). On CPU with an
//   odd size it runs a fused kernel with an analytic backward (float32/float64; bfloat16/half are
//   computed in float32); elsewhere it is local_response_norm_composite.
torch::Tensor local_response_norm(const torch::Tensor& x, int64_t size = 5, double alpha = 1e-4,
                                  double beta = 0.75, double k = 1.0);
// The same from standard ops (pad + avg_pool3d over channels): the reference for the fused one.
torch::Tensor local_response_norm_composite(const torch::Tensor& x, int64_t size = 5,
                                            double alpha = 1e-4, double beta = 0.75,
                                            double k = 1.0);

class FrozenNet;

namespace detail {
class ConvBlockImpl;     // conv [+ BatchNorm] + ReLU (layers.h)
class InceptionImpl;     // the four-branch inception block
class InceptionAuxImpl;  // torchvision's auxiliary classifier
}  // namespace detail

class GoogLeNetImpl : public torch::nn::Module {
 public:
  // Builds the network with uninitialised weights (load a state or call init_weights()). Does not
  // change the global random stream (libtorch's layer constructors draw from it; we restore it).
  // Throws gg::Error (kBadInput) for options that do not fit the variant (aux heads or
  // transform_input on bvlc, num_classes < 1).
  explicit GoogLeNetImpl(const GoogLeNetOptions& options);

  // Native input (see the top of this file) [N,3,H,W], H,W >= 224 typical -> logits [N,C].
  // In training mode with aux heads the aux outputs are computed and dropped: use forward_train.
  torch::Tensor forward(torch::Tensor x);
  // Pooled features [N,1024] that feed the classifier (bvlc pool5/7x7_s1, torchvision avgpool),
  // before dropout.
  torch::Tensor features(torch::Tensor x);

  // aux1/aux2 are the heads after inception 4a and 4d; undefined unless aux_logits and
  // is_training(). (torchvision's GoogLeNetOutputs swaps them: its aux_logits1 is module aux2.)
  struct TrainOutputs {
    torch::Tensor logits, aux1, aux2;
  };
  TrainOutputs forward_train(torch::Tensor x);

  // forward() on one shard of a data-parallel mini-batch of `global_batch` rows whose first row
  // is row `first_row` of it: dropout draws its mask for all global_batch rows, from the global
  // generator exactly as torch::dropout draws it for a whole batch, and applies rows
  // [first_row, first_row + N). The shards of one batch thus see the mask one process would draw.
  // With `frozen_prefix` (a FrozenNet of this net, built after its weights were loaded) and
  // frozen stages, training mode runs those stages through it: the same function to float
  // rounding (~1e-7 relative), pre-packed and without autograd. Ignored in eval mode.
  torch::Tensor forward_shard(torch::Tensor x, int64_t global_batch, int64_t first_row,
                              const FrozenNet* frozen_prefix = nullptr);

  // The variant's input layer: [N,3,H,W] RGB (grey replicated) in [0,1] -> native input.
  torch::Tensor normalise_input(const torch::Tensor& rgb01) const;
  // torchvision's transform_input (when options().transform_input; forward applies it).
  torch::Tensor input_transform(torch::Tensor x) const;

  // For Grad-CAM: logits plus the output of the last inception block (inception 5b,
  // [N,1024,7,7] at 224x224), which stays in the autograd graph.
  std::pair<torch::Tensor, torch::Tensor> forward_with_last_block(torch::Tensor x);

  // The output module redesigned (MATLAB transfer learning): replaces the classifier by a new
  // Linear(1024, num_classes) whose weights are N(0, 0.01) and bias 0, drawn from a generator
  // seeded by `seed` (the global RNG is not touched); dropout kept. Aux heads, if any, get new
  // output layers (fc2) the same way. Every other tensor is left exactly as it was.
  void replace_classifier(int64_t num_classes, uint64_t seed);
  std::vector<torch::Tensor> classifier_parameters();  // fc (+ aux fc2s): lr x head_lr_factor
  std::vector<torch::Tensor> backbone_parameters();    // everything else that requires grad

  // Freezes the first `stages` stages (requires_grad=false; their BatchNorms stay in eval mode
  // when train() is called): 1 = conv1..pool2 stem, 2 = + inception 3a/3b, 3 = + 4a..4e,
  // 4 = + 5a/5b. 0 = none (unfreezes all). Throws gg::Error (kBadInput) outside 0..4.
  void freeze_stages(int stages);
  int frozen_stages() const { return frozen_stages_; }

  // torch::nn::Module::train, keeping frozen stages' BatchNorm in eval mode.
  void train(bool on = true) override;

  // Initialises all weights from a seeded generator (for training from scratch and tests):
  // Kaiming-normal convs, N(0, 0.01) linears, zero biases, BatchNorm weight 1 / bias 0.
  void init_weights(uint64_t seed);

  // Stores the 4-D weights in `format` (torch::MemoryFormat::ChannelsLast for the NHWC kernels, or
  // Contiguous); feed inputs in the same format. Outputs are the same either way.
  void to_memory_format(torch::MemoryFormat format);

  const GoogLeNetOptions& options() const { return options_; }
  double dropout_p() const;  // the dropout probability in use

 private:
  struct Rows {
    int64_t global_batch, first;
  };
  TrainOutputs run(torch::Tensor x, bool want_aux, torch::Tensor* last_block, torch::Tensor* pooled,
                   const Rows* dropout_rows = nullptr, const FrozenNet* frozen_prefix = nullptr);

  GoogLeNetOptions options_;
  int frozen_stages_ = 0;
  std::shared_ptr<detail::ConvBlockImpl> conv1_, conv2_, conv3_;
  std::vector<std::shared_ptr<detail::InceptionImpl>> inceptions_;  // 3a 3b 4a 4b 4c 4d 4e 5a 5b
  std::shared_ptr<detail::InceptionAuxImpl> aux1_, aux2_;
  torch::nn::Linear fc_{nullptr};
};
TORCH_MODULE(GoogLeNet);

// A trained GoogLeNet frozen for inference (issue 11): a snapshot of the net's eval-mode function
// with BatchNorm folded into the convolutions (torchvision), each conv + bias + ReLU one oneDNN
// primitive whose weights are pre-packed once (mkldnn_prepacked::conv2d_prepack, on a CPU libtorch
// with oneDNN; elsewhere folded weights + conv2d + relu_), and max pooling without indices.
// Build it once per model and reuse it (building takes 7-20 ms on 2 cores). It copies
// the weights, so later changes to the net (training steps, load_weights) are not seen: freeze
// again. Float32 only; input [N,3,H,W] in either memory format (taken channels-last), any batch
// size; the logits equal the eager net's in eval mode to ~1e-6 relative (the BatchNorm fold).
// Gradients do not flow through it: Grad-CAM takes last_block() and runs head() with autograd.
class FrozenNet {
 public:
  // `batch` and `image_size` are the shape the primitives are prepared for (others work, a
  // little slower). Throws gg::Error (kBadInput) for a net that is not float32.
  explicit FrozenNet(GoogLeNet net, int64_t batch = 32, int64_t image_size = 224);

  torch::Tensor forward(const torch::Tensor& x) const;  // logits [N,C]
  // The output of inception 5b ([N,1024,7,7] at 224x224, channels-last), no gradient.
  torch::Tensor last_block(const torch::Tensor& x) const;
  // The eval-mode forward through the end of freeze stage `stages` (1 the stem and its pool,
  // 2 inception 3b and the pool after it, 3 inception 4e and its pool, 4 inception 5b), no
  // gradient: what the first trainable block of a net frozen that far receives. Throws gg::Error
  // (kBadInput) outside 1..4.
  torch::Tensor through_stage(const torch::Tensor& x, int stages) const;
  // The eval-mode head on a last block (global average pool, fc), differentiable in its input.
  torch::Tensor head(const torch::Tensor& last_block) const;
  // The source net (for normalise_input, options, device).
  const GoogLeNet& net() const;
  // True when the convolutions run as pre-packed oneDNN primitives.
  bool prepacked() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

// Tensors by name, in file order.
using StateDict = std::vector<std::pair<std::string, torch::Tensor>>;

enum class WeightsFormat {
  kCaffemodel,   // Caffe NetParameter protobuf (V1 `layers` or V2 `layer`)
  kTorchLegacy,  // torch.save, legacy (non-zip) pickle format
  kTorchZip,     // torch.save, zip format
  kGliomagrade,  // save_weights
};
// "caffemodel", "torch-legacy", "torch-zip", "gliomagrade".
const char* format_name(WeightsFormat format);
// By content (magic bytes). Throws gg::Error (kBadInput) if unreadable or none of the above.
WeightsFormat detect_format(const fs::path& path);

// Caffe .caffemodel -> tensors under our module's names (conv weight [out][in][kh][kw], bias,
// fc [out][in]). Layers without blobs are skipped; the aux heads of BVLC's training net
// (loss1/*, loss2/*) map to aux1.* / aux2.*; any other layer with blobs is an error naming it.
StateDict read_caffemodel(const fs::path& path);
// torch.save of a state_dict (or any dict of tensors), legacy or zip format. Float, double, half,
// bfloat16, long, int, short, char, byte and bool storages; views (offset, size, stride) are
// materialised as contiguous tensors. If the file name carries a hash prefix
// (`name-<8+ hex>.ext`, as torchvision's) the file's sha256 must start with it.
StateDict read_torch_checkpoint(const fs::path& path);
// Either of the above (or a save_weights file), chosen by content.
StateDict read_pretrained(const fs::path& path);
// The variant whose names the state uses ("conv1.bn.weight" -> torchvision, else bvlc).
Variant infer_variant(const StateDict& state);

// Copies tensors into the module (dtype converted to the parameter's). Missing, extra or
// mis-shaped tensors are gg::Error (kBadInput) naming `source_name` and the tensor.
// With allow_missing_classifier (after replace_classifier) the file's fc.* is ignored.
// num_batches_tracked is optional. Aux tensors in the state are ignored when the net has none.
void load_state_dict(GoogLeNet& net, const StateDict& state, const std::string& source_name,
                     bool allow_missing_classifier = false);
// A pretrained 1000-class net of the variant from a weights file, in eval mode.
// transform_input applies to torchvision only (torchvision's published weights expect true).
GoogLeNet load_pretrained(Variant variant, const fs::path& weights_path,
                          bool transform_input = true);

// Our own trained weights, in a small self-describing format: options + every tensor of
// named_parameters()/named_buffers() + a sha256 of the content. save_weights writes atomically
// (temp + rename). load_weights checks the file against `net` (variant, classes, tensor names and
// shapes) and throws gg::Error (kBadInput) naming the file for a wrong architecture, a truncated or
// corrupted file. read_weights_options reads just the options (to build the right net first).
void save_weights(GoogLeNet& net, const fs::path& path);
void load_weights(GoogLeNet& net, const fs::path& path);
GoogLeNetOptions read_weights_options(const fs::path& path);

// ImageNet class names, one per line of synset_words.txt ("n01440764 tench, Tinca tinca" ->
// "tench, Tinca tinca"). Throws gg::Error (kBadInput) unless the file has 1000 lines.
std::vector<std::string> read_class_names(const fs::path& synset_words);
// The k largest (class, softmax probability) of a [1,C] (or [C]) logits tensor, best first.
std::vector<std::pair<int, float>> top_k(const torch::Tensor& logits_1xC, int k);

// Slices as the store holds them (n uint8 grey size×size images back to back) -> the network's
// input: /255, grey replicated to 3 channels (as MATLAB feeds grey images to GoogLeNet), the
// variant's normalise_input, channels-last when asked (oneDNN's fast layout on CPU).
torch::Tensor slices_to_input(const GoogLeNet& net, const uint8_t* slices, int64_t n, int size,
                              bool channels_last = true);

// The one batched inference loop (training-time validation, train::predict_items, explain): the
// logits [n, classes] (float32, on the CPU: host reads never touch device memory) of n slices,
// `batch` at a time on the device of the net's parameters, in eval mode without gradients; the
// module's training mode is restored afterwards. on_batch(count) is called after each batch
// (progress).
// Float32 nets run frozen (FrozenNet, built once per call); `eager` keeps the module's own
// forward (the reference; and cheaper for a handful of slices, where freezing would dominate).
torch::Tensor batched_logits(GoogLeNet& net, const uint8_t* slices, int64_t n, int size,
                             int64_t batch = 32, bool channels_last = true,
                             const std::function<void(int64_t)>& on_batch = {}, bool eager = false);
// The same with a net frozen once by the caller.
torch::Tensor batched_logits(const FrozenNet& net, const uint8_t* slices, int64_t n, int size,
                             int64_t batch = 32, bool channels_last = true,
                             const std::function<void(int64_t)>& on_batch = {});

// The two-class output: P(HGG) = softmax(logits)[:, 1], [N,2] (class 0 LGG, 1 HGG) -> [N].
torch::Tensor hgg_probability(const torch::Tensor& logits_nx2);

// The device --device names: "cpu", "cuda" (GPU 0), "cuda:N", or "auto" (GPU 0 when this libtorch
// has CUDA and sees a GPU, else the CPU). Throws gg::Error kBadInput for another name, for CUDA
// with a libtorch built without it (Debian's is CPU-only: the message says how to get a CUDA
// build), or for a GPU index that is not there.
torch::Device resolve_device(const std::string& spec);

// Number of elements in the net's parameters (for `weights info`).
int64_t parameter_count(GoogLeNet& net);

}  // namespace gg::model
