// End-to-end: `export` of the tiny run's bundle.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/files.h"
#include "testing/testing.h"
#include "tiny_run.h"

namespace gg {
namespace {

using testing::run_cli;

TEST(ExportCommand, WritesTorchScriptAndJson) {
  if (!have_weights()) GTEST_SKIP() << "no BVLC weights";
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
}

}  // namespace
}  // namespace gg
