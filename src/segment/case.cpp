// One case from files to outputs: find the model, read and check the four volumes, segment, and
// write the label map and its figures. Shared by `segment` (and, next, `predict`).
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "common/version.h"
#include "prep/prep.h"
#include "segment/segment.h"

namespace gg::segment {

namespace {

bool holds_model(const fs::path& dir) { return fs::exists(dir / "model.ckpt.index"); }

fs::path executable_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

// The axial slice with the most tumour voxels (the first on ties), as prepare takes z*; -1 for
// a map without tumour (prep::largest_tumour_slice refuses those).
int largest_axial_slice(const io::Volume& labels) {
  const auto area = prep::tumour_area_per_slice(labels);
  const auto best = std::max_element(area.begin(), area.end());
  return best == area.end() || *best == 0 ? -1 : int(best - area.begin());
}

io::Volume read_checked(const fs::path& path) {
  io::Volume v = io::read_volume(path);
  io::check_intensities(v, path);
  return v;
}

}  // namespace

fs::path find_deepmedic_model(const fs::path& explicit_dir) {
  const std::string fix =
      "pass --model DIR (the folder with model.ckpt.index, model.ckpt.data-00000-of-00001, "
      "modelConfig.txt and SBIA_license.txt), or set GLIOMAGRADE_DEEPMEDIC";
  if (!explicit_dir.empty()) {
    if (!holds_model(explicit_dir))
      throw_bad_input(explicit_dir.string(), "no DeepMedic model here (no model.ckpt.index)", fix);
    return explicit_dir;
  }
  if (const char* e = std::getenv("GLIOMAGRADE_DEEPMEDIC"); e && *e) {
    if (!holds_model(e))
      throw_bad_input(e, "GLIOMAGRADE_DEEPMEDIC names no DeepMedic model (no model.ckpt.index)",
                      fix);
    return e;
  }
  const fs::path rel = fs::path("shared") / "weights" / "deepmedic-brats-captk";
  std::vector<fs::path> candidates;
  if (const fs::path exe = executable_dir(); !exe.empty()) {
    candidates.push_back(exe.parent_path().parent_path() / rel);  // <repo>/build -> ../shared
    candidates.push_back(exe.parent_path() / rel);
  }
  candidates.push_back(fs::current_path() / ".." / rel);
  for (const auto& c : candidates)
    if (holds_model(c)) return fs::weakly_canonical(c);
  std::string looked;
  for (const auto& c : candidates) looked += "\n  " + c.lexically_normal().string();
  throw_bad_input("deepmedic-brats-captk", "DeepMedic model not found; looked in:" + looked, fix);
}

TumourVolumes tumour_volumes(const std::vector<uint8_t>& labels,
                             const std::array<double, 3>& spacing_mm) {
  size_t n[5] = {0, 0, 0, 0, 0};
  for (uint8_t l : labels)
    if (l < 5) ++n[l];
  const double ml = spacing_mm[0] * spacing_mm[1] * spacing_mm[2] / 1000.0;  // mm^3 -> mL
  TumourVolumes v;
  v.necrosis_ml = double(n[1]) * ml;
  v.oedema_ml = double(n[2]) * ml;
  v.enhancing_ml = double(n[4]) * ml;
  v.core_ml = double(n[1] + n[4]) * ml;
  v.whole_ml = double(n[1] + n[2] + n[4]) * ml;
  return v;
}

CaseSegmentation segment_case(const fs::path& model_dir, const CaseInputs& in,
                              const SegmentOptions& options) {
  io::Volume flair = read_checked(in.flair);
  // One at a time against FLAIR, so the error names the file that differs.
  auto on_flair_grid = [&](const fs::path& path) {
    io::Volume v = read_checked(path);
    if (!io::same_grid(v, flair))
      throw_bad_input(path.string(),
                      fmt::format("is not on FLAIR's grid ({}x{}x{} at {:g}x{:g}x{:g} mm vs "
                                  "{}x{}x{} at {:g}x{:g}x{:g} mm, or another origin/direction)",
                                  v.size[0], v.size[1], v.size[2], v.spacing_mm[0], v.spacing_mm[1],
                                  v.spacing_mm[2], flair.size[0], flair.size[1], flair.size[2],
                                  flair.spacing_mm[0], flair.spacing_mm[1], flair.spacing_mm[2]),
                      "DeepMedic takes the four sequences co-registered on one 1 mm grid, as "
                      "BraTS provides them");
    return v;
  };
  const io::Volume t1 = on_flair_grid(in.t1), t1ce = on_flair_grid(in.t1ce),
                   t2 = on_flair_grid(in.t2);
  CaseSegmentation out;
  try {
    out.raw = segment_brats(model_dir, t1, t1ce, t2, flair, options);
  } catch (const Error& e) {
    if (!e.file().empty()) throw;
    throw Error(e.code(), in.flair.string(), e.problem(), e.fix());
  }
  out.labels = std::move(flair);  // its geometry; the voxels replaced
  out.labels.voxels.assign(out.raw.labels.begin(), out.raw.labels.end());
  out.volumes = tumour_volumes(out.raw.labels, out.labels.spacing_mm);
  out.largest_slice = largest_axial_slice(out.labels);
  return out;
}

void write_case_segmentation(const CaseSegmentation& r, const CaseInputs& in,
                             const fs::path& model_dir, const fs::path& out_dir) {
  fs::create_directories(out_dir);
  io::write_volume(r.labels, out_dir / "labels.nii.gz", /*as_int16=*/true);
  const TumourVolumes& v = r.volumes;
  nlohmann::ordered_json j = {
      {"labels", "labels.nii.gz"},
      {"label_meaning",
       {{"0", "background"},
        {"1", "necrosis / non-enhancing tumour core"},
        {"2", "oedema"},
        {"4", "enhancing tumour"}}},
      {"volumes_ml",
       {{"whole_tumour", v.whole_ml},
        {"tumour_core", v.core_ml},
        {"enhancing", v.enhancing_ml},
        {"necrosis_non_enhancing", v.necrosis_ml},
        {"oedema", v.oedema_ml}}},
      {"largest_whole_tumour_axial_slice", r.largest_slice},
      {"grid",
       {{"size", r.labels.size},
        {"spacing_mm", r.labels.spacing_mm},
        {"orientation", "LPS+ (gliomagrade's canonical orientation)"}}},
      {"inputs",
       {{"t1", in.t1.string()},
        {"t1ce", in.t1ce.string()},
        {"t2", in.t2.string()},
        {"flair", in.flair.string()}}},
      {"model",
       {{"name", "DeepMedic v0.7 (Kamnitsas et al., Med Image Anal 2017), CaPTk 1.9 BraTS model"},
        {"dir", model_dir.string()},
        {"checkpoint_index_sha256", sha256_file(model_dir / "model.ckpt.index")},
        {"licence", "research use only: " + (model_dir / "SBIA_license.txt").string()}}},
      {"tiles", r.raw.tiles},
      {"tiles_skipped_background", r.raw.tiles_skipped},
      {"seconds", {{"preprocess", r.raw.seconds_preprocess}, {"network", r.raw.seconds_network}}},
      {"gliomagrade_version", kVersion}};
  write_file_atomic(out_dir / "segmentation.json", j.dump(2) + "\n");
}

}  // namespace gg::segment
