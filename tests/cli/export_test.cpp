// End-to-end: `export` of the tiny run's bundle.
#include <gtest/gtest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/files.h"
#include "testing/testing.h"
#include "tiny_run.h"

namespace gg {
namespace {

using testing::run_cli;

TEST(ExportCommand, WritesTorchScriptAndJson) {
  if (!have_weights()) GG_MISSING("no BVLC weights");
  testing::TempDir tmp;
  const auto r =
      run_cli("--quiet export " + q(tiny_results() / "model") + " " + q(tmp / "exported"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* f : {"t1.pt", "t2.pt", "flair.pt", "export.json"})
    EXPECT_TRUE(fs::exists(tmp / "exported" / f)) << f;
  const auto j = nlohmann::json::parse(read_file(tmp / "exported/export.json"));
  EXPECT_EQ(j["methods"]["forward"], "P(HGG) [N] = softmax(logits)[:, 1]");
  const auto again =
      run_cli("--quiet export " + q(tiny_results() / "model") + " " + q(tmp / "exported"));
  EXPECT_EQ(again.exit_code, 3) << again.output;
  const auto missing = run_cli("--quiet export " + q(tmp / "nothing") + " " + q(tmp / "out2"));
  EXPECT_EQ(missing.exit_code, 3) << missing.output;
  EXPECT_FALSE(fs::exists(tmp / "out2"));
  EXPECT_EQ(j["device"], "cpu");
}

// Where this build has no GPU (Debian's libtorch), predict and export refuse --device cuda with
// one line, before writing anything; auto is the CPU.
TEST(DeviceOption, PredictAndExportRefuseCudaWithoutAGpuAndTakeAuto) {
  if (!have_weights()) GG_MISSING("no BVLC weights");
  const auto version = run_cli("version");
  ASSERT_EQ(version.exit_code, 0);
  if (version.output.find("devices: cpu (no CUDA") == std::string::npos)
    GTEST_SKIP() << "this build sees a GPU: " << version.output;
  testing::TempDir tmp;
  const fs::path model = tiny_results() / "model";
  fs::path patient;
  for (const auto& e : fs::directory_iterator(tiny_results() / "cohort/HGG")) patient = e.path();
  auto file = [&](const std::string& seq) {
    return q(patient / (patient.filename().string() + "_" + seq + ".nii.gz"));
  };
  const std::string inputs = " --t1 " + file("t1") + " --t2 " + file("t2") + " --flair " +
                             file("flair") + " --seg " + file("seg") + " --model " + q(model);
  for (const std::string device : {"cuda", "cuda:1"}) {
    auto r =
        run_cli("--quiet predict" + inputs + " --out " + q(tmp / "pred") + " --device " + device);
    EXPECT_EQ(r.exit_code, 3) << r.output;
    EXPECT_NE(r.output.find("--device " + device +
                            ": this gliomagrade's libtorch was built "
                            "without CUDA"),
              std::string::npos)
        << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    EXPECT_FALSE(fs::exists(tmp / "pred"));
    r = run_cli("--quiet export " + q(model) + " " + q(tmp / "exported") + " --device " + device);
    EXPECT_EQ(r.exit_code, 3) << r.output;
    EXPECT_NE(r.output.find("built without CUDA"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(tmp / "exported"));
  }
  auto r = run_cli("--quiet export " + q(model) + " " + q(tmp / "exported") + " --device auto");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(read_file(tmp / "exported/export.json"))["device"], "cpu");
  r = run_cli("--quiet predict" + inputs + " --no-gradcam --device auto");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"p_hgg\""), std::string::npos) << r.output;
}

}  // namespace
}  // namespace gg
