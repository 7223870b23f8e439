// `gliomagrade prepare`: a cohort (BraTS folder or manifest CSV) → a slice store: per patient the
// axial slice with the largest tumour area and the slices around it, normalised and resized.
#include <fmt/format.h>

#include <chrono>

#include "cli/command.h"
#include "common/error.h"
#include "io/io.h"
#include "prep/prep.h"

namespace gg::cli {
namespace {

namespace fs = std::filesystem;

struct PrepareArgs {
  fs::path data, out;
  prep::PrepareOptions options;
  int threads = -1;  // -1: the global --threads
};

void print_summary(const prep::SliceStore& store, size_t patients, double seconds) {
  int64_t lgg = 0, hgg = 0, unknown = 0;
  for (size_t i = 0; i < store.items.size(); i += size_t(store.slices_per_patient)) {
    const io::Grade g = store.items[i].grade;
    (g == io::Grade::kLGG ? lgg : g == io::Grade::kHGG ? hgg : unknown) += 1;
  }
  fmt::print(
      "{} slice store for {} patients ({} LGG, {} HGG{}): {} slices × 3 sequences (t1, t2, flair), "
      "{}×{} uint8\n",
      store.reused ? "reused the" : "wrote a", patients, lgg, hgg,
      unknown > 0 ? fmt::format(", {} without grade", unknown) : "", store.items.size(), store.size,
      store.size);
  if (!store.reused)
    fmt::print("took {:.1f} s ({:.2f} patients/s)\n", seconds,
               seconds > 0 ? double(patients) / seconds : 0.0);
  fmt::print("store: {}  (index.csv, t1.u8, t2.u8, flair.u8, store.json)\n", store.dir.string());
  fmt::print("next:  gliomagrade split {} --out split.csv\n", store.dir.string());
}

void add_prepare(CLI::App& app) {
  auto a = std::make_shared<PrepareArgs>();
  auto* c = app.add_subcommand(
      "prepare", "Select, normalise and resize the tumour slices of a cohort into a slice store");
  c->add_option(
       "data", a->data,
       "BraTS 2018/2019 folder (HGG/, LGG/), BraTS 2020 folder (name_mapping.csv) or manifest CSV "
       "(id,grade,t1,t2,flair,seg; paths relative to the CSV)")
      ->required();
  c->add_option("--out", a->out,
                "Slice store directory to write (reused if it holds this very store)")
      ->required();
  c->add_option("--slices", a->options.slices,
                "Slices per patient around the largest tumour slice z*: z*-N/2 .. z*+N/2-1")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  c->add_option("--size", a->options.size, "Output width and height in pixels")
      ->check(CLI::Range(8, 4096))
      ->capture_default_str();
  c->add_option("--low-percentile", a->options.low_percentile,
                "Brain intensities below this percentile are clipped")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  c->add_option("--high-percentile", a->options.high_percentile,
                "Brain intensities above this percentile are clipped")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  c->add_flag("--png", a->options.export_png,
              "Also write each slice as a PNG under STORE/png/<patient>/");
  c->add_option("--threads", a->threads,
                "Patients prepared in parallel (default: the global --threads, 0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  c->footer(
      "Per patient: the axial slice z* with the most tumour voxels (mask label > 0) and the N "
      "slices\n"
      "around it, shifted inward at the volume's edge (the paper's 20 slices: z*-10 .. z*+9).\n"
      "Per volume: brain voxels (nonzero) clipped to their 0.5-99.5th percentiles and scaled to "
      "0..1,\n"
      "background 0; each slice resized to 224×224 (area-correct) and stored as uint8.\n"
      "Volumes are reoriented to LPS+ first; sequences and mask must share one grid.\n"
      "Running again with the same inputs (by content) and options reuses the store.\n"
      "Example:\n"
      "  gliomagrade prepare /data/MICCAI_BraTS_2019_Data_Training --out store --png");
  c->callback([a] {
    prep::PrepareOptions options = a->options;
    options.threads = a->threads >= 0 ? a->threads : global_options().threads;
    options.show_progress = !global_options().quiet;
    const auto cases = io::discover_cohort(a->data);
    const auto t0 = std::chrono::steady_clock::now();
    const prep::SliceStore store = prep::prepare_cohort(cases, a->out, options);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    print_summary(store, cases.size(), seconds);
  });
}

}  // namespace
}  // namespace gg::cli

GG_REGISTER_COMMAND(prepare, 20, gg::cli::add_prepare);
