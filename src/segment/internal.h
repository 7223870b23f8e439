// Internal to gg::segment: preprocessing and DeepMedic's tiling, exposed for tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gg::segment::detail {

// CaPTk's z-score of one channel (preprocess.cpp). `name` names the volume in errors. The brain is
// what `background` (1 = background, per voxel) leaves; without one, CaPTk's voxels > 0.
std::vector<float> zscore_like_captk(const std::vector<float>& voxels, const std::string& name,
                                     const std::vector<uint8_t>* background = nullptr);

// Starts of DeepMedic's segments along an axis of `size` voxels, for segments of `segment` voxels
// moving by `stride` (sampling.py getCoordsOfAllSegmentsOfAnImage: the last one ends at the edge).
std::vector<int> segment_starts(int size, int segment, int stride);

// For a subsampled pathway with factor f: the source index (or -1: fill) of each of the `part`
// voxels of its segment along one axis, for a normal segment starting at `start` that classifies
// `out` voxels, in an axis of `size` voxels (sampling.py
// getImagePartFromSubsampledImageForTraining, including its shift of the samples where the part
// starts before the image).
std::vector<int> subsampled_indices(int start, int out, int receptive_field, int f, int part,
                                    int size);

}  // namespace gg::segment::detail
