// prepare throughput and peak memory on a full-size synthetic cohort (issue 2's benchmark).
//
//   bench_prep [--benchmark_filter=...]          (GG_BENCH_PATIENTS=60, GG_BENCH_DIR=<tmp>)
//
// The cohort (default 60 patients, 240×240×155, BraTS 2019's grade ratio) is generated once into
// GG_BENCH_DIR (default <tmp>/gg-prep-bench-<N>) and reused by later runs. Each prepare runs in a
// forked child so its peak resident memory (wait4's ru_maxrss) is its own, not the benchmark
// process's. Counters: patients_per_s (wall-clock), cpu_s_per_patient (user + system time of all
// threads: comparable across runs on a loaded machine) and peak_rss_MiB.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "common/error.h"
#include "io/io.h"
#include "prep/prep.h"
#include "synth/synth.h"

namespace {

namespace fs = std::filesystem;

int bench_patients() {
  const char* e = std::getenv("GG_BENCH_PATIENTS");
  return e ? std::max(2, std::atoi(e)) : 60;
}

fs::path cohort_dir() {
  if (const char* e = std::getenv("GG_BENCH_DIR")) return e;
  return fs::temp_directory_path() / ("gg-prep-bench-" + std::to_string(bench_patients()));
}

struct ChildCost {
  double wall_s = 0, cpu_s = 0, peak_rss_mib = 0;
};

// Runs f in a forked child; returns its wall time, CPU time (user + system, all threads) and peak
// RSS, or exits on failure.
ChildCost in_child(const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    try {
      f();
      std::_Exit(0);
    } catch (const gg::Error& e) {
      std::fprintf(stderr, "bench_prep: %s\n", gg::format_error(e).c_str());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_prep: %s\n", e.what());
    }
    std::_Exit(1);
  }
  int status = 0;
  rusage usage{};
  ::wait4(pid, &status, 0, &usage);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "bench_prep: child failed\n");
    std::exit(1);
  }
  const double cpu = double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                     1e-6 * double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
  return {seconds, cpu, double(usage.ru_maxrss) / 1024.0};
}

// The cohort's cases, generating it (in a child, so this process stays small) the first time.
const std::vector<gg::io::Case>& cohort() {
  static const std::vector<gg::io::Case> cases = [] {
    const fs::path dir = cohort_dir();
    if (!fs::exists(dir / "HGG")) {
      const int n = bench_patients();
      gg::synth::SynthOptions o;
      o.lgg = std::max(1, n * 76 / 335);
      o.hgg = n - o.lgg;
      o.seed = 2019;
      o.threads = 2;
      const ChildCost cost = in_child([&] { gg::synth::generate_cohort(dir, o); });
      std::fprintf(stderr, "generated %d patients (%d LGG, %d HGG) in %s in %.0f s\n", n, o.lgg,
                   o.hgg, dir.c_str(), cost.wall_s);
    }
    return gg::io::discover_cohort(dir);
  }();
  return cases;
}

void BM_Prepare(benchmark::State& state) {
  const auto& cases = cohort();
  gg::prep::PrepareOptions options;
  options.threads = static_cast<int>(state.range(0));
  options.show_progress = false;
  const fs::path out =
      fs::temp_directory_path() / ("gg-prep-bench-store-" + std::to_string(::getpid()));
  double peak_mib = 0, cpu_s = 0;
  for (auto _ : state) {
    fs::remove_all(out);
    const ChildCost cost = in_child([&] { gg::prep::prepare_cohort(cases, out, options); });
    state.SetIterationTime(cost.wall_s);
    peak_mib = std::max(peak_mib, cost.peak_rss_mib);
    cpu_s += cost.cpu_s;
  }
  fs::remove_all(out);
  state.counters["patients"] = double(cases.size());
  state.counters["patients_per_s"] =
      benchmark::Counter(double(cases.size()), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_rss_MiB"] = peak_mib;
  // CPU seconds per patient (all threads): what the wall time would be per patient on one idle
  // core; independent of other load on the machine.
  state.counters["cpu_s_per_patient"] = cpu_s / double(state.iterations()) / double(cases.size());
}
BENCHMARK(BM_Prepare)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kSecond);

// The hot path inside prepare: reading one full-size .nii.gz volume (inflate, convert, reorient).
void BM_ReadVolume(benchmark::State& state) {
  const fs::path t1 = cohort().front().t1;
  for (auto _ : state) benchmark::DoNotOptimize(gg::io::read_volume(t1).voxels.data());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReadVolume)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
