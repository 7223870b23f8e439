// Internal to gg::segment: DeepMedic v0.7.4 (github.com/deepmedic/deepmedic, BSD-3) as CaPTk ships
// it: its modelConfig.txt, and the network rebuilt in libtorch from the TensorFlow checkpoint.
#pragma once

#include <array>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "segment/tf_checkpoint.h"

namespace gg::segment {

// A pathway of 3-D convolutions: layer i has fms[i] output maps and kernel kernels[i]; residual
// connections at 0-based layer indices (the config's numbers minus 1); dropout[i] the rate on
// layer i's input (empty: none).
struct PathwayConfig {
  std::vector<int> fms;
  std::vector<std::array<int, 3>> kernels;
  std::vector<int> residual_layers;
  std::vector<double> dropout;
};

// The model parameters of a DeepMedic modelConfig.txt, with DeepMedic 0.7.4's defaults
// (deepmedic/frontEnd/configParsing/modelParams.py) for the optional keys.
struct DeepMedicConfig {
  int num_classes = 0;
  int num_channels = 0;
  PathwayConfig normal;
  std::vector<PathwayConfig> subsampled;              // one per subsampled pathway
  std::vector<std::array<int, 3>> subsample_factors;  // one per subsampled pathway
  PathwayConfig fc;  // hidden FC layers then the classification layer (fms ends with num_classes)
  std::array<int, 3> segment_inference{0, 0, 0};  // input segment of the normal pathway
  std::string activation = "prelu";
  int bn_rolling_batches = 60;

  std::array<int, 3> receptive_field() const;  // of the normal pathway
};

// Parses modelConfig.txt (Python assignments `key = value  # comment`; values are numbers,
// strings, True/False and nested lists). Throws gg::Error (kBadInput) naming the file and the key
// for a required key that is absent, a value of the wrong type, and for what this implementation
// does not support: low-rank layers, max pooling, an activation other than linear/relu/prelu,
// subsampled pathways whose receptive field differs from the normal one.
DeepMedicConfig read_deepmedic_config(const fs::path& path);
// The same, from the text (`source` names it in errors).
DeepMedicConfig parse_deepmedic_config(const std::string& text, const std::string& source);

// The TensorFlow variable names DeepMedic 0.7.4 gives each parameter, in creation order (tf
// uniquifies "net/W", "net/W_1", ...), with their shapes: per layer, in pathway order (normal,
// subsampled..., FC, then the softmax bias), BN layers create gBn, bBn, muBnsForRollingAverage,
// varBnsForRollingAverage (and two more unused at inference), the others a bias b; PReLU layers
// then aPrelu; every layer last its W [out, in, r, c, z].
struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> shape;
};
std::vector<ExpectedTensor> expected_tensors(const DeepMedicConfig& config);

// Sets torch's intra-op threads (n > 0).
void set_torch_threads(int n);

// The network with its weights, ready for inference (float32, CPU).
class DeepMedic {
 public:
  // Throws gg::Error (kBadInput) naming the checkpoint's index file and the tensor for a missing
  // or wrongly shaped tensor.
  DeepMedic(const DeepMedicConfig& config, const TfCheckpoint& checkpoint);
  ~DeepMedic();
  DeepMedic(DeepMedic&&) noexcept;
  DeepMedic& operator=(DeepMedic&&) noexcept;

  const DeepMedicConfig& config() const;
  // Input edge of the normal pathway and of subsampled pathway p for an output edge `out`.
  int normal_input(int out) const;
  int subsampled_input(size_t p, int out) const;

  // Class probabilities for a batch of segments. `normal` holds batch x channels x n^3 floats
  // (n = normal_input(out), z-major as io::Volume), `subsampled[p]` batch x channels x m_p^3;
  // returns batch x classes x out^3.
  std::vector<float> forward(const std::vector<float>& normal,
                             const std::vector<std::vector<float>>& subsampled, int batch,
                             int out) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gg::segment
