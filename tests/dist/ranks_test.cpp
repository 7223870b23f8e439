// Data-parallel training end to end: the built gliomagrade started as ranks the way users start
// it, by setting the launcher's variables by hand and through torchrun, on 127.0.0.1 only.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/csv.h"
#include "common/files.h"
#include "data/data.h"
#include "model/model.h"
#include "prep/prep.h"
#include "synth/synth.h"
#include "testing/fixture_cache.h"
#include "testing/testing.h"

extern char** environ;

namespace gg {
namespace {

namespace fs = std::filesystem;
using Env = std::map<std::string, std::string>;

fs::path bvlc_weights() { return testing::shared_dir() / "weights" / "bvlc_googlenet.caffemodel"; }

// The tiny cohort of tests/train (16 patients, 4 slices each: 32 training images), as a store and
// a split.csv, built once per build of this binary.
const fs::path& tiny_store() {
  static const fs::path dir = testing::cached_fixture(
      "dist_tiny_store", "lgg 8 hgg 8 seed 7 size 96x96x48 slices 4 split 3",
      [](const fs::path& d) {
        synth::SynthOptions so;
        so.lgg = 8, so.hgg = 8, so.seed = 7, so.difficulty = 0.0;
        so.size = {96, 96, 48};
        so.spacing_mm = synth::default_spacing_mm(so.size);
        so.show_progress = false;
        const auto cases = synth::generate_cohort(d / "cohort", so);
        prep::PrepareOptions po;
        po.slices = 4;
        po.show_progress = false;
        prep::prepare_cohort(cases, d / "store", po);
        const auto store = prep::open_slice_store(d / "store");
        data::SplitOptions sp;
        sp.train = 0.5, sp.val = 0.25, sp.test = 0.25, sp.seed = 3;
        const auto keys = data::item_keys(store);
        data::save_split(data::make_split(keys, sp), keys, d / "split.csv");
      });
  return dir;
}

// A checkpoint at each epoch end. 8 epochs of 3 iterations at the paper's global mini-batch of 10
// (5 images per rank of 2), the first three stages frozen to keep the backward pass short.
std::vector<std::string> train_args(const fs::path& out, const std::string& extra = "",
                                    const std::string& epochs = "8") {
  std::vector<std::string> a = {"--quiet",
                                "train",
                                (tiny_store() / "store").string(),
                                "--split",
                                (tiny_store() / "split.csv").string(),
                                "--out",
                                out.string(),
                                "--sequences",
                                "flair",
                                "--epochs",
                                epochs,
                                "--freeze",
                                "3",
                                "--validate-every",
                                "3",
                                "--seed",
                                "5",
                                "--weights",
                                bvlc_weights().string()};
  std::istringstream in(extra);
  for (std::string w; in >> w;) a.push_back(w);
  return a;
}

// A child process with its output in a file.
struct Child {
  pid_t pid = -1;
  fs::path log;
  int status = -1;

  // Waits up to `limit`; returns false (the child is killed) if it did not exit in time.
  bool wait_for(std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (exited()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return false;
  }
  bool exited() {
    if (status == -1 && waitpid(pid, &status, WNOHANG) != pid) return false;
    return true;
  }
  int exit_code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }
  std::string output() const { return read_file(log); }
};

// Starts `program args` with the current environment minus any launcher variables, plus `env`.
Child spawn(const std::string& program, const std::vector<std::string>& args, const Env& env,
            const fs::path& log) {
  std::vector<std::string> vars;
  for (char** e = environ; *e; ++e) {
    const std::string v = *e;
    const std::string name = v.substr(0, v.find('='));
    if (env.count(name) || name == "RANK" || name == "WORLD_SIZE" || name.rfind("SLURM_", 0) == 0 ||
        name.rfind("MASTER_", 0) == 0)
      continue;
    vars.push_back(v);
  }
  for (const auto& [k, v] : env) vars.push_back(k + "=" + v);
  std::vector<char*> argv{const_cast<char*>(program.c_str())}, envp;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& v : vars) envp.push_back(const_cast<char*>(v.c_str()));
  envp.push_back(nullptr);
  Child c;
  c.log = log;
  const std::string log_path = log.string();
  c.pid = fork();
  if (c.pid == 0) {
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1), dup2(fd, 2);
    execve(program.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  return c;
}

// Whether gethostname() resolves (torchrun --standalone tells the ranks to meet there).
bool host_name_resolves() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return false;
  addrinfo hints{}, *found = nullptr;
  hints.ai_family = AF_INET;
  if (getaddrinfo(name, nullptr, &hints, &found) != 0) return false;
  freeaddrinfo(found);
  return true;
}

int free_port() {
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

Env rank_env(int rank, int world, int port) {
  return {{"RANK", std::to_string(rank)},       {"WORLD_SIZE", std::to_string(world)},
          {"LOCAL_RANK", std::to_string(rank)}, {"LOCAL_WORLD_SIZE", std::to_string(world)},
          {"MASTER_ADDR", "127.0.0.1"},         {"MASTER_PORT", std::to_string(port)}};
}

// `world` ranks of `gliomagrade args` started by hand; all must exit 0 within the limit.
void run_ranks(int world, const std::vector<std::string>& args, const fs::path& logs) {
  const int port = free_port();
  std::vector<Child> ranks;
  for (int r = 0; r < world; ++r)
    ranks.push_back(spawn(testing::exe_path().string(), args, rank_env(r, world, port),
                          logs / ("rank" + std::to_string(r) + ".log")));
  for (auto& c : ranks) {
    ASSERT_TRUE(c.wait_for(std::chrono::seconds(300))) << c.output();
    ASSERT_EQ(c.exit_code(), 0) << c.output();
  }
}

// The single-process reference run, made once per build of gliomagrade.
const fs::path& reference_run() {
  static const fs::path dir = testing::cached_fixture(
      "dist_reference_run",
      "train flair epochs 8 freeze 3 seed 5 checkpoints per epoch\nweights " +
          testing::optional_file_fingerprint(bvlc_weights()),
      [](const fs::path& d) {
        Child c = spawn(testing::exe_path().string(), train_args(d / "model"), {}, d / "log.txt");
        if (!c.wait_for(std::chrono::seconds(300)) || c.exit_code() != 0)
          throw std::runtime_error("reference run failed: " + c.output());
      },
      testing::exe_path());
  return dir;
}

std::vector<torch::Tensor> weights(const fs::path& file) {
  model::GoogLeNetOptions o;
  o.num_classes = 2;
  model::GoogLeNet net(o);
  model::load_weights(net, file);
  std::vector<torch::Tensor> all;
  for (const auto& p : net->parameters()) all.push_back(p.detach().clone());
  return all;
}

std::vector<std::vector<std::string>> read_csv_lines(const fs::path& file) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : parse_csv_records(read_file(file), file.string())) rows.push_back(r.fields);
  return rows;
}

// Final weights equal within 1e-5 relative, and every logged number within float rounding.
void expect_same_training(const fs::path& a, const fs::path& b) {
  // Relative to each tensor's norm: ||a - b|| / ||b|| (elementwise, weights near 0 would make
  // float rounding of the all-reduce's other summation order look large).
  const auto wa = weights(a / "checkpoints/flair/weights.pt");
  const auto wb = weights(b / "checkpoints/flair/weights.pt");
  ASSERT_EQ(wa.size(), wb.size());
  double worst = 0;
  for (size_t i = 0; i < wa.size(); ++i)
    worst = std::max(worst, (wa[i] - wb[i]).norm().item<double>() /
                                std::max(wb[i].norm().item<double>(), 1e-12));
  std::cout << "largest relative difference of a weight tensor: " << worst << "\n";
  EXPECT_LE(worst, 1e-5) << "largest relative difference of a weight tensor";
  const auto ra = read_csv_lines(a / "logs/train_flair.csv"),
             rb = read_csv_lines(b / "logs/train_flair.csv");
  ASSERT_EQ(ra.size(), 1u + 24u) << "8 epochs of 3 iterations";
  ASSERT_EQ(ra.size(), rb.size());
  for (size_t i = 0; i < ra.size(); ++i) {
    ASSERT_EQ(ra[i].size(), rb[i].size());
    for (size_t k = 0; k < ra[i].size(); ++k) {
      if (i == 0 || ra[i][k].empty() || rb[i][k].empty()) {
        EXPECT_EQ(ra[i][k], rb[i][k]) << "line " << i + 1;
        continue;
      }
      const double x = std::stod(ra[i][k]), y = std::stod(rb[i][k]);
      EXPECT_NEAR(x, y, 1e-4 * std::max(1.0, std::abs(x))) << "line " << i + 1 << " field " << k;
    }
  }
}

class RanksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(bvlc_weights())) GG_MISSING("no BVLC weights in ../shared");
  }
};

TEST_F(RanksTest, TwoRanksTrainTheModelOfOneProcess) {
  testing::TempDir out;
  run_ranks(2, train_args(out / "model", "--dist-timeout 60"), out.path());
  expect_same_training(reference_run() / "model", out / "model");
  EXPECT_TRUE(fs::exists(out / "model/model.json"));
  EXPECT_TRUE(fs::exists(out / "model/flair.pt"));
  // Rank 1 showed nothing: rank 0 alone reports.
  EXPECT_EQ(read_file(out / "rank1.log"), "");
}

TEST_F(RanksTest, TorchrunResumesAOneProcessCheckpointOnTwoRanks) {
  const char* torchrun = "/usr/bin/torchrun";
  if (!fs::exists(torchrun))
    GG_MISSING("torchrun absent: install python3-torch (scripts/install-deps.sh does)");
  testing::TempDir out;
  // One process, interrupted after 7 of 24 iterations (checkpoint at 6) ...
  Child one = spawn(testing::exe_path().string(), train_args(out / "model", "--stop-after 7"), {},
                    out / "one.log");
  ASSERT_TRUE(one.wait_for(std::chrono::seconds(300))) << one.output();
  ASSERT_EQ(one.exit_code(), 0) << one.output();
  // ... resumed by torchrun on 2 ranks: --standalone as users start it, where this machine's
  // host name resolves (torchrun sends the ranks there); else (a bare chroot) static rendezvous
  // on 127.0.0.1, which is the same launcher with the address given.
  // Debian 12's torchrun (torch 1.13, Python 3.11) crashes on its own default --redirects/--tee
  // "0" (Std.from_str returns None there); a map that names no local rank means the same.
  std::vector<std::string> args = {
      "--no_python", "--nproc_per_node=2", "--redirects", "9:0", "--tee", "9:0"};
  // GG_TEST_TORCHRUN_STATIC=1 takes the second way where the first would work (to test it).
  if (host_name_resolves() && !std::getenv("GG_TEST_TORCHRUN_STATIC")) {
    args.push_back("--standalone");
  } else {
    std::cout << "torchrun with static rendezvous on 127.0.0.1 (host name unresolved, or forced)\n";
    for (const std::string a :
         {"--nnodes=1", "--node_rank=0", "--rdzv_backend=static", "--master_addr=127.0.0.1"})
      args.push_back(a);
    args.push_back("--master_port=" + std::to_string(free_port()));
  }
  args.push_back(testing::exe_path().string());
  for (const auto& a : train_args(out / "model", "--resume --dist-timeout 60")) args.push_back(a);
  Child two = spawn(torchrun, args, {}, out / "torchrun.log");
  ASSERT_TRUE(two.wait_for(std::chrono::seconds(300))) << two.output();
  ASSERT_EQ(two.exit_code(), 0) << two.output();
  expect_same_training(reference_run() / "model", out / "model");
}

TEST_F(RanksTest, TwoRankCheckpointResumesOnOneProcess) {
  testing::TempDir out;
  run_ranks(2, train_args(out / "model", "--stop-after 11 --dist-timeout 60"), out.path());
  Child one = spawn(testing::exe_path().string(), train_args(out / "model", "--resume"), {},
                    out / "one.log");
  ASSERT_TRUE(one.wait_for(std::chrono::seconds(300))) << one.output();
  ASSERT_EQ(one.exit_code(), 0) << one.output();
  expect_same_training(reference_run() / "model", out / "model");
}

TEST_F(RanksTest, AKilledRankStopsTheOtherNamingItAndTheCheckpointSurvives) {
  testing::TempDir out;
  const int port = free_port();
  const auto args = train_args(out / "model", "--checkpoint-every 1 --dist-timeout 20", "400");
  Child r0 = spawn(testing::exe_path().string(), args, rank_env(0, 2, port), out / "rank0.log");
  Child r1 = spawn(testing::exe_path().string(), args, rank_env(1, 2, port), out / "rank1.log");
  const fs::path state = out / "model/checkpoints/flair/state.json";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  int done = 0;
  while (std::chrono::steady_clock::now() < deadline && done < 3) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (r0.exited() || r1.exited()) break;
    std::error_code ec;
    if (!fs::exists(state, ec)) continue;
    try {
      done = nlohmann::json::parse(read_file(state)).at("iterations").get<int>();
    } catch (const std::exception&) {
    }
  }
  ASSERT_GE(done, 3) << r0.output() << r1.output();
  kill(r1.pid, SIGKILL);
  const auto killed_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(r0.wait_for(std::chrono::seconds(40))) << "rank 0 hung after rank 1 was killed";
  r1.wait_for(std::chrono::seconds(5));
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  EXPECT_LT(took, 40);
  EXPECT_EQ(r0.exit_code(), 4) << r0.output();
  EXPECT_NE(r0.output().find("lost rank 1 of 2"), std::string::npos) << r0.output();
  // The checkpoint of the last completed step is whole: it loads, and resumes.
  const auto j = nlohmann::json::parse(read_file(state));
  EXPECT_GE(j.at("iterations").get<int>(), 3);
  EXPECT_EQ(weights(out / "model/checkpoints/flair/weights.pt").size(),
            weights(reference_run() / "model/checkpoints/flair/weights.pt").size());
}

// One clear line and exit code 3.
void expect_setup_error(const Child& c, const std::string& what) {
  EXPECT_EQ(c.exit_code(), 3) << c.output();
  const std::string out = c.output();
  EXPECT_NE(out.find(what), std::string::npos) << out;
  EXPECT_EQ(out.find("gliomagrade: error: "), 0u) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

TEST_F(RanksTest, BadSetupsAreOneLineExitThree) {
  testing::TempDir out;
  const std::string exe = testing::exe_path().string();
  const auto args = train_args(out / "model", "--dist-timeout 3");
  auto run = [&](const Env& env, const std::string& name) {
    Child c = spawn(exe, args, env, out / (name + ".log"));
    EXPECT_TRUE(c.wait_for(std::chrono::seconds(60))) << name;
    return c;
  };
  expect_setup_error(run({{"WORLD_SIZE", "2"}}, "no_rank"), "WORLD_SIZE is set but RANK is not");
  expect_setup_error(run({{"RANK", "2"}, {"WORLD_SIZE", "2"}}, "rank_too_big"),
                     "RANK=2 is not below the world size 2");
  // Nobody listens on the master port: rank 1 gives up after --dist-timeout.
  expect_setup_error(run(rank_env(1, 2, free_port()), "unreachable"),
                     "cannot reach the rendezvous store at 127.0.0.1:");
  // Another process holds the master port.
  const int busy = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  ASSERT_EQ(bind(busy, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(busy, 4), 0);
  socklen_t len = sizeof a;
  getsockname(busy, reinterpret_cast<sockaddr*>(&a), &len);
  expect_setup_error(run(rank_env(0, 2, ntohs(a.sin_port)), "busy"),
                     "rank 0 cannot host the rendezvous store on port");
  close(busy);
  EXPECT_FALSE(fs::exists(out / "model")) << "a failed setup writes nothing";
}

TEST_F(RanksTest, DeviceCudaOnACpuOnlyBuildIsOneLineExitThree) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "this libtorch has CUDA and sees a GPU";
  testing::TempDir out;
  const std::string exe = testing::exe_path().string();
  for (const std::string device : {"cuda", "cuda:1"}) {
    Child c = spawn(exe, train_args(out / "model", "--device " + device), {},
                    out / ("train_" + device + ".log"));
    ASSERT_TRUE(c.wait_for(std::chrono::seconds(60)));
    expect_setup_error(c, "--device " + device +
                              ": this gliomagrade's libtorch was built without "
                              "CUDA");
    EXPECT_NE(c.output().find("CMAKE_PREFIX_PATH"), std::string::npos) << "says how to get one";
  }
  Child bad = spawn(exe, train_args(out / "model", "--device gpu"), {}, out / "gpu.log");
  ASSERT_TRUE(bad.wait_for(std::chrono::seconds(60)));
  expect_setup_error(bad, "expected cpu, cuda, cuda:N or auto");
  // evaluate refuses it the same way, before reading anything.
  Child ev =
      spawn(exe,
            {"--quiet", "evaluate", "--model", out.path().string(), "--store",
             (tiny_store() / "store").string(), "--split", (tiny_store() / "split.csv").string(),
             "--out", (out / "eval").string(), "--device", "cuda"},
            {}, out / "evaluate.log");
  ASSERT_TRUE(ev.wait_for(std::chrono::seconds(60)));
  expect_setup_error(ev, "built without CUDA");
  EXPECT_FALSE(fs::exists(out / "model"));
}

TEST_F(RanksTest, AuditRefusesToRunAsOneRankOfSeveral) {
  testing::TempDir out;
  Child c = spawn(testing::exe_path().string(), {"--quiet", "audit", "--out", (out / "a").string()},
                  rank_env(0, 2, free_port()), out / "audit.log");
  ASSERT_TRUE(c.wait_for(std::chrono::seconds(60)));
  expect_setup_error(c, "`audit` runs on one process, but this is rank 0 of 2");
  EXPECT_FALSE(fs::exists(out / "a"));
}

// `run` on 2 ranks: rank 0 prepares the store, both train every model data-parallel, rank 0
// scores; the predictions are the one-process run's up to float rounding.
TEST_F(RanksTest, RunOnTwoRanksScoresAsOneProcess) {
  testing::TempDir out;
  const std::vector<std::string> args = {
      "--quiet",      "run",      "--synth-lgg", "3", "--synth-hgg", "3",
      "--synth-size", "64,64,40", "--slices",    "4", "--epochs",    "1",
      "--batch",      "6",        "--freeze",    "4", "--seed",      "3"};
  auto with_out = [&](const fs::path& dir) {
    auto a = args;
    a.insert(a.end(), {"--out", dir.string(), "--dist-timeout", "120"});
    return a;
  };
  Child one = spawn(testing::exe_path().string(), with_out(out / "one"), {}, out / "one.log");
  ASSERT_TRUE(one.wait_for(std::chrono::seconds(300))) << one.output();
  ASSERT_EQ(one.exit_code(), 0) << one.output();
  run_ranks(2, with_out(out / "two"), out.path());
  const CsvTable a = read_csv(out / "one/predictions.csv"),
                 b = read_csv(out / "two/predictions.csv");
  ASSERT_EQ(a.header, b.header);
  ASSERT_EQ(a.rows.size(), b.rows.size());
  for (size_t r = 0; r < a.rows.size(); ++r)
    for (size_t c = 0; c < a.header.size(); ++c) {
      if (a.header[c].rfind("p_", 0) == 0)
        EXPECT_NEAR(std::stod(a.rows[r][c]), std::stod(b.rows[r][c]), 1e-5) << a.header[c];
      else
        EXPECT_EQ(a.rows[r][c], b.rows[r][c]) << a.header[c];
    }
  EXPECT_TRUE(fs::exists(out / "two/report.html"));
  EXPECT_TRUE(nlohmann::json::parse(read_file(out / "two/run.json")).at("complete").get<bool>());
  EXPECT_EQ(read_file(out / "rank1.log"), "") << "rank 1 shows nothing";
  const auto provenance = nlohmann::json::parse(read_file(out / "two/provenance.json"));
  EXPECT_TRUE(provenance.at("stages").contains("train: data-parallel on 2 ranks"))
      << provenance.dump(2);
}

TEST_F(RanksTest, RanksStartedWithOtherOptionsAreRefused) {
  testing::TempDir out;
  const int port = free_port();
  const std::string exe = testing::exe_path().string();
  Child r0 = spawn(exe, train_args(out / "model", "--dist-timeout 30"), rank_env(0, 2, port),
                   out / "rank0.log");
  Child r1 = spawn(exe, train_args(out / "model", "--dist-timeout 30 --lr 0.01"),
                   rank_env(1, 2, port), out / "rank1.log");
  ASSERT_TRUE(r0.wait_for(std::chrono::seconds(60)));
  ASSERT_TRUE(r1.wait_for(std::chrono::seconds(60)));
  for (const Child* c : {&r0, &r1}) expect_setup_error(*c, "was started with other options");
}

}  // namespace
}  // namespace gg
