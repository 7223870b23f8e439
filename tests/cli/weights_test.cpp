// End to end: `gliomagrade weights info|classify|fetch` on the real BVLC weights, the torchvision
// fixture, a photo, a local HTTP server on 127.0.0.1 and broken files.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/files.h"
#include "testing/local_http_server.h"
#include "testing/testing.h"

namespace gg::testing {
namespace {

fs::path bvlc_weights() { return shared_dir() / "weights/bvlc_googlenet.caffemodel"; }
fs::path torchvision_fixture() {
  return shared_dir() / "fixtures/torchvision/googlenet-random-legacy.pth";
}
fs::path bvlc_fixtures() { return shared_dir() / "fixtures/bvlc"; }

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

#define SKIP_WITHOUT(path) \
  if (!fs::exists(path)) GG_MISSING((path) << " missing")

TEST(WeightsCli, HelpNamesTheThreeTools) {
  const CommandResult r = run_cli("weights --help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "info")) << r.output;
  EXPECT_TRUE(has(r.output, "classify")) << r.output;
  EXPECT_TRUE(has(r.output, "fetch")) << r.output;
}

TEST(WeightsCli, InfoOnTheRealBvlcCaffemodel) {
  SKIP_WITHOUT(bvlc_weights());
  const CommandResult r = run_cli("weights info " + q(bvlc_weights()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "format       caffemodel (V1 `layers`)")) << r.output;
  EXPECT_TRUE(has(r.output, "variant      bvlc")) << r.output;
  // 57 convolutions and the classifier, each weight + bias.
  EXPECT_TRUE(has(r.output, "tensors      116 (6,998,552 values)")) << r.output;
  EXPECT_TRUE(has(r.output, "loads        yes: GoogLeNet bvlc, 1000 classes, 6,998,552 parameters"))
      << r.output;
  EXPECT_TRUE(has(r.output, "sha256       " + gg::sha256_file(bvlc_weights()))) << r.output;
}

TEST(WeightsCli, InfoOnTheTorchvisionFixture) {
  SKIP_WITHOUT(torchvision_fixture());
  const CommandResult r = run_cli("weights info " + q(torchvision_fixture()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "format       torch-legacy")) << r.output;
  EXPECT_TRUE(has(r.output, "variant      torchvision")) << r.output;
  // torchvision 0.14 googlenet(aux_logits=True).state_dict(): 364 tensors, 13,020,019 values
  // (13,004,888 parameters plus BatchNorm running statistics).
  EXPECT_TRUE(has(r.output, "tensors      364 (13,020,019 values)")) << r.output;
  EXPECT_TRUE(has(r.output,
                  "loads        yes: GoogLeNet torchvision, 1000 classes, aux heads, "
                  "13,004,888 parameters"))
      << r.output;
}

TEST(WeightsCli, ClassifyTheCatPhotoWithTheBvlcWeights) {
  SKIP_WITHOUT(bvlc_weights());
  SKIP_WITHOUT(bvlc_fixtures() / "chelsea.png");
  const CommandResult r = run_cli("--threads 2 weights classify " + q(bvlc_weights()) + " " +
                                  q(bvlc_fixtures() / "chelsea.png") + " --top 3 --synsets " +
                                  q(bvlc_fixtures() / "synset_words.txt"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // After the header line come the classes, best first (libpng may add a warning line about
  // the PNG's colour profile on stderr, so lines are located, not counted from the top).
  const size_t header = r.output.find("chelsea.png with bvlc_googlenet.caffemodel (bvlc):\n");
  ASSERT_NE(header, std::string::npos) << r.output;
  const std::string classes = r.output.substr(r.output.find('\n', header) + 1);
  EXPECT_EQ(classes.rfind("  0.", 0), 0u) << r.output;
  EXPECT_TRUE(has(classes.substr(0, classes.find('\n')), " 285  Egyptian cat")) << r.output;
  EXPECT_EQ(std::count(classes.begin(), classes.end(), '\n'), 3) << r.output;  // --top 3
}

TEST(WeightsCli, BrokenWeightsFileIsExit3WithOneLine) {
  SKIP_WITHOUT(bvlc_weights());
  TempDir dir;
  // The first 100 kB of the real file: a caffemodel cut mid-tensor.
  const std::string head = gg::read_file(bvlc_weights()).substr(0, 100000);
  gg::write_file_atomic(dir / "cut.caffemodel", head);
  gg::write_file_atomic(dir / "notes.pth", "these are not weights\n");
  for (const char* name : {"cut.caffemodel", "notes.pth"}) {
    const CommandResult r = run_cli("weights info " + q(dir / name));
    EXPECT_EQ(r.exit_code, 3) << r.output;
    EXPECT_EQ(r.output.rfind("gliomagrade: error: ", 0), 0u) << r.output;
    EXPECT_TRUE(has(r.output, name)) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  }
}

TEST(WeightsCli, UnreadableImageIsExit3) {
  SKIP_WITHOUT(bvlc_weights());
  TempDir dir;
  gg::write_file_atomic(dir / "photo.png", "not a png");
  const CommandResult r =
      run_cli("weights classify " + q(bvlc_weights()) + " " + q(dir / "photo.png"));
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_TRUE(has(r.output, "photo.png: cannot read image")) << r.output;
}

TEST(WeightsCli, FetchFromALocalServerThenAgainWithoutIt) {
  SKIP_WITHOUT(torchvision_fixture());
  if (LocalHttpServer::find_python3().empty()) GG_MISSING("python3 missing");
  TempDir served, out;
  const std::string name =
      "googlenet-" + gg::sha256_file(torchvision_fixture()).substr(0, 8) + ".pth";
  fs::create_symlink(torchvision_fixture(), served / name);
  LocalHttpServer server(served.path());
  ASSERT_TRUE(server.running()) << server.why_not();

  CommandResult r =
      run_cli("-q weights fetch torchvision --dir " + q(out.path()) + " --url " + server.url(name));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "downloaded, verified: " + (out / name).string())) << r.output;
  EXPECT_EQ(gg::sha256_file(out / name), gg::sha256_file(torchvision_fixture()));

  server.stop();
  r = run_cli("-q weights fetch torchvision --dir " + q(out.path()) + " --url " + server.url(name));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "already there, verified")) << r.output;

  // Another name, server gone: a one-line error that says what to do.
  r = run_cli("-q weights fetch torchvision --dir " + q(out.path()) + " --url " +
              server.url("googlenet-1378be20.pth"));
  EXPECT_EQ(r.exit_code, 4) << r.output;
  EXPECT_TRUE(has(r.output, "cannot reach")) << r.output;
  EXPECT_TRUE(has(r.output, "copy the file by hand to")) << r.output;
  EXPECT_FALSE(fs::exists(out / "googlenet-1378be20.pth"));
}

TEST(WeightsCli, FetchUnknownVariantIsAUsageError) {
  const CommandResult r = run_cli("weights fetch alexnet");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

}  // namespace
}  // namespace gg::testing
