// Draws a synthetic patient's parameters: anatomy, tumour phenotype and contrasts.
// Tumour phenotypes follow the imaging literature on glioma grade (Louis et al. 2016 WHO
// classification; Menze et al., IEEE TMI 34:1993, 2015, the BraTS labels): high grade = larger,
// irregular, necrotic core with an enhancing rim, heterogeneous, extensive vasogenic oedema;
// low grade = smaller, rounder, homogeneous, T2/FLAIR-bright non-enhancing core, little oedema.
#include <algorithm>
#include <cmath>
#include <random>

#include "synth/noise.h"
#include "synth/phantom.h"

namespace gg::synth::detail {

namespace {

constexpr float kPi = 3.14159265f;

// Nominal brain semi-axes (mm) and the ranges patients vary over; max_brain_half_extent_mm()
// is derived from the same constants so validate() and the drawing cannot disagree.
constexpr Vec3 kNominalSemiAxes{68, 84, 54};
constexpr float kMaxScale = 1.08f, kMaxAxisJitter = 1.04f, kMaxLobulation = 0.03f;
constexpr float kMaxOffsetMm = 4, kMaxWidening = 0.10f;
constexpr float kMaxYawDeg = 4, kMaxTiltDeg = 3;
// Lobulation noise is clamped to ±2.5 standard deviations in render.cpp.
constexpr float kLobulationClamp = 2.5f;

class Draw {
 public:
  explicit Draw(uint64_t key) : rng_(key) {}
  float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng_); }
  float normal(float mean, float sd) { return std::normal_distribution<float>(mean, sd)(rng_); }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  uint64_t bits() { return rng_(); }

 private:
  std::mt19937_64 rng_;
};

float clampf(float v, float lo, float hi) { return std::min(hi, std::max(lo, v)); }

// Row-major rotation = Rz(yaw) · Rx(pitch) · Ry(roll), angles in degrees.
std::array<float, 9> rotation_matrix(float yaw, float pitch, float roll) {
  const float a = yaw * kPi / 180, b = pitch * kPi / 180, c = roll * kPi / 180;
  const float ca = std::cos(a), sa = std::sin(a), cb = std::cos(b), sb = std::sin(b);
  const float cc = std::cos(c), sc = std::sin(c);
  const std::array<float, 9> rz{ca, -sa, 0, sa, ca, 0, 0, 0, 1};
  const std::array<float, 9> rx{1, 0, 0, 0, cb, -sb, 0, sb, cb};
  const std::array<float, 9> ry{cc, 0, sc, 0, 1, 0, -sc, 0, cc};
  auto mul = [](const std::array<float, 9>& m, const std::array<float, 9>& n) {
    std::array<float, 9> r{};
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j)
        for (int k = 0; k < 3; ++k) r[3 * i + j] += m[3 * i + k] * n[3 * k + j];
    return r;
  };
  return mul(rz, mul(rx, ry));
}

Anatomy draw_anatomy(Draw& d) {
  Anatomy a;
  a.scale = d.uniform(2 - kMaxScale, kMaxScale);
  for (int i = 0; i < 3; ++i)
    a.semi_axes_mm[i] =
        kNominalSemiAxes[i] * a.scale * d.uniform(2 - kMaxAxisJitter, kMaxAxisJitter);
  for (int i = 0; i < 3; ++i) a.centre_mm[i] = d.uniform(-kMaxOffsetMm, kMaxOffsetMm);
  a.rotation =
      rotation_matrix(d.uniform(-kMaxYawDeg, kMaxYawDeg), d.uniform(-kMaxTiltDeg, kMaxTiltDeg),
                      d.uniform(-kMaxTiltDeg, kMaxTiltDeg));
  a.inferior_flatten = d.uniform(0.85f, 0.95f);
  a.posterior_widening = d.uniform(0.04f, kMaxWidening);
  a.lobulation = d.uniform(0.015f, kMaxLobulation);
  // Age-related atrophy widens sulci and ventricles together.
  const float atrophy = d.uniform(0, 1);
  a.csf_rim_mm = 0.9f + 1.0f * atrophy;
  a.sulcus_half_width_mm = 0.6f + 0.7f * atrophy;
  a.ventricle_scale = clampf(0.8f + 0.5f * atrophy + d.normal(0, 0.1f), 0.65f, 1.5f);
  a.cortex_mm = d.uniform(3.0f, 4.2f);
  a.sulcus_depth_mm = d.uniform(10, 15);
  return a;
}

// The latent aggressiveness: a typical patient of grade g is drawn around 0.25 (LGG) or 0.75
// (HGG); with probability 0.2·difficulty the patient is "atypical" and drawn around the other
// grade's mean. The spread also grows with difficulty. At difficulty 0 the grades do not overlap;
// at 0.5 the best achievable AUC from the phenotype alone is about 0.9.
TumourPhenotype draw_latent(Draw& d, io::Grade grade, double difficulty) {
  TumourPhenotype p;
  p.atypical = d.chance(0.2 * difficulty);
  const bool hgg_like = (grade == io::Grade::kHGG) != p.atypical;
  const float sd = 0.04f + 0.26f * float(difficulty);
  p.aggressiveness = clampf(d.normal(hgg_like ? 0.75f : 0.25f, sd), 0, 1);
  return p;
}

bool inside_brain(const Anatomy& an, const Vec3& q, float margin) {
  float r2 = 0;
  for (int i = 0; i < 3; ++i) r2 += (q[i] / an.semi_axes_mm[i]) * (q[i] / an.semi_axes_mm[i]);
  return std::sqrt(r2) < margin;
}

Tumour draw_tumour(Draw& d, const Anatomy& an, float agg) {
  Tumour t;
  t.radius_mm = clampf(10 + 10 * agg + d.normal(0, 1.5f), 6, 26) * an.scale;
  for (float& s : t.inv_stretch) s = 1 / d.uniform(0.82f, 1.22f);
  t.irregularity = clampf(0.04f + 0.30f * agg + d.normal(0, 0.03f), 0.02f, 0.4f);
  t.necrotic = agg + d.normal(0, 0.08f) > 0.5f;
  t.necrosis_fraction = clampf(0.35f + 0.35f * agg + d.normal(0, 0.05f), 0.25f, 0.75f);
  t.enhancing_patches = t.necrotic ? 0 : clampf((agg - 0.3f) * 4, 0, 1);
  t.oedema_extent = clampf(1.3f * agg - 0.1f + d.normal(0, 0.1f), 0.08f, 1.4f);
  t.oedema_irregularity = clampf(0.1f + 0.3f * agg, 0.1f, 0.4f);
  t.heterogeneity = clampf(0.03f + 0.14f * agg + d.normal(0, 0.02f), 0.02f, 0.2f);
  t.mass_effect = clampf(0.08f + 0.25f * agg, 0.05f, 0.35f);
  // Centre in a cerebral hemisphere's white matter, the core kept mostly inside the brain.
  const float side = d.chance(0.5) ? 1.0f : -1.0f;
  const Vec3& ax = an.semi_axes_mm;
  for (int attempt = 0; attempt < 64; ++attempt) {
    t.centre_mm = {side * d.uniform(0.22f, 0.58f) * ax[0], d.uniform(-0.6f, 0.6f) * ax[1],
                   d.uniform(-0.15f, 0.5f) * ax[2]};
    const float reach = t.radius_mm * 0.8f / std::min(ax[0], std::min(ax[1], ax[2]));
    if (inside_brain(an, t.centre_mm, 0.92f - reach)) break;
  }
  return t;
}

// Relative intensities (white matter = 1) for [bg, CSF, GM, WM, deep GM, oedema, necrosis,
// enhancing, solid core]. T1: WM > GM > CSF, tumour hypointense, necrosis darkest. T2: CSF
// brightest, tumour and oedema bright, necrosis fluid-bright. FLAIR: CSF suppressed (dark), oedema
// and tumour bright, necrosis partly suppressed. (Native T1: the rim does not enhance without
// contrast, it is iso- to hypointense.)
constexpr std::array<std::array<float, kNumTissues>, 3> kLevels{{
    {0, 0.32f, 0.68f, 1.0f, 0.82f, 0.72f, 0.40f, 0.74f, 0.60f},
    {0, 2.70f, 1.40f, 1.0f, 1.20f, 1.95f, 2.40f, 1.55f, 2.05f},
    {0, 0.22f, 1.22f, 1.0f, 1.10f, 1.85f, 0.95f, 1.50f, 1.75f},
}};

Contrast draw_contrast(Draw& d, int sequence, float agg) {
  Contrast c;
  c.level = kLevels[size_t(sequence)];
  for (int t = kCsf; t < kNumTissues; ++t)
    if (t != kWhite) c.level[size_t(t)] *= std::max(0.5f, 1 + d.normal(0, 0.04f));
  // Necrotic fluid is variably suppressed on FLAIR (protein, haemorrhage).
  if (sequence == 2) c.level[kNecrosis] = d.uniform(0.7f, 1.3f);
  // More aggressive cores are less bright on T2/FLAIR (cellular) than indolent ones.
  if (sequence > 0) c.level[kSolidCore] *= 1.05f - 0.15f * agg;
  c.scale = sequence == 0 ? d.uniform(350, 900) : d.uniform(250, 700);
  c.noise_fraction = d.uniform(0.02f, 0.045f);
  for (int i = 0; i < 9; ++i) c.bias[size_t(i)] = d.normal(0, i < 3 ? 0.08f : 0.05f);
  return c;
}

}  // namespace

Vec3 max_brain_half_extent_mm() {
  // Worst case: largest axes with lobulation and posterior widening, the offset, and the
  // rotation's reach into the other axes (an ellipsoid's half-extent along axis i is
  // sqrt(sum_j (R_ji a_j)^2); off-diagonal rotation terms are at most sin(yaw) + sin(tilt)).
  const float grow = kMaxScale * kMaxAxisJitter * (1 + kLobulationClamp * kMaxLobulation);
  const Vec3 a{kNominalSemiAxes[0] * grow * (1 + kMaxWidening), kNominalSemiAxes[1] * grow,
               kNominalSemiAxes[2] * grow};
  const float off = std::sin(kMaxYawDeg * kPi / 180) + std::sin(kMaxTiltDeg * kPi / 180);
  Vec3 half{};
  for (int i = 0; i < 3; ++i) {
    float s2 = 0;
    for (int j = 0; j < 3; ++j) s2 += (i == j ? 1 : off * off) * a[j] * a[j];
    half[i] = std::sqrt(s2) + kMaxOffsetMm;
  }
  return half;
}

PatientParams draw_params(uint64_t seed, io::Grade grade, int index, double difficulty) {
  PatientParams p;
  p.key = hash2(hash2(seed, uint64_t(grade)), uint64_t(index));
  Draw d(p.key);
  p.phenotype = draw_latent(d, grade, difficulty);
  const float agg = float(p.phenotype.aggressiveness);
  p.anatomy = draw_anatomy(d);
  p.tumour = draw_tumour(d, p.anatomy, agg);
  for (int s = 0; s < 3; ++s) p.contrast[size_t(s)] = draw_contrast(d, s, agg);
  p.phenotype.necrotic = p.tumour.necrotic;
  const Vec3& is = p.tumour.inv_stretch;
  p.phenotype.core_radius_mm = p.tumour.radius_mm / std::cbrt(is[0] * is[1] * is[2]);
  p.phenotype.oedema_extent = p.tumour.oedema_extent;
  p.key = d.bits();
  return p;
}

}  // namespace gg::synth::detail
