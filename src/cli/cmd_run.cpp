// `gliomagrade run`: the whole protocol end to end — prepare, split (or K folds), train
// T1/T2/FLAIR, evaluate, report — into one results directory (protocol::run does the work).
#include <fmt/format.h>

#include "cli/command.h"
#include "cli/train_options.h"
#include "cli/world.h"
#include "common/files.h"
#include "protocol/protocol.h"

namespace gg::cli {
namespace {

struct RunArgs {
  protocol::RunOptions options;
  fs::path out = "results";
  std::string split = "patient";
  std::vector<int> synth_size{240, 240, 155};
  TrainOptionStrings strings;
  bool list_tasks = false;
  WorldOptions world;
};

// The executable the --jobs children run: this one (its hidden run-task command).
fs::path this_executable() {
  std::error_code ec;
  return fs::read_symlink("/proc/self/exe", ec);
}

void print_tasks(const protocol::RunOptions& o, const fs::path& out) {
  const auto tasks = protocol::training_tasks(o, out);
  fmt::print(
      "# {} trainings: start each with --task N (e.g. a Slurm array 1-{}), then gather "
      "with --resume\n",
      tasks.size(), tasks.size());
  for (const auto& t : tasks)
    fmt::print("{}\t{}\t{}\n", t.number, protocol::task_label(t), t.bundle.string());
}

void print_end(const protocol::RunSummary& s, const fs::path& out, bool synthetic) {
  if (s.task > 0) {
    fmt::print(
        "{} task {}: the run's other trainings and its scoring are done by `run --resume` "
        "with the same options\n",
        s.completed ? "trained" : "stopped as asked (--stop-after) in", s.task);
    return;
  }
  if (!s.completed) {
    fmt::print("stopped as asked (--stop-after); continue with --resume\n");
    return;
  }
  fmt::print("\n{}\n", s.table_markdown);
  fmt::print("results: {} (report.html, metrics.json, predictions.csv, table.md)\n", out.string());
  if (synthetic)
    fmt::print("note: synthetic cohort: these numbers test the pipeline, not the science.\n");
}

void add_run(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  a->options.train.epochs = 3;  // demo scale: see footer
  a->options.train.freeze_stages = 2;
  auto* c = app.add_subcommand(
      "run", "The whole protocol: prepare, split, train T1/T2/FLAIR, evaluate, report");
  add_cohort_options(c, a->options.cohort, a->synth_size);
  c->add_option("--out", a->out, "Results directory")->capture_default_str();
  c->add_option("--split", a->split,
                "patient: no patient in two parts (default, honest); image: the paper's per-image "
                "split (leaks)")
      ->check(CLI::IsMember({"patient", "image"}))
      ->capture_default_str();
  c->add_option("--split-seed", a->options.split_seed, "Seed of the split (and of the folds)")
      ->capture_default_str();
  c->add_option("--folds", a->options.folds,
                "Patient-level stratified K-fold cross-validation (K >= 2): every patient is "
                "scored once, by models that never saw it (0: one 70/15/15 split)")
      ->capture_default_str();
  c->add_option("--repeats", a->options.repeats,
                "With --folds: repeat the CV with R fold assignments (seeds split-seed .. "
                "split-seed + R - 1) and report mean ± SD over them")
      ->capture_default_str();
  c->add_flag("--resume", a->options.resume,
              "Continue an interrupted run in --out (same options; finished trainings and folds "
              "are reused)");
  c->add_option("-j,--jobs", a->options.jobs,
                "Train N models at once, each in its own process with 1/N of the threads "
                "(their output: OUT/logs/tasks/). 0: all at once if at most 2 per core, else one "
                "per core (at mini-batch 10 one-thread jobs side by side beat one job on all "
                "cores: 3.0x for the demo on 2 cores); 1: one after the other in this process")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  c->add_option("--task", a->options.task,
                "Train only training N of the run (see --tasks) into --out, and stop; several "
                "processes may share --out (e.g. a Slurm array), --resume then gathers them")
      ->check(CLI::PositiveNumber);
  c->add_flag("--tasks", a->list_tasks, "List the run's trainings (for --task) and exit");
  add_train_options(c, a->options.train, a->strings);
  add_world_options(c, a->world);
  c->footer(
      "run defaults to 3 epochs with the stem and inception-3 frozen (--freeze 2) so the built-in\n"
      "demo finishes in minutes on 2 cores; the paper's MATLAB settings are --epochs 6 --freeze "
      "0.\n"
      "With --folds K, out/cv/r<R>/fold<F>/ holds each fold's split, models and predictions;\n"
      "out/predictions.csv pools the out-of-fold predictions (repeat and fold columns) and\n"
      "metrics.json / table.md / report.html give pooled, per-fold and mean ± SD figures.\n"
      "The 3 sequence models (x K folds x R repetitions) are independent trainings: --jobs N\n"
      "trains N at once on one machine; --task N trains one (list them with --tasks), so a\n"
      "cluster can train each as its own job into one --out, and `run --resume` with the same\n"
      "options gathers them and scores. Slurm: sbatch --array=1-15 --wrap 'gliomagrade run DATA\n"
      "--folds 5 --out cv5 --task $SLURM_ARRAY_TASK_ID', then gliomagrade run DATA --folds 5\n"
      "--out cv5 --resume.\n"
      "Data-parallel: torchrun --no_python --standalone --nproc_per_node=N gliomagrade run ...\n"
      "(every training on all ranks; rank 0 prepares the store and scores; see the README).\n"
      "Examples:\n"
      "  gliomagrade run --out results                      synthetic demo\n"
      "  gliomagrade run /data/MICCAI_BraTS_2019_Data_Training --out brats19 --epochs 6 --freeze "
      "0\n"
      "  gliomagrade run DATA --folds 5 --out cv5           honest 5-fold CV by patient\n"
      "  gliomagrade run DATA --split image --out paper     the paper's per-image protocol\n"
      "  gliomagrade audit DATA --out leak                  how much of the paper's figure is "
      "leakage");
  c->callback([a] {
    finish_train_options(a->options.train, a->strings);
    a->options.train.show_progress = !global_options().quiet;
    a->options.show_progress = !global_options().quiet;
    a->options.split_by = data::parse_split_by(a->split);
    finish_cohort_options(a->options.cohort, a->synth_size, a->options.train.seed);
    if (a->list_tasks) return print_tasks(a->options, a->out);
    a->options.total_threads = global_options().threads;
    a->options.task_executable = this_executable();
    const auto comm = join_world(a->world, protocol::run_options_hash(a->options, a->out));
    a->options.comm = comm.get();
    run_on_world(comm.get(), [&] {
      const auto summary = protocol::run(a->options, a->out);
      if (!comm || comm->writer()) print_end(summary, a->out, a->options.cohort.data.empty());
    });
  });
}

// `run-task FILE`: one training of a run, as `run --jobs` hands it to a child process (a typed
// protocol::TaskOrder, not a command line). Hidden: users start single trainings with --task.
void add_run_task(CLI::App& app) {
  auto order_file = std::make_shared<fs::path>();
  auto* c = app.add_subcommand("run-task", "One training of a run, as started by run --jobs");
  c->group("");  // not in --help
  c->add_option("order", *order_file, "The task order file run --jobs wrote")
      ->required()
      ->check(CLI::ExistingFile);
  c->callback([order_file] {
    const auto order = protocol::task_order_from_json(read_file(*order_file), order_file->string());
    print_end(protocol::run(order.options, order.out), order.out,
              order.options.cohort.data.empty());
  });
}

}  // namespace
}  // namespace gg::cli

GG_REGISTER_COMMAND(run, 60, gg::cli::add_run);
// By hand: the macro names the command after a C++ identifier, which cannot hold a '-'.
static ::gg::cli::CommandRegistration gg_command_registration_run_task("run-task", 61,
                                                                       gg::cli::add_run_task);
