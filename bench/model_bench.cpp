// GoogLeNet throughput (Google Benchmark; not a test, never run by CI).
//
// For both variants at batch 32 (--batch), 224x224: inference (eval, NoGradGuard, forward) and
// training (train mode, forward + cross-entropy + backward + SGD momentum step), in four numeric
// setups:
//   nchw             fp32, contiguous NCHW tensors
//   channels_last    fp32, input and every 4-D parameter in channels-last memory format
//   cl_bf16_autocast channels-last, forward under CPU autocast to bfloat16 (fp32 weights)
//   cl_bf16_weights  channels-last, weights and input converted to bfloat16
//   frozen           inference: model::FrozenNet on channels-last input; training (with
//                    --freeze N only): channels-last, the N frozen stages through FrozenNet
// Counters: items_per_second (images/s, wall time), images_per_cpu_s (images per second of
// process CPU time) and peak_rss_mb (the process's resident-set high-water mark during that
// benchmark: VmHWM is reset before each one).
// Before the benchmarks it prints the bf16-vs-fp32 parity on the shared fixture inputs and
// whether the CPU has native bf16 (avx512_bf16, amx_bf16).
//
//   bench_model [--threads=N] [--batch=N] [--iters_infer=N] [--iters_train=N] [--shared=DIR]
//               [--freeze=N] [--profile=VARIANT/MODE/SETUP] [Google Benchmark flags]
// --freeze N trains with the first N stages frozen (train's --freeze; only the rest is updated).
// --batch sets the mini-batch (default 32; `train` uses 10). --profile runs that configuration
// under the autograd profiler and prints every operator's self time instead of benchmarking;
// convolutions are split by kernel size ("aten::mkldnn_convolution [3x3]").
// See bench/README.md for the full commands.
#include <ATen/autocast_mode.h>
#include <benchmark/benchmark.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>

#include "model/model.h"

namespace {

namespace fs = std::filesystem;
using gg::model::GoogLeNet;
using gg::model::Variant;

enum class Mode { kInfer, kTrain };
enum class Setup { kNchw, kChannelsLast, kBf16Autocast, kBf16Weights, kFrozen };
const char* mode_name(Mode m) { return m == Mode::kInfer ? "Infer" : "Train"; }
const char* setup_name(Setup s) {
  switch (s) {
    case Setup::kNchw:
      return "nchw";
    case Setup::kChannelsLast:
      return "channels_last";
    case Setup::kBf16Autocast:
      return "cl_bf16_autocast";
    case Setup::kBf16Weights:
      return "cl_bf16_weights";
    case Setup::kFrozen:
      return "frozen";
  }
  return "?";
}

// The first line of an exception's message (c10::Error appends a C++ backtrace).
std::string first_line(const std::exception& e) {
  const std::string what = e.what();
  return what.substr(0, what.find('\n'));
}

struct Flags {
  int threads = 0;  // 0: libtorch's default
  int iters_infer = 6, iters_train = 3;
  fs::path shared;
  int64_t batch = 32;
  int freeze = 0;  // Train: freeze the first N stages (frozen: they run through FrozenNet)
  std::string profile;
};
Flags g_flags;

// --- memory --------------------------------------------------------------------------------

// Resets the kernel's resident-set high-water mark (VmHWM) so the next reading is this
// benchmark's own peak (Linux >= 4.0); false where that is not allowed.
bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  return static_cast<bool>(f.flush());
}
double peak_rss_mb() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// --- the networks --------------------------------------------------------------------------

fs::path weights_file(Variant v) {
  return v == Variant::kBvlc ? g_flags.shared / "weights/bvlc_googlenet.caffemodel"
                             : g_flags.shared / "fixtures/torchvision/googlenet-random-legacy.pth";
}

// The published (bvlc) or fixture (torchvision) weights when present, else a seeded init: the
// values matter for the parity check, and real-looking weights keep denormals out of the timing.
GoogLeNet make_net(Variant v, bool transform_input = false) {
  gg::model::GoogLeNetOptions o;
  o.variant = v;
  o.transform_input = transform_input && v == Variant::kTorchvision;
  GoogLeNet net(o);
  static std::map<Variant, gg::model::StateDict> cache;
  if (!cache.count(v) && fs::exists(weights_file(v)))
    cache[v] = gg::model::read_pretrained(weights_file(v));
  if (cache.count(v))
    gg::model::load_state_dict(net, cache[v], weights_file(v).string());
  else
    net->init_weights(1);
  return net;
}

void to_channels_last(GoogLeNet& net) {
  torch::NoGradGuard no_grad;
  for (auto& t : net->parameters())
    if (t.dim() == 4) t.set_data(t.contiguous(torch::MemoryFormat::ChannelsLast));
}

// Runs f with CPU autocast to bfloat16 on (as `with torch.autocast("cpu", torch.bfloat16)`).
template <class F>
auto with_bf16_autocast(F&& f) {
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  at::autocast::set_cpu_enabled(true);
  auto out = f();
  at::autocast::set_cpu_enabled(false);
  at::autocast::clear_cache();  // the per-region weight casts, as leaving `with autocast` does
  return out;
}

struct Workload {
  GoogLeNet net{nullptr};
  torch::Tensor x, labels;
  std::optional<torch::optim::SGD> sgd;
  std::optional<gg::model::FrozenNet> frozen;
  Setup setup;

  torch::Tensor forward(Mode mode) {
    if (frozen && mode == Mode::kTrain) return net->forward_shard(x, x.size(0), 0, &*frozen);
    if (frozen) return frozen->forward(x);
    if (setup == Setup::kBf16Autocast) return with_bf16_autocast([&] { return net->forward(x); });
    return net->forward(x);
  }
  // One inference batch or one training step.
  void step(Mode mode) {
    if (mode == Mode::kInfer) {
      torch::NoGradGuard no_grad;
      benchmark::DoNotOptimize(forward(mode));
      return;
    }
    sgd->zero_grad();
    torch::Tensor loss = torch::cross_entropy_loss(forward(mode).to(torch::kFloat32), labels);
    loss.backward();
    sgd->step();
  }
};

Workload make_workload(Variant v, Mode mode, Setup setup) {
  Workload w;
  w.setup = setup;
  w.net = make_net(v);
  torch::Generator gen = at::detail::createCPUGenerator(7);
  w.x = torch::rand({g_flags.batch, 3, 224, 224}, gen) * 4 - 2;
  w.labels = torch::randint(0, 1000, {g_flags.batch}, gen, torch::kLong);
  if (setup != Setup::kNchw) {
    to_channels_last(w.net);
    w.x = w.x.contiguous(torch::MemoryFormat::ChannelsLast);
  }
  if (setup == Setup::kBf16Weights) {
    w.net->to(torch::kBFloat16);
    w.x = w.x.to(torch::kBFloat16);
  }
  if (mode == Mode::kTrain && g_flags.freeze > 0) w.net->freeze_stages(g_flags.freeze);
  w.net->train(mode == Mode::kTrain);
  if (mode == Mode::kTrain) {
    std::vector<torch::Tensor> trainable;
    for (const auto& p : w.net->parameters())
      if (p.requires_grad()) trainable.push_back(p);
    w.sgd.emplace(trainable, torch::optim::SGDOptions(1e-3).momentum(0.9));
  }
  if (setup == Setup::kFrozen) w.frozen.emplace(w.net, g_flags.batch);
  return w;
}

void run_benchmark(benchmark::State& state, Variant v, Mode mode, Setup setup) {
  if (setup == Setup::kFrozen && mode == Mode::kTrain && g_flags.freeze == 0) {
    state.SkipWithError("frozen training needs --freeze N (the frozen stages run frozen)");
    for (auto _ : state) {
    }
    return;
  }
  Workload w = make_workload(v, mode, setup);
  try {
    w.step(mode);                      // warm-up: oneDNN primitives, allocator
  } catch (const std::exception& e) {  // e.g. an operator without a bf16 kernel
    state.SkipWithError(first_line(e).c_str());
    for (auto _ : state) {
    }
    return;
  }
  const bool peak_ok = reset_peak_rss();
  const double cpu_start = process_cpu_seconds();
  for (auto _ : state) w.step(mode);
  state.SetItemsProcessed(state.iterations() * g_flags.batch);
  // Images per second of CPU time used by all threads: on a machine shared with other work this
  // stays meaningful when wall-clock rates do not (at --threads=1 it is the single-core rate).
  state.counters["images_per_cpu_s"] =
      static_cast<double>(state.iterations() * g_flags.batch) / (process_cpu_seconds() - cpu_start);
  state.counters["peak_rss_mb"] = peak_rss_mb();
  if (!peak_ok) state.SetLabel("peak_rss_mb is the process peak (clear_refs not allowed)");
}

// --- bf16 parity ---------------------------------------------------------------------------

torch::Tensor read_f32(const fs::path& file, std::vector<int64_t> shape) {
  std::ifstream in(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto t = torch::empty(shape, torch::kFloat32);
  if (bytes.size() != static_cast<size_t>(t.numel()) * 4) return {};
  std::memcpy(t.data_ptr<float>(), bytes.data(), bytes.size());
  return t;
}

double relative_max_diff(const torch::Tensor& a, const torch::Tensor& ref) {
  return ((a.to(torch::kFloat32) - ref).abs().max() / ref.abs().max()).item<double>();
}

// The fixture input of a variant in its native convention, and the reference logits.
std::pair<torch::Tensor, torch::Tensor> parity_case(Variant v) {
  if (v == Variant::kBvlc) {
    const fs::path dir = g_flags.shared / "fixtures/bvlc";
    return {read_f32(dir / "chelsea.input.f32", {1, 3, 224, 224}),
            read_f32(dir / "chelsea.logits.f32", {1, 1000})};
  }
  const fs::path io = g_flags.shared / "fixtures/torchvision/reference-io.pt";
  if (!fs::exists(io)) return {};
  torch::Tensor input, logits;
  for (const auto& [name, t] : gg::model::read_torch_checkpoint(io)) {
    if (name == "input") input = t;
    if (name == "logits_eval") logits = t;
  }
  return {input, logits};
}

void print_parity(Variant v) {
  const char* name = gg::model::variant_name(v);
  auto [x, reference] = parity_case(v);
  if (!x.defined() || !fs::exists(weights_file(v))) {
    std::printf("parity %-11s skipped: fixtures not found under %s\n", name,
                g_flags.shared.c_str());
    return;
  }
  GoogLeNet net = make_net(v, /*transform_input=*/true);  // as the fixtures were made
  net->eval();
  to_channels_last(net);
  x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  torch::NoGradGuard no_grad;
  const torch::Tensor fp32 = net->forward(x);
  // The frozen form: its build time (once per model) and its parity with eager fp32.
  // The first build in a process also pays oneDNN's one-time set-up: time a second one too.
  double freeze_ms[2];
  std::optional<gg::model::FrozenNet> frozen;
  for (double& ms : freeze_ms) {
    const auto t0 = std::chrono::steady_clock::now();
    frozen.emplace(net, /*batch=*/1);
    ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  std::printf("parity %-11s frozen vs eager fp32 %.2e (built in %.0f ms, again %.0f ms, %s)\n",
              name, relative_max_diff(frozen->forward(x), fp32), freeze_ms[0], freeze_ms[1],
              frozen->prepacked() ? "pre-packed oneDNN" : "unpacked");
  torch::Tensor autocast, bf16;
  try {
    autocast = with_bf16_autocast([&] { return net->forward(x); });
  } catch (const std::exception& e) {
    at::autocast::set_cpu_enabled(false);
    std::printf("parity %-11s bf16 autocast failed: %s\n", name, first_line(e).c_str());
  }
  try {
    net->to(torch::kBFloat16);
    bf16 = net->forward(x.to(torch::kBFloat16));
  } catch (const std::exception& e) {
    std::printf("parity %-11s bf16 weights failed: %s\n", name, first_line(e).c_str());
  }
  const auto diff = [&](const torch::Tensor& t) {
    return t.defined() ? relative_max_diff(t, fp32) : NAN;
  };
  const auto top1 = [](const torch::Tensor& t) {
    return t.defined() ? t.argmax(1)[0].item<long>() : -1L;
  };
  const double d_ref = relative_max_diff(fp32, reference), d_auto = diff(autocast),
               d_bf16 = diff(bf16);
  std::printf(
      "parity %-11s logits, max|diff|/max|ref|: fp32 vs reference %.1e; bf16 autocast vs fp32 "
      "%.2e (%s 1e-2); bf16 weights vs fp32 %.2e (%s 1e-2); top-1 fp32 %ld autocast %ld bf16 %ld\n",
      name, d_ref, d_auto, d_auto <= 1e-2 ? "within" : "NOT within", d_bf16,
      d_bf16 <= 1e-2 ? "within" : "NOT within", top1(fp32), top1(autocast), top1(bf16));
}

std::string cpu_flag_report() {
  std::ifstream f("/proc/cpuinfo");
  std::string flags;
  for (std::string line; std::getline(f, line);)
    if (line.rfind("flags", 0) == 0) {
      flags = " " + line.substr(line.find(':') + 1) + " ";
      break;
    }
  auto has = [&](const char* flag) {
    return flags.find(std::string(" ") + flag + " ") != std::string::npos;
  };
  std::string r;
  for (const char* flag : {"avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni"})
    r += std::string(flag) + "=" + (has(flag) ? "yes " : "no ");
  return r;
}

// --- profile -------------------------------------------------------------------------------

// An operator's name, with the kernel size for convolutions (the weight is the second input
// of a forward convolution, the third of a backward one) so that 1x1 and 3x3/5x5 separate.
std::string event_key(const torch::autograd::profiler::LegacyEvent& e) {
  std::string name = e.name();
  if (name.find("conv") == std::string::npos) return name;  // also _slow_conv2d (1x1, cl)
  const auto shapes = e.shapes();
  const size_t w = name.find("backward") != std::string::npos ? 2 : 1;
  if (shapes.size() > w && shapes[w].size() == 4)
    name += " [" + std::to_string(shapes[w][2]) + "x" + std::to_string(shapes[w][3]) + "]";
  return name;
}

// Self time per operator (legacy autograd profiler events, push/pop paired per thread).
void profile(const std::string& spec) {
  std::stringstream ss(spec);
  std::string variant, mode_s, setup_s;
  std::getline(ss, variant, '/');
  std::getline(ss, mode_s, '/');
  std::getline(ss, setup_s, '/');
  const Variant v = gg::model::parse_variant(variant);
  const Mode mode = mode_s == "train" ? Mode::kTrain : Mode::kInfer;
  Setup setup = Setup::kNchw;
  for (Setup s : {Setup::kNchw, Setup::kChannelsLast, Setup::kBf16Autocast, Setup::kBf16Weights,
                  Setup::kFrozen})
    if (setup_s == setup_name(s)) setup = s;
  Workload w = make_workload(v, mode, setup);
  w.step(mode);
  using namespace torch::autograd::profiler;
  enableProfilerLegacy(ProfilerConfig(ProfilerState::CPU, /*report_input_shapes=*/true));
  const int steps = 2;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) w.step(mode);
  const double wall_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  const thread_event_lists lists = disableProfilerLegacy();

  std::map<std::string, std::pair<double, long>> self_us;  // name -> (self us, calls)
  double total_us = 0;
  for (const auto& events : lists) {
    std::vector<std::pair<const LegacyEvent*, double>> stack;  // push event, children's time
    for (const auto& e : events) {
      if (e.kindStr() == "push") {
        stack.push_back({&e, 0.0});
      } else if (e.kindStr() == "pop" && !stack.empty()) {
        const auto [push, children] = stack.back();
        stack.pop_back();
        const double dur = push->cpuElapsedUs(e);
        auto& slot = self_us[event_key(*push)];
        slot.first += dur - children;
        slot.second += 1;
        if (stack.empty())
          total_us += dur;
        else
          stack.back().second += dur;
      }
    }
  }
  std::vector<std::pair<std::string, std::pair<double, long>>> rows(self_us.begin(), self_us.end());
  std::sort(rows.begin(), rows.end(),
            [](auto& a, auto& b) { return a.second.first > b.second.first; });
  std::printf("profile %s, %d steps of batch %ld: %.0f ms in profiled ops\n", spec.c_str(), steps,
              static_cast<long>(g_flags.batch), total_us / 1e3);
  // Work outside any dispatched operator (e.g. a kernel called directly from C++) is only in
  // the wall time: print it as its own row so that the shares add up to the step.
  std::printf("%.0f ms/step wall, of which %.1f ms/step outside profiled operators\n",
              wall_us / 1e3 / steps, (wall_us - total_us) / 1e3 / steps);
  std::printf("%-52s %10s %7s %6s\n", "operator (self time)", "ms/step", "share", "calls");
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& [name, t] = rows[i];
    std::printf("%-52s %10.1f %6.1f%% %6ld\n", name.c_str(), t.first / 1e3 / steps,
                100.0 * t.first / total_us, t.second / steps);
  }
}

bool take_flag(const std::string& arg, const char* name, std::string* value) {
  const std::string prefix = std::string("--") + name + "=";
  if (arg.rfind(prefix, 0) != 0) return false;
  *value = arg.substr(prefix.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  g_flags.shared = std::getenv("GG_SHARED_DIR") ? fs::path(std::getenv("GG_SHARED_DIR"))
                                                : fs::path(__FILE__).parent_path() / "../../shared";
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    std::string value;
    const std::string arg = argv[i];
    if (take_flag(arg, "threads", &value))
      g_flags.threads = std::stoi(value);
    else if (take_flag(arg, "iters_infer", &value))
      g_flags.iters_infer = std::stoi(value);
    else if (take_flag(arg, "iters_train", &value))
      g_flags.iters_train = std::stoi(value);
    else if (take_flag(arg, "batch", &value))
      g_flags.batch = std::stoll(value);
    else if (take_flag(arg, "shared", &value))
      g_flags.shared = value;
    else if (take_flag(arg, "freeze", &value))
      g_flags.freeze = std::stoi(value);
    else if (take_flag(arg, "profile", &value))
      g_flags.profile = value;
    else
      rest.push_back(argv[i]);
  }
  if (g_flags.threads > 0) torch::set_num_threads(g_flags.threads);
  if (!g_flags.profile.empty()) {
    profile(g_flags.profile);
    return 0;
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 1;

  std::printf("cpu: %s%s\n", cpu_flag_report().c_str(),
              "(without avx512_bf16/amx_bf16 oneDNN emulates bf16 with fp32 arithmetic)");
  std::printf("threads: %d\n", torch::get_num_threads());
  benchmark::AddCustomContext("cpu_bf16_flags", cpu_flag_report());
  benchmark::AddCustomContext("torch_threads", std::to_string(torch::get_num_threads()));
  benchmark::AddCustomContext("batch", std::to_string(g_flags.batch));
  for (Variant v : {Variant::kBvlc, Variant::kTorchvision}) print_parity(v);
  std::fflush(stdout);

  for (Variant v : {Variant::kBvlc, Variant::kTorchvision})
    for (Mode m : {Mode::kInfer, Mode::kTrain})
      for (Setup s : {Setup::kNchw, Setup::kChannelsLast, Setup::kBf16Autocast, Setup::kBf16Weights,
                      Setup::kFrozen}) {
        if (s == Setup::kFrozen && m == Mode::kTrain && g_flags.freeze == 0) continue;
        const std::string name = std::string("BM_") + mode_name(m) + "/" +
                                 gg::model::variant_name(v) + "/" + setup_name(s);
        benchmark::RegisterBenchmark(name.c_str(), run_benchmark, v, m, s)
            ->Iterations(m == Mode::kInfer ? g_flags.iters_infer : g_flags.iters_train)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
      }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
