// infer: grading a new patient with a trained model bundle, and exporting a bundle as TorchScript.
//
// predict, per patient:
//  1. read FLAIR (the reference grid), T1, T2 (and the mask, if any) in canonical LPS+
//     orientation; a sequence on another grid is registered rigidly to FLAIR (registration/:
//     Mattes MI, versor rigid, multi-resolution) and resampled into the FLAIR grid through that
//     transform, with a notice (register = false: physical space only, no registration); one
//     whose physical extent does not overlap FLAIR's is an error; every sequence's head overlap
//     with FLAIR (Dice) is measured, registered or not;
//  1b. resample the three (and the mask) to the bundle's training grid (model.json
//     "training_data": BraTS is 1 mm and 240 mm across) in the FLAIR frame, centred on the head,
//     when FLAIR's grid differs from it, so that the window spans as many millimetres and the
//     slices show the brain as large as in training (input on that grid is untouched); slices
//     thicker than 2 mm get a notice (and the quality flag thick_slices unless the models were
//     trained on such slices);
//  2. choose the centre slice: --slice Z (user), else the mask's largest tumour slice (mask),
//     else the automatic tumour localisation below (auto, with a confidence);
//  3. take the bundle's window of slices around it (model.json input.slices, z*-10..z*+9 for
//     20) and prepare them exactly as `prepare` does (brain percentiles, 224×224 uint8);
//  4. each sequence model gives P(HGG) per slice; the sequence's P(HGG) is their mean (as the
//     patient-level evaluation); the grade is the paper's hard majority vote of the three, the
//     soft vote (mean of the three) reported beside it;
//  5. Grad-CAM of each sequence model on the centre slice (explain/).
//
// Every bad input is a gg::Error (kBadInput) naming the file: unreadable or non-3-D volumes,
// NaN/Inf or constant intensities, an empty mask or unknown labels, a mask on another grid than
// FLAIR (unless resample_mask), non-overlapping sequences, a brain mask that is empty, does not
// overlap FLAIR or lies mostly on its background, a --slice outside the volume, a bundle
// of another format version or an unknown variant, a sequence missing from the bundle, weights
// of another architecture or variant.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "explain/explain.h"
#include "registration/registration.h"
#include "segment/segment.h"

#include "io/io.h"
#include "train/train.h"

namespace gg::infer {

namespace fs = std::filesystem;

// Automatic tumour localisation without a mask: FLAIR hyperintensity inside the brain.
//  - brain = voxels outside the background (io::find_background: 0 in BraTS, the negative
//    constant of a z-scored scan), eroded by one voxel (the brain's rim is often bright in FLAIR);
//  - FLAIR smoothed by a 3×3×3 mean over brain voxels (noise);
//  - hyperintense = smoothed > median + k·sigma of the brain voxels, sigma = IQR / 1.349
//    (robust to the tumour itself), k = kHyperintensitySigmas;
//  - the largest 6-connected 3-D component of hyperintense voxels seeds the lesion; it is grown
//    through the voxels above median + grow_sigmas·sigma connected to it (hysteresis: the seed is
//    the lesion's brightest part, not always where it is widest), and the grown lesion's axial
//    slice of largest area (holes filled) is the centre slice. A grown lesion over kMaxLesionMl
//    has leaked into normal tissue: the seed's slice is taken and the confidence halved.
// confidence (0..1) = share of all hyperintense voxels that lie in the chosen component
// × min(1, component volume / 1 mL): near 1 for one dominant lesion, low when several similar
// bright regions compete or the lesion is tiny (halved when the growth leaked).
// Measured on the six real cases of ../shared/data (bench/README.md, "Localisation"): growing to
// 1.0-2.0 sigma puts every centre within 5 slices of the mask's; 0.5 leaks (lesions of 280-410 mL).
inline constexpr double kHyperintensitySigmas = 2.5, kGrowSigmas = 2.0, kMaxLesionMl = 250;
struct TumourLocation {
  int centre_z = -1;
  double confidence = 0;
  int64_t component_voxels = 0;
  double component_ml = 0;
  int64_t lesion_voxels = 0;  // the component grown through moderately hyperintense voxels
  double lesion_ml = 0;
  bool lesion_leaked = false;  // lesion_ml > kMaxLesionMl: the seed's slice was taken
  int components = 0;          // hyperintense components found
  double threshold = 0;        // FLAIR intensity threshold used
  std::array<int, 3> min_xyz{0, 0, 0}, max_xyz{0, 0, 0};  // the component's bounding box
};
// Throws kBadInput naming flair_path when the volume has no brain voxels or no hyperintensity.
TumourLocation locate_tumour(const io::Volume& flair, const fs::path& flair_path,
                             double grow_sigmas = kGrowSigmas);

// Skull-stripping check, on FLAIR as read: the models saw skull-stripped brains (BraTS). The head
// outline is everything not reachable from the volume's border through background
// (io::find_background) and dark voxels (at most io::dark_threshold: 5% of the 99th percentile
// above the background value), so dark bone and CSF inside it count. A brain is
// about 1.1-1.7 L; an outline enclosing more than kMaxBrainMl still holds skull and scalp (or
// the neck). Does not see a scan cut to the brain's extent that still holds bright scalp.
inline constexpr double kMaxBrainMl = 1900;
struct SkullStripCheck {
  double outline_ml = 0;  // volume enclosed by the head (or brain) outline
  bool stripped = true;   // outline_ml <= kMaxBrainMl
};
SkullStripCheck check_skull_stripped(const io::Volume& flair);

// How the centre slice was chosen: --slice, a given mask, the DeepMedic segmentation (with T1ce),
// or the FLAIR heuristic above.
enum class SliceChoice { kUser, kMask, kAuto, kSegmentation };
const char* slice_choice_name(SliceChoice c);  // "user (--slice)", "mask", "auto", "deepmedic"
// The localisation method as prediction.json's "localisation.method" names it: "--slice", "seg",
// "heuristic", "deepmedic".
const char* localisation_method_name(SliceChoice c);

// Without --slice or a mask: DeepMedic when the patient has a T1ce (kAuto), always (kDeepMedic:
// an error without T1ce), or never (kHeuristic).
enum class Locate { kAuto, kDeepMedic, kHeuristic };

struct PredictOptions {
  int slice = -1;              // >= 0: centre slice given by the user (canonical axial index)
  bool use_mask = true;        // false: ignore Case::seg and locate the tumour automatically
  bool resample_mask = false;  // a mask on another grid is resampled (nearest) instead of refused
  bool grad_cam = true;
  int batch_size = 32;
  // A T1/T2 on another grid than FLAIR is registered rigidly to it (false: resampled in physical
  // space only, trusting the headers).
  bool register_sequences = true;
  registration::RegistrationOptions registration;
  // FLAIR (and with it T1, T2 and the mask) is resampled to the bundle's training grid (its
  // spacing and in-plane field of view; 1 mm for bundles that did not record it) when it is on
  // another; false keeps the FLAIR grid.
  bool resample_to_training_grid = true;
  // A brain mask (from HD-BET, SynthStrip, FSL BET; voxels > 0 are brain) applied to the three
  // sequences on the FLAIR grid (resampled nearest neighbour if on another grid): voxels outside
  // it are set to 0, as in BraTS. Empty: none.
  fs::path brain_mask;
  // Inputs that are DICOM directories holding several series: the SeriesInstanceUIDs to choose
  // from (io::VolumeReadOptions), for T1, T2, FLAIR and the mask in that order.
  std::array<io::VolumeReadOptions, 4> series;
  Locate locate = Locate::kAuto;
  // The DeepMedic model folder (segment::find_deepmedic_model: empty searches the usual places)
  // and how it runs. Its input is the four sequences on the FLAIR grid as read, after the brain
  // mask; the label map is then treated as a given mask is (prep::largest_tumour_slice).
  fs::path deepmedic_model;
  segment::SegmentOptions segmentation;
};

struct SequencePrediction {
  io::Sequence sequence = io::Sequence::kT1;
  std::vector<double> p_slices;       // P(HGG) per window slice
  double p_hgg = 0;                   // their mean
  std::vector<uint8_t> centre_slice;  // size×size, what the model saw at the centre slice
  std::vector<float> heatmap;  // Grad-CAM there (size×size in [0,1]; empty without grad_cam)
  int heatmap_class = 1;       // 1 HGG, 0 LGG: the class the heatmap explains
  // With a mask: how the heatmap sits on the tumour (label > 0) at the centre slice, a check of
  // the explanation (mass inside, against chance and Grad-CAM's resolution); empty without a mask
  // or heatmap.
  std::optional<explain::TumourOverlap> heatmap_on_tumour;
};

// How a T1 or T2 was brought onto the FLAIR grid.
struct SequenceAlignment {
  enum class Method { kSameGrid, kRegistered, kPhysicalSpace };
  Method method = Method::kSameGrid;
  std::optional<registration::RegistrationResult> registration;  // kRegistered only
  // Head (or brain) overlap with FLAIR on the FLAIR grid as the model sees it (Dice of
  // registration::foreground_mask): ~0.95 or more for co-registered sequences.
  double dice = 1;
};
const char* alignment_method_name(SequenceAlignment::Method m);
// Below this overlap a sequence is flagged registration_poor.
inline constexpr double kPoorRegistrationDice = 0.85;

// The grid the window was taken from.
struct PredictGrid {
  std::array<int, 3> input_size{0, 0, 0};  // FLAIR as read
  std::array<double, 3> input_spacing_mm{1, 1, 1};
  std::array<int, 3> size{0, 0, 0};  // after 1b (equal to the input when not resampled)
  std::array<double, 3> spacing_mm{1, 1, 1};
  bool resampled = false;
};

// Below this localisation confidence the automatic slice choice is flagged: several similar
// bright regions compete (two equal lesions give 0.5) or the lesion is under 1 mL.
inline constexpr double kLowLocalisationConfidence = 0.5;
// Slices thicker than this (mm) are flagged thick_slices.
inline constexpr double kThickSliceMm = 2.0;

// A sequence's window intensities (after normalisation, as the model saw them) against the
// training patients' (prep::IntensityProfile): flagged intensity_out_of_range beyond
// kIntensityMargin x the most atypical training patient's distance + kIntensitySlack.
inline constexpr double kIntensityMargin = 1.5, kIntensitySlack = 0.01;
struct IntensityCheck {
  bool checked = false;  // false for bundles without a training profile
  double distance = 0;   // prep::histogram_distance to the training mean
  double training_max = 0, training_p95 = 0;
};

// Machine-readable reasons the input may lie outside what the models were trained on.
struct Quality {
  // "not_skull_stripped", "thick_slices", "registration_poor", "low_localisation_confidence",
  // "intensity_out_of_range"
  std::vector<std::string> flags;
  std::string summary;  // one plain-language line ("" without flags)
};

struct PatientPrediction {
  std::string id;
  io::Grade true_grade = io::Grade::kUnknown;  // from the cohort, when known
  io::Case inputs;
  int size = 224;
  SliceChoice choice = SliceChoice::kAuto;
  int centre_z = 0, z_start = 0, slices = 0, depth = 0;  // on grid.size (1 mm by default)
  PredictGrid grid;
  fs::path brain_mask;    // PredictOptions::brain_mask, if one was applied
  SkullStripCheck skull;  // after the brain mask, if any
  Quality quality;
  TumourLocation location;  // choice == kAuto only
  // choice == kSegmentation only: the label map (BraTS labels on the FLAIR grid as read, shared so
  // that copies of the prediction stay cheap; write_patient_outputs writes it as labels.nii.gz),
  // the volumes and the segmentation's wall time.
  std::shared_ptr<const io::Volume> segmentation;
  segment::TumourVolumes volumes;
  double segmentation_seconds = 0;
  fs::path segmentation_model;
  std::vector<std::string> notices;             // e.g. resampling
  std::array<SequenceAlignment, 2> alignment;   // T1, T2 onto FLAIR
  std::array<IntensityCheck, 3> intensity;      // T1, T2, FLAIR
  std::array<SequencePrediction, 3> sequences;  // T1, T2, FLAIR
  int vote_hard = 0;  // 1 HGG: at least 2 of 3 sequences have P(HGG) >= 0.5 (the paper's vote)
  double vote_hard_score = 0;             // fraction of HGG votes
  double vote_soft = 0;                   // mean of the three P(HGG)
  io::Grade grade = io::Grade::kUnknown;  // from the hard vote
};

// A bundle loaded once for many patients, its models on `device` (as --device: cpu, cuda,
// cuda:N, auto). Throws kBadInput naming model.json or the weights file for: another format
// version, an unknown variant, a missing sequence, wrong weights; one line for a CUDA device on a
// libtorch without CUDA.
class Predictor {
 public:
  explicit Predictor(const fs::path& bundle_dir, const std::string& device = "cpu");
  ~Predictor();
  Predictor(const Predictor&) = delete;
  Predictor& operator=(const Predictor&) = delete;

  PatientPrediction predict(const io::Case& patient, const PredictOptions& options) const;
  const train::BundleInfo& bundle() const;
  const fs::path& bundle_dir() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The patient's JSON (pretty-printed): id, grade and both votes, P(HGG) per sequence and per
// slice, the slices and how they were chosen, inputs, notices, bundle, "research use only".
std::string prediction_json(const PatientPrediction& p, const fs::path& bundle_dir);
// One-page PNG: the three sequences at the centre slice with Grad-CAM overlays, P(HGG) per
// sequence, the votes, the verdict, the slice choice and a "research use only" line. Atomic.
void write_summary_png(const PatientPrediction& p, const fs::path& png);
// Two panels: the centre FLAIR slice with the edges of the registered T1, and of T2, on it (what
// the model saw), to check the co-registration by eye. Atomic.
void write_registration_png(const PatientPrediction& p, const fs::path& png);
// <dir>/prediction.json, summary.png and gradcam_<seq>.png (without grad_cam: no gradcam files),
// registration.png when a sequence was registered, and labels.nii.gz when it was segmented.
void write_patient_outputs(const PatientPrediction& p, const fs::path& bundle_dir,
                           const fs::path& dir);
// id,true_grade,grade,vote_hard_score,vote_soft,p_t1,p_t2,p_flair,slice_choice,centre_z,confidence
std::string predictions_csv(const std::vector<PatientPrediction>& predictions);
// The patient id of a single-patient prediction from its FLAIR file name
// ("BraTS19_x_flair.nii.gz" -> "BraTS19_x"; "scan.nii" -> "scan").
std::string id_from_path(const fs::path& flair);

// `gliomagrade export`: each sequence model as a TorchScript module (out_dir/<seq>.pt) loadable
// by plain libtorch (torch::jit::load) or PyTorch (torch.jit.load), plus out_dir/export.json.
// Each module holds the trained tensors as attributes and the GoogLeNet graph as TorchScript
// source (eval mode: no dropout, BatchNorm running statistics), including the input convention:
//   forward(x)  x: [N,3,H,W] float RGB (grey replicated) in [0,1] -> P(HGG) [N]  (softmax[:,1])
//   logits(x)   same input -> logits [N,2] (class 0 LGG, 1 HGG)
// Slices must be prepared as predict does (export.json "preprocessing"). out_dir is staged:
// absent or empty before, complete or absent after. Throws as Predictor does for the bundle,
// kBadInput when out_dir exists and is not empty. `device`: where the modules' tensors are
// saved (torch.jit.load puts them there unless told otherwise: map_location).
// With `frozen`, each module is torch::jit::freeze'd before it is written (forward and logits
// kept): the weights become constants and BatchNorm is folded into the convolutions (torchvision),
// as model::FrozenNet does. The oneDNN pre-packing FrozenNet adds cannot be written: libtorch
// 1.13 saves a torch::jit::optimize_for_inference'd module but cannot load it back ("required
// keyword attribute 'value' is undefined"), so a consumer calls optimize_for_inference after
// loading.
struct ExportedModel {
  std::string sequence;
  fs::path file;
};
std::vector<ExportedModel> export_torchscript(const fs::path& bundle_dir, const fs::path& out_dir,
                                              const std::string& device = "cpu",
                                              bool frozen = false);

}  // namespace gg::infer
