// prepare_cohort: cases → slice store, parallel over patients, streamed, atomic.
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "common/files.h"
#include "common/progress.h"
#include "common/version.h"
#include "io/mask.h"
#include "prep/prep.h"
#include "prep/slices_internal.h"
#include "prep/store_internal.h"

namespace gg::prep {

namespace {

int resolve_threads(int requested, int64_t work) {
  int n = requested > 0 ? requested : static_cast<int>(std::thread::hardware_concurrency());
  return static_cast<int>(std::clamp<int64_t>(n, 1, std::max<int64_t>(1, work)));
}

// Runs body(i) for i in [0, n) on `threads` threads. A failure stops the others from taking new
// work; the exception of the lowest failing index is rethrown, so that the error a user sees does
// not depend on thread timing (indices are taken in order, and a taken one runs to completion).
void parallel_for(int64_t n, int threads, const std::function<void(int64_t)>& body) {
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  int64_t error_index = n;
  std::mutex error_mutex;
  auto worker = [&] {
    for (int64_t i; !failed && (i = next++) < n;) {
      try {
        body(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        failed = true;
        if (i < error_index) error_index = i, error = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

// Rethrows a file-less error from the per-volume helpers with the file it concerns.
[[noreturn]] void rethrow_for(const Error& e, const fs::path& file) {
  throw Error(e.code(), file.string(), e.problem(), e.fix());
}

std::string fmt_triple(const std::array<double, 3>& a) {
  std::ostringstream s;
  s << a[0] << "," << a[1] << "," << a[2];
  return s.str();
}

// What differs between two grids, for the error message.
std::string grid_difference(const io::Volume& v, const io::Volume& ref) {
  if (v.size != ref.size)
    return "size " + std::to_string(v.size[0]) + "x" + std::to_string(v.size[1]) + "x" +
           std::to_string(v.size[2]) + " vs " + std::to_string(ref.size[0]) + "x" +
           std::to_string(ref.size[1]) + "x" + std::to_string(ref.size[2]);
  for (int i = 0; i < 3; ++i)
    if (std::abs(v.spacing_mm[i] - ref.spacing_mm[i]) > 1e-3)
      return "spacing " + fmt_triple(v.spacing_mm) + " vs " + fmt_triple(ref.spacing_mm) + " mm";
  for (int i = 0; i < 3; ++i)
    if (std::abs(v.origin_mm[i] - ref.origin_mm[i]) > 1e-3)
      return "origin " + fmt_triple(v.origin_mm) + " vs " + fmt_triple(ref.origin_mm) + " mm";
  return "direction differs";
}

void validate(const std::vector<io::Case>& cases, const PrepareOptions& o) {
  if (o.slices < 1) throw_bad_input("", "--slices must be at least 1", "use e.g. --slices 20");
  if (o.size < 8 || o.size > 4096)
    throw_bad_input("", "--size must be between 8 and 4096", "use --size 224");
  if (!(o.low_percentile >= 0 && o.low_percentile < o.high_percentile && o.high_percentile <= 100))
    throw_bad_input("", "percentiles must satisfy 0 <= low < high <= 100", "use 0.5 and 99.5");
  if (cases.empty())
    throw_bad_input("", "no patients to prepare", "give a cohort with at least one patient");
  for (size_t i = 0; i < cases.size(); ++i) {
    const io::Case& c = cases[i];
    if (c.seg.empty())
      throw_bad_input(c.t1.parent_path().string(), "patient " + c.id + " has no mask (seg)",
                      "prepare needs each patient's tumour segmentation to choose its slices");
    if (i > 0 && c.id == cases[i - 1].id)
      throw_bad_input(c.t1.parent_path().string(), "duplicate patient id '" + c.id + "'",
                      "give every patient a unique id");
  }
}

struct InputHashes {
  std::array<std::string, 4> sha256;  // t1, t2, flair, seg
};

const fs::path& input_path(const io::Case& c, int k) {
  return k < 3 ? c.sequence_path(io::kSequences[size_t(k)]) : c.seg;
}

std::string store_key(const std::vector<io::Case>& cases, const std::vector<InputHashes>& hashes,
                      const PrepareOptions& o) {
  // Everything that shapes the store's content (PNGs included: a store asked for with --png must
  // have them), nothing that does not (threads, progress, where the inputs are).
  std::ostringstream s;
  s.precision(17);
  s << "gliomagrade-slice-store " << internal::kStoreFormatVersion << "\nslices " << o.slices
    << "\nsize " << o.size << "\npercentiles " << o.low_percentile << " " << o.high_percentile
    << "\npng " << o.export_png << "\n";
  for (size_t i = 0; i < cases.size(); ++i) {
    s << cases[i].id << " " << io::grade_name(cases[i].grade);
    for (const auto& h : hashes[i].sha256) s << " " << h;
    s << "\n";
  }
  return sha256_hex(s.str());
}

struct CaseResult {
  int z_start = 0;
  int centre = 0;
  std::array<int, 3> size{0, 0, 0};  // the grid of the four volumes
  std::array<double, 3> spacing_mm{0, 0, 0};
};

// One patient: reads and checks the four volumes one at a time, writes its rows.
CaseResult process_case(const io::Case& c, int64_t index, const fs::path& staging,
                        const PrepareOptions& o) {
  io::Volume grid = io::read_volume(c.seg);
  const std::string mask_notice = io::read_mask_labels(grid, c.seg);
  if (!mask_notice.empty() && o.show_progress)
    fmt::print(stderr, "notice: {}: {}\n", c.id, mask_notice);
  CaseResult r;
  r.centre = largest_tumour_slice(grid);
  try {
    r.z_start = window_start(r.centre, o.slices, grid.size[2]);
  } catch (const Error& e) {
    rethrow_for(e, c.seg);
  }
  grid.voxels = {};  // keep the geometry only
  r.size = grid.size, r.spacing_mm = grid.spacing_mm;
  const int64_t row_bytes = int64_t(o.size) * o.size;
  std::vector<uint8_t> rows;
  for (io::Sequence seq : io::kSequences) {
    const fs::path& path = c.sequence_path(seq);
    const io::Volume v = io::read_volume(path);
    if (!io::same_grid(v, grid))
      throw_bad_input(
          path.string(),
          "is not on the mask's grid (" + grid_difference(v, grid) + "; mask " + c.seg.string() +
              ")",
          "the three sequences and the mask must be co-registered on one grid (BraTS files are)");
    io::check_intensities(v, path);
    try {
      rows = slice_window_u8(v, r.z_start, o.slices, o.size, o.low_percentile, o.high_percentile);
    } catch (const Error& e) {
      rethrow_for(e, path);
    }
    for (int k = 0; o.export_png && k < o.slices; ++k) {
      const fs::path png = staging / "png" / c.id /
                           (std::string(io::sequence_name(seq)) + "_r" + std::to_string(k) + "_z" +
                            std::to_string(r.z_start + k) + ".png");
      fs::create_directories(png.parent_path());
      const cv::Mat image(o.size, o.size, CV_8U, rows.data() + long(k) * row_bytes);
      if (!cv::imwrite(png.string(), image)) throw_runtime(png.string(), "cannot write PNG");
    }
    internal::write_rows(tensor_path(staging, seq), index * o.slices, o.slices, row_bytes,
                         rows.data());
  }
  return r;
}

nlohmann::json store_json(const std::vector<io::Case>& cases,
                          const std::vector<InputHashes>& hashes,
                          const std::vector<CaseResult>& results, const std::string& key,
                          const PrepareOptions& o) {
  nlohmann::json inputs = nlohmann::json::array();
  for (size_t i = 0; i < cases.size(); ++i) {
    nlohmann::json files;
    for (int k = 0; k < 4; ++k)
      files[k < 3 ? io::sequence_name(io::kSequences[size_t(k)]) : "seg"] = {
          {"path", fs::absolute(input_path(cases[i], k)).string()},
          {"sha256", hashes[i].sha256[size_t(k)]}};
    inputs.push_back({{"id", cases[i].id},
                      {"grade", io::grade_name(cases[i].grade)},
                      {"largest_tumour_slice", results[i].centre},
                      {"first_slice", results[i].z_start},
                      {"size", results[i].size},
                      {"spacing_mm", results[i].spacing_mm},
                      {"files", files}});
  }
  return {{"format", "gliomagrade-slice-store"},
          {"version", internal::kStoreFormatVersion},
          {"key", key},
          {"options",
           {{"slices", o.slices},
            {"size", o.size},
            {"low_percentile", o.low_percentile},
            {"high_percentile", o.high_percentile},
            {"dtype", "uint8"},
            {"resize", "INTER_AREA"},
            {"orientation", "LPS+ (ITK identity direction)"}}},
          {"patients", cases.size()},
          {"items", int64_t(cases.size()) * o.slices},
          {"gliomagrade_version", kVersion},
          {"opencv_version", CV_VERSION},
          {"inputs", inputs}};
}

}  // namespace

SliceStore prepare_cohort(const std::vector<io::Case>& cases_in, const fs::path& out_dir,
                          const PrepareOptions& options) {
  std::vector<io::Case> cases = cases_in;
  std::stable_sort(cases.begin(), cases.end(),
                   [](const io::Case& a, const io::Case& b) { return a.id < b.id; });
  validate(cases, options);
  check_output_dir(out_dir, internal::kStoreMarker);
  const auto n = static_cast<int64_t>(cases.size());
  const int threads = resolve_threads(options.threads, n);

  std::vector<InputHashes> hashes(cases.size());
  parallel_for(n * 4, threads, [&](int64_t j) {
    hashes[size_t(j / 4)].sha256[size_t(j % 4)] =
        sha256_file(input_path(cases[size_t(j / 4)], int(j % 4)));
  });
  const std::string key = store_key(cases, hashes, options);

  const bool have_store = fs::exists(out_dir / internal::kStoreMarker);
  if (have_store) {
    try {
      SliceStore existing = open_slice_store(out_dir);
      if (existing.key == key) {
        existing.reused = true;
        return existing;
      }
    } catch (const Error&) {
      // A damaged store of ours: rebuilt below.
    }
  }

  StagingDir staging(out_dir, /*replace_existing=*/have_store);
  for (io::Sequence seq : io::kSequences)
    internal::create_tensor_file(tensor_path(staging.path(), seq), n * options.slices, options.size,
                                 options.size);
  std::vector<CaseResult> results(cases.size());
  {
    Progress progress("prepare", n, "patients", options.show_progress);
    parallel_for(n, threads, [&](int64_t i) {
      results[size_t(i)] = process_case(cases[size_t(i)], i, staging.path(), options);
      progress.tick(1, cases[size_t(i)].id);
    });
    progress.done();
  }

  SliceStore store;
  store.dir = out_dir;
  store.size = options.size;
  store.slices_per_patient = options.slices;
  store.key = key;
  for (size_t i = 0; i < cases.size(); ++i) {
    for (int k = 0; k < options.slices; ++k)
      store.items.push_back({cases[i].id, cases[i].grade, results[i].z_start + k, k});
    store.geometry[cases[i].id] = {results[i].size, results[i].spacing_mm};
  }
  write_file_atomic(staging.path() / "index.csv", internal::index_csv(store.items, options.size));
  // store.json last: its presence marks a complete store.
  write_file_atomic(staging.path() / internal::kStoreMarker,
                    store_json(cases, hashes, results, key, options).dump(2) + "\n");
  staging.commit();
  return store;
}

}  // namespace gg::prep
