// Predictor: one bundle, many patients.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <future>
#include <numeric>

#include "common/error.h"
#include "eval/eval.h"
#include "explain/explain.h"
#include "infer/infer.h"
#include "io/background.h"
#include "io/mask.h"
#include "model/model.h"
#include "prep/prep.h"

namespace gg::infer {

struct Predictor::Impl {
  fs::path dir;
  train::BundleInfo info;
  std::vector<explain::SliceModel> models;         // T1, T2, FLAIR
  std::optional<prep::DataProfile> training_data;  // model.json "training_data", if recorded
};

namespace {

// prep throws some errors without a file: give them the file they are about.
[[noreturn]] void rethrow_for(const Error& e, const fs::path& path) {
  throw Error(e.code(), e.file().empty() ? path.string() : e.file(), e.problem(), e.fix());
}

// Brings a sequence read from `path` onto the FLAIR grid if it is not on it already.
io::Volume onto_grid(io::Volume v, const fs::path& path, const io::Volume& flair,
                     const fs::path& flair_path, io::Interpolation interpolation,
                     std::vector<std::string>& notices) {
  if (io::same_grid(v, flair)) return v;
  const std::string difference = io::describe_grid_difference(v, flair);
  v = io::resample_to_grid(v, flair, interpolation, path, flair_path);
  notices.push_back(
      fmt::format("{} was not on the FLAIR grid ({}): resampled into it in physical space ({}, no "
                  "registration)",
                  path.filename().string(), difference,
                  interpolation == io::Interpolation::kLinear ? "linear" : "nearest neighbour"));
  return v;
}

// Brings T1 or T2 onto the FLAIR grid: as is when already on it (co-registered, as BraTS is),
// else registered rigidly to FLAIR and resampled through the transform, or (without
// registration) resampled in physical space. Measures the head overlap with FLAIR either way.
io::Volume align_to_flair(io::Volume v, const fs::path& path, const io::Volume& flair,
                          const fs::path& flair_path, const PredictOptions& o,
                          SequenceAlignment& alignment, std::vector<std::string>& notices) {
  using Method = SequenceAlignment::Method;
  if (io::same_grid(v, flair)) {
    alignment.method = Method::kSameGrid;
  } else if (!o.register_sequences) {
    alignment.method = Method::kPhysicalSpace;
    v = onto_grid(std::move(v), path, flair, flair_path, io::Interpolation::kLinear, notices);
  } else {
    alignment.method = Method::kRegistered;
    io::check_intensities(v, path);
    const std::string difference = io::describe_grid_difference(v, flair);
    registration::RegistrationResult r;
    try {
      r = registration::register_rigid(flair, v, o.registration);
    } catch (const Error& e) {
      rethrow_for(e, path);
    }
    v = registration::resample_rigid(v, flair, r.transform, io::Interpolation::kLinear);
    const auto& t = r.transform.translation_mm;
    notices.push_back(fmt::format(
        "{} was not on the FLAIR grid ({}): registered rigidly to FLAIR (Mattes mutual "
        "information, {:.1f} s; rotation {:.2f} deg, translation {:.1f} mm; head overlap Dice "
        "{:.3f} -> {:.3f}) and resampled into it (linear)",
        path.filename().string(), difference, r.seconds, r.transform.angle_deg(),
        std::sqrt(t[0] * t[0] + t[1] * t[1] + t[2] * t[2]), r.dice_before, r.dice_after));
    alignment.registration = std::move(r);
  }
  alignment.dice =
      registration::dice(registration::foreground_mask(flair), registration::foreground_mask(v));
  return v;
}

// A grid in `v`'s frame (same direction) with voxels of `spacing`. Through-plane (z) it covers
// v's physical box (voxel edges kept: the first new voxel centre lies half a new voxel inside the
// box). In-plane, with fov_mm[a] > 0, it spans fov_mm[a] centred on v's foreground (the head), as
// the training volumes' slices did; else v's box.
io::Volume training_grid(const io::Volume& v, const std::array<double, 3>& spacing,
                         const std::array<double, 3>& fov_mm) {
  const std::vector<uint8_t> head = registration::foreground_mask(v);
  std::array<int, 3> lo = v.size, hi{-1, -1, -1};
  for (int z = 0; z < v.size[2]; ++z)
    for (int y = 0; y < v.size[1]; ++y)
      for (int x = 0; x < v.size[0]; ++x)
        if (head[size_t(x) + size_t(v.size[0]) * (size_t(y) + size_t(v.size[1]) * size_t(z))]) {
          const int i[3] = {x, y, z};
          for (int a = 0; a < 3; ++a) lo[a] = std::min(lo[a], i[a]), hi[a] = std::max(hi[a], i[a]);
        }
  io::Volume g;
  g.direction = v.direction;
  g.spacing_mm = spacing;
  std::array<double, 3> offset{};  // of the first voxel centre from v's origin, along v's axes
  for (int a = 0; a < 3; ++a) {
    if (a < 2 && fov_mm[a] > 0 && hi[a] >= 0) {
      g.size[a] = std::max(1, int(std::lround(fov_mm[a] / spacing[a])));
      const double centre = 0.5 * (lo[a] + hi[a]) * v.spacing_mm[a];
      offset[a] = centre - 0.5 * (g.size[a] - 1) * spacing[a];
    } else {
      g.size[a] = std::max(1, int(std::lround(v.size[a] * v.spacing_mm[a] / spacing[a])));
      offset[a] = -0.5 * v.spacing_mm[a] + 0.5 * spacing[a];
    }
  }
  for (int r = 0; r < 3; ++r) {
    g.origin_mm[r] = v.origin_mm[r];
    for (int c = 0; c < 3; ++c) g.origin_mm[r] += v.direction[r * 3 + c] * offset[c];
  }
  return g;
}

// The axial index on `g` (training_grid of v) nearest to v's slice z.
int slice_on_grid(int z, const io::Volume& v, const io::Volume& g) {
  const double mm = z * v.spacing_mm[2] - (-0.5 * v.spacing_mm[2] + 0.5 * g.spacing_mm[2]);
  return std::clamp(int(std::lround(mm / g.spacing_mm[2])), 0, g.size[2] - 1);
}

std::string mm_triple(const std::array<double, 3>& t) {
  return fmt::format("{:g}x{:g}x{:g} mm", t[0], t[1], t[2]);
}

// DeepMedic on the working grid (`flair`, the training grid: BraTS space): T1ce is read and
// brought onto the FLAIR grid as read (`input_flair`) as T1 and T2 were (registered if on another
// grid), then onto the working grid, and set to its background outside the brain mask, if any, as
// they were. Records the labels, volumes and model in `p`; returns the label map, or nothing (with
// a notice) when no tumour was found, so that the heuristic takes over.
std::optional<io::Volume> segment_for_window(const io::Case& c, const io::Volume& input_flair,
                                             const io::Volume& flair, const io::Volume& t1,
                                             const io::Volume& t2, const PredictOptions& o,
                                             PatientPrediction& p) {
  SequenceAlignment t1ce_alignment;
  io::Volume t1ce = align_to_flair(io::read_volume(c.t1ce), c.t1ce, input_flair, c.flair, o,
                                   t1ce_alignment, p.notices);
  io::check_intensities(t1ce, c.t1ce);
  if (!io::same_grid(t1ce, flair))
    t1ce = io::resample_to_grid(t1ce, flair, io::Interpolation::kLinear, c.t1ce, c.flair);
  if (!o.brain_mask.empty()) {
    // T1 and T2 carry the brain mask already: its outside is where their background is.
    const io::Background outside = io::find_background(t1);
    const float fill = std::min(0.0f, *std::min_element(t1ce.voxels.begin(), t1ce.voxels.end()));
    for (size_t i = 0; i < t1ce.voxels.size(); ++i)
      if (outside.is_background(i)) t1ce.voxels[i] = fill;
  }
  const fs::path model = segment::find_deepmedic_model(o.deepmedic_model);
  const auto start = std::chrono::steady_clock::now();
  segment::Segmentation s = segment::segment_brats(model, t1, t1ce, t2, flair, o.segmentation);
  p.segmentation_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  p.segmentation_model = model;
  p.volumes = segment::tumour_volumes(s.labels, flair.spacing_mm);
  if (p.volumes.whole_ml <= 0) {
    p.notices.push_back(
        "DeepMedic found no tumour in this patient: the window was located by the FLAIR "
        "heuristic instead");
    return std::nullopt;
  }
  io::Volume labels;
  labels.size = flair.size, labels.spacing_mm = flair.spacing_mm;
  labels.origin_mm = flair.origin_mm, labels.direction = flair.direction;
  labels.voxels.assign(s.labels.begin(), s.labels.end());
  p.segmentation = std::make_shared<const io::Volume>(labels);
  p.notices.push_back(fmt::format(
      "tumour segmented by DeepMedic (CaPTk's BraTS model, trained on high-grade gliomas; "
      "research use only) in {:.0f} s: whole tumour {:.1f} mL, core {:.1f} mL, enhancing {:.1f} "
      "mL; the window is centred on its largest whole-tumour slice",
      p.segmentation_seconds, p.volumes.whole_ml, p.volumes.core_ml, p.volumes.enhancing_ml));
  return labels;
}

}  // namespace

Predictor::Predictor(const fs::path& bundle_dir, const std::string& device)
    : impl_(std::make_unique<Impl>()) {
  impl_->dir = bundle_dir;
  impl_->info = train::read_bundle_info(bundle_dir);
  const fs::path json = train::BundlePaths{bundle_dir}.info();
  try {
    model::parse_variant(impl_->info.variant);
  } catch (const Error& e) {
    rethrow_for(
        Error(e.code(), "", e.problem(), "use a bundle written by this version of gliomagrade"),
        json);
  }
  if (!impl_->info.training_data_json.empty())
    impl_->training_data =
        prep::data_profile_from_json(impl_->info.training_data_json, json.string());
  for (io::Sequence seq : io::kSequences) {
    const std::string name = io::sequence_name(seq);
    if (std::find(impl_->info.sequences.begin(), impl_->info.sequences.end(), name) ==
        impl_->info.sequences.end())
      throw_bad_input(json.string(),
                      "the bundle has no " + name + " model (it lists " +
                          fmt::format("{}", fmt::join(impl_->info.sequences, ", ")) + ")",
                      "train all three sequences (gliomagrade train --sequences t1,t2,flair)");
    impl_->models.emplace_back(train::BundlePaths{bundle_dir}.weights(name), impl_->info.variant,
                               device);
  }
  if (impl_->info.input_size < 32 || impl_->info.slices < 1)
    throw_bad_input(json.string(), "input size or slice count out of range",
                    "use a bundle written by gliomagrade");
}

Predictor::~Predictor() = default;
const train::BundleInfo& Predictor::bundle() const { return impl_->info; }
const fs::path& Predictor::bundle_dir() const { return impl_->dir; }

PatientPrediction Predictor::predict(const io::Case& c, const PredictOptions& o) const {
  const train::BundleInfo& info = impl_->info;
  PatientPrediction p;
  p.id = c.id;
  p.true_grade = c.grade;
  p.inputs = c;
  p.size = info.input_size;

  // The three volumes are read concurrently (decompression dominates); errors surface in the
  // order FLAIR, T1, T2.
  auto read = [](const fs::path& path, const io::VolumeReadOptions& series) {
    return io::read_volume(path, series);
  };
  auto t1_read = std::async(std::launch::async, read, c.t1, o.series[0]);
  auto t2_read = std::async(std::launch::async, read, c.t2, o.series[1]);
  io::Volume flair = io::read_volume(c.flair, o.series[2]);
  io::check_intensities(flair, c.flair);
  p.grid.input_size = p.grid.size = flair.size;
  p.grid.input_spacing_mm = p.grid.spacing_mm = flair.spacing_mm;
  const int input_depth = flair.size[2];
  std::array<io::Volume, 3> volumes;
  // T1 and T2 are aligned at once (a registration runs serially: registration.h); their notices
  // and errors keep the order T1, T2.
  std::array<std::vector<std::string>, 2> align_notices;
  io::Volume t1 = t1_read.get();
  auto t1_aligned = std::async(std::launch::async, [&] {
    return align_to_flair(std::move(t1), c.t1, flair, c.flair, o, p.alignment[0], align_notices[0]);
  });
  io::Volume t2;
  std::exception_ptr t2_error;
  try {
    t2 = align_to_flair(t2_read.get(), c.t2, flair, c.flair, o, p.alignment[1], align_notices[1]);
  } catch (...) {
    t2_error = std::current_exception();
  }
  volumes[0] = t1_aligned.get();
  io::check_intensities(volumes[0], c.t1);
  if (t2_error) std::rethrow_exception(t2_error);
  volumes[1] = std::move(t2);
  io::check_intensities(volumes[1], c.t2);
  for (auto& notices : align_notices)
    p.notices.insert(p.notices.end(), notices.begin(), notices.end());
  if (o.slice >= input_depth)
    throw_bad_input(c.flair.string(),
                    fmt::format("--slice {} is outside the volume (axial slices 0..{})", o.slice,
                                input_depth - 1),
                    "give an axial slice index within the FLAIR volume");

  // Skull-stripping: a given brain mask is applied as BraTS did (0 outside the brain, or the
  // volume's minimum when it has values below 0, so that the background stays below every brain
  // voxel); without one, input that still holds skull and scalp is flagged below.
  if (!o.brain_mask.empty()) {
    io::Volume mask = io::read_volume(o.brain_mask);
    mask = onto_grid(std::move(mask), o.brain_mask, flair, c.flair, io::Interpolation::kNearest,
                     p.notices);
    const io::Background flair_background = io::find_background(flair);
    int64_t brain = 0, brain_in_background = 0;
    for (size_t i = 0; i < mask.voxels.size(); ++i)
      if (mask.voxels[i] > 0) ++brain, brain_in_background += flair_background.is_background(i);
    if (brain == 0)
      throw_bad_input(o.brain_mask.string(), "the brain mask is empty on the FLAIR grid",
                      "give the brain mask made from this patient's FLAIR (voxels > 0 = brain)");
    // A brain mask lies on the head: one that mostly covers empty background belongs to
    // another scan (or was stored with a wrong header).
    if (double(brain_in_background) > 0.2 * double(brain))
      throw_bad_input(
          o.brain_mask.string(),
          fmt::format("{:.0f}% of the brain mask lies on FLAIR's empty background: it does not "
                      "match this scan",
                      100.0 * double(brain_in_background) / double(brain)),
          "give the brain mask made from this patient's FLAIR");
    for (io::Volume* v : {&flair, &volumes[0], &volumes[1]}) {
      const float outside = std::min(0.0f, *std::min_element(v->voxels.begin(), v->voxels.end()));
      for (size_t i = 0; i < mask.voxels.size(); ++i)
        if (!(mask.voxels[i] > 0)) v->voxels[i] = outside;
    }
    p.notices.push_back(fmt::format(
        "brain mask {} applied: {:.0f} mL of brain kept, everything outside set to the background",
        o.brain_mask.filename().string(),
        double(brain) * flair.spacing_mm[0] * flair.spacing_mm[1] * flair.spacing_mm[2] / 1000));
  }
  p.brain_mask = o.brain_mask;
  p.skull = check_skull_stripped(flair);
  const bool has_mask = o.use_mask && !c.seg.empty();
  if (o.slice < 0 && !has_mask && o.locate == Locate::kDeepMedic && c.t1ce.empty())
    throw_bad_input(c.flair.string(), "--locate deepmedic needs the patient's T1ce",
                    "give --t1ce (or a t1ce column / BraTS _t1ce file), or --locate heuristic");

  // The models saw their training grid (BraTS: 1 mm, 240 mm across): on a coarser or finer grid
  // the window of slices would span another depth of brain, and another field of view would show
  // the brain larger or smaller in the 224 px slice. So FLAIR's grid is resampled (linear, in its
  // own frame) to the training spacing and in-plane field of view, centred on the head; input on
  // the training grid is left untouched, bit for bit. Bundles without a training profile: 1 mm,
  // FLAIR's field of view.
  // The coarsest axis is the slice direction whatever the acquisition plane.
  const double slice_mm = *std::max_element(flair.spacing_mm.begin(), flair.spacing_mm.end());
  const std::optional<prep::DataProfile>& trained = impl_->training_data;
  const bool trained_grid_known = trained && trained->has_geometry;
  if (slice_mm > kThickSliceMm)
    p.notices.push_back(fmt::format(
        "FLAIR slices are {:g} mm apart (models trained on {:g} mm): detail between slices was "
        "interpolated, not measured, so small or thin lesion parts may be blurred or missed",
        slice_mm, trained_grid_known ? trained->spacing_mm[2] : 1.0));
  const std::array<double, 3> target_spacing =
      trained_grid_known ? trained->spacing_mm : std::array<double, 3>{1, 1, 1};
  const std::array<double, 3> target_fov =
      trained_grid_known ? trained->field_of_view_mm : std::array<double, 3>{0, 0, 0};
  bool resample = false;
  if (o.resample_to_training_grid)
    for (int a = 0; a < 3; ++a) {
      resample =
          resample || std::abs(flair.spacing_mm[a] - target_spacing[a]) > 0.02 * target_spacing[a];
      if (a < 2 && target_fov[a] > 0)
        resample = resample || std::abs(flair.size[a] * flair.spacing_mm[a] - target_fov[a]) >
                                   0.05 * target_fov[a];
    }
  io::Volume original_flair;  // the grid as read, kept for mapping --slice and the mask
  if (resample) {
    const io::Volume grid = training_grid(flair, target_spacing, target_fov);
    p.notices.push_back(fmt::format(
        "FLAIR grid {} ({}x{}x{} voxels) resampled to the training grid {} ({}x{}x{} voxels, "
        "linear, in the FLAIR frame{}) so that the slices and the window show the brain as in "
        "training",
        mm_triple(flair.spacing_mm), flair.size[0], flair.size[1], flair.size[2],
        mm_triple(target_spacing), grid.size[0], grid.size[1], grid.size[2],
        target_fov[0] > 0 ? fmt::format(", {:g}x{:g} mm across, centred on the head", target_fov[0],
                                        target_fov[1])
                          : ""));
    for (size_t k = 0; k < 2; ++k)
      volumes[k] = io::resample_to_grid(volumes[k], grid, io::Interpolation::kLinear,
                                        c.sequence_path(io::kSequences[k]), c.flair);
    original_flair = std::move(flair);
    flair =
        io::resample_to_grid(original_flair, grid, io::Interpolation::kLinear, c.flair, c.flair);
    p.grid.size = flair.size;
    p.grid.spacing_mm = flair.spacing_mm;
    p.grid.resampled = true;
  }
  p.depth = flair.size[2];

  // Without --slice or a mask, a patient with T1ce is segmented (DeepMedic) on the training grid
  // (BraTS space), and the label map stands in for the mask below.
  std::optional<io::Volume> segmented;
  if (o.slice < 0 && !has_mask && o.locate != Locate::kHeuristic && !c.t1ce.empty())
    segmented = segment_for_window(c, resample ? original_flair : flair, flair, volumes[0],
                                   volumes[1], o, p);

  // The centre slice: --slice, else the mask, else the segmentation, else the FLAIR heuristic.
  std::vector<uint8_t> tumour_at_centre;  // with a mask: tumour pixels of the centre slice
  if (o.slice >= 0) {
    // --slice indexes the FLAIR file as given (what the user sees in a viewer).
    p.choice = SliceChoice::kUser;
    p.centre_z = resample ? slice_on_grid(o.slice, original_flair, flair) : o.slice;
  } else if (has_mask) {
    const io::Volume& input_grid = resample ? original_flair : flair;
    io::Volume seg = io::read_volume(c.seg, o.series[3]);
    if (!io::same_grid(seg, input_grid)) {
      if (!o.resample_mask)
        throw_bad_input(
            c.seg.string(),
            "mask is not on the FLAIR grid (" + io::describe_grid_difference(seg, input_grid) + ")",
            "give the mask drawn on this FLAIR volume, or pass --resample-mask to resample it "
            "(nearest neighbour)");
      seg = onto_grid(std::move(seg), c.seg, input_grid, c.flair, io::Interpolation::kNearest,
                      p.notices);
    }
    if (std::string notice = io::read_mask_labels(seg, c.seg); !notice.empty())
      p.notices.push_back(std::move(notice));
    if (resample)
      seg = io::resample_to_grid(seg, flair, io::Interpolation::kNearest, c.seg, c.flair);
    p.choice = SliceChoice::kMask, p.centre_z = prep::largest_tumour_slice(seg);
    tumour_at_centre = prep::tumour_slice_mask(std::move(seg), p.centre_z, p.size);
  } else if (segmented) {
    p.choice = SliceChoice::kSegmentation, p.centre_z = prep::largest_tumour_slice(*segmented);
    tumour_at_centre = prep::tumour_slice_mask(std::move(*segmented), p.centre_z, p.size);
  } else {
    try {
      p.location = locate_tumour(flair, c.flair);
    } catch (const Error& e) {
      // Scalp is as bright as a lesion on FLAIR: say what is wrong with the input first.
      if (p.skull.stripped || e.code() != ExitCode::kBadInput) throw;
      throw_bad_input(c.flair.string(),
                      fmt::format("{} (the volume is not skull-stripped: its head outline holds "
                                  "{:.0f} mL, a brain 1.1-1.7 L)",
                                  e.problem(), p.skull.outline_ml),
                      "give a brain mask with --brain-mask (HD-BET, SynthStrip, FSL BET), or "
                      "--slice Z or --seg");
    }
    p.choice = SliceChoice::kAuto, p.centre_z = p.location.centre_z;
  }
  volumes[2] = std::move(flair);
  original_flair = io::Volume{};

  // Quality: only what can be measured honestly from the input.
  std::vector<std::string> why;
  auto flag = [&](const std::string& name, std::string reason) {
    if (std::find(p.quality.flags.begin(), p.quality.flags.end(), name) == p.quality.flags.end())
      p.quality.flags.push_back(name);
    why.push_back(std::move(reason));
  };
  if (!p.skull.stripped)
    flag("not_skull_stripped",
         fmt::format("not skull-stripped (the head outline holds {:.0f} mL, a brain 1.1-1.7 L): "
                     "give a brain mask with --brain-mask",
                     p.skull.outline_ml));
  // Thick slices lose what the models learnt from, unless they were trained on such slices.
  if (slice_mm > kThickSliceMm &&
      !(trained_grid_known && slice_mm <= 1.25 * trained->max_spacing_mm))
    flag("thick_slices", fmt::format("{:g} mm slices (trained on {:g} mm)", slice_mm,
                                     trained_grid_known ? trained->max_spacing_mm : 1.0));
  for (size_t k = 0; k < 2; ++k)
    if (p.alignment[k].dice < kPoorRegistrationDice)
      flag("registration_poor",
           fmt::format(
               "{}'s head overlaps FLAIR's poorly (Dice {:.2f}, co-registered sequences reach "
               "~0.95): {}",
               io::sequence_name(io::kSequences[k]), p.alignment[k].dice,
               p.alignment[k].method == SequenceAlignment::Method::kRegistered
                   ? "registration failed or the series are of different sessions; check "
                     "registration.png"
                   : "the sequences are not co-registered; register them first (or give them "
                     "on their own grids so that predict registers them)"));
  if (p.choice == SliceChoice::kAuto && p.location.confidence < kLowLocalisationConfidence)
    flag("low_localisation_confidence",
         fmt::format("the tumour was located automatically with low confidence ({:.2f}): check "
                     "the slices or give --slice or --seg",
                     p.location.confidence));
  try {
    p.z_start = prep::window_start(p.centre_z, info.slices, p.depth);
  } catch (const Error& e) {
    if (!p.grid.resampled) rethrow_for(e, c.flair);
    throw_bad_input(c.flair.string(),
                    fmt::format("{} (after resampling FLAIR's {} slices to the training grid's "
                                "{:g} mm: {} slices)",
                                e.problem(), input_depth, p.grid.spacing_mm[2], p.depth),
                    "give a FLAIR that covers the brain, or --keep-grid to grade it on its own "
                    "grid");
  }
  p.slices = info.slices;

  const size_t slice_bytes = size_t(p.size) * size_t(p.size);
  std::vector<uint8_t> window;
  for (io::Sequence seq : io::kSequences) {
    const fs::path& path = c.sequence_path(seq);
    try {
      window = prep::slice_window_u8(volumes[size_t(seq)], p.z_start, p.slices, p.size,
                                     info.low_percentile, info.high_percentile);
    } catch (const Error& e) {
      rethrow_for(e, path);
    }
    volumes[size_t(seq)] = io::Volume{};  // free as we go
    if (trained) {
      IntensityCheck& check = p.intensity[size_t(seq)];
      const prep::IntensityProfile& ip = trained->intensity[size_t(seq)];
      check.distance = prep::histogram_distance(
          prep::intensity_histogram(window.data(), window.size()), ip.histogram);
      check.training_max = ip.max_distance;
      check.training_p95 = ip.p95_distance;
      check.checked = true;
      if (check.distance > kIntensityMargin * ip.max_distance + kIntensitySlack)
        flag("intensity_out_of_range",
             fmt::format("{}'s intensities after normalisation lie outside those of the training "
                         "patients (distance {:.3f}; the most atypical training patient: {:.3f}): "
                         "another contrast, a wrong sequence, or not skull-stripped",
                         io::sequence_name(seq), check.distance, ip.max_distance));
    }
    const explain::SliceModel& net = impl_->models[size_t(seq)];
    SequencePrediction& sp = p.sequences[size_t(seq)];
    sp.sequence = seq;
    const int64_t centre_row = p.centre_z - p.z_start;
    if (o.grad_cam) {
      explain::Heatmap heat;
      sp.p_slices = net.predict_with_cam(window.data(), p.slices, p.size, centre_row, &heat, -1,
                                         o.batch_size);
      if (!tumour_at_centre.empty())
        sp.heatmap_on_tumour = explain::tumour_overlap(heat, tumour_at_centre);
      sp.heatmap = std::move(heat.values);
      sp.heatmap_class = heat.target_class;
    } else {
      sp.p_slices = net.predict(window.data(), p.slices, p.size, o.batch_size);
    }
    sp.p_hgg = std::accumulate(sp.p_slices.begin(), sp.p_slices.end(), 0.0) / double(p.slices);
    const uint8_t* centre = window.data() + slice_bytes * size_t(centre_row);
    sp.centre_slice.assign(centre, centre + slice_bytes);
  }
  if (!why.empty())
    p.quality.summary =
        fmt::format("Input differs from the training data: {}.", fmt::join(why, "; "));
  const std::array<double, 3> probs{p.sequences[0].p_hgg, p.sequences[1].p_hgg,
                                    p.sequences[2].p_hgg};
  p.vote_hard = eval::hard_vote(probs);
  p.vote_hard_score = eval::hard_vote_score(probs);
  p.vote_soft = eval::soft_vote(probs);
  p.grade = p.vote_hard == 1 ? io::Grade::kHGG : io::Grade::kLGG;
  return p;
}

const char* alignment_method_name(SequenceAlignment::Method m) {
  switch (m) {
    case SequenceAlignment::Method::kSameGrid:
      return "same grid";
    case SequenceAlignment::Method::kRegistered:
      return "registered";
    case SequenceAlignment::Method::kPhysicalSpace:
      return "physical space";
  }
  return "";
}

const char* slice_choice_name(SliceChoice c) {
  switch (c) {
    case SliceChoice::kUser:
      return "user (--slice)";
    case SliceChoice::kMask:
      return "mask";
    case SliceChoice::kAuto:
      return "auto";
    case SliceChoice::kSegmentation:
      return "deepmedic";
  }
  return "";
}

const char* localisation_method_name(SliceChoice c) {
  switch (c) {
    case SliceChoice::kUser:
      return "--slice";
    case SliceChoice::kMask:
      return "seg";
    case SliceChoice::kAuto:
      return "heuristic";
    case SliceChoice::kSegmentation:
      return "deepmedic";
  }
  return "";
}

std::string id_from_path(const fs::path& flair) {
  std::string name = flair.filename().string();
  if (name.empty()) name = flair.parent_path().filename().string();  // "P1_flair/" (DICOM)
  for (const char* ext : {".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd"}) {
    const std::string e = ext;
    if (name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0) {
      name.resize(name.size() - e.size());
      break;
    }
  }
  for (const char* suffix : {"_flair", "_FLAIR", "-flair"}) {
    const std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0)
      name.resize(name.size() - s.size());
  }
  return name.empty() ? "patient" : name;
}

}  // namespace gg::infer
