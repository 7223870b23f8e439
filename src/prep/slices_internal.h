// prep internals shared by slices.cpp and prepare.cpp (not part of the public API).
#pragma once

#include <cstdint>
#include <vector>

#include "io/background.h"
#include "io/io.h"

namespace gg::prep::internal {

// A brain voxel's value scaled by the volume's percentiles: clip to [low, high], map to [0,1].
float normalise_voxel(float x, float low, float high);

// Axial slice z of a raw volume, normalised with (low, high) and its background (io/background.h;
// null: none) set to 0, resized to size×size (INTER_AREA) and quantised to uint8
// round(255·value). Normalising only the slices that are kept is what makes prepare cheap: the
// whole volume is needed only for its percentiles and background.
std::vector<uint8_t> slice_u8(const io::Volume& v, const io::Background* background, int z,
                              int size, float low, float high);

}  // namespace gg::prep::internal
