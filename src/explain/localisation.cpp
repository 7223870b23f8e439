// Grad-CAM against the tumour masks of a split's patients: the run report's check of where the
// models look.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "common/csv.h"
#include "common/error.h"
#include "explain/explain.h"
#include "io/io.h"
#include "train/train.h"

namespace gg::explain {

namespace {

// The slice with its tumour pixels set to the median of its other tissue (pixels >= 10, which
// leaves out the background).
std::vector<uint8_t> blank_tumour(const std::vector<uint8_t>& slice,
                                  const std::vector<uint8_t>& tumour) {
  std::vector<uint8_t> tissue;
  for (size_t i = 0; i < slice.size(); ++i)
    if (!tumour[i] && slice[i] >= 10) tissue.push_back(slice[i]);
  uint8_t fill = 0;
  if (!tissue.empty()) {
    std::nth_element(tissue.begin(), tissue.begin() + long(tissue.size() / 2), tissue.end());
    fill = tissue[tissue.size() / 2];
  }
  std::vector<uint8_t> out = slice;
  for (size_t i = 0; i < out.size(); ++i)
    if (tumour[i]) out[i] = fill;
  return out;
}

}  // namespace

std::vector<LocalisationRow> heatmap_localisation(const fs::path& bundle_dir,
                                                  const prep::SliceStore& store,
                                                  const data::Split& split, data::Part part,
                                                  const std::map<std::string, fs::path>& masks) {
  // Every store slice of each patient of `part` (to check the masks against the store), and the
  // slices that are in `part` (the only ones that count as evidence: under the image split a
  // patient's other slices may be training data).
  std::map<std::string, std::set<int>> store_z;
  std::map<std::string, std::map<int, int64_t>> part_rows_by_z;
  std::map<std::string, io::Grade> grade;
  for (int64_t i : split.items_in(part)) {
    const auto& item = store.items[size_t(i)];
    if (!masks.count(item.patient)) continue;
    part_rows_by_z[item.patient][item.z] = i;
    grade[item.patient] = item.grade;
  }
  for (const auto& item : store.items)
    if (part_rows_by_z.count(item.patient)) store_z[item.patient].insert(item.z);
  std::vector<LocalisationRow> out;
  if (part_rows_by_z.empty()) return out;
  BundleModels bundle = load_bundle_models(bundle_dir);
  const std::vector<io::Sequence>& seqs = bundle.sequences;
  const std::vector<SliceModel>& models = bundle.models;
  const int size = store.size;
  std::vector<uint8_t> slice(size_t(size) * size_t(size));
  for (const auto& [patient, by_z] : part_rows_by_z) {
    const fs::path& mask_file = masks.at(patient);
    io::Volume seg = io::read_volume(mask_file);
    const int z_star = prep::largest_tumour_slice(seg);
    if (!store_z[patient].count(z_star))
      throw_bad_input(mask_file.string(),
                      fmt::format("the largest tumour slice z {} is not among the slice store's "
                                  "slices of patient {}",
                                  z_star, patient),
                      "give the masks the store was prepared from");
    // The part's slice nearest to z* (z* itself unless it is in another part); ties go to the
    // lower z.
    auto row = by_z.begin();
    for (auto it = by_z.begin(); it != by_z.end(); ++it)
      if (std::abs(it->first - z_star) < std::abs(row->first - z_star)) row = it;
    const int z = row->first;
    const std::vector<uint8_t> tumour = prep::tumour_slice_mask(std::move(seg), z, size);
    for (size_t m = 0; m < models.size(); ++m) {
      prep::read_slices(store, seqs[m], {row->second}, slice.data());
      const Heatmap heat = models[m].grad_cam(slice.data(), size);
      LocalisationRow r;
      r.patient = patient;
      r.grade = grade[patient];
      r.sequence = seqs[m];
      r.z = z;
      r.z_largest = z_star;
      r.p_hgg = heat.p_hgg;
      r.explained_class = heat.target_class;
      r.overlap = tumour_overlap(heat, tumour);
      r.p_hgg_tumour_blanked = models[m].predict(blank_tumour(slice, tumour).data(), 1, size)[0];
      out.push_back(r);
    }
  }
  return out;
}

std::string localisation_markdown(const std::vector<LocalisationRow>& rows) {
  if (rows.empty()) return "";
  std::string md =
      "## Where the models look: Grad-CAM against the tumour masks\n\n"
      "Correctly graded test patients, largest-tumour slice. 'mass inside' is the share of the "
      "heatmap's mass on tumour pixels; a uniform map scores 'chance' (the tumour's share of the "
      "slice); a map that follows the tumour on Grad-CAM's 7x7 grid (each cell weighted by its "
      "tumour share) scores 'tracking map': the grid's coarseness alone keeps that below 1. "
      "Evidence outside the mask (mass "
      "effect, oedema beyond it) lowers the figure without the model being wrong; the last "
      "column counts the correct HGG calls that stay HGG when the tumour is blanked out (set to "
      "the slice's median tissue), i.e. that the model can make from outside the mask.\n\n"
      "| sequence | correct / patients | mass inside | chance | tracking map | peak inside "
      "tumour | HGG without the tumour |\n|---|---|---|---|---|---|---|\n";
  // Under the image split a patient's largest-tumour slice may be a training slice: such
  // patients are scored at their nearest slice of the scored part instead, and we say so.
  std::set<std::string> patients, shifted;
  for (const auto& r : rows) {
    patients.insert(r.patient);
    if (r.z != r.z_largest) shifted.insert(r.patient);
  }
  if (!shifted.empty())
    md.insert(md.find("| sequence"),
              fmt::format("{} of the {} patients have their largest-tumour slice in another part "
                          "of the split (the image split puts a patient's slices in several "
                          "parts; a training slice is no test evidence): they are scored at "
                          "their slice of the scored part nearest to it (columns z and z_largest "
                          "of localisation.csv).\n\n",
                          shifted.size(), patients.size()));
  for (io::Sequence seq : io::kSequences) {
    int n = 0, correct = 0, peaks = 0, hgg = 0, hgg_kept = 0;
    double mass = 0, chance = 0, tracking = 0;
    for (const auto& r : rows) {
      if (r.sequence != seq) continue;
      ++n;
      if (!r.correct() || !std::isfinite(r.overlap.mass_inside)) continue;
      ++correct;
      mass += r.overlap.mass_inside, chance += r.overlap.tumour_share;
      tracking += r.overlap.tracking_map_mass, peaks += r.overlap.peak_inside;
      if (r.explained_class == kHgg) ++hgg, hgg_kept += r.p_hgg_tumour_blanked >= 0.5;
    }
    if (n == 0) continue;
    if (correct == 0) {
      md += fmt::format("| {} | 0 / {} | - | - | - | - | - |\n", io::sequence_name(seq), n);
      continue;
    }
    md += fmt::format("| {} | {} / {} | {:.3f} | {:.3f} | {:.3f} | {} / {} | {} |\n",
                      io::sequence_name(seq), correct, n, mass / correct, chance / correct,
                      tracking / correct, peaks, correct,
                      hgg ? fmt::format("{} / {}", hgg_kept, hgg) : std::string("-"));
  }
  return md;
}

std::string localisation_csv(const std::vector<LocalisationRow>& rows) {
  std::string s =
      "patient,grade,sequence,z,z_largest,p_hgg,explains,mass_inside,chance_mass_inside,"
      "tracking_map_mass_inside,peak_inside,peak_distance_px,p_hgg_tumour_blanked\n";
  for (const auto& r : rows)
    s += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{}\n", csv_field(r.patient),
                     io::grade_name(r.grade), io::sequence_name(r.sequence), r.z, r.z_largest,
                     format_double(r.p_hgg), r.explained_class == kHgg ? "HGG" : "LGG",
                     format_double(r.overlap.mass_inside), format_double(r.overlap.tumour_share),
                     format_double(r.overlap.tracking_map_mass), r.overlap.peak_inside ? 1 : 0,
                     format_double(r.overlap.peak_distance_px),
                     format_double(r.p_hgg_tumour_blanked));
  return s;
}

}  // namespace gg::explain
