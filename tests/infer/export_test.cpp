// TorchScript export: plain torch::jit::load gives the bundle's outputs.
#include <gtest/gtest.h>
#include <torch/script.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "fixture.h"
#include "infer/infer.h"

namespace gg::infer {
namespace {

TEST(Export, TorchScriptModulesMatchTheBundleWithin1e5) {
  if (!infer_testing::have_weights()) GG_MISSING("no BVLC weights");
  const auto& d = infer_testing::shared();
  testing::TempDir tmp;
  const auto exported = export_torchscript(d.bundle, tmp / "exported");
  ASSERT_EQ(exported.size(), 3u);
  const auto info = nlohmann::json::parse(read_file(tmp / "exported/export.json"));
  EXPECT_EQ(info["format"], "gliomagrade-torchscript/1");
  EXPECT_EQ(info["variant"], "bvlc");

  // Realistic inputs: grey slices with structure, replicated to RGB, in [0,1].
  torch::manual_seed(3);
  auto grey = torch::rand({2, 1, 224, 224});
  auto x = grey.expand({2, 3, 224, 224}).contiguous();
  for (const auto& m : exported) {
    EXPECT_EQ(sha256_file(m.file), info["models"][m.sequence]["sha256"]);
    torch::jit::Module script = torch::jit::load(m.file.string());
    script.eval();
    model::GoogLeNet net(model::read_weights_options(d.bundle / (m.sequence + ".pt")));
    model::load_weights(net, d.bundle / (m.sequence + ".pt"));
    net->eval();
    torch::NoGradGuard no_grad;
    const auto expected_logits = net->forward(net->normalise_input(x));
    const auto expected_p = torch::softmax(expected_logits, 1).select(1, 1);
    const auto logits = script.get_method("logits")({x}).toTensor();
    const auto p = script.forward({x}).toTensor();
    ASSERT_EQ(p.sizes(), expected_p.sizes());
    EXPECT_LT((logits - expected_logits).abs().max().item<double>(), 1e-5) << m.sequence;
    EXPECT_LT((p - expected_p).abs().max().item<double>(), 1e-5) << m.sequence;
  }
}

TEST(Export, FrozenModulesMatchTheUnfrozenOnes) {
  if (!infer_testing::have_weights()) GG_MISSING("no BVLC weights");
  const auto& d = infer_testing::shared();
  testing::TempDir tmp;
  const auto plain = export_torchscript(d.bundle, tmp / "plain");
  const auto frozen = export_torchscript(d.bundle, tmp / "frozen", "cpu", /*frozen=*/true);
  const auto info = nlohmann::json::parse(read_file(tmp / "frozen/export.json"));
  EXPECT_EQ(info["frozen"], true);
  torch::manual_seed(4);
  auto x = torch::rand({3, 1, 224, 224}).expand({3, 3, 224, 224}).contiguous();
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < plain.size(); ++i) {
    torch::jit::Module a = torch::jit::load(plain[i].file.string());
    torch::jit::Module b = torch::jit::load(frozen[i].file.string());
    a.eval();
    const auto expected = a.get_method("logits")({x}).toTensor();
    const auto logits = b.get_method("logits")({x}).toTensor();
    EXPECT_LT(((logits - expected).abs().max() / expected.abs().max()).item<double>(), 1e-5);
    EXPECT_LT((b.forward({x}).toTensor() - a.forward({x}).toTensor()).abs().max().item<double>(),
              1e-5);
    EXPECT_TRUE(b.named_parameters().size() == 0) << "weights are constants once frozen";
  }
}

// A failed write (a full disk in CI) aborted the process from libtorch's file writer's
// destructor; it is one error naming the file, and nothing is left behind.
TEST(Export, AFailedWriteIsAnErrorAndLeavesNothing) {
  if (!infer_testing::have_weights()) GG_MISSING("no BVLC weights");
  const auto& d = infer_testing::shared();
  testing::TempDir tmp;
  {
    testing::FileSizeLimit cap(1 << 20);  // each module is ~24 MB
    try {
      export_torchscript(d.bundle, tmp / "exported");
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kRuntime);
      EXPECT_NE(e.file().find(".pt"), std::string::npos) << e.file();
      EXPECT_NE(e.problem().find("write failed"), std::string::npos) << e.problem();
    }
  }
  EXPECT_TRUE(fs::is_empty(tmp.path())) << "no partial export is left";
}

TEST(Export, RefusesANonEmptyOutputAndLeavesNothingOnBundleErrors) {
  if (!infer_testing::have_weights()) GG_MISSING("no BVLC weights");
  const auto& d = infer_testing::shared();
  testing::TempDir tmp;
  write_file_atomic(tmp / "busy/notes.txt", "mine");
  try {
    export_torchscript(d.bundle, tmp / "busy");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
  }
  EXPECT_EQ(read_file(tmp / "busy/notes.txt"), "mine");
  try {
    export_torchscript(tmp / "no_bundle", tmp / "out");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
  }
  EXPECT_FALSE(fs::exists(tmp / "out"));
}

}  // namespace
}  // namespace gg::infer
