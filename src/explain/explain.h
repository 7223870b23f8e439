// explain: one trained sequence model loaded for inference, and Grad-CAM heatmaps of it.
//
// Grad-CAM (Selvaraju et al., ICCV 2017): for a target class c, the weights of the last
// inception block's 1024 feature maps A_k (inception 5b, 7×7 at 224×224) are the spatial means
// of d logit_c / d A_k; the map is ReLU(sum_k w_k A_k), upsampled bilinearly to the input size
// and divided by its maximum (so it lies in [0, 1]; all zero when nothing supports class c).
//
// Slices are what the slice store holds: uint8 size×size grey, row-major (rows anterior→posterior,
// columns patient right→left). The model sees them exactly as train::predict_items feeds them:
// /255, grey replicated to 3 channels, the variant's normalise_input, channels-last, eval mode.
// The header is torch-free: torch lives in explain/*.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/data.h"
#include "prep/prep.h"

namespace gg::explain {

namespace fs = std::filesystem;

inline constexpr int kHgg = 1, kLgg = 0;  // class indices (model.json "classes": LGG, HGG)

struct Heatmap {
  int size = 0;
  std::vector<float> values;  // size×size, row-major, in [0, 1]
  int target_class = kHgg;    // the class whose logit was explained
  double p_hgg = 0;           // the model's P(HGG) for the slice
  int grid = 0;               // side of the explained block's feature map (7 at 224×224)
};

// One sequence model of a bundle (a <seq>.pt written by model::save_weights), in eval mode.
// Not thread-safe: use one SliceModel per thread.
class SliceModel {
 public:
  // Throws gg::Error (kBadInput) naming `weights` when the file is missing, truncated, of
  // another architecture, or not a 2-class GoogLeNet of `variant` ("bvlc" / "torchvision").
  // `device`: as --device (model::resolve_device); results are always returned on the host.
  SliceModel(const fs::path& weights, const std::string& variant,
             const std::string& device = "cpu");
  ~SliceModel();
  SliceModel(SliceModel&&) noexcept;
  SliceModel& operator=(SliceModel&&) noexcept;

  // P(HGG) of n slices stored back to back (n·size·size bytes), batched, without gradients.
  std::vector<double> predict(const uint8_t* slices, int64_t n, int size,
                              int batch_size = 32) const;

  // Grad-CAM of one slice. target_class: kHgg, kLgg, or -1 for the class the model predicts.
  // The reference computation: full autograd from the class logit back to the last block.
  Heatmap grad_cam(const uint8_t* slice, int size, int target_class = -1) const;

  // predict() plus the Grad-CAM of slice `cam_index` (0..n-1) of the same batch, from the same
  // forward pass: only the head (average pool + fc) is differentiated again, which gives exactly
  // grad_cam()'s d logit / d last block (the block's output is all the head sees). About 3×
  // cheaper than predict() followed by grad_cam().
  std::vector<double> predict_with_cam(const uint8_t* slices, int64_t n, int size,
                                       int64_t cam_index, Heatmap* cam, int target_class = -1,
                                       int batch_size = 32) const;

  const fs::path& weights_path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Every sequence model of a bundle directory, in model.json's order. Throws as
// train::read_bundle_info and SliceModel do.
struct BundleModels {
  std::vector<io::Sequence> sequences;
  std::vector<SliceModel> models;
};
BundleModels load_bundle_models(const fs::path& bundle_dir, const std::string& device = "cpu");

// The heatmap over the slice: JET colours blended onto the grey image with per-pixel opacity
// alpha·heat (cold regions show the plain MR slice). Returns BGR bytes, size×size×3.
std::vector<uint8_t> overlay_bgr(const uint8_t* slice, const Heatmap& heat, double alpha = 0.5);

// Writes overlay_bgr as a PNG with a caption strip on top (atomic). Throws kRuntime if it
// cannot be written.
void write_overlay_png(const fs::path& png, const uint8_t* slice, const Heatmap& heat,
                       const std::string& caption, double alpha = 0.5);

// Fraction of the heatmap's total mass that lies where inside[i] != 0 (size×size). NaN when the
// heatmap is all zero.
double mass_inside(const Heatmap& heat, const std::vector<uint8_t>& inside);

// How a heatmap sits on the tumour of its slice, with the two reference points that make its
// mass fraction readable: a uniform map scores the tumour's share of the slice (chance), and a
// map that follows the tumour at Grad-CAM's resolution (each grid cell valued by its tumour share,
// upsampled as Grad-CAM is) scores `tracking_map_mass`: below 1 from the grid's coarseness alone,
// and near 0.5 for a tumour of a few percent of the slice on a 7×7 grid.
struct TumourOverlap {
  double mass_inside = std::numeric_limits<double>::quiet_NaN();  // NaN: heatmap all zero
  double tumour_share = 0;  // fraction of the slice's pixels that are tumour
  double tracking_map_mass = std::numeric_limits<double>::quiet_NaN();  // NaN: no tumour
  bool peak_inside = false;  // the heatmap's maximum lies on a tumour pixel ("pointing game")
  double peak_distance_px = std::numeric_limits<double>::quiet_NaN();  // to the nearest tumour px
};

// `tumour`: size×size, non-zero inside. Throws std::invalid_argument when the sizes differ or the
// heatmap has no grid (heat.grid < 1).
TumourOverlap tumour_overlap(const Heatmap& heat, const std::vector<uint8_t>& tumour);

// For the run report: Grad-CAM overlays of the bundle's three sequence models for up to n
// patients of `part` (alternating HGG and LGG, by id), each on the patient's middle window slice
// (rank slices/2, the largest-tumour slice unless the window was shifted at the volume's edge).
// Writes out_dir/gradcam_<patient>.png (T1 | T2 | FLAIR side by side) and returns
// (caption, png path) pairs, the caption naming patient, true grade and each P(HGG).
// Throws as train::read_bundle_info and SliceModel do.
std::vector<std::pair<std::string, fs::path>> explain_examples(const fs::path& bundle_dir,
                                                               const prep::SliceStore& store,
                                                               const data::Split& split,
                                                               data::Part part,
                                                               const fs::path& out_dir, int n);

// Grad-CAM scored against the tumour for every patient of `part` whose mask is in `masks`
// (patient id -> mask file on the patient's FLAIR grid): each sequence model's heatmap of the
// patient's largest-tumour slice (the mask's z*, which must be one of the store's slices). Only
// slices of `part` are scored: when z* is in another part (the image split spreads a patient over
// several), the patient's slice of `part` nearest to z* is used (z != z_largest in the row).
struct LocalisationRow {
  std::string patient;
  io::Grade grade = io::Grade::kUnknown;
  io::Sequence sequence = io::Sequence::kT1;
  int z = -1;          // the scored axial slice
  int z_largest = -1;  // the mask's largest-tumour slice (== z unless it is in another part)
  double p_hgg = 0;
  int explained_class = kHgg;  // the predicted class: the heatmap shows evidence for it
  TumourOverlap overlap;
  // P(HGG) of the same slice with the tumour blanked out (its pixels set to the median of the
  // slice's other tissue, pixels >= 10): near the LGG side when the evidence is in the tumour,
  // still high when the model reads HGG from outside the mask (mass effect, oedema beyond it).
  double p_hgg_tumour_blanked = 0;
  bool correct() const { return explained_class == (grade == io::Grade::kHGG ? kHgg : kLgg); }
};
// Throws as read_bundle_info, SliceModel and io::read_volume do (a mask that cannot be read is a
// kBadInput naming it), and kBadInput naming the mask when its z* is none of the store's slices
// of the patient (a mask the store was not prepared from).
std::vector<LocalisationRow> heatmap_localisation(const fs::path& bundle_dir,
                                                  const prep::SliceStore& store,
                                                  const data::Split& split, data::Part part,
                                                  const std::map<std::string, fs::path>& masks);

// One row per sequence over the correctly graded cases: count, mean mass inside the tumour beside
// its chance and tumour-tracking references, how often the peak lies in the tumour, and how many
// HGG calls survive blanking the tumour; with a paragraph on how to read it. Markdown; "" when
// there are no rows.
std::string localisation_markdown(const std::vector<LocalisationRow>& rows);
// One line per row (patient, grade, sequence, p_hgg, explained class, the TumourOverlap fields).
std::string localisation_csv(const std::vector<LocalisationRow>& rows);

}  // namespace gg::explain
