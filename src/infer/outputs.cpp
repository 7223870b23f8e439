// What predict writes: the patient's JSON, the one-page PNG summary, the cohort CSV.
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <fmt/format.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "common/csv.h"
#include "common/error.h"
#include "common/files.h"
#include "explain/explain.h"
#include "infer/infer.h"

namespace gg::infer {

namespace {

using nlohmann::json;

const char* kResearchOnly =
    "RESEARCH USE ONLY - not a medical device; not for diagnosis or treatment decisions.";

std::string slice_sentence(const PatientPrediction& p) {
  std::string how;
  switch (p.choice) {
    case SliceChoice::kMask:
      how = "the mask's largest tumour slice";
      break;
    case SliceChoice::kUser:
      how = "given with --slice";
      break;
    case SliceChoice::kAuto:
      how = fmt::format("located automatically (FLAIR hyperintensity, confidence {:.2f})",
                        p.location.confidence);
      break;
    case SliceChoice::kSegmentation:
      how = fmt::format("the largest slice of the DeepMedic segmentation (whole tumour {:.1f} mL)",
                        p.volumes.whole_ml);
      break;
  }
  return fmt::format("axial slices {}-{} around z {}: {}", p.z_start, p.z_start + p.slices - 1,
                     p.centre_z, how);
}

explain::Heatmap heatmap_of(const PatientPrediction& p, const SequencePrediction& s) {
  explain::Heatmap h;
  h.size = p.size;
  h.values =
      s.heatmap.empty() ? std::vector<float>(size_t(p.size) * size_t(p.size), 0.0f) : s.heatmap;
  h.target_class = s.heatmap_class;
  h.p_hgg = s.p_hgg;
  return h;
}

void put(cv::Mat& page, const std::string& text, int x, int y, double scale,
         const cv::Scalar& colour, int thickness = 1) {
  cv::putText(page, text, cv::Point(x, y), cv::FONT_HERSHEY_SIMPLEX, scale, colour, thickness,
              cv::LINE_AA);
}

void write_png(const fs::path& png, const cv::Mat& image) {
  std::vector<uint8_t> bytes;
  if (!cv::imencode(".png", image, bytes)) throw_runtime(png.string(), "cannot encode PNG");
  write_file_atomic(png,
                    std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace

std::string prediction_json(const PatientPrediction& p, const fs::path& bundle_dir) {
  json j;
  j["id"] = p.id;
  j["grade"] = io::grade_name(p.grade);
  j["grade_rule"] = "hard majority vote of the T1, T2, FLAIR models (the paper's vote)";
  if (p.true_grade != io::Grade::kUnknown) j["true_grade"] = io::grade_name(p.true_grade);
  j["votes"] = {{"hard",
                 {{"grade", p.vote_hard ? "HGG" : "LGG"},
                  {"hgg_votes", int(std::lround(p.vote_hard_score * 3))},
                  {"score", p.vote_hard_score}}},
                {"soft", {{"grade", p.vote_soft >= 0.5 ? "HGG" : "LGG"}, {"p_hgg", p.vote_soft}}}};
  j["votes_agree"] = (p.vote_soft >= 0.5) == (p.vote_hard == 1);
  json seqs = json::object();
  for (const auto& s : p.sequences) {
    json q = {{"p_hgg", s.p_hgg},
              {"vote", s.p_hgg >= 0.5 ? "HGG" : "LGG"},
              {"p_hgg_per_slice", s.p_slices}};
    if (!s.heatmap.empty())
      q["gradcam"] = {{"file", std::string("gradcam_") + io::sequence_name(s.sequence) + ".png"},
                      {"explains", s.heatmap_class == 1 ? "HGG" : "LGG"},
                      {"slice_z", p.centre_z}};
    if (!s.heatmap.empty() && s.heatmap_on_tumour) {
      // JSON has no NaN: a measure that does not exist (all-zero map, no tumour here) is null.
      const auto number = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
      const explain::TumourOverlap& o = *s.heatmap_on_tumour;
      q["gradcam"]["tumour"] = {{"mass_inside", number(o.mass_inside)},
                                {"chance_mass_inside", o.tumour_share},
                                {"tracking_map_mass_inside", number(o.tracking_map_mass)},
                                {"peak_inside", o.peak_inside},
                                {"peak_distance_px", number(o.peak_distance_px)}};
    }
    seqs[io::sequence_name(s.sequence)] = q;
  }
  j["sequences"] = seqs;
  json slices = {{"choice", slice_choice_name(p.choice)},
                 {"centre_z", p.centre_z},
                 {"first_z", p.z_start},
                 {"count", p.slices},
                 {"axial_slices_in_volume", p.depth},
                 {"orientation", "canonical LPS+ (z grows towards superior)"},
                 {"description", slice_sentence(p)}};
  if (p.choice == SliceChoice::kAuto)
    slices["auto"] = {{"method", "largest 3-D connected FLAIR hyperintensity inside the brain"},
                      {"confidence", p.location.confidence},
                      {"component_ml", p.location.component_ml},
                      {"components", p.location.components},
                      {"threshold", p.location.threshold},
                      {"bounding_box_min_xyz", p.location.min_xyz},
                      {"bounding_box_max_xyz", p.location.max_xyz}};
  j["slices"] = slices;
  json localisation = {{"method", localisation_method_name(p.choice)}};
  if (p.choice == SliceChoice::kSegmentation) {
    localisation["model"] = p.segmentation_model.string();
    localisation["licence"] = (p.segmentation_model / "SBIA_license.txt").string();
    localisation["seconds"] = p.segmentation_seconds;
    localisation["label_map"] =
        "labels.nii.gz (BraTS labels 1 necrosis/non-enhancing, 2 oedema, "
        "4 enhancing; on the grid above)";
    localisation["volumes_ml"] = {{"whole_tumour", p.volumes.whole_ml},
                                  {"tumour_core", p.volumes.core_ml},
                                  {"enhancing", p.volumes.enhancing_ml},
                                  {"necrosis_non_enhancing", p.volumes.necrosis_ml},
                                  {"oedema", p.volumes.oedema_ml}};
  }
  if (p.choice == SliceChoice::kAuto) {
    localisation["confidence"] = p.location.confidence;
    localisation["lesion_ml"] = p.location.lesion_ml;
    localisation["lesion_leaked"] = p.location.lesion_leaked;
  }
  j["localisation"] = localisation;
  j["grid"] = {{"input_size", p.grid.input_size},
               {"input_spacing_mm", p.grid.input_spacing_mm},
               {"resampled", p.grid.resampled},
               {"size", p.grid.size},
               {"spacing_mm", p.grid.spacing_mm},
               {"window_mm", p.slices * p.grid.spacing_mm[2]},
               {"description", p.grid.resampled
                                   ? "resampled to isotropic voxels in the FLAIR frame (linear, "
                                     "no registration); slice indices above are on this grid"
                                   : "the FLAIR grid as read"}};
  j["skull_stripping"] = {{"brain_mask", p.brain_mask.string()},
                          {"outline_ml", p.skull.outline_ml},
                          {"max_brain_ml", kMaxBrainMl},
                          {"stripped", p.skull.stripped}};
  json alignment = json::object();
  for (size_t k = 0; k < 2; ++k) {
    const SequenceAlignment& a = p.alignment[k];
    json entry = {{"method", alignment_method_name(a.method)}, {"dice_with_flair", a.dice}};
    if (a.registration) {
      const registration::RegistrationResult& r = *a.registration;
      entry["transform"] = {
          {"convention", "p_moving = rotation (p_flair - centre) + centre + translation, LPS mm"},
          {"rotation", r.transform.rotation},
          {"centre_mm", r.transform.centre_mm},
          {"translation_mm", r.transform.translation_mm},
          {"angle_deg", r.transform.angle_deg()}};
      entry["mattes_mi_before"] = r.metric_before;
      entry["mattes_mi_after"] = r.metric_after;
      entry["dice_before"] = r.dice_before;
      entry["dice_after"] = r.dice_after;
      entry["iterations_per_level"] = r.iterations;
      entry["stop_condition"] = r.stop_condition;
      entry["seconds"] = r.seconds;
    }
    alignment[io::sequence_name(io::kSequences[k])] = entry;
  }
  j["registration"] = alignment;
  json intensity = json::object();
  for (size_t k = 0; k < 3; ++k)
    if (p.intensity[k].checked)
      intensity[io::sequence_name(io::kSequences[k])] = {
          {"distance", p.intensity[k].distance},
          {"training_max", p.intensity[k].training_max},
          {"training_p95", p.intensity[k].training_p95},
          {"limit", kIntensityMargin * p.intensity[k].training_max + kIntensitySlack}};
  j["intensity_vs_training"] = intensity;
  j["quality"] = {
      {"flags", p.quality.flags},
      {"summary", p.quality.flags.empty()
                      ? "no quality flag raised (only what gliomagrade can check: "
                        "skull-stripping, slice thickness, co-registration, intensities "
                        "against the training patients, localisation confidence)"
                      : p.quality.summary}};
  j["inputs"] = {{"t1", p.inputs.t1.string()},
                 {"t1ce", p.inputs.t1ce.string()},
                 {"t2", p.inputs.t2.string()},
                 {"flair", p.inputs.flair.string()},
                 {"seg", p.choice == SliceChoice::kMask ? p.inputs.seg.string() : ""}};
  j["notices"] = p.notices;
  j["model"] = bundle_dir.string();
  j["disclaimer"] = kResearchOnly;
  return j.dump(2) + "\n";
}

void write_summary_png(const PatientPrediction& p, const fs::path& png) {
  const int panel = 300, margin = 20, width = 3 * panel + 4 * margin;
  // A flagged input gets a banner above everything else; the rest moves down by its height.
  const int banner = p.quality.flags.empty() ? 0 : 44;
  const int volumes_line = p.choice == SliceChoice::kSegmentation ? 22 : 0;
  const int top = 150 + banner, panel_top = top + 24,
            height = panel_top + panel + 190 + volumes_line;
  cv::Mat page(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  const cv::Scalar black(0, 0, 0), grey(90, 90, 90), red(0, 0, 200), hgg_colour(0, 0, 180),
      lgg_colour(150, 90, 0);
  if (banner) {
    cv::rectangle(page, cv::Rect(0, 0, width, banner), cv::Scalar(0, 170, 255), cv::FILLED);
    put(page, "QUALITY WARNING: " + fmt::format("{}", fmt::join(p.quality.flags, ", ")), margin, 18,
        0.5, black, 2);
    put(page, p.quality.summary.substr(0, 150), margin, 36, 0.4, black);
  }
  put(page, "gliomagrade  -  glioma grade from T1, T2, FLAIR MRI", margin, banner + 30, 0.7, black,
      2);
  put(page,
      "Patient: " + p.id +
          (p.true_grade != io::Grade::kUnknown
               ? std::string("   (known grade: ") + io::grade_name(p.true_grade) + ")"
               : ""),
      margin, banner + 58, 0.55, black);
  const bool hgg = p.grade == io::Grade::kHGG;
  put(page,
      std::string("Predicted grade: ") +
          (hgg ? "HGG (high-grade glioma)" : "LGG (low-grade glioma)"),
      margin, banner + 95, 0.85, hgg ? hgg_colour : lgg_colour, 2);
  put(page,
      fmt::format(
          "{} of 3 sequence models vote HGG (hard vote);  mean P(HGG) {:.2f} (soft vote: {}){}",
          int(std::lround(p.vote_hard_score * 3)), p.vote_soft, p.vote_soft >= 0.5 ? "HGG" : "LGG",
          (p.vote_soft >= 0.5) == (p.vote_hard == 1) ? "" : "  - VOTES DISAGREE"),
      margin, banner + 125, 0.5, black);
  for (size_t k = 0; k < 3; ++k) {
    const SequencePrediction& s = p.sequences[k];
    const int x = margin + int(k) * (panel + margin);
    const std::string name = io::sequence_label(io::kSequences[k]);
    put(page,
        fmt::format("{}   P(HGG) {:.2f}  -> {}", name, s.p_hgg, s.p_hgg >= 0.5 ? "HGG" : "LGG"), x,
        top + 14, 0.5, black);
    const auto bgr = explain::overlay_bgr(s.centre_slice.data(), heatmap_of(p, s), 0.5);
    cv::Mat image(p.size, p.size, CV_8UC3, const_cast<uint8_t*>(bgr.data())), big;
    cv::resize(image, big, cv::Size(panel, panel), 0, 0, cv::INTER_LINEAR);
    big.copyTo(page(cv::Rect(x, panel_top, panel, panel)));
    // Radiological convention: the patient's right on the image's left, anterior at the top.
    put(page, "R", x + 4, panel_top + panel / 2, 0.5, cv::Scalar(255, 255, 255));
    put(page, "L", x + panel - 14, panel_top + panel / 2, 0.5, cv::Scalar(255, 255, 255));
    put(page, "A", x + panel / 2 - 5, panel_top + 16, 0.5, cv::Scalar(255, 255, 255));
    put(page,
        s.heatmap.empty()
            ? "no heatmap"
            : std::string("colour: regions supporting ") + (s.heatmap_class == 1 ? "HGG" : "LGG"),
        x, panel_top + panel + 18, 0.42, grey);
    if (s.heatmap_on_tumour && std::isfinite(s.heatmap_on_tumour->mass_inside))
      put(page,
          fmt::format("heat inside the tumour {:.0f}% (chance {:.0f}%)",
                      100 * s.heatmap_on_tumour->mass_inside,
                      100 * s.heatmap_on_tumour->tumour_share),
          x, panel_top + panel + 36, 0.42, grey);
  }
  int y = panel_top + panel + 62;
  put(page, "Slices: " + slice_sentence(p), margin, y, 0.45, black);
  y += 22;
  if (volumes_line) {
    put(page,
        fmt::format("Tumour volumes (DeepMedic): whole {:.1f} mL, core {:.1f} mL, enhancing {:.1f} "
                    "mL, necrosis/non-enhancing {:.1f} mL, oedema {:.1f} mL",
                    p.volumes.whole_ml, p.volumes.core_ml, p.volumes.enhancing_ml,
                    p.volumes.necrosis_ml, p.volumes.oedema_ml),
        margin, y, 0.45, black);
    y += volumes_line;
  }
  put(page,
      fmt::format(
          "P(HGG) per sequence is the mean over {} slices; heatmaps (Grad-CAM) at slice z {}.",
          p.slices, p.centre_z),
      margin, y, 0.45, black);
  for (const auto& notice : p.notices) {
    y += 22;
    put(page, "Note: " + notice.substr(0, 120), margin, y, 0.42, grey);
  }
  put(page, kResearchOnly, margin, height - 20, 0.55, red, 2);
  write_png(png, page);
}

void write_registration_png(const PatientPrediction& p, const fs::path& png) {
  const int scale = 2, side = p.size * scale, margin = 20, top = 56;
  const int width = 2 * side + 3 * margin, height = top + side + margin;
  cv::Mat page(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  const cv::Mat flair(p.size, p.size, CV_8UC1,
                      const_cast<uint8_t*>(p.sequences[2].centre_slice.data()));
  cv::Mat flair_big;
  cv::resize(flair, flair_big, cv::Size(side, side), 0, 0, cv::INTER_LINEAR);
  put(page, fmt::format("{}: FLAIR z {} with the edges of each sequence on it", p.id, p.centre_z),
      margin, 24, 0.55, cv::Scalar(0, 0, 0), 1);
  const cv::Scalar colours[2] = {cv::Scalar(0, 0, 255), cv::Scalar(0, 200, 0)};
  for (size_t k = 0; k < 2; ++k) {
    const cv::Mat seq(p.size, p.size, CV_8UC1,
                      const_cast<uint8_t*>(p.sequences[k].centre_slice.data()));
    cv::Mat big, edges, panel;
    cv::resize(seq, big, cv::Size(side, side), 0, 0, cv::INTER_LINEAR);
    cv::GaussianBlur(big, big, cv::Size(5, 5), 1.5);
    cv::Canny(big, edges, 30, 90);
    cv::cvtColor(flair_big, panel, cv::COLOR_GRAY2BGR);
    panel.setTo(colours[k], edges);
    const int x = margin + int(k) * (side + margin);
    panel.copyTo(page(cv::Rect(x, top, side, side)));
    const SequenceAlignment& a = p.alignment[k];
    put(page,
        fmt::format("{} edges ({}; head Dice {:.3f})", io::sequence_name(io::kSequences[k]),
                    alignment_method_name(a.method), a.dice),
        x, top - 8, 0.45, colours[k], 1);
  }
  write_png(png, page);
}

void write_patient_outputs(const PatientPrediction& p, const fs::path& bundle_dir,
                           const fs::path& dir) {
  write_file_atomic(dir / "prediction.json", prediction_json(p, bundle_dir));
  write_summary_png(p, dir / "summary.png");
  if (p.alignment[0].registration || p.alignment[1].registration)
    write_registration_png(p, dir / "registration.png");
  if (p.segmentation) io::write_volume(*p.segmentation, dir / "labels.nii.gz", /*as_int16=*/true);
  for (const auto& s : p.sequences) {
    if (s.heatmap.empty()) continue;
    const std::string name = io::sequence_name(s.sequence);
    explain::write_overlay_png(
        dir / ("gradcam_" + name + ".png"), s.centre_slice.data(), heatmap_of(p, s),
        fmt::format("{} {} z {}: P(HGG) {:.2f}, colour = evidence for {}", p.id, name, p.centre_z,
                    s.p_hgg, s.heatmap_class == 1 ? "HGG" : "LGG"));
  }
}

std::string predictions_csv(const std::vector<PatientPrediction>& predictions) {
  std::string s =
      "id,true_grade,grade,vote_hard_score,vote_soft,p_t1,p_t2,p_flair,slice_choice,centre_z,"
      "confidence,gradcam_mass_in_tumour_t1,gradcam_mass_in_tumour_t2,"
      "gradcam_mass_in_tumour_flair,tumour_share\n";
  for (const auto& p : predictions) {
    // Grad-CAM's mass on the tumour per sequence, and the tumour's share of the slice (chance):
    // empty without a mask or heatmap.
    std::string mass[3], share;
    for (size_t k = 0; k < 3; ++k) {
      const auto& o = p.sequences[k].heatmap_on_tumour;
      if (!o) continue;
      if (std::isfinite(o->mass_inside)) mass[k] = fmt::format("{:.4g}", o->mass_inside);
      share = fmt::format("{:.4g}", o->tumour_share);
    }
    s += fmt::format(
        "{},{},{},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{},{},{},{},{},{},{}\n", csv_field(p.id),
        io::grade_name(p.true_grade), io::grade_name(p.grade), p.vote_hard_score, p.vote_soft,
        p.sequences[0].p_hgg, p.sequences[1].p_hgg, p.sequences[2].p_hgg,
        p.choice == SliceChoice::kUser ? "user" : slice_choice_name(p.choice), p.centre_z,
        p.choice == SliceChoice::kAuto ? fmt::format("{:.4g}", p.location.confidence) : "", mass[0],
        mass[1], mass[2], share);
  }
  return s;
}

}  // namespace gg::infer
