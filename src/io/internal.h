// Shared by the io/*.cpp files only (not part of the io API). ITK-free, like io.h.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>

#include "io/io.h"

namespace gg::io::detail {

// The stored image's geometry as the reader reports it. d(r, c): component r of the direction
// of stored axis c (ITK's direction matrix).
struct StoredGeometry {
  std::array<int64_t, 3> size{};
  std::array<double, 3> spacing{}, origin{};
  std::array<double, 9> direction{};
  double d(int r, int c) const { return direction[size_t(r * 3 + c)]; }
};

// Throws kBadInput naming `path` unless spacing is finite and > 0 and origin and direction are
// finite: a NaN spacing would pass every later comparison, a negative one would be resampled.
void check_geometry(const StoredGeometry& g, const fs::path& path);

// The stored float voxels (x fastest, in stored order) reoriented to the canonical orientation.
Volume canonical_volume(const StoredGeometry& g, const float* stored, const fs::path& path);

// NIfTI checks done on the raw header bytes, before ITK sees the file, for what the NIfTI
// library would otherwise repair silently, print to stderr, or abort the process on (a NaN in
// the sform): dimensions, datatype, spacing, qform/sform values, and NIfTI-2 (which ITK 5.2's
// NIfTI reader cannot read). No-op for files that are not .nii/.nii.gz.
void check_nifti_header(const fs::path& path);
// Then, after ITK accepted the header: the voxel data is complete and float data is finite.
void check_nifti_data(const fs::path& path);

// "1 x 2.5 x nan" (shortest round-trip-ish formatting, for messages).
std::string format_triple(const std::array<double, 3>& v);

}  // namespace gg::io::detail
