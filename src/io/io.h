// io: reading and writing MR volumes and discovering cohorts on disk.
//
// Canonical orientation: every volume returned by read_volume() is resampled-free reoriented
// (axes permuted and flipped, never interpolated) to ITK's identity direction, i.e. LPS+:
// index x grows towards patient Left, y towards Posterior, z towards Superior. BraTS files are
// already stored this way. "Axial slice z" therefore means the same plane for every file.
// Oblique directions are snapped to the nearest axes (as ITK's OrientImageFilter does).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace gg::io {

namespace fs = std::filesystem;

// A 3-D scalar volume in canonical orientation. Voxel (x, y, z) is voxels[x + nx*(y + ny*z)].
struct Volume {
  std::array<int, 3> size{0, 0, 0};  // nx, ny, nz
  std::array<double, 3> spacing_mm{1, 1, 1};
  std::array<double, 3> origin_mm{0, 0, 0};  // physical position of voxel (0,0,0), LPS
  // Row-major; column c is the physical direction of axis c. Identity after read_volume (close to
  // it for an oblique file, whose axes are snapped, not resampled).
  std::array<double, 9> direction{1, 0, 0, 0, 1, 0, 0, 0, 1};
  std::vector<float> voxels;

  int64_t num_voxels() const { return int64_t(size[0]) * size[1] * size[2]; }
  float at(int x, int y, int z) const {
    return voxels[size_t(x) + size_t(size[0]) * (size_t(y) + size_t(size[1]) * size_t(z))];
  }
  float& at(int x, int y, int z) {
    return voxels[size_t(x) + size_t(size[0]) * (size_t(y) + size_t(size[1]) * size_t(z))];
  }
};

// How read_volume chooses among the series of a DICOM directory.
struct VolumeReadOptions {
  // SeriesInstanceUIDs to choose from: a directory holding several series reads the one listed
  // here. Several UIDs may be listed (e.g. one per sequence, each in its own directory); a
  // directory holding exactly one series reads it whether or not it is listed.
  std::vector<std::string> series_uids;
};

// Reads a 3-D volume of any scalar voxel type as float, reoriented to the canonical orientation,
// from a file (NIfTI-1 .nii/.nii.gz, NRRD, MHA, anything ITK reads) or a DICOM series directory
// (see read_dicom_series).
// Throws gg::Error(kBadInput) naming the file when it is missing, unreadable, truncated, not an
// image, not 3-D (2-D or 4-D with more than one volume), or not scalar; when its geometry is not
// finite (spacing must be finite and > 0, origin and direction finite); for a NIfTI-2 file (ITK
// 5.2 reads NIfTI-1 only). Does not otherwise check values, with one exception: NIfTI float files
// holding NaN/Inf are rejected here (kBadInput, "N voxels are NaN or infinite"), because the NIfTI
// library would silently turn them into 0. Nothing is printed: NIfTI headers that the NIfTI
// library would complain about on stderr are refused before it sees them.
Volume read_volume(const fs::path& path, const VolumeReadOptions& options = {});

// DICOM series directories ---------------------------------------------------------------------
struct DicomSeries {
  std::string uid;          // SeriesInstanceUID (0020,000E)
  std::string description;  // SeriesDescription (0008,103E), may be empty
  int slices = 0;           // files in the series
};
// The series in `dir` (not recursive), by SeriesInstanceUID. Empty when it holds no DICOM file.
std::vector<DicomSeries> list_dicom_series(const fs::path& dir);

// Reads one series of `dir` (chosen as VolumeReadOptions says): slices sorted along the slice
// normal, geometry from ImagePositionPatient/ImageOrientationPatient/PixelSpacing, voxels with
// RescaleSlope/Intercept applied, then reoriented as read_volume does.
// Throws gg::Error(kBadInput) naming `dir` (or the slice file) when: it holds no DICOM file;
// it holds several series and none (or more than one) is chosen (the message lists each UID,
// SeriesDescription and slice count); a slice cannot be read or has no position; slices differ in
// size or orientation; the positions show a gantry tilt, a missing slice (a gap, naming the files
// on both sides), duplicate positions, or non-uniform spacing: the volume is never warped.
Volume read_dicom_series(const fs::path& dir, const VolumeReadOptions& options = {});

// Writes `volume` as a DICOM MR series, one file per axial slice (dir/slice0001.dcm, ...), voxels
// rounded to int16, with the volume's spacing, origin and direction as PixelSpacing,
// ImagePositionPatient and ImageOrientationPatient, and the given SeriesInstanceUID and
// SeriesDescription. For tests and demos: not a conformant scanner export (no patient data).
// Throws gg::Error(kRuntime) when a file cannot be written.
void write_dicom_series(const Volume& volume, const fs::path& dir, const std::string& series_uid,
                        const std::string& description);

// Writes a volume (format from the extension, .nii.gz compressed). `as_int16` stores rounded
// int16 voxels (as BraTS does), otherwise float32. The volume's direction is written as given,
// so tests and `synth` can store non-canonical orientations. Atomic (temp file + rename).
void write_volume(const Volume& volume, const fs::path& path, bool as_int16);

// Geometry equality as DESIGN.md defines it: same size, spacing within 1e-3 mm, same direction
// (within 1e-3), origin within 1e-3 mm. False when any of these values is NaN or infinite.
bool same_grid(const Volume& a, const Volume& b);

// Value checks: throws gg::Error(kBadInput) naming `path` when any voxel is NaN/Inf, or when the
// volume is constant (every voxel equal).
void check_intensities(const Volume& v, const fs::path& path);

// Mask checks: labels that io::read_mask_labels (io/mask.h) reads (BraTS 0/1/2/4, binary, BraTS
// 2015's 3, float in [0, 1]) and at least one tumour voxel; `seg` is left as it is.
void check_mask(const Volume& seg, const fs::path& path);

enum class Grade { kUnknown, kLGG, kHGG };
const char* grade_name(Grade g);          // "LGG", "HGG", "" for unknown
Grade parse_grade(const std::string& s);  // "LGG"/"HGG" (any case) or "" -> kUnknown; else throws

enum class Sequence { kT1 = 0, kT2 = 1, kFlair = 2 };
inline constexpr std::array<Sequence, 3> kSequences{Sequence::kT1, Sequence::kT2, Sequence::kFlair};
const char* sequence_name(Sequence s);          // "t1", "t2", "flair"
const char* sequence_label(Sequence s);         // "T1", "T2", "FLAIR": for people to read
Sequence parse_sequence(const std::string& s);  // "t1"/"T1"/"t2"/"flair"/"FLAIR"; else throws

// One patient's files. seg may be empty (prediction without a mask).
struct Case {
  std::string id;
  Grade grade = Grade::kUnknown;
  fs::path t1, t2, flair, seg;
  // Post-contrast T1 (BraTS "t1ce"), optional: with it, predict and segment run the DeepMedic
  // tumour segmentation. Empty when absent.
  fs::path t1ce;
  const fs::path& sequence_path(Sequence s) const;
};

// Finds the cases under `root`, which is one of:
//  - a BraTS 2018/2019 folder: root/{HGG,LGG}/<ID>/<ID>_{t1,t1ce,t2,flair,seg}.nii[.gz] (t1ce and
//    seg optional);
//  - a BraTS 2020 folder: root/<ID>/<ID>_*.nii.gz plus root/name_mapping.csv (columns include
//    Grade and BraTS_2020_subject_ID);
//  - a manifest CSV file: header id,grade,t1,t2,flair,seg (optional columns: t1ce; seg); paths
//    relative to the CSV's folder; empty t1ce or seg fields for patients without;
//    grade LGG/HGG or empty; a path may be a volume file or a DICOM series directory.
// Cases are sorted by id. Checks only that files exist (not their content).
// Throws gg::Error(kBadInput) naming the path for: an unrecognised layout, a missing sequence
// file, duplicate patient ids, a malformed manifest row (with its line number).
std::vector<Case> discover_cohort(const fs::path& root);

}  // namespace gg::io

// Resampling (predict) ----------------------------------------------------------------------
// Added for `gliomagrade predict` (src/io/resample.cpp): sequences of one session stored on
// different grids are brought onto one reference grid in physical space. No registration: the
// scanner's geometry (origin, spacing, direction) is trusted.
namespace gg::io {

enum class Interpolation {
  kLinear,   // images: trilinear
  kNearest,  // label maps (masks): nearest neighbour, labels stay labels
};

// True when the physical bounding boxes (voxel centres ± half a voxel) of a and b intersect in a
// region of positive volume.
bool extents_overlap(const Volume& a, const Volume& b);

// `moving` resampled onto `reference`'s grid (size, spacing, origin, direction of reference;
// reference's voxels are not used). Points outside moving's extent get 0 (background).
// Throws gg::Error(kBadInput) naming moving_path when the physical extents do not overlap
// (different sessions or a wrong header), with reference_path in the message.
Volume resample_to_grid(const Volume& moving, const Volume& reference, Interpolation interpolation,
                        const fs::path& moving_path, const fs::path& reference_path);

// A short human description of how two grids differ ("size 240x240x155 vs 256x256x160,
// spacing 1x1x1 vs 0.9x0.9x1 mm"), for notices and errors.
std::string describe_grid_difference(const Volume& a, const Volume& b);

}  // namespace gg::io
