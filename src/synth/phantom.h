// synth internals: the parameters of one synthetic patient and the renderer that turns them into
// volumes. params.cpp draws the parameters (the only place randomness enters), render.cpp
// rasterises them. Geometry is in mm in the "brain frame": origin at the brain's centre, x to
// the patient's left, y posterior, z superior (LPS, as the canonical volumes).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "synth/synth.h"

namespace gg::synth::detail {

using Vec3 = std::array<float, 3>;

// Tissue classes of the phantom; order is the index into Contrast::level.
enum Tissue : uint8_t {
  kBackground = 0,
  kCsf,
  kGrey,
  kWhite,
  kDeepGrey,   // thalamus, basal ganglia: between GM and WM on every sequence
  kOedema,     // seg 2
  kNecrosis,   // seg 1 (HGG core)
  kEnhancing,  // seg 4
  kSolidCore,  // seg 1 (non-enhancing tumour, the LGG core)
  kNumTissues
};

struct Anatomy {
  Vec3 centre_mm{0, 0, 0};  // brain centre in physical mm (grid centre = 0)
  std::array<float, 9> rotation{1, 0, 0, 0, 1, 0, 0, 0, 1};  // physical → brain frame, row-major
  Vec3 semi_axes_mm{68, 84, 54};      // brain ellipsoid (x left-right, y antero-posterior, z)
  float inferior_flatten = 0.9f;      // z semi-axis factor below the centre
  float posterior_widening = 0.07f;   // x semi-axis grows by this fraction towards the back
  float lobulation = 0.02f;           // surface bumps, fraction of the radius
  float csf_rim_mm = 1.4f;            // subarachnoid CSF over the cortex (atrophy widens it)
  float cortex_mm = 3.0f;             // cortical ribbon thickness
  float sulcus_depth_mm = 11.0f;      // mean sulcal depth
  float sulcus_half_width_mm = 0.9f;  // CSF half-width in a sulcus
  float ventricle_scale = 1.0f;       // ventricular size (age, hydrocephalus)
  float scale = 1.0f;                 // head size relative to nominal, for deep structures
};

struct Tumour {
  Vec3 centre_mm{0, 0, 0};    // brain frame
  Vec3 inv_stretch{1, 1, 1};  // per-axis 1/elongation of the tumour
  float radius_mm = 12;       // core radius before lobulation
  float irregularity = 0.1f;  // amplitude of the core boundary's lobulation
  bool necrotic = false;
  float necrosis_fraction = 0.5f;    // necrosis radius / core radius
  float enhancing_patches = 0;       // non-necrotic cores: 0 none … 1 many enhancing foci
  float oedema_extent = 0.3f;        // oedema reach beyond the core, fraction of radius_mm
  float oedema_irregularity = 0.2f;  // finger-like spread along white matter
  float heterogeneity = 0.05f;       // intensity texture amplitude inside the tumour
  float mass_effect = 0.15f;         // radial displacement of the surrounding anatomy
};

// One sequence's contrast: intensity = scale · level[tissue] · texture · bias + Rician noise.
struct Contrast {
  std::array<float, kNumTissues> level{};
  float scale = 500;  // white-matter intensity
  float noise_fraction = 0.03f;
  std::array<float, 9>
      bias{};  // quadratic bias field in physical (x,y,z)/100 mm: x y z x² y² z² xy xz yz
};

struct PatientParams {
  uint64_t key = 0;  // seeds the voxel-level random fields
  Anatomy anatomy;
  Tumour tumour;
  std::array<Contrast, 3> contrast;  // t1, t2, flair
  TumourPhenotype phenotype;
};

// The largest half-extent (mm, physical axes) a brain can reach, whatever is drawn; the field of
// view must hold it (validate()).
Vec3 max_brain_half_extent_mm();

// Draws all parameters of patient `index` of `grade` (deterministic in seed, grade, index).
PatientParams draw_params(uint64_t seed, io::Grade grade, int index, double difficulty);

// The tissue class of every voxel (Tissue values) and its intensity texture (multiplicative,
// around 1), on a grid of `size` voxels of `spacing_mm` centred on physical 0; [lo, hi) is the
// voxel box that holds the brain.
struct TissueMap {
  std::vector<uint8_t> tissue;
  std::vector<float> texture;
  std::array<int, 3> lo{}, hi{};
};
TissueMap rasterise(const PatientParams& params, const std::array<int, 3>& size, double spacing_mm);

// Rasterises the phantom on a grid of `size` voxels of `spacing_mm`, centred on physical 0.
// Fills t1, t2, flair, seg of `out` (geometry included).
// head_scale < 1 shrinks the head (a field of view slightly too small for a life-size one).
void render(const PatientParams& params, const std::array<int, 3>& size, double spacing_mm,
            double head_scale, SyntheticPatient& out);

// Draws bone (dark) and scalp (bright) shells around the brain of t1, t2, flair (SynthOptions::
// skull): the voxels within kSkullBoneMm of the brain, then those within a further kSkullScalpMm,
// with intensities relative to each image's median brain intensity and a little noise.
void draw_skull(SyntheticPatient& p, double spacing_mm, uint64_t key);

}  // namespace gg::synth::detail
