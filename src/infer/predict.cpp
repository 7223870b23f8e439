// Predictor: one bundle, many patients.
#include <fmt/format.h>

#include <algorithm>
#include <future>
#include <numeric>

#include "common/error.h"
#include "eval/eval.h"
#include "explain/explain.h"
#include "infer/infer.h"
#include "model/model.h"
#include "prep/prep.h"

namespace gg::infer {

struct Predictor::Impl {
  fs::path dir;
  train::BundleInfo info;
  std::vector<explain::SliceModel> models;  // T1, T2, FLAIR
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

}  // namespace

Predictor::Predictor(const fs::path& bundle_dir) : impl_(std::make_unique<Impl>()) {
  impl_->dir = bundle_dir;
  impl_->info = train::read_bundle_info(bundle_dir);
  const fs::path json = bundle_dir / "model.json";
  try {
    model::parse_variant(impl_->info.variant);
  } catch (const Error& e) {
    rethrow_for(
        Error(e.code(), "", e.problem(), "use a bundle written by this version of gliomagrade"),
        json);
  }
  for (io::Sequence seq : io::kSequences) {
    const std::string name = io::sequence_name(seq);
    if (std::find(impl_->info.sequences.begin(), impl_->info.sequences.end(), name) ==
        impl_->info.sequences.end())
      throw_bad_input(json.string(),
                      "the bundle has no " + name + " model (it lists " +
                          fmt::format("{}", fmt::join(impl_->info.sequences, ", ")) + ")",
                      "train all three sequences (gliomagrade train --sequences t1,t2,flair)");
    impl_->models.emplace_back(bundle_dir / (name + ".pt"), impl_->info.variant);
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
  const io::Volume flair = io::read_volume(c.flair, o.series[2]);
  io::check_intensities(flair, c.flair);
  p.depth = flair.size[2];
  std::array<io::Volume, 3> volumes;
  volumes[2] = flair;
  volumes[0] =
      onto_grid(t1_read.get(), c.t1, flair, c.flair, io::Interpolation::kLinear, p.notices);
  io::check_intensities(volumes[0], c.t1);
  volumes[1] =
      onto_grid(t2_read.get(), c.t2, flair, c.flair, io::Interpolation::kLinear, p.notices);
  io::check_intensities(volumes[1], c.t2);

  // The centre slice: --slice, else the mask, else automatic localisation.
  std::vector<uint8_t> tumour_at_centre;  // with a mask: tumour pixels of the centre slice
  if (o.slice >= 0) {
    if (o.slice >= p.depth)
      throw_bad_input(c.flair.string(),
                      fmt::format("--slice {} is outside the volume (axial slices 0..{})", o.slice,
                                  p.depth - 1),
                      "give an axial slice index within the FLAIR volume");
    p.choice = SliceChoice::kUser, p.centre_z = o.slice;
  } else if (o.use_mask && !c.seg.empty()) {
    io::Volume seg = io::read_volume(c.seg, o.series[3]);
    if (!io::same_grid(seg, flair)) {
      if (!o.resample_mask)
        throw_bad_input(
            c.seg.string(),
            "mask is not on the FLAIR grid (" + io::describe_grid_difference(seg, flair) + ")",
            "give the mask drawn on this FLAIR volume, or pass --resample-mask to resample it "
            "(nearest neighbour)");
      seg =
          onto_grid(std::move(seg), c.seg, flair, c.flair, io::Interpolation::kNearest, p.notices);
    }
    io::check_mask(seg, c.seg);
    p.choice = SliceChoice::kMask, p.centre_z = prep::largest_tumour_slice(seg);
    tumour_at_centre = prep::tumour_slice_mask(std::move(seg), p.centre_z, p.size);
  } else {
    p.location = locate_tumour(flair, c.flair);
    p.choice = SliceChoice::kAuto, p.centre_z = p.location.centre_z;
  }
  try {
    p.z_start = prep::window_start(p.centre_z, info.slices, p.depth);
  } catch (const Error& e) {
    rethrow_for(e, c.flair);
  }
  p.slices = info.slices;

  const size_t slice_bytes = size_t(p.size) * size_t(p.size);
  std::vector<uint8_t> window(slice_bytes * size_t(p.slices));
  for (io::Sequence seq : io::kSequences) {
    const fs::path& path = c.sequence_path(seq);
    io::Volume normalised;
    try {
      normalised = prep::normalise_intensities(volumes[size_t(seq)], info.low_percentile,
                                               info.high_percentile);
    } catch (const Error& e) {
      rethrow_for(e, path);
    }
    volumes[size_t(seq)] = io::Volume{};  // free as we go
    for (int k = 0; k < p.slices; ++k) {
      const auto slice = prep::axial_slice_u8(normalised, p.z_start + k, p.size);
      std::copy(slice.begin(), slice.end(), window.begin() + long(slice_bytes) * k);
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
  const std::array<double, 3> probs{p.sequences[0].p_hgg, p.sequences[1].p_hgg,
                                    p.sequences[2].p_hgg};
  p.vote_hard = eval::hard_vote(probs);
  p.vote_hard_score = eval::hard_vote_score(probs);
  p.vote_soft = eval::soft_vote(probs);
  p.grade = p.vote_hard == 1 ? io::Grade::kHGG : io::Grade::kLGG;
  return p;
}

const char* slice_choice_name(SliceChoice c) {
  switch (c) {
    case SliceChoice::kUser:
      return "user (--slice)";
    case SliceChoice::kMask:
      return "mask";
    case SliceChoice::kAuto:
      return "auto";
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
