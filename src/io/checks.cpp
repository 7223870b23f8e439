// Geometry and value checks, and the grade/sequence names.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "common/error.h"
#include "io/io.h"
#include "io/mask.h"

namespace gg::io {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

}  // namespace

bool same_grid(const Volume& a, const Volume& b) {
  constexpr double kTolerance = 1e-3;
  // Written as !(difference <= tolerance) so that NaN, which compares false with everything,
  // means "not the same grid" (and Inf - Inf is NaN).
  auto close = [](double x, double y) { return std::abs(x - y) <= kTolerance; };
  if (a.size != b.size) return false;
  for (size_t i = 0; i < 3; ++i) {
    if (!close(a.spacing_mm[i], b.spacing_mm[i])) return false;
    if (!close(a.origin_mm[i], b.origin_mm[i])) return false;
  }
  for (size_t i = 0; i < 9; ++i)
    if (!close(a.direction[i], b.direction[i])) return false;
  return true;
}

void check_intensities(const Volume& v, const fs::path& path) {
  if (v.voxels.empty())
    throw_bad_input(path.string(), "volume has no voxels", "give a non-empty volume");
  int64_t non_finite = 0;
  for (float x : v.voxels) non_finite += !std::isfinite(x);
  if (non_finite > 0)
    throw_bad_input(path.string(), std::to_string(non_finite) + " voxels are NaN or infinite",
                    "fix or re-export the volume (NaN/Inf usually come from a failed conversion)");
  const auto [lo, hi] = std::minmax_element(v.voxels.begin(), v.voxels.end());
  if (*lo == *hi)
    throw_bad_input(path.string(),
                    "volume is constant (every voxel is " + std::to_string(*lo) + ")",
                    "check this is the right file: an MR volume has varying intensities");
}

void check_mask(const Volume& seg, const fs::path& path) {
  Volume copy = seg;
  read_mask_labels(copy, path);
}

const char* grade_name(Grade g) {
  switch (g) {
    case Grade::kLGG:
      return "LGG";
    case Grade::kHGG:
      return "HGG";
    case Grade::kUnknown:
      break;
  }
  return "";
}

Grade parse_grade(const std::string& s) {
  const std::string t = lower(trim(s));
  if (t.empty()) return Grade::kUnknown;
  if (t == "lgg") return Grade::kLGG;
  if (t == "hgg") return Grade::kHGG;
  throw_bad_input("", "unknown grade '" + s + "'", "use LGG or HGG (or leave it empty)");
}

const char* sequence_name(Sequence s) {
  switch (s) {
    case Sequence::kT1:
      return "t1";
    case Sequence::kT2:
      return "t2";
    case Sequence::kFlair:
      return "flair";
  }
  return "";
}

const char* sequence_label(Sequence s) {
  switch (s) {
    case Sequence::kT1:
      return "T1";
    case Sequence::kT2:
      return "T2";
    case Sequence::kFlair:
      return "FLAIR";
  }
  return "";
}

Sequence parse_sequence(const std::string& s) {
  const std::string t = lower(trim(s));
  if (t == "t1") return Sequence::kT1;
  if (t == "t2") return Sequence::kT2;
  if (t == "flair") return Sequence::kFlair;
  throw_bad_input("", "unknown sequence '" + s + "'", "use t1, t2 or flair");
}

const fs::path& Case::sequence_path(Sequence s) const {
  switch (s) {
    case Sequence::kT1:
      return t1;
    case Sequence::kT2:
      return t2;
    case Sequence::kFlair:
      return flair;
  }
  return t1;
}

}  // namespace gg::io
