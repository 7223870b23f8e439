// segment: brain-tumour segmentation of a BraTS-space case (T1, T1ce, T2, FLAIR, co-registered,
// skull-stripped, 1 mm) with CaPTk's DeepMedic model, in libtorch, from its TensorFlow 1
// checkpoint. Kamnitsas et al., "Efficient multi-scale 3D CNN with fully connected CRF for
// accurate brain lesion segmentation", Med Image Anal 36:61 (2017); model trained by CBICA for
// CaPTk 1.9 (research use only: SBIA_license.txt travels with the model).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <vector>

#include "io/io.h"

namespace gg::segment {

namespace fs = std::filesystem;

struct SegmentOptions {
  // Intra-op threads for the forward passes; 0 leaves torch's setting alone.
  int threads = 0;
  // Output tile edge in voxels (each tile's input is this plus the receptive field, 16). 45, the
  // reference's choice (CaPTk's segmentsDimInference, 45, read as the output), reproduces its label
  // map exactly; 0 reads segmentsDimInference as DeepMedic 0.7.4 does, as the input segment (output
  // 29: whole-tumour Dice 0.986 against 45). Results differ only near tile borders, where the
  // subsampled pathways sample another phase and the first FC layer pads. Larger is faster per
  // voxel (90: about 25% less).
  int output_tile = 45;
  // Skip tiles whose input holds only background (in all four channels: io::find_background, 0 in
  // BraTS): their voxels get class 0 with probability 1. DeepMedic does this only when given a ROI
  // mask.
  bool skip_background_tiles = false;
  // Also return the class probabilities (5 x voxels floats).
  bool keep_probabilities = false;
  // A progress line over the tiles on stderr (common/progress.h).
  bool show_progress = false;
};

struct Segmentation {
  std::array<int, 3> size{0, 0, 0};  // the input grid
  // BraTS labels 0 background, 1 necrosis / non-enhancing core, 2 oedema, 4 enhancing; voxel
  // (x, y, z) at x + nx*(y + ny*z), as io::Volume.
  std::vector<uint8_t> labels;
  // Class probabilities (model classes 0..4), class-major, when asked for; else empty.
  std::vector<float> probabilities;
  int tiles = 0, tiles_skipped = 0;
  double seconds_preprocess = 0, seconds_network = 0;
};

// Segments one case. `model_dir` holds modelConfig.txt, model.ckpt.index and
// model.ckpt.data-00000-of-00001 and SBIA_license.txt (the model's licence, required). The four
// volumes must share one grid (io::same_grid). Each is z-scored as CaPTk does before calling
// DeepMedic (statistics over the brain, i.e. voxels > 0, within the 5th-95th percentile and 3
// standard deviations). Throws gg::Error (kBadInput) naming the file for an unreadable or
// mismatching model (see read_tf_checkpoint, read_deepmedic_config) and for volumes on different
// grids or holding no brain voxel.
Segmentation segment_brats(const fs::path& model_dir, const io::Volume& t1, const io::Volume& t1ce,
                           const io::Volume& t2, const io::Volume& flair,
                           const SegmentOptions& options = {});

// One case, from files to what a user reads -------------------------------------------------

// The DeepMedic model folder: `explicit_dir` if given; else $GLIOMAGRADE_DEEPMEDIC; else
// weights/deepmedic-brats-captk in ../shared beside the source tree or beside the working
// directory. Throws kBadInput listing where it looked when none holds model.ckpt.index.
fs::path find_deepmedic_model(const fs::path& explicit_dir);

// Tumour volumes in mL, by BraTS's regions: whole tumour (labels 1, 2, 4), tumour core (1, 4),
// enhancing (4), necrosis / non-enhancing core (1) and oedema (2).
struct TumourVolumes {
  double whole_ml = 0, core_ml = 0, enhancing_ml = 0, necrosis_ml = 0, oedema_ml = 0;
};
TumourVolumes tumour_volumes(const std::vector<uint8_t>& labels,
                             const std::array<double, 3>& spacing_mm);

struct CaseInputs {
  fs::path t1, t1ce, t2, flair;
};

struct CaseSegmentation {
  io::Volume labels;  // BraTS labels on the inputs' grid (geometry of FLAIR), as float
  TumourVolumes volumes;
  int largest_slice = -1;  // axial z of the largest whole-tumour area; -1 when no tumour found
  Segmentation raw;        // tiles and timings
};

// Reads the four volumes (io::read_volume: NIfTI, NRRD, MHA, a DICOM series directory), checks
// them (finite, non-constant, one grid: an error names the file that differs and how) and
// segments them. Throws gg::Error kBadInput naming the file.
CaseSegmentation segment_case(const fs::path& model_dir, const CaseInputs& inputs,
                              const SegmentOptions& options = {});

// Writes out_dir/labels.nii.gz (uint8-valued int16 label map, the inputs' grid in LPS+, so
// viewers overlay it on the scans) and out_dir/segmentation.json (volumes, largest slice, model,
// inputs, timings), each atomically. `model_dir` is recorded with its licence.
void write_case_segmentation(const CaseSegmentation& result, const CaseInputs& inputs,
                             const fs::path& model_dir, const fs::path& out_dir);

}  // namespace gg::segment
