// The public synth API: options, one patient, storage orientations, and the cohort on disk.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>

#include "common/error.h"
#include "common/files.h"
#include "common/progress.h"
#include "synth/noise.h"
#include "synth/phantom.h"
#include "synth/synth.h"

namespace gg::synth {

namespace {

const char* grade_folder(io::Grade g) { return g == io::Grade::kHGG ? "HGG" : "LGG"; }

std::string patient_id(int index, io::Grade grade) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "Synth_%s_%03d", grade_folder(grade), index + 1);
  return buf;
}

std::string fmt_mm(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// Storage variants a scanner or converter might produce: RAS instead of LPS, and sagittal or
// coronal acquisition order (permuted axes), with flips.
const StoredOrientation kReorientations[] = {
    {{0, 1, 2}, {true, true, false}},   // RAS
    {{1, 2, 0}, {false, true, false}},  // sagittal slices: PIL
    {{0, 2, 1}, {true, true, false}},   // coronal slices: RIP
    {{2, 0, 1}, {false, false, true}},  // SLA
};

// Patients reoriented among the first n of a grade: ceil(n · fraction), so the first patient of
// each grade is reoriented whenever fraction > 0 (small test cohorts exercise it too).
int reoriented_count(int n, double fraction) { return int(std::ceil(n * fraction - 1e-9)); }

constexpr const char* kTruthFile = "synth_truth.csv";

struct Job {
  io::Grade grade;
  int index;
};

struct Written {
  io::Case files;  // paths relative to the cohort's root
  TumourPhenotype phenotype;
  std::string orientation;
};

// Writes one patient's four volumes (seg included) under root/<grade>/<id>/.
Written write_patient(const Job& job, const SynthOptions& options, const fs::path& root) {
  const SyntheticPatient p = make_patient(job.index, job.grade, options);
  const StoredOrientation o = stored_orientation(job.index, job.grade, options);
  Written w{{}, p.phenotype, o.name()};
  w.files.id = p.id;
  w.files.grade = p.grade;
  const fs::path folder = fs::path(grade_folder(job.grade)) / p.id;
  fs::create_directories(root / folder);
  const std::pair<const io::Volume*, fs::path*> files[] = {{&p.t1, &w.files.t1},
                                                           {&p.t2, &w.files.t2},
                                                           {&p.flair, &w.files.flair},
                                                           {&p.seg, &w.files.seg}};
  const char* suffix[] = {"t1", "t2", "flair", "seg"};
  for (int i = 0; i < 4; ++i) {
    *files[i].second = folder / (p.id + "_" + suffix[i] + ".nii.gz");
    const fs::path path = root / *files[i].second;
    if (o.is_canonical())
      io::write_volume(*files[i].first, path, /*as_int16=*/true);
    else
      io::write_volume(to_stored_orientation(*files[i].first, o), path, /*as_int16=*/true);
  }
  return w;
}

// The drawn phenotypes, for reading results against the truth (BraTS ships its own CSVs at the
// root too; cohort discovery ignores them).
std::string truth_csv(const std::vector<Written>& written) {
  std::string csv =
      "id,grade,aggressiveness,atypical,necrotic,core_radius_mm,oedema_extent,stored_as\n";
  char buf[256];
  for (const Written& w : written) {
    const TumourPhenotype& t = w.phenotype;
    std::snprintf(buf, sizeof buf, "%s,%s,%.3f,%d,%d,%.1f,%.2f,%s\n", w.files.id.c_str(),
                  grade_folder(w.files.grade), t.aggressiveness, int(t.atypical), int(t.necrotic),
                  t.core_radius_mm, t.oedema_extent, w.orientation.c_str());
    csv += buf;
  }
  return csv;
}

}  // namespace

namespace {

// The smallest spacing at which the grid holds the largest head (with one voxel to spare).
double min_spacing_mm(const std::array<int, 3>& size) {
  const detail::Vec3 half = detail::max_brain_half_extent_mm();
  double s = 0;
  for (int a = 0; a < 3; ++a) s = std::max(s, half[a] / std::max(0.5 * (size[a] - 1) - 1, 0.5));
  return s;
}

// Heads are life-size when the field of view holds them; a slightly small field of view (e.g.
// 240/size spacing on a grid flatter than BraTS's) shrinks the head to fit rather than cutting
// the brain; below kMinHeadScale it is an error.
constexpr double kMinHeadScale = 0.7;
double head_scale(const SynthOptions& o) {
  return std::min(1.0, o.spacing_mm / min_spacing_mm(o.size));
}

// The options one patient depends on.
void validate_patient_options(const SynthOptions& o) {
  if (!(o.difficulty >= 0 && o.difficulty <= 1))
    throw_bad_input("", "--difficulty must be within [0, 1]", "e.g. --difficulty 0.5");
  for (int a = 0; a < 3; ++a)
    if (o.size[a] < 16 || o.size[a] > 1024)
      throw_bad_input("", "--size must be 16..1024 voxels per axis", "e.g. --size 240,240,155");
  if (!(o.spacing_mm > 0)) throw_bad_input("", "the voxel spacing must be > 0 mm");
  if (head_scale(o) < kMinHeadScale)
    throw_bad_input("",
                    "a " + std::to_string(o.size[0]) + "x" + std::to_string(o.size[1]) + "x" +
                        std::to_string(o.size[2]) + " grid of " + fmt_mm(o.spacing_mm) +
                        " mm voxels is too small to hold a head",
                    "use a spacing of at least " +
                        fmt_mm(std::ceil(kMinHeadScale * min_spacing_mm(o.size) * 1000) / 1000) +
                        " mm (default_spacing_mm: " + fmt_mm(default_spacing_mm(o.size)) +
                        " mm) or a larger --size");
}

}  // namespace

double default_spacing_mm(const std::array<int, 3>& size) {
  return std::max({240.0 / size[0], 240.0 / size[1], 155.0 / size[2], min_spacing_mm(size)});
}

void validate(const SynthOptions& o) {
  if (o.lgg < 0 || o.hgg < 0)
    throw_bad_input("", "--lgg and --hgg must be >= 0 (got " + std::to_string(o.lgg) + ", " +
                            std::to_string(o.hgg) + ")");
  if (o.lgg + o.hgg == 0)
    throw_bad_input("", "no patients requested", "set --lgg and/or --hgg above 0");
  if (!(o.reoriented_fraction >= 0 && o.reoriented_fraction <= 1))
    throw_bad_input("", "the reoriented fraction must be within [0, 1]");
  if (o.threads < 0) throw_bad_input("", "--threads must be >= 0 (0: all cores)");
  validate_patient_options(o);
}

SyntheticPatient make_patient(int index, io::Grade grade, const SynthOptions& options) {
  validate_patient_options(options);
  if (grade != io::Grade::kLGG && grade != io::Grade::kHGG)
    throw_bad_input("", "a synthetic patient needs a grade (LGG or HGG)");
  if (index < 0) throw_bad_input("", "patient index must be >= 0");
  const detail::PatientParams params =
      detail::draw_params(options.seed, grade, index, options.difficulty);
  SyntheticPatient p;
  p.id = patient_id(index, grade);
  p.grade = grade;
  p.phenotype = params.phenotype;
  detail::render(params, options.size, options.spacing_mm, head_scale(options), p);
  if (options.skull) detail::draw_skull(p, options.spacing_mm, detail::hash2(params.key, 900));
  return p;
}

bool StoredOrientation::is_canonical() const {
  return axis == std::array<int, 3>{0, 1, 2} && flip == std::array<bool, 3>{false, false, false};
}

std::string StoredOrientation::name() const {
  // The direction each stored axis grows towards: canonical x → L, y → P, z → S.
  static const char kToward[3][2] = {{'L', 'R'}, {'P', 'A'}, {'S', 'I'}};
  std::string s;
  for (int a = 0; a < 3; ++a) s += kToward[axis[a]][flip[a] ? 1 : 0];
  return s;
}

StoredOrientation stored_orientation(int index, io::Grade grade, const SynthOptions& options) {
  const double f = options.reoriented_fraction;
  if (reoriented_count(index + 1, f) == reoriented_count(index, f)) return {};
  const uint64_t h =
      detail::hash2(detail::hash2(options.seed ^ 0x5eed0e1e, uint64_t(grade)), uint64_t(index));
  return kReorientations[h % (sizeof kReorientations / sizeof kReorientations[0])];
}

io::Volume to_stored_orientation(const io::Volume& c, const StoredOrientation& o) {
  io::Volume s;
  const size_t canonical_stride[3] = {1, size_t(c.size[0]), size_t(c.size[0]) * c.size[1]};
  size_t stride[3];  // canonical-index step per stored-index step
  size_t start = 0;  // canonical index of stored voxel (0,0,0)
  s.origin_mm = c.origin_mm;
  for (int a = 0; a < 3; ++a) {
    const int k = o.axis[a];
    s.size[a] = c.size[k];
    s.spacing_mm[a] = c.spacing_mm[k];
    const double sign = o.flip[a] ? -1 : 1;
    for (int r = 0; r < 3; ++r) s.direction[3 * r + a] = sign * c.direction[3 * r + k];
    if (o.flip[a]) {
      start += size_t(c.size[k] - 1) * canonical_stride[k];
      for (int r = 0; r < 3; ++r)
        s.origin_mm[r] += c.direction[3 * r + k] * (c.size[k] - 1) * c.spacing_mm[k];
    }
    stride[a] = canonical_stride[k];
  }
  s.voxels.resize(c.voxels.size());
  size_t out = 0;
  for (int z = 0; z < s.size[2]; ++z)
    for (int y = 0; y < s.size[1]; ++y) {
      // signed offsets: a flipped axis walks backwards through the canonical volume
      const long long base = (long long)start +
                             (o.flip[2] ? -1LL : 1LL) * z * (long long)stride[2] +
                             (o.flip[1] ? -1LL : 1LL) * y * (long long)stride[1];
      const long long step = (o.flip[0] ? -1LL : 1LL) * (long long)stride[0];
      for (int x = 0; x < s.size[0]; ++x) s.voxels[out++] = c.voxels[size_t(base + step * x)];
    }
  return s;
}

std::vector<io::Case> generate_cohort(const fs::path& out_dir, const SynthOptions& options) {
  validate(options);
  StagingDir staging(out_dir);
  std::vector<Job> jobs;
  for (int i = 0; i < options.hgg; ++i) jobs.push_back({io::Grade::kHGG, i});
  for (int i = 0; i < options.lgg; ++i) jobs.push_back({io::Grade::kLGG, i});
  int threads = options.threads > 0 ? options.threads : int(std::thread::hardware_concurrency());
  threads = std::max(1, std::min(threads, int(jobs.size())));

  std::vector<Written> written(jobs.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  Progress progress("synth", int64_t(jobs.size()), "patients", options.show_progress);
  auto worker = [&] {
    for (size_t j = next++; j < jobs.size() && !failed; j = next++) {
      try {
        written[j] = write_patient(jobs[j], options, staging.path());
        progress.tick(1, written[j].files.id);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  progress.done();

  std::sort(written.begin(), written.end(),
            [](const Written& a, const Written& b) { return a.files.id < b.files.id; });
  write_file_atomic(staging.path() / kTruthFile, truth_csv(written));
  staging.commit();
  std::vector<io::Case> cases;
  for (Written& w : written) {
    for (fs::path* f : {&w.files.t1, &w.files.t2, &w.files.flair, &w.files.seg}) *f = out_dir / *f;
    cases.push_back(std::move(w.files));
  }
  return cases;
}

}  // namespace gg::synth
