// synth: a seeded synthetic glioma cohort that stands in for BraTS 2019 where no real cohort can
// be had (the README's main command, the tests, the benchmarks).
//
// Each patient is a skull-stripped brain phantom (background exactly 0) with white matter, grey
// matter (cortical ribbon following sulci, deep nuclei) and CSF (ventricles, sulci, fissure),
// imaged as T1, T2 and FLAIR with sequence-dependent tissue contrasts, a smooth multiplicative bias
// field and Rician noise. One tumour per patient, its phenotype driven by a latent
// "aggressiveness" drawn per grade (Louis et al., WHO CNS 2016; BraTS, Menze et al. 2015):
//  - HGG: larger, lobulated/irregular, necrotic core (label 1: dark T1, bright T2), thick
//    enhancing rim (label 4), heterogeneous, wide finger-like oedema in white matter (label 2);
//  - LGG: smaller, rounder, homogeneous non-enhancing core (label 1), little oedema (label 2).
// The two grades' phenotype distributions overlap, and a fraction of patients (growing with
// `difficulty`) carry the other grade's phenotype, so a good model does not reach AUC 1.0 at the
// default difficulty.
//
// Everything is deterministic in (seed, grade, index): the same patient whatever the thread count
// or cohort size (patient k of a grade is the same in a cohort of 10 or of 100).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "io/io.h"

namespace gg::synth {

namespace fs = std::filesystem;

struct SynthOptions {
  int lgg = 14, hgg = 46;  // default: BraTS 2019's ratio (76:259) scaled down
  uint64_t seed = 1;
  // 0: grades trivially separable (no overlap); 0.5: 10% of patients carry the other grade's
  // phenotype and the rest overlap moderately (a perfect reader of the latent phenotype reaches
  // AUC ~0.89); 1: 20% atypical and wide spread (AUC ~0.72).
  double difficulty = 0.5;
  std::array<int, 3> size{240, 240, 155};  // BraTS grid; tests use small sizes like {64,64,40}
  // Isotropic voxel size. The head is life-size in mm, so the field of view (size × spacing)
  // should hold it: for small grids use default_spacing_mm(size). A field of view up to 30% too
  // small shrinks the head to fit (the brain is never cut); smaller is an error (validate()).
  double spacing_mm = 1.0;
  // Fraction of patients (per grade, the first of each grade included when > 0) stored in another
  // orientation: RAS instead of LPS, or with permuted axes (coronal/sagittal storage).
  double reoriented_fraction = 0.2;
  int threads = 0;  // 0: hardware concurrency
  bool show_progress = true;
  // Draw the head around the brain as a scanner shows it before skull-stripping: a dark bone
  // shell (kSkullBoneMm) and outside it a bright scalp shell (kSkullScalpMm), in all three
  // sequences (seg stays 0 there). For testing predict's skull-stripping check; a crude model
  // (no face, neck, CSF gap or marrow).
  bool skull = false;
};
inline constexpr double kSkullBoneMm = 7, kSkullScalpMm = 6;

// The spacing at which a grid of `size` covers BraTS's 240×240×155 mm field of view (more where a
// tiny grid needs it to hold a head): 1 mm for 240×240×155, 3.875 mm for 64×64×40.
double default_spacing_mm(const std::array<int, 3>& size);

// Throws gg::Error (kBadInput, no file) naming the option when options are out of range: negative
// counts, no patient at all, difficulty or reoriented_fraction outside [0,1], a size below 16
// voxels, or a field of view too small for a head.
void validate(const SynthOptions& options);

// What was drawn for a patient's tumour (ground truth for tests and for reading results).
struct TumourPhenotype {
  double aggressiveness = 0;  // latent 0..1: LGG-typical near 0.25, HGG-typical near 0.75
  bool atypical = false;      // drawn from the other grade's phenotype (difficulty)
  bool necrotic = false;      // necrotic core inside an enhancing rim
  double core_radius_mm = 0;  // mean radius of the tumour core (labels 1 + 4)
  double oedema_extent = 0;   // oedema reach beyond the core, as a fraction of the core radius
};

// One patient in canonical orientation (identity direction, LPS+: x to the patient's Left,
// y Posterior, z Superior). Intensities are whole numbers (as stored in int16), > 0 inside the
// brain and exactly 0 outside; seg holds 0/1/2/4.
struct SyntheticPatient {
  std::string id;  // "Synth_HGG_001" (index 0 → 001)
  io::Grade grade = io::Grade::kUnknown;
  io::Volume t1, t2, flair, seg;
  TumourPhenotype phenotype;
};

// Builds patient `index` (0-based within its grade). Deterministic in (options.seed, grade,
// index); uses options.size, spacing_mm and difficulty only. Single-threaded.
// Throws kBadInput for a bad size, spacing or difficulty (as validate()), a negative index or a
// grade other than LGG/HGG.
SyntheticPatient make_patient(int index, io::Grade grade, const SynthOptions& options);

// How a patient's volumes are stored on disk: stored axis a is canonical axis axis[a], reversed
// when flip[a]. Identity for most patients.
struct StoredOrientation {
  std::array<int, 3> axis{0, 1, 2};
  std::array<bool, 3> flip{false, false, false};
  bool is_canonical() const;
  std::string name() const;  // e.g. "LPS", "RAS", "axes (2,0,1) flips (0,1,0)"
};
StoredOrientation stored_orientation(int index, io::Grade grade, const SynthOptions& options);

// The same image stored with another voxel order: voxels permuted/flipped and direction, spacing
// and origin set so every voxel keeps its physical position. io::read_volume turns it back.
io::Volume to_stored_orientation(const io::Volume& canonical, const StoredOrientation& o);

// Writes the cohort in the BraTS 2019 layout: out_dir/{HGG,LGG}/<id>/<id>_{t1,t2,flair,seg}.nii.gz
// (int16), in parallel (options.threads; about 200 MB per thread at 240×240×155, ~1.4 s of CPU per
// patient of which half is gzip) with a progress line, into a staging directory renamed
// into place at the end (gg::StagingDir): nothing is left behind on failure.
// Also writes out_dir/synth_truth.csv (id, grade, aggressiveness, atypical, necrotic,
// core_radius_mm, oedema_extent, stored_as): the drawn phenotypes, for reading results.
// Returns the cases sorted by id with their final paths, as io::discover_cohort would.
// Throws kBadInput when out_dir exists and is not empty, or for bad options (validate());
// kRuntime when a file cannot be written.
std::vector<io::Case> generate_cohort(const fs::path& out_dir, const SynthOptions& options);

// Writes a PNG contact sheet: one row per patient, the axial slice of largest tumour area in T1,
// T2, FLAIR and FLAIR with the seg overlaid (red 1, green 2, yellow 4), labelled with id, grade
// and slice. Atomic. Throws kBadInput when `patients` is empty, kRuntime when it cannot write.
void write_preview(const std::vector<SyntheticPatient>& patients, const fs::path& png);

}  // namespace gg::synth
