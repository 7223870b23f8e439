// `gliomagrade predict`: grade new patients with a trained bundle: P(HGG) per sequence, both
// votes, the slices used and how they were chosen, Grad-CAM overlays and a one-page summary.
#include <fmt/format.h>

#include <map>

#include "cli/command.h"
#include "cli/train_options.h"
#include "common/csv.h"
#include "common/error.h"
#include "common/files.h"
#include "common/progress.h"
#include "infer/infer.h"

namespace gg::cli {
namespace {

namespace fs = std::filesystem;

struct PredictArgs {
  fs::path t1, t1ce, t2, flair, seg, cohort, model, out;
  std::string id;
  std::vector<std::string> series;  // --series [SEQ=]UID
  int slice = -1;
  bool no_mask = false, no_gradcam = false, keep_going = false, strict = false;
  infer::PredictOptions options;
  std::string device = "cpu";
};

std::vector<io::Case> cases_of(const PredictArgs& a) {
  if (!a.cohort.empty()) {
    if (!a.t1.empty() || !a.t1ce.empty() || !a.t2.empty() || !a.flair.empty() || !a.seg.empty() ||
        a.slice >= 0 || !a.id.empty() || !a.options.brain_mask.empty())
      throw CLI::ValidationError(
          "--cohort",
          "give either --cohort or one patient's --t1/--t2/--flair [--t1ce] [--seg] [--slice] "
          "[--id] [--brain-mask]");
    return io::discover_cohort(a.cohort);
  }
  if (a.t1.empty() || a.t2.empty() || a.flair.empty())
    throw CLI::ValidationError("--t1/--t2/--flair",
                               "give all three sequences of one patient, or --cohort DATA");
  io::Case c;
  c.id = a.id.empty() ? infer::id_from_path(a.flair) : a.id;
  c.t1 = a.t1, c.t1ce = a.t1ce, c.t2 = a.t2, c.flair = a.flair, c.seg = a.seg;
  return {c};
}

// --series UID applies to every input; --series flair=UID to one (for sequences stored as
// several series of one DICOM directory).
std::array<io::VolumeReadOptions, 4> series_options(const std::vector<std::string>& values) {
  std::array<io::VolumeReadOptions, 4> out;
  const char* const names[] = {"t1", "t2", "flair", "seg"};
  for (const std::string& value : values) {
    const auto eq = value.find('=');
    const std::string uid = eq == std::string::npos ? value : value.substr(eq + 1);
    if (uid.empty()) throw CLI::ValidationError("--series", "empty SeriesInstanceUID");
    bool matched = eq == std::string::npos;
    for (size_t i = 0; i < 4; ++i)
      if (eq == std::string::npos || value.compare(0, eq, names[i]) == 0) {
        out[i].series_uids.push_back(uid);
        matched = true;
      }
    if (!matched)
      throw CLI::ValidationError("--series",
                                 "'" + value.substr(0, eq) + "=' is not t1=, t2=, flair= or seg=");
  }
  return out;
}

std::string one_line(const infer::PatientPrediction& p) {
  return fmt::format(
      "{}: {} (hard vote {}/3 HGG, soft P(HGG) {:.2f}); P(HGG) T1 {:.2f} T2 {:.2f} FLAIR {:.2f}; "
      "slices {}-{} ({}{}){}",
      p.id, io::grade_name(p.grade), int(std::lround(p.vote_hard_score * 3)), p.vote_soft,
      p.sequences[0].p_hgg, p.sequences[1].p_hgg, p.sequences[2].p_hgg, p.z_start,
      p.z_start + p.slices - 1, infer::slice_choice_name(p.choice),
      p.choice == infer::SliceChoice::kAuto
          ? fmt::format(", confidence {:.2f}", p.location.confidence)
          : "",
      p.quality.flags.empty() ? ""
                              : fmt::format(" [quality: {}]", fmt::join(p.quality.flags, ", ")));
}

void add_predict(CLI::App& app) {
  auto a = std::make_shared<PredictArgs>();
  auto* c = app.add_subcommand(
      "predict", "Grade new patients (LGG/HGG) with a trained bundle, with Grad-CAM overlays");
  c->add_option("--t1", a->t1, "T1 volume of one patient (NIfTI/NRRD/MHA file or DICOM directory)");
  c->add_option("--t1ce", a->t1ce,
                "Post-contrast T1 (optional): with it and no --seg, the tumour is segmented "
                "(DeepMedic, `gliomagrade segment`) and the window centred on its largest slice");
  c->add_option("--t2", a->t2, "T2 volume");
  c->add_option("--flair", a->flair,
                "FLAIR volume: the reference grid (T1/T2 on other grids are resampled into it)");
  c->add_option("--seg", a->seg,
                "Tumour mask (labels 0,1,2,4) on the FLAIR grid; without it the tumour is located "
                "automatically");
  c->add_option("--id", a->id, "Patient id for the outputs (default: from the FLAIR file name)");
  c->add_option(
       "--slice", a->slice,
       "Centre axial slice (canonical LPS+ index), overriding mask and automatic localisation")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--series", a->series,
                "DICOM: the SeriesInstanceUID to read from an input directory holding several "
                "series (the error lists them); SEQ=UID (t1=, t2=, flair=, seg=) for one input "
                "only; repeatable")
      ->type_name("[SEQ=]UID");
  c->add_option("--cohort", a->cohort,
                "Many patients: a BraTS folder or manifest CSV (id,grade,t1,t2,flair,seg; "
                "optional t1ce)");
  c->add_option("--locate", a->options.locate,
                "Without --slice or a mask: auto (DeepMedic when the patient has a T1ce, else the "
                "FLAIR heuristic), deepmedic (T1ce required), heuristic")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, infer::Locate>{{"auto", infer::Locate::kAuto},
                                               {"deepmedic", infer::Locate::kDeepMedic},
                                               {"heuristic", infer::Locate::kHeuristic}},
          CLI::ignore_case))
      ->default_str("auto");
  c->add_option("--deepmedic-model", a->options.deepmedic_model,
                "DeepMedic model folder (default: $GLIOMAGRADE_DEEPMEDIC, else "
                "weights/deepmedic-brats-captk in ../shared)");
  c->add_option("--model", a->model,
                "Model bundle (model.json + t1.pt, t2.pt, flair.pt) from `train` or `run`")
      ->required();
  c->add_option(
      "--out", a->out,
      "Output directory: predictions.csv and <id>/{prediction.json, summary.png, gradcam_*.png}; "
      "without it the JSON goes to stdout (an array for --cohort) and the verdicts to stderr");
  c->add_flag("--no-mask", a->no_mask,
              "Ignore masks (e.g. a BraTS folder's seg files) and locate the tumour automatically");
  c->add_flag(
      "--resample-mask", a->options.resample_mask,
      "Resample a mask on another grid into FLAIR's (nearest neighbour) instead of refusing it");
  c->add_option("--brain-mask", a->options.brain_mask,
                "Brain mask of one patient (HD-BET, SynthStrip, FSL BET; > 0 = brain): voxels "
                "outside it are set to 0 on the FLAIR grid, as in BraTS (resampled nearest "
                "neighbour if on another grid)");
  c->add_flag(
      "--keep-grid", [a](int64_t) { a->options.resample_to_training_grid = false; },
      "Work on the FLAIR grid as given instead of resampling it to the bundle's training "
      "grid (its spacing and field of view, recorded in model.json; BraTS: 1 mm, 240 mm "
      "across)");
  c->add_flag(
      "--no-register", [a](int64_t) { a->options.register_sequences = false; },
      "A T1/T2 on another grid than FLAIR is resampled into it in physical space only "
      "(trusting the headers) instead of being registered rigidly to FLAIR (Mattes "
      "mutual information; the transform and its quality go to prediction.json, an "
      "overlay to registration.png)");
  add_device_option(c, a->device);
  c->add_flag("--strict", a->strict,
              "An input that raises a quality flag (prediction.json \"quality\") is an error "
              "(exit 3) and nothing is written for it");
  c->add_flag("--no-gradcam", a->no_gradcam, "Skip the Grad-CAM heatmaps (faster)");
  c->add_flag("--keep-going", a->keep_going,
              "With --cohort: a patient with bad input is reported (stderr, failed.csv) and "
              "skipped instead of stopping; the others are graded and the exit code is 3");
  c->add_option("--batch", a->options.batch_size, "Slices per forward pass")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  c->footer(
      "The centre slice is --slice, else the mask's largest tumour slice, else (with --t1ce) the\n"
      "largest slice of the DeepMedic segmentation, else the largest 3-D FLAIR hyperintensity\n"
      "inside the brain, grown to the lesion's extent (reported with a confidence); the bundle's\n"
      "window of slices\n"
      "around it (20: z-10..z+9) is prepared as `prepare` does. Per sequence P(HGG) is the mean "
      "over\n"
      "the window; the grade is the hard majority vote of T1, T2, FLAIR (the paper's), the soft "
      "vote\n"
      "(mean P(HGG)) is reported beside it. Grad-CAM: Selvaraju et al., ICCV 2017. Research use "
      "only.\n"
      "Examples:\n"
      "  gliomagrade predict --t1 P_t1.nii.gz --t2 P_t2.nii.gz --flair P_flair.nii.gz --model "
      "results/model --out pred\n"
      "  gliomagrade predict --cohort results/cohort --model results/model --out pred --no-mask");
  c->callback([a] {
    const std::vector<io::Case> cases = cases_of(*a);
    a->options.slice = a->slice;
    a->options.series = series_options(a->series);
    a->options.use_mask = !a->no_mask;
    a->options.grad_cam = !a->no_gradcam;
    a->options.segmentation.skip_background_tiles = true;  // as `segment` does by default
    a->options.segmentation.show_progress = !global_options().quiet;
    if (!a->out.empty()) check_output_dir(a->out, "predictions.csv");
    const infer::Predictor predictor(a->model, a->device);
    std::unique_ptr<StagingDir> stage;
    if (!a->out.empty()) stage = std::make_unique<StagingDir>(a->out, true);
    std::vector<infer::PatientPrediction> all;
    Progress progress("predict", int64_t(cases.size()), "patients",
                      !global_options().quiet && cases.size() > 1);
    // Without --out, stdout is JSON alone (one object, or an array of them for --cohort) so that
    // it can be piped; the one-line verdicts then go to stderr.
    const bool json_to_stdout = !stage;
    const bool json_array = json_to_stdout && !a->cohort.empty();
    std::FILE* verdicts = json_to_stdout ? stderr : stdout;
    if (json_array) fmt::print("[\n");
    std::vector<std::pair<std::string, Error>> failed;  // patient id, why
    for (const io::Case& patient : cases) {
      infer::PatientPrediction p;
      try {
        p = predictor.predict(patient, a->options);
        if (a->strict && !p.quality.flags.empty())
          throw_bad_input(patient.flair.string(),
                          fmt::format("quality flags raised ({}): {}",
                                      fmt::join(p.quality.flags, ", "), p.quality.summary),
                          "grade it without --strict to see the outputs with the warning");
      } catch (const Error& e) {
        if (!a->keep_going || e.code() != ExitCode::kBadInput) throw;
        fmt::print(stderr, "skipped {}: {}\n", patient.id, format_error(e));
        failed.emplace_back(patient.id, e);
        progress.tick();
        continue;
      }
      if (stage)
        infer::write_patient_outputs(p, a->model, stage->path() / p.id);
      else
        fmt::print("{}{}", json_array && !all.empty() ? ",\n" : "",
                   infer::prediction_json(p, a->model));
      std::fflush(stdout);
      for (const auto& notice : p.notices) fmt::print(stderr, "notice: {}: {}\n", p.id, notice);
      fmt::print(verdicts, "{}\n", one_line(p));
      for (auto& s : p.sequences) s.centre_slice = {}, s.heatmap = {};  // keep the numbers only
      all.push_back(std::move(p));
      progress.tick();
    }
    progress.done();
    if (json_array) fmt::print("]\n");
    if (stage) {
      write_file_atomic(stage->path() / "predictions.csv", infer::predictions_csv(all));
      if (!failed.empty()) {
        std::string csv = "id,file,problem,fix\n";
        for (const auto& [id, e] : failed)
          csv += csv_line({id, e.file(), e.problem(), e.fix()}) + "\n";
        write_file_atomic(stage->path() / "failed.csv", csv);
      }
      stage->commit();
      fmt::print("results: {}\n", a->out.string());
    }
    if (!failed.empty())
      throw Error(
          ExitCode::kBadInput, "",
          fmt::format("{} of {} patients could not be graded{}", failed.size(), cases.size(),
                      stage ? " (listed in " + (a->out / "failed.csv").string() + ")" : ""),
          "mend their inputs (each was reported above) and predict them again");
  });
}

}  // namespace
}  // namespace gg::cli

GG_REGISTER_COMMAND(predict, 70, gg::cli::add_predict);
