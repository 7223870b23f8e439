#include "synth/noise.h"

#include <algorithm>

namespace gg::synth::detail {

ValueNoise::ValueNoise(uint64_t key, std::array<float, 3> lo_mm, std::array<float, 3> hi_mm,
                       float cell_mm)
    : lo_(lo_mm), inv_cell_(1.0f / cell_mm) {
  for (int a = 0; a < 3; ++a)
    n_[a] = std::max(2, int(std::ceil((hi_mm[a] - lo_mm[a]) / cell_mm)) + 2);
  values_.resize(size_t(n_[0]) * n_[1] * n_[2]);
  // Smoothstep interpolation shrinks the variance to about 0.41 of the lattice's (0.743 per
  // axis), so the lattice is scaled up to give the field unit standard deviation on average.
  constexpr float kUnitStd = 1.56f;
  for (size_t i = 0; i < values_.size(); ++i)
    values_[i] = kUnitStd * gauss_from_hash(hash2(key, i));
}

}  // namespace gg::synth::detail
