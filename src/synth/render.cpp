// Rasterises a patient's parameters into T1, T2, FLAIR and seg volumes.
//
// Per voxel (only inside the brain's bounding box): the mass effect displaces the anatomy away
// from the tumour, the anatomy model classifies the displaced point (CSF, GM, WM, deep GM), the
// tumour model overrides it (core, necrosis, rim, oedema). Then per sequence: tissue intensity ×
// texture, a [1 2 1]/4 blur along each axis (partial volume), a smooth multiplicative bias
// field, Rician noise (magnitude of a complex Gaussian), rounding to int16 values; background
// exactly 0. Every random draw is a hash of (patient key, position), so no RNG state is shared.
#include <algorithm>
#include <cmath>
#include <vector>

#include "synth/noise.h"
#include "synth/phantom.h"

namespace gg::synth::detail {

namespace {

inline float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }
inline float sq(float v) { return v * v; }

inline Vec3 rotate(const std::array<float, 9>& r, const Vec3& v) {
  return {r[0] * v[0] + r[1] * v[1] + r[2] * v[2], r[3] * v[0] + r[4] * v[1] + r[5] * v[2],
          r[6] * v[0] + r[7] * v[1] + r[8] * v[2]};
}

// Inside the ellipsoid (centre c, semi-axes s)?
inline bool in_ellipsoid(const Vec3& q, const Vec3& c, const Vec3& s) {
  return sq((q[0] - c[0]) / s[0]) + sq((q[1] - c[1]) / s[1]) + sq((q[2] - c[2]) / s[2]) < 1;
}

constexpr float kLobulationClamp = 2.5f;  // as in params.cpp's extent bound

// Normal anatomy: brain ellipsoid with lobulated surface, CSF rim, cortical ribbon folded by
// radial sulci, interhemispheric fissure, lateral and third ventricles, deep grey nuclei.
class AnatomyModel {
 public:
  AnatomyModel(const Anatomy& a, uint64_t key) : a_(a) {
    const float r =
        1.25f * std::max(a.semi_axes_mm[0], std::max(a.semi_axes_mm[1], a.semi_axes_mm[2]));
    const std::array<float, 3> lo{-r, -r, -r}, hi{r, r, r};
    lobes_ = ValueNoise(hash2(key, 1), lo, hi, 38);
    sulci_ = ValueNoise(hash2(key, 2), lo, hi, 11);
    sulci_fine_ = ValueNoise(hash2(key, 3), lo, hi, 6);
    sulcal_depth_ = ValueNoise(hash2(key, 4), lo, hi, 16);
    warp_x_ = ValueNoise(hash2(key, 5), lo, hi, 18);
    warp_y_ = ValueNoise(hash2(key, 6), lo, hi, 18);
    warp_z_ = ValueNoise(hash2(key, 7), lo, hi, 18);
  }

  Tissue classify(const Vec3& q) const {
    const Vec3& s = a_.semi_axes_mm;
    const float ax = s[0] * (1 + a_.posterior_widening * clampf(q[1] / s[1], -1, 1));
    const float az = q[2] < 0 ? s[2] * a_.inferior_flatten : s[2];
    const float ux = q[0] / ax, uy = q[1] / s[1], uz = q[2] / az;
    const float f = std::sqrt(ux * ux + uy * uy + uz * uz);
    const float bump_max = kLobulationClamp * a_.lobulation;
    if (f >= 1 + bump_max) return kBackground;
    float fe = f;  // ellipsoidal radius with surface lobulation; brain where fe < 1
    if (f > 1 - bump_max - 0.05f) {
      fe = f / (1 + a_.lobulation *
                        clampf(lobes_(q[0], q[1], q[2]), -kLobulationClamp, kLobulationClamp));
      if (fe >= 1) return kBackground;
    }
    // Depth below the surface to first order: (1 - f) / |grad f|.
    const float grad = std::sqrt(sq(ux / ax) + sq(uy / s[1]) + sq(uz / az)) / std::max(f, 1e-3f);
    const float depth = (1 - fe) / grad;
    if (depth < a_.csf_rim_mm) return kCsf;
    const float below_rim = depth - a_.csf_rim_mm;
    if (below_rim < 20 + a_.cortex_mm) {
      const Tissue t = cortex(q, f, below_rim);
      if (t != kWhite) return t;
    }
    return deep(q);
  }

 private:
  // Sulci are radial sheets: a smooth field evaluated on the surface point above q (so constant
  // along the radius) crosses zero; the sheet is CSF down to the sulcal depth, lined by cortex.
  Tissue cortex(const Vec3& q, float f, float below_rim) const {
    if (below_rim < a_.cortex_mm * 0.5f) return kGrey;  // crown of every gyrus
    // Sampled half-way between q and the surface point above it, displaced by a smooth warp: the
    // sheets then bend and branch with depth instead of running straight down like spokes. The
    // distance to the sheet is |n| / |grad n| (finite differences), so the cortex lining a
    // sulcus keeps its thickness where the field is flat.
    const float inv_f = 0.5f / f + 0.5f;
    const float n = folding(q[0] * inv_f, q[1] * inv_f, q[2] * inv_f);
    constexpr float h = 0.7f;
    const float gx = folding((q[0] + h) * inv_f, q[1] * inv_f, q[2] * inv_f) - n;
    const float gy = folding(q[0] * inv_f, (q[1] + h) * inv_f, q[2] * inv_f) - n;
    const float gz = folding(q[0] * inv_f, q[1] * inv_f, (q[2] + h) * inv_f) - n;
    const float dist_mm =
        std::fabs(n) * h / std::max(std::sqrt(gx * gx + gy * gy + gz * gz), 1e-4f);
    const float sx = q[0] / f, sy = q[1] / f, sz = q[2] / f;
    const float sulcal_depth =
        a_.sulcus_depth_mm * (1 + 0.45f * clampf(sulcal_depth_(sx, sy, sz), -2, 2));
    if (below_rim < sulcal_depth && dist_mm < a_.sulcus_half_width_mm) return kCsf;
    if (below_rim < a_.cortex_mm) return kGrey;
    if (below_rim < sulcal_depth + a_.cortex_mm && dist_mm < a_.sulcus_half_width_mm + a_.cortex_mm)
      return kGrey;
    return kWhite;
  }

  // The folding field whose zero set is the sulcal sheets.
  float folding(float x, float y, float z) const {
    const float sx = x + 5 * warp_x_(x, y, z), sy = y + 5 * warp_y_(x, y, z),
                sz = z + 5 * warp_z_(x, y, z);
    return sulci_(sx, sy, sz) + 0.45f * sulci_fine_(sx, sy, sz);
  }

  // Deep structures in a nominal-size frame (scaled by the head size).
  Tissue deep(const Vec3& q) const {
    const float inv = 1 / a_.scale;
    const Vec3 n{q[0] * inv, q[1] * inv, q[2] * inv};
    const float vs = a_.ventricle_scale;
    // Lateral ventricles: curved tubes beside the midline, frontal horns anterior (y < 0),
    // diverging and descending towards the horns; septum pellucidum between them.
    const float t = (n[1] - 2) / 30;
    if (std::fabs(t) < 1) {
      const float side = n[0] < 0 ? -1.0f : 1.0f;
      const float xc = side * (3.5f + 2.5f * vs + 7 * t * t), zc = 11 - 12 * t * t;
      const float rx = (2 + 2.5f * vs) * (1 - 0.45f * t * t),
                  rz = (4 + 3.5f * vs) * (1 - 0.5f * t * t);
      if (sq((n[0] - xc) / rx) + sq((n[2] - zc) / rz) < 1) return kCsf;
    }
    if (std::fabs(n[0]) < 1.2f * vs && n[1] > -8 && n[1] < 14 && n[2] > -14 && n[2] < 2)
      return kCsf;
    const float ax = std::fabs(n[0]);
    const Vec3 m{ax, n[1], n[2]};                                       // mirror: nuclei are paired
    if (in_ellipsoid(m, {10, 8, -4}, {7, 12, 8})) return kDeepGrey;     // thalamus
    if (in_ellipsoid(m, {23, -3, -1}, {5, 14, 9})) return kDeepGrey;    // lentiform nucleus
    if (in_ellipsoid(m, {14, -17, 5}, {4.5f, 8, 8})) return kDeepGrey;  // caudate head
    // Interhemispheric fissure (falx) outside the central core (corpus callosum, diencephalon).
    if (ax < 1 + a_.cortex_mm && !in_ellipsoid(n, {0, 4, -6}, {24, 50, 30}))
      return ax < 1 ? kCsf : kGrey;
    return kWhite;
  }

  Anatomy a_;
  ValueNoise lobes_, sulci_, sulci_fine_, sulcal_depth_, warp_x_, warp_y_, warp_z_;
};

// The tumour: a lobulated core (necrosis + enhancing rim, or a solid non-enhancing core with
// occasional enhancing foci), oedema spreading in white matter, and a radial mass effect.
class TumourModel {
 public:
  TumourModel(const Tumour& t, uint64_t key) : t_(t) {
    const float stretch =
        1 / std::min(t.inv_stretch[0], std::min(t.inv_stretch[1], t.inv_stretch[2]));
    reach_ =
        t.radius_mm * stretch * (1 + t.oedema_extent + 1.6f * t.oedema_irregularity * kNoiseClamp);
    sigma_ = t.radius_mm * (1 + t.oedema_extent);
    const float r = std::max(reach_, 3 * sigma_) + 4;
    influence2_ = r * r;
    std::array<float, 3> lo{}, hi{};
    for (int i = 0; i < 3; ++i) lo[i] = t.centre_mm[i] - r, hi[i] = t.centre_mm[i] + r;
    const float rad = t.radius_mm;
    shape_ = ValueNoise(hash2(key, 11), lo, hi, rad * 0.7f);
    shape_fine_ = ValueNoise(hash2(key, 12), lo, hi, rad * 0.3f);
    necrosis_ = ValueNoise(hash2(key, 13), lo, hi, rad * 0.45f);
    oedema_ = ValueNoise(hash2(key, 14), lo, hi, rad * 0.8f);
    oedema_fine_ = ValueNoise(hash2(key, 15), lo, hi, rad * 0.35f);
    patches_ = ValueNoise(hash2(key, 16), lo, hi, 5);
    texture_ = ValueNoise(hash2(key, 17), lo, hi, 3.5f);
  }

  // Within reach of the tumour or its mass effect?
  bool near(const Vec3& q) const {
    return sq(q[0] - t_.centre_mm[0]) + sq(q[1] - t_.centre_mm[1]) + sq(q[2] - t_.centre_mm[2]) <
           influence2_;
  }

  // Where the anatomy now at q was before the tumour pushed it outwards (monotone: 1 - m > 0).
  Vec3 displaced(const Vec3& q) const {
    const Vec3& c = t_.centre_mm;
    const float r2 = sq(q[0] - c[0]) + sq(q[1] - c[1]) + sq(q[2] - c[2]);
    const float k = 1 - t_.mass_effect * std::exp(-r2 / (sigma_ * sigma_));
    return {c[0] + (q[0] - c[0]) * k, c[1] + (q[1] - c[1]) * k, c[2] + (q[2] - c[2]) * k};
  }

  // Tumour tissue at q given the anatomy there; sets *texture to the intensity modulation.
  Tissue classify(const Vec3& q, Tissue anatomy, float* texture) const {
    const Vec3& c = t_.centre_mm;
    const Vec3& is = t_.inv_stretch;
    const float d = std::sqrt(sq((q[0] - c[0]) * is[0]) + sq((q[1] - c[1]) * is[1]) +
                              sq((q[2] - c[2]) * is[2])) /
                    t_.radius_mm;
    if (d * t_.radius_mm > reach_) return anatomy;
    const float lobes = clampf(shape_(q[0], q[1], q[2]) + 0.5f * shape_fine_(q[0], q[1], q[2]),
                               -kNoiseClamp, kNoiseClamp);
    const float shape = d - t_.irregularity * lobes;
    Tissue t = anatomy;
    if (shape < 1) {
      if (t_.necrotic) {
        const float nec = d - 0.6f * t_.irregularity *
                                  clampf(necrosis_(q[0], q[1], q[2]), -kNoiseClamp, kNoiseClamp);
        t = nec < t_.necrosis_fraction ? kNecrosis : kEnhancing;
      } else {
        t = kSolidCore;
        if (t_.enhancing_patches > 0 &&
            patches_(q[0], q[1], q[2]) > 2.4f - 1.3f * t_.enhancing_patches)
          t = kEnhancing;
      }
    } else if (anatomy == kWhite || anatomy == kDeepGrey || shape < 1.12f ||
               (anatomy == kGrey && shape < 1 + 0.3f * t_.oedema_extent)) {
      // Vasogenic oedema tracks along white matter and mostly spares the cortex.
      const float spread =
          clampf(oedema_(q[0], q[1], q[2]) + 0.35f * oedema_fine_(q[0], q[1], q[2]), -2.0f, 2.0f);
      if (d - t_.oedema_irregularity * spread < 1 + t_.oedema_extent && anatomy != kCsf)
        t = kOedema;
    }
    if (t != anatomy) {
      const float amp = t == kNecrosis
                            ? 1.3f * t_.heterogeneity
                            : (t == kOedema ? 0.5f * t_.heterogeneity : t_.heterogeneity);
      *texture = 1 + amp * clampf(texture_(q[0], q[1], q[2]), -2, 2);
    }
    return t;
  }

 private:
  static constexpr float kNoiseClamp = 2.5f;
  Tumour t_;
  float reach_ = 0, sigma_ = 1, influence2_ = 0;
  ValueNoise shape_, shape_fine_, necrosis_, oedema_, oedema_fine_, patches_, texture_;
};

struct Box {
  std::array<int, 3> lo{}, hi{};  // voxel index range [lo, hi)
};

// The voxel box holding the brain, from the rotated ellipsoid's exact half-extents.
Box brain_box(const Anatomy& a, const std::array<int, 3>& size, float spacing) {
  const float grow = 1 + kLobulationClamp * a.lobulation;
  const Vec3 s{a.semi_axes_mm[0] * (1 + a.posterior_widening) * grow, a.semi_axes_mm[1] * grow,
               a.semi_axes_mm[2] * grow};
  Box b;
  for (int i = 0; i < 3; ++i) {
    // rotation is physical → brain; its column i holds the brain axes' components along physical i.
    float h2 = 0;
    for (int j = 0; j < 3; ++j) h2 += sq(a.rotation[size_t(3 * j + i)] * s[j]);
    const float half = std::sqrt(h2), mid = 0.5f * float(size[i] - 1);
    b.lo[i] = std::max(0, int(std::floor((a.centre_mm[i] - half) / spacing + mid)) - 2);
    b.hi[i] = std::min(size[i], int(std::ceil((a.centre_mm[i] + half) / spacing + mid)) + 3);
  }
  return b;
}

// [1 2 1]/4 along `axis` inside the box (edges clamped to the box).
void blur_axis(std::vector<float>& v, const std::array<int, 3>& n, const Box& b, int axis) {
  const size_t stride[3] = {1, size_t(n[0]), size_t(n[0]) * n[1]};
  const int u = (axis + 1) % 3, w = (axis + 2) % 3;
  const int len = b.hi[axis] - b.lo[axis];
  if (len < 3) return;
  std::vector<float> line(static_cast<size_t>(len));
  for (int j = b.lo[w]; j < b.hi[w]; ++j)
    for (int i = b.lo[u]; i < b.hi[u]; ++i) {
      float* base = v.data() + size_t(i) * stride[u] + size_t(j) * stride[w] +
                    size_t(b.lo[axis]) * stride[axis];
      const size_t st = stride[axis];
      for (int k = 0; k < len; ++k) line[size_t(k)] = base[size_t(k) * st];
      base[0] = 0.25f * (3 * line[0] + line[1]);
      for (int k = 1; k + 1 < len; ++k)
        base[size_t(k) * st] =
            0.25f * (line[size_t(k) - 1] + 2 * line[size_t(k)] + line[size_t(k) + 1]);
      base[size_t(len - 1) * st] = 0.25f * (line[size_t(len) - 2] + 3 * line[size_t(len) - 1]);
    }
}

io::Volume empty_volume(const std::array<int, 3>& size, double spacing) {
  io::Volume v;
  v.size = size;
  for (int i = 0; i < 3; ++i) {
    v.spacing_mm[size_t(i)] = spacing;
    v.origin_mm[size_t(i)] = -0.5 * (size[i] - 1) * spacing;
  }
  v.voxels.assign(size_t(v.num_voxels()), 0.0f);
  return v;
}

// Scale · level · texture, blurred, then bias and Rician noise inside the brain; 0 outside.
void shade(const Contrast& c, const std::vector<uint8_t>& tissue, const std::vector<float>& texture,
           const Box& b, float spacing, uint64_t key, io::Volume& out) {
  const std::array<int, 3>& n = out.size;
  std::vector<float>& v = out.voxels;
  for (int z = b.lo[2]; z < b.hi[2]; ++z)
    for (int y = b.lo[1]; y < b.hi[1]; ++y) {
      const size_t row = size_t(n[0]) * (size_t(y) + size_t(n[1]) * z);
      for (int x = b.lo[0]; x < b.hi[0]; ++x)
        v[row + x] = c.scale * c.level[tissue[row + x]] * texture[row + x];
    }
  // Two passes of [1 2 1]/4 = [1 4 6 4 1]/16: a partial-volume point spread of about 1 voxel.
  for (int pass = 0; pass < 2; ++pass)
    for (int axis = 0; axis < 3; ++axis) blur_axis(v, n, b, axis);
  const float sigma = c.noise_fraction * c.scale;
  const auto& k = c.bias;
  const uint64_t key_re = hash2(key, 1), key_im = hash2(key, 2);
  for (int z = b.lo[2]; z < b.hi[2]; ++z) {
    const float pz = (z - 0.5f * (n[2] - 1)) * spacing / 100;
    for (int y = b.lo[1]; y < b.hi[1]; ++y) {
      const float py = (y - 0.5f * (n[1] - 1)) * spacing / 100;
      const size_t row = size_t(n[0]) * (size_t(y) + size_t(n[1]) * z);
      for (int x = b.lo[0]; x < b.hi[0]; ++x) {
        const size_t i = row + x;
        if (tissue[i] == kBackground) {
          v[i] = 0;
          continue;
        }
        const float px = (x - 0.5f * (n[0] - 1)) * spacing / 100;
        const float bias =
            clampf(1 + k[0] * px + k[1] * py + k[2] * pz + k[3] * px * px + k[4] * py * py +
                       k[5] * pz * pz + k[6] * px * py + k[7] * px * pz + k[8] * py * pz,
                   0.6f, 1.6f);
        const float re = v[i] * bias + sigma * gauss_from_hash(hash2(key_re, i));
        const float im = sigma * gauss_from_hash(hash2(key_im, i));
        v[i] = clampf(std::round(std::sqrt(re * re + im * im)), 1, 32767);
      }
    }
  }
}

}  // namespace

TissueMap rasterise(const PatientParams& params, const std::array<int, 3>& size,
                    double spacing_mm) {
  const float spacing = float(spacing_mm);
  const Anatomy& an = params.anatomy;
  const AnatomyModel anatomy(an, hash2(params.key, 100));
  const TumourModel tumour(params.tumour, hash2(params.key, 200));
  const ValueNoise tissue_texture(hash2(params.key, 300), {-120, -120, -120}, {120, 120, 120}, 4);
  const size_t count = size_t(size[0]) * size[1] * size[2];
  TissueMap map;
  map.tissue.assign(count, kBackground);
  map.texture.assign(count, 1.0f);
  const Box box = brain_box(an, size, spacing);
  map.lo = box.lo;
  map.hi = box.hi;
  // q = R (p - centre) is affine in x along a row: start + x · step.
  const auto& r = an.rotation;
  const Vec3 step{r[0] * spacing, r[3] * spacing, r[6] * spacing};
  for (int z = box.lo[2]; z < box.hi[2]; ++z)
    for (int y = box.lo[1]; y < box.hi[1]; ++y) {
      const Vec3 p0{(box.lo[0] - 0.5f * (size[0] - 1)) * spacing - an.centre_mm[0],
                    (y - 0.5f * (size[1] - 1)) * spacing - an.centre_mm[1],
                    (z - 0.5f * (size[2] - 1)) * spacing - an.centre_mm[2]};
      const Vec3 q0 = rotate(r, p0);
      const size_t row = size_t(size[0]) * (size_t(y) + size_t(size[1]) * z);
      for (int x = box.lo[0]; x < box.hi[0]; ++x) {
        const float dx = float(x - box.lo[0]);
        const Vec3 q{q0[0] + dx * step[0], q0[1] + dx * step[1], q0[2] + dx * step[2]};
        const bool near_tumour = tumour.near(q);
        const Vec3 qa = near_tumour ? tumour.displaced(q) : q;
        Tissue t = anatomy.classify(qa);
        if (t == kBackground) continue;
        float tex = 1 + 0.025f * tissue_texture(qa[0], qa[1], qa[2]);
        if (near_tumour) t = tumour.classify(q, t, &tex);
        map.tissue[row + x] = t;
        map.texture[row + x] = tex;
      }
    }
  return map;
}

void render(const PatientParams& params, const std::array<int, 3>& size, double spacing_mm,
            double head_scale, SyntheticPatient& out) {
  // A smaller head is the same head seen through larger voxels.
  const TissueMap map = rasterise(params, size, spacing_mm / head_scale);
  const std::vector<uint8_t>& tissue = map.tissue;
  const Box box{map.lo, map.hi};
  const float spacing = float(spacing_mm);
  const size_t count = tissue.size();
  io::Volume* images[3] = {&out.t1, &out.t2, &out.flair};
  for (int s = 0; s < 3; ++s) {
    *images[s] = empty_volume(size, spacing_mm);
    shade(params.contrast[size_t(s)], tissue, map.texture, box, spacing, hash2(params.key, 400 + s),
          *images[s]);
  }
  out.seg = empty_volume(size, spacing_mm);
  static constexpr float kSegLabel[kNumTissues] = {0, 0, 0, 0, 0, 2, 1, 4, 1};
  for (size_t i = 0; i < count; ++i) out.seg.voxels[i] = kSegLabel[tissue[i]];
}

namespace {

// One dilation step of `in` (0/1): the 6-neighbourhood on even steps, the 3x3x3 box on odd ones,
// so that repeated steps grow an octagon-like ball rather than a cube or a diamond.
std::vector<uint8_t> dilate(const std::vector<uint8_t>& in, const std::array<int, 3>& n, bool box) {
  const size_t stride[3] = {1, size_t(n[0]), size_t(n[0]) * size_t(n[1])};
  std::vector<uint8_t> out = in;
  if (!box) {
    for (int z = 0; z < n[2]; ++z)
      for (int y = 0; y < n[1]; ++y)
        for (int x = 0; x < n[0]; ++x) {
          const size_t i = size_t(x) + stride[1] * size_t(y) + stride[2] * size_t(z);
          if (in[i]) continue;
          const int c[3] = {x, y, z};
          for (int a = 0; a < 3 && !out[i]; ++a)
            out[i] = (c[a] > 0 && in[i - stride[a]]) || (c[a] + 1 < n[a] && in[i + stride[a]]);
        }
    return out;
  }
  // The box is separable: a 3-wide max along each axis in turn.
  for (int a = 0; a < 3; ++a) {
    const std::vector<uint8_t> prev = out;
    for (int z = 0; z < n[2]; ++z)
      for (int y = 0; y < n[1]; ++y)
        for (int x = 0; x < n[0]; ++x) {
          const size_t i = size_t(x) + stride[1] * size_t(y) + stride[2] * size_t(z);
          const int c[3] = {x, y, z};
          if (!prev[i])
            out[i] = (c[a] > 0 && prev[i - stride[a]]) || (c[a] + 1 < n[a] && prev[i + stride[a]]);
        }
  }
  return out;
}

std::vector<uint8_t> grown(std::vector<uint8_t> mask, const std::array<int, 3>& n, int steps) {
  for (int k = 0; k < steps; ++k) mask = dilate(mask, n, k % 2 == 1);
  return mask;
}

}  // namespace

void draw_skull(SyntheticPatient& p, double spacing_mm, uint64_t key) {
  const std::array<int, 3>& n = p.flair.size;
  std::vector<uint8_t> brain(p.flair.voxels.size());
  for (size_t i = 0; i < brain.size(); ++i) brain[i] = p.flair.voxels[i] > 0;
  const int bone_steps = std::max(1, int(std::lround(kSkullBoneMm / spacing_mm)));
  const int scalp_steps = std::max(1, int(std::lround(kSkullScalpMm / spacing_mm)));
  const std::vector<uint8_t> bone = grown(brain, n, bone_steps);
  const std::vector<uint8_t> head = grown(bone, n, scalp_steps);
  // Relative to the image's median brain intensity: cortical bone gives almost no signal; scalp
  // fat is bright on T1 and still bright on T2 and FLAIR.
  static constexpr float kBone[3] = {0.08f, 0.06f, 0.07f}, kScalp[3] = {1.9f, 1.5f, 1.6f};
  io::Volume* images[3] = {&p.t1, &p.t2, &p.flair};
  for (int s = 0; s < 3; ++s) {
    std::vector<float>& v = images[s]->voxels;
    std::vector<float> inside;
    for (size_t i = 0; i < v.size(); ++i)
      if (brain[i]) inside.push_back(v[i]);
    if (inside.empty()) continue;
    std::nth_element(inside.begin(), inside.begin() + long(inside.size() / 2), inside.end());
    const float median = inside[inside.size() / 2];
    const uint64_t k = hash2(key, 500 + uint64_t(s));
    for (size_t i = 0; i < v.size(); ++i) {
      if (brain[i] || !head[i]) continue;
      const float level = (bone[i] ? kBone[s] : kScalp[s]) * median;
      v[i] = clampf(std::round(level * (1 + 0.05f * gauss_from_hash(hash2(k, i)))), 1, 32767);
    }
  }
}

}  // namespace gg::synth::detail
