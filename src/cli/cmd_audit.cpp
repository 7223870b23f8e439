// `gliomagrade audit`: how much of an image-level split's figure is leakage — the paper's split,
// the patient-level one, and both with grades shuffled per patient (protocol::audit).
#include <fmt/format.h>

#include <algorithm>

#include "cli/command.h"
#include "cli/train_options.h"
#include "cli/world.h"
#include "protocol/protocol.h"

namespace gg::cli {
namespace {

struct AuditArgs {
  protocol::AuditOptions options;
  fs::path out = "audit";
  std::vector<int> synth_size{240, 240, 155};
  TrainOptionStrings strings;
};

// The built-in demo must finish in under 15 minutes on 2 cores (5.5 min measured on a quiet
// 2-core EPYC): 12 trainings (4 protocols x 3 sequences). These apply only where the user did
// not set the option.
constexpr int kDemoSlices = 10, kDemoEpochs = 3, kDemoFreeze = 3;

void add_audit(CLI::App& app) {
  auto a = std::make_shared<AuditArgs>();
  a->options.train.epochs = 3;
  a->options.train.freeze_stages = 2;
  auto* c = app.add_subcommand(
      "audit",
      "Leakage audit: the paper's image-level split vs the patient-level split, each also with "
      "grades shuffled per patient");
  add_cohort_options(c, a->options.cohort, a->synth_size);
  c->add_option("--out", a->out, "Results directory (audit.md, audit.json, audit.png)")
      ->capture_default_str();
  c->add_option("--split-seed", a->options.split_seed,
                "Seed of the splits and of the per-patient grade shuffle")
      ->capture_default_str();
  c->add_option("--folds", a->options.folds,
                "Run (b) and (d) as patient-level K-fold cross-validation (0: one split)")
      ->capture_default_str();
  c->add_flag("--resume", a->options.resume,
              "Continue an interrupted audit in --out (same options)");
  add_train_options(c, a->options.train, a->strings);
  c->footer(fmt::format(
      "Four protocols on one cohort and seed, three models (T1, T2, FLAIR) each:\n"
      "  (a) the paper's image-level split     (b) the patient-level split (or --folds K CV)\n"
      "  (c) (a) with grades shuffled per patient   (d) (b) with the same shuffled grades\n"
      "With shuffled grades the images say nothing about the labels: (d) must sit at chance,\n"
      "and whatever (c) scores above it is memory of patients seen in training. audit.md states\n"
      "the inflation a - b, the control c vs d with a test of c against chance, and how many of\n"
      "(a)'s test patients have slices in training.\n"
      "With no DATA the built-in synthetic cohort is used, with demo settings that finish in "
      "about\n"
      "6 minutes on 2 cores (unless given: --slices {}, --epochs {}, --freeze {}, and validation\n"
      "once per epoch).\n"
      "Examples:\n"
      "  gliomagrade audit --out audit                          synthetic demo\n"
      "  gliomagrade audit /data/MICCAI_BraTS_2019_Data_Training --out leak --epochs 6 --freeze "
      "0",
      kDemoSlices, kDemoEpochs, kDemoFreeze));
  c->callback([a, c] {
    refuse_world("audit");
    auto& o = a->options;
    if (o.cohort.data.empty()) {
      std::string note;
      auto demo = [&](const char* flag, int& value, int demo_value) {
        if (c->count(flag) > 0) return;
        value = demo_value;
        note += fmt::format("{}{} {}", note.empty() ? "" : ", ", flag, demo_value);
      };
      demo("--slices", o.cohort.slices, kDemoSlices);
      demo("--epochs", o.train.epochs, kDemoEpochs);
      demo("--freeze", o.train.freeze_stages, kDemoFreeze);
      // Validation once per epoch instead of four times: it cost as much as the training.
      const int per_epoch =
          std::max(1, int(0.7 * (o.cohort.synth.lgg + o.cohort.synth.hgg) * o.cohort.slices) /
                          o.train.batch_size);
      demo("--validate-every", o.train.validate_every, per_epoch);
      if (!note.empty())
        o.demo_note =
            "built-in demo settings so that the audit finishes in minutes on 2 cores: " + note +
            " (override any of them on the command line)";
    }
    finish_train_options(o.train, a->strings);
    o.train.show_progress = !global_options().quiet;
    o.show_progress = !global_options().quiet;
    finish_cohort_options(o.cohort, a->synth_size, o.train.seed);
    const auto summary = protocol::audit(o, a->out);
    if (!summary.completed) {
      fmt::print("stopped as asked (--stop-after); continue with --resume\n");
      return;
    }
    fmt::print("\n{}\nresults: {} (audit.md, audit.json, audit.png)\n", summary.markdown,
               a->out.string());
  });
}

}  // namespace
}  // namespace gg::cli

GG_REGISTER_COMMAND(audit, 65, gg::cli::add_audit);
