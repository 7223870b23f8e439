// `gliomagrade synth`: a seeded synthetic glioma cohort in the BraTS 2019 layout, the stand-in
// for BraTS where no real cohort can be had (phantom and phenotypes: src/synth/synth.h).
#include <fmt/format.h>

#include <chrono>
#include <memory>

#include "cli/command.h"
#include "common/error.h"
#include "synth/synth.h"

namespace {

namespace fs = std::filesystem;
using gg::synth::SynthOptions;

struct SynthArgs {
  fs::path out;
  SynthOptions options;
  std::vector<int> size{240, 240, 155};
  double spacing_mm = 0;  // 0: default_spacing_mm(size)
  bool preview = false;
  fs::path preview_out;
  int threads = -1;  // -1: the global --threads
};

// The first few patients of each grade, alternating, for the contact sheet.
std::vector<gg::synth::SyntheticPatient> preview_patients(const SynthOptions& o) {
  std::vector<gg::synth::SyntheticPatient> patients;
  for (int i = 0; i < 3; ++i)
    for (gg::io::Grade g : {gg::io::Grade::kLGG, gg::io::Grade::kHGG})
      if (i < (g == gg::io::Grade::kLGG ? o.lgg : o.hgg))
        patients.push_back(gg::synth::make_patient(i, g, o));
  return patients;
}

void run_synth(SynthArgs a) {
  if (a.size.size() != 3)
    gg::throw_bad_input("", "--size needs three numbers", "e.g. --size 240,240,155");
  SynthOptions& o = a.options;
  o.size = {a.size[0], a.size[1], a.size[2]};
  o.spacing_mm = a.spacing_mm > 0 ? a.spacing_mm : gg::synth::default_spacing_mm(o.size);
  const auto& global = gg::cli::global_options();
  o.threads = a.threads >= 0 ? a.threads : global.threads;
  o.show_progress = !global.quiet;
  if (!a.preview_out.empty()) a.preview = true;
  if (a.preview && a.preview_out.empty()) a.preview_out = a.out / "preview.png";

  const auto start = std::chrono::steady_clock::now();
  const std::vector<gg::io::Case> cases = gg::synth::generate_cohort(a.out, o);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int reoriented = 0;
  for (const auto& c : cases) {
    const int index = std::stoi(c.id.substr(c.id.size() - 3)) - 1;
    reoriented += !gg::synth::stored_orientation(index, c.grade, o).is_canonical();
  }
  if (a.preview) gg::synth::write_preview(preview_patients(o), a.preview_out);

  fmt::print("synth: {} patients ({} LGG, {} HGG) written to {} in {:.1f} s\n", cases.size(), o.lgg,
             o.hgg, a.out.string(), seconds);
  fmt::print(
      "  grid {}x{}x{}, {:.4g} mm voxels, seed {}, difficulty {:.2f}; {} stored in another "
      "orientation\n",
      o.size[0], o.size[1], o.size[2], o.spacing_mm, o.seed, o.difficulty, reoriented);
  fmt::print("  drawn phenotypes (ground truth): {}\n", (a.out / "synth_truth.csv").string());
  if (a.preview) fmt::print("  preview: {}\n", a.preview_out.string());
}

void add_synth(CLI::App& app) {
  auto a = std::make_shared<SynthArgs>();
  auto* c = app.add_subcommand(
      "synth",
      "Write a seeded synthetic glioma cohort (T1, T2, FLAIR, seg) in the BraTS 2019 layout");
  c->add_option("--out", a->out,
                "New or empty folder to write OUT/{HGG,LGG}/<id>/<id>_{t1,t2,flair,seg}.nii.gz to")
      ->required();
  c->add_option("--lgg", a->options.lgg,
                "Number of low-grade patients (BraTS 2019's 76:259 ratio, scaled)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  c->add_option("--hgg", a->options.hgg, "Number of high-grade patients")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  c->add_option("--seed", a->options.seed, "Random seed: the same seed gives the same cohort")
      ->capture_default_str();
  c->add_option(
       "--difficulty", a->options.difficulty,
       "Overlap of the grades' phenotypes: 0 trivially separable, 0.5 about 10% of patients look "
       "like "
       "the other grade (a perfect reader of the phenotype reaches AUC ~0.9), 1 heavy overlap")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  c->add_option("--size", a->size,
                "Grid X,Y,Z in voxels (BraTS: 240,240,155; small grids make fast tests)")
      ->delimiter(',')
      ->expected(3)
      ->check(CLI::Range(16, 1024));
  c->add_option("--spacing", a->spacing_mm,
                "Voxel size in mm (default: the BraTS 240x240x155 mm field of view over --size, 1 "
                "mm at full size)")
      ->check(CLI::PositiveNumber);
  c->add_option("--reoriented", a->options.reoriented_fraction,
                "Fraction of patients stored in another orientation (RAS, sagittal or coronal "
                "order); reading "
                "them back exercises reorientation")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  c->add_flag("--skull", a->options.skull,
              "Draw the head as before skull-stripping: a dark bone shell and a bright scalp shell "
              "around the brain (to test predict's skull-stripping check)");
  c->add_flag("--preview", a->preview,
              "Also write OUT/preview.png: tumour slices of a few patients per grade");
  c->add_option("--preview-out", a->preview_out,
                "Write the preview PNG here instead (implies --preview)");
  c->add_option("--threads", a->threads,
                "Patients written in parallel (default: the global --threads, 0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  c->footer(
      "Example:\n"
      "  gliomagrade synth --out cohort --lgg 14 --hgg 46 --seed 1 --preview\n"
      "  gliomagrade synth --out tiny --lgg 2 --hgg 2 --size 64,64,40     (3.9 mm voxels, for "
      "tests)\n"
      "Each patient: skull-stripped brain (background 0; --skull adds bone and scalp) with "
      "WM/GM/CSF contrasts as in real T1, "
      "T2,\n"
      "FLAIR, bias field and Rician noise; HGG tumours larger, irregular, necrotic with an "
      "enhancing\n"
      "rim and wide oedema, LGG smaller, rounder, homogeneous with little oedema. Seg labels "
      "0/1/2/4.\n"
      "Same seed, same cohort, whatever --threads. OUT/synth_truth.csv lists the drawn "
      "phenotypes.");
  c->callback([a] { run_synth(*a); });
}

}  // namespace

GG_REGISTER_COMMAND(synth, 10, add_synth);
