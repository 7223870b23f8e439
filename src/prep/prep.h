// prep: from patient volumes to the slice store that training, evaluation and prediction read.
//
// Per patient: the axial slice z* with the largest tumour area (mask label > 0) and the
// `slices` adjacent slices z*-slices/2 ... z*+slices/2-1 (z*-10 ... z*+9 for 20), shifted inward
// at the volume's edge; per volume and sequence, brain voxels (not background: io/background.h)
// clipped to their [0.5, 99.5] percentiles and scaled to [0,1] (background stays 0); each slice
// resized to size×size (area-correct) and stored as uint8 0..255. The store is variant-independent:
// the model's input layer applies its own convention (BGR/mean or ImageNet mean/std, 3 channels).
//
// Slice store on disk (a directory, written atomically):
//   index.csv     row,patient,grade,sequence,z,rank,offset: one line per (item, sequence),
//                 items in order, each item's three sequences together. Item `row` is row `row`
//                 of every sequence's tensor file (at byte `offset` in it); z is the axial slice
//                 in canonical (LPS+) orientation, rank 0..slices-1 its position in the window;
//   t1.u8, t2.u8, flair.u8   a 32-byte header (magic "GGSLICE1", uint32 version 1, uint32 0,
//                 int64 N, int32 H, int32 W, little-endian) then N×H×W uint8, row-major, image
//                 rows running anterior→posterior and columns patient right→left (radiological);
//   store.json    key, options, per-input sha256, counts, versions;
//   png/          only with export_png: png/<patient>/<sequence>_r<rank>_z<z>.png.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "io/io.h"

namespace gg::io {
struct Background;  // io/background.h
}

namespace gg::prep {

namespace fs = std::filesystem;

struct PrepareOptions {
  int slices = 20;  // window depth around the largest tumour slice (the paper's 20)
  int size = 224;   // output width = height (GoogLeNet's input)
  double low_percentile = 0.5, high_percentile = 99.5;  // of brain (non-background) voxels
  int threads = 0;                                      // 0: hardware concurrency
  bool export_png = false;  // also write viewable PNGs under <store>/png/
  bool show_progress = true;
};

// One (patient, rank-in-window) item. items are ordered by patient id then rank; item i is row i
// of every sequence's tensor file, so the three sequences share one item order.
struct SliceItem {
  std::string patient;
  io::Grade grade;
  int z;
  int rank;
};

struct SliceStore {
  fs::path dir;
  int size = 224;
  int slices_per_patient = 20;
  std::vector<SliceItem> items;
  // Per patient, the grid its volumes were on (store.json; empty for stores written before 0.2).
  struct Geometry {
    std::array<int, 3> size{0, 0, 0};
    std::array<double, 3> spacing_mm{0, 0, 0};
  };
  std::map<std::string, Geometry> geometry;
  std::string key;      // sha256 of the inputs' contents, ids, grades and the options that shape it
  bool reused = false;  // prepare_cohort found this store already built with the same key
};

// Voxels with label > 0 in each axial slice z (size nz).
std::vector<int64_t> tumour_area_per_slice(const io::Volume& seg);

// argmax of tumour_area_per_slice (the first on ties). Throws kBadInput (no file) if the mask is
// empty.
int largest_tumour_slice(const io::Volume& seg);

// First z of the `count`-slice window around `centre` (centre-count/2 ... centre+count/2-1, i.e.
// z*-10..z*+9 for 20), shifted inward at the volume's edge. Throws kBadInput if count < 1 or
// count > depth.
int window_start(int centre, int count, int depth);

// The low and high percentiles (0..100, linear interpolation between order statistics) of the
// brain voxels: those not in the volume's background (io::find_background: 0 in BraTS, the
// negative constant of a z-scored scan, ...). Throws kBadInput (no file) if there are no brain
// voxels or they are all equal.
std::pair<float, float> brain_percentiles(const io::Volume& v, double low_percentile,
                                          double high_percentile);
// The same with the background already found.
std::pair<float, float> brain_percentiles(const io::Volume& v, const io::Background& background,
                                          double low_percentile, double high_percentile);

// Per-volume normalisation: brain voxels clipped to [p_low, p_high] percentiles and scaled to
// [0,1]; background (io::find_background) becomes 0. Returns a new volume. Throws as
// brain_percentiles(). An increasing affine map of the input's intensities (z-scoring inside the
// brain) gives the same result up to float rounding.
io::Volume normalise_intensities(const io::Volume& v, double low_percentile,
                                 double high_percentile);

// One axial slice z of a normalised volume resized to size×size (area-correct: OpenCV
// INTER_AREA), as uint8 round(255·value), row-major (row = y, column = x).
std::vector<uint8_t> axial_slice_u8(const io::Volume& normalised, int z, int size);

// The model input of one sequence: axial slices z_start .. z_start+count-1 of a raw volume,
// normalised by its brain percentiles (as normalise_intensities), each resized to size×size
// (as axial_slice_u8), concatenated (count × size × size bytes). The one code path by which
// prepare fills the store and predict feeds the models, so the two cannot drift apart. Throws
// as brain_percentiles(), and std::out_of_range for a window outside the volume.
std::vector<uint8_t> slice_window_u8(const io::Volume& v, int z_start, int count, int size,
                                     double low_percentile, double high_percentile);

// The whole tumour (label > 0) of a mask at axial slice z, resized to size×size as the store's
// slices are (area resize), kept where at least half of a pixel is tumour: 1 inside, 0 outside.
// Takes the mask by value (pass it with std::move when done with it).
std::vector<uint8_t> tumour_slice_mask(io::Volume seg, int z, int size);

// Reads, checks, normalises and slices every case; writes (or reuses, if its key matches) the
// store at out_dir. Every case needs a mask (seg) to locate the tumour. Checks per case: readable
// 3-D volumes, the three sequences and the mask on one grid, mask labels in {0,1,2,4} and not
// empty, finite and non-constant intensities; the first failure is a kBadInput error naming its
// file, and nothing is left at out_dir. out_dir must be absent, empty, or a slice store (which is
// replaced unless its key matches). Parallel over patients (options.threads) with a Progress
// line; patients are streamed (memory does not grow with the cohort).
SliceStore prepare_cohort(const std::vector<io::Case>& cases, const fs::path& out_dir,
                          const PrepareOptions& options);

// Opens a store written by prepare_cohort. Throws kBadInput naming the file if one is missing or
// corrupt (bad header, wrong size, index inconsistent with the tensor files).
SliceStore open_slice_store(const fs::path& dir);

// Path of a sequence's tensor file in a store: <dir>/<t1|t2|flair>.u8.
fs::path tensor_path(const fs::path& dir, io::Sequence seq);

// Copies rows `indices` of sequence `seq` (uint8, size*size bytes each) into out, in order.
// out must hold indices.size()*size*size bytes. Throws kBadInput naming the file if it cannot be
// read, and std::out_of_range for an index outside [0, items.size()).
void read_slices(const SliceStore& store, io::Sequence seq, const std::vector<int64_t>& indices,
                 uint8_t* out);

// What a bundle was trained on, to compare a new patient with (predict's quality flags): the
// training patients' grids and, per sequence, the distribution of their window's intensities
// after normalisation (what the models saw).
inline constexpr int kIntensityBins = 32;
struct IntensityProfile {
  // Mean over the patients of each one's normalised histogram of its window's brain pixels
  // (stored value > 0), kIntensityBins bins over 1..255.
  std::vector<double> histogram;
  // Each patient's histogram_distance to that mean: the largest and the 95th percentile.
  double max_distance = 0, p95_distance = 0;
};
struct DataProfile {
  int patients = 0;
  bool has_geometry = false;                        // false for stores that did not record grids
  std::array<double, 3> spacing_mm{0, 0, 0};        // median per axis
  std::array<double, 3> field_of_view_mm{0, 0, 0};  // median of size x spacing per axis
  double max_spacing_mm = 0;                        // the coarsest axis of any patient
  std::array<IntensityProfile, 3> intensity;        // T1, T2, FLAIR
};
// Normalised histogram (sums to 1; all zero without brain pixels) of the pixels > 0 of `n` bytes.
std::vector<double> intensity_histogram(const uint8_t* pixels, size_t n);
// Earth mover's distance between two normalised histograms of kIntensityBins bins, in units of
// the normalised intensity range (0: identical, 1: all mass at opposite ends).
double histogram_distance(const std::vector<double>& a, const std::vector<double>& b);
// The profile of `patients` (ids of the store; e.g. a split's training part).
DataProfile profile_patients(const SliceStore& store, const std::vector<std::string>& patients);
std::string data_profile_to_json(const DataProfile& profile);  // a JSON object
// Throws kBadInput naming `source` for malformed JSON.
DataProfile data_profile_from_json(const std::string& json_text, const std::string& source);

}  // namespace gg::prep
