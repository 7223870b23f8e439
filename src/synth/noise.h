// synth internals: deterministic random numbers and smooth random fields for the phantom.
// Everything is a pure function of a 64-bit key, so a patient never depends on thread scheduling.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

namespace gg::synth::detail {

// SplitMix64's finaliser: a strong 64-bit mix, used as a counter-based generator.
inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
inline uint64_t hash2(uint64_t key, uint64_t i) { return mix64(key ^ mix64(i)); }

// Approximately standard normal from one hash: Irwin–Hall sum of four 16-bit uniforms (variance
// 1/3, rescaled). Tails end at ±3.46, which is fine for image noise and much cheaper than
// Box–Muller per voxel.
inline float gauss_from_hash(uint64_t h) {
  const float sum =
      float(h & 0xFFFF) + float((h >> 16) & 0xFFFF) + float((h >> 32) & 0xFFFF) + float(h >> 48);
  return (sum * (1.0f / 65535.0f) - 2.0f) * 1.7320508f;
}

// A smooth random field of unit standard deviation (on average) in 3-D: Gaussian values on a
// lattice of `cell_mm` spacing covering [lo, hi] mm, interpolated with smoothstep weights.
// Points outside the box are clamped to its faces.
class ValueNoise {
 public:
  ValueNoise() = default;
  ValueNoise(uint64_t key, std::array<float, 3> lo_mm, std::array<float, 3> hi_mm, float cell_mm);

  float operator()(float x, float y, float z) const {
    const float fx = clamp_cell((x - lo_[0]) * inv_cell_, n_[0]);
    const float fy = clamp_cell((y - lo_[1]) * inv_cell_, n_[1]);
    const float fz = clamp_cell((z - lo_[2]) * inv_cell_, n_[2]);
    const int ix = int(fx), iy = int(fy), iz = int(fz);
    const float tx = smooth(fx - ix), ty = smooth(fy - iy), tz = smooth(fz - iz);
    const float* v = values_.data() + ix + size_t(n_[0]) * (iy + size_t(n_[1]) * iz);
    const size_t sy = size_t(n_[0]), sz = size_t(n_[0]) * n_[1];
    const float c00 = v[0] + tx * (v[1] - v[0]);
    const float c10 = v[sy] + tx * (v[sy + 1] - v[sy]);
    const float c01 = v[sz] + tx * (v[sz + 1] - v[sz]);
    const float c11 = v[sz + sy] + tx * (v[sz + sy + 1] - v[sz + sy]);
    const float c0 = c00 + ty * (c10 - c00), c1 = c01 + ty * (c11 - c01);
    return c0 + tz * (c1 - c0);
  }

 private:
  static float smooth(float t) { return t * t * (3.0f - 2.0f * t); }
  // Keeps the cell index in [0, n-2] so the 2×2×2 neighbourhood is always inside the lattice.
  static float clamp_cell(float f, int n) {
    const float hi = float(n - 1) - 1e-4f;
    return f < 0.0f ? 0.0f : (f > hi ? hi : f);
  }

  std::array<float, 3> lo_{0, 0, 0};
  float inv_cell_ = 1;
  std::array<int, 3> n_{2, 2, 2};
  std::vector<float> values_ = std::vector<float>(8, 0.0f);
};

}  // namespace gg::synth::detail
