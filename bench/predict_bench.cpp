// predict latency for one patient: 3 sequences × 20 slices at BraTS size (240×240×155), with and
// without Grad-CAM (issue 5's benchmark).
//
//   bench_predict [--benchmark_filter=...]
//       (GG_BENCH_DIR=<tmp>, GLIOMAGRADE_WEIGHTS=<caffemodel>, GG_BENCH_THREADS=0: all cores)
//
//  - Warm: a Predictor (bundle loaded once) grades patients one after another in one process,
//    as `predict --cohort` does: the time per iteration is the latency per patient (reading the
//    three volumes, normalising, 60 forward passes, Grad-CAM on 3 slices).
//  - Cold: `gliomagrade predict` for one patient as a new process (process start, bundle load,
//    the same work, writing the JSON, PNG summary and overlays).
// Inputs are made once into GG_BENCH_DIR (default <tmp>/gg-predict-bench): 4 synthetic patients
// (2 LGG, 2 HGG) and an untrained bundle (ImageNet GoogLeNet + fresh 2-class heads, same cost as a
// trained one). The BVLC weights come from GLIOMAGRADE_WEIGHTS or ../shared/weights beside the
// source tree (found from this executable's path: <source>/<build>/bench/bench_predict).
#include <benchmark/benchmark.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "common/error.h"
#include "infer/infer.h"
#include "model/model.h"
#include "synth/synth.h"
#include "train/train.h"

namespace {

namespace fs = std::filesystem;

fs::path self_dir() { return fs::read_symlink("/proc/self/exe").parent_path(); }  // <build>/bench

fs::path bvlc_weights() {
  if (const char* e = std::getenv("GLIOMAGRADE_WEIGHTS")) return e;
  return self_dir().parent_path().parent_path().parent_path() /
         "shared/weights/bvlc_googlenet.caffemodel";
}

fs::path bench_dir() {
  if (const char* e = std::getenv("GG_BENCH_DIR")) return e;
  return fs::temp_directory_path() / "gg-predict-bench";
}

struct Inputs {
  std::vector<gg::io::Case> cases;
  fs::path bundle;
};

const Inputs& inputs() {
  static const Inputs in = [] {
    Inputs x;
    const fs::path dir = bench_dir();
    x.bundle = dir / "bundle";
    if (!fs::exists(x.bundle / "model.json")) {
      auto net = gg::model::load_pretrained(gg::model::Variant::kBvlc, bvlc_weights());
      fs::create_directories(x.bundle);
      uint64_t seed = 1;
      for (const char* s : {"t1", "t2", "flair"}) {
        net->replace_classifier(2, seed++);
        gg::model::save_weights(net, x.bundle / (std::string(s) + ".pt"));
      }
      gg::train::BundleInfo info;
      info.sequences = {"t1", "t2", "flair"};
      gg::train::write_bundle_info(info, x.bundle);
    }
    if (!fs::exists(dir / "cohort")) {
      gg::synth::SynthOptions so;
      so.lgg = 2, so.hgg = 2, so.seed = 1;
      so.show_progress = false;
      gg::synth::generate_cohort(dir / "cohort", so);
    }
    x.cases = gg::io::discover_cohort(dir / "cohort");
    return x;
  }();
  return in;
}

void run_warm(benchmark::State& state, bool grad_cam) {
  try {
    const Inputs& in = inputs();
    // GG_BENCH_THREADS: torch threads (default 0 = all logical cores, as `predict` uses).
    const char* threads = std::getenv("GG_BENCH_THREADS");
    gg::train::set_compute_threads(threads ? std::atoi(threads) : 0);
    const gg::infer::Predictor predictor(in.bundle);
    gg::infer::PredictOptions o;
    o.grad_cam = grad_cam;
    o.use_mask = state.range(0) == 1;
    size_t k = 0;
    for (auto _ : state) {
      auto p = predictor.predict(in.cases[k++ % in.cases.size()], o);
      benchmark::DoNotOptimize(p.vote_soft);
    }
    state.counters["patients_per_s"] =
        benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
    state.counters["torch_threads"] = torch::get_num_threads();
  } catch (const gg::Error& e) {
    state.SkipWithError(gg::format_error(e).c_str());
  }
}

// range(0): 1 = slices from the mask, 0 = automatic localisation.
void BM_PredictWarm(benchmark::State& state) { run_warm(state, true); }
void BM_PredictWarmNoGradCam(benchmark::State& state) { run_warm(state, false); }

void BM_PredictCold(benchmark::State& state) {
  try {
    const Inputs& in = inputs();
    const fs::path exe = self_dir().parent_path() / "gliomagrade";
    const gg::io::Case& c = in.cases.back();
    const fs::path out = bench_dir() / "cold_out";
    for (auto _ : state) {
      fs::remove_all(out);
      const char* threads = std::getenv("GG_BENCH_THREADS");
      const std::string cmd = "'" + exe.string() + "' --quiet --threads " +
                              std::string(threads ? threads : "0") + " predict --t1 '" +
                              c.t1.string() + "' --t2 '" + c.t2.string() + "' --flair '" +
                              c.flair.string() + "' --seg '" + c.seg.string() + "' --model '" +
                              in.bundle.string() + "' --out '" + out.string() + "' > /dev/null";
      if (std::system(cmd.c_str()) != 0) {
        state.SkipWithError(("failed: " + cmd).c_str());
        break;
      }
    }
    state.counters["patients_per_s"] =
        benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
  } catch (const gg::Error& e) {
    state.SkipWithError(gg::format_error(e).c_str());
  }
}

}  // namespace

BENCHMARK(BM_PredictWarm)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5);
BENCHMARK(BM_PredictWarmNoGradCam)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(5);
BENCHMARK(BM_PredictCold)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

BENCHMARK_MAIN();
