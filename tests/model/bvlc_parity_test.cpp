// BVLC GoogLeNet with the real ImageNet weights against the reference outputs in
// ../shared/fixtures/bvlc (an independent implementation of Caffe's deploy.prototxt).
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "model/model.h"
#include "parity_util.h"

namespace gg::model {
namespace {

using test::bvlc_fixtures;
using test::bvlc_weights;
using test::read_f32;
using test::relative_error;

class BvlcParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(bvlc_weights())) return;
    net_ = new GoogLeNet(load_pretrained(Variant::kBvlc, bvlc_weights()));
  }
  static void TearDownTestSuite() {
    delete net_;
    net_ = nullptr;
  }
  void SetUp() override {
    if (!net_) GG_MISSING("no " << bvlc_weights());
  }
  static GoogLeNet* net_;
};
GoogLeNet* BvlcParity::net_ = nullptr;

TEST_F(BvlcParity, ReadsEveryLayerWithCaffeShapes) {
  const StateDict state = read_caffemodel(bvlc_weights());
  EXPECT_EQ(state.size(), 2u * (3 + 9 * 6 + 1));  // weight + bias per conv and fc
  EXPECT_EQ(state.front().first, "conv1.conv.weight");
  EXPECT_EQ(state.front().second.sizes(), torch::IntArrayRef({64, 3, 7, 7}));
  EXPECT_EQ(state.back().first, "fc.bias");
  EXPECT_EQ(infer_variant(state), Variant::kBvlc);
  EXPECT_EQ(parameter_count(*net_), 6998552);
}

TEST_F(BvlcParity, Pool5AndLogitsMatchReference) {
  torch::NoGradGuard no_grad;
  for (const std::string name : {"chelsea", "coffee"}) {
    const auto input = read_f32(bvlc_fixtures() / (name + ".input.f32"), {1, 3, 224, 224});
    const auto pool5 = read_f32(bvlc_fixtures() / (name + ".pool5.f32"), {1, 1024});
    const auto logits = read_f32(bvlc_fixtures() / (name + ".logits.f32"), {1, 1000});
    const double pool5_error = relative_error((*net_)->features(input), pool5);
    const double logits_error = relative_error((*net_)->forward(input), logits);
    std::cout << name << ": pool5 rel error " << pool5_error << ", logits rel error "
              << logits_error << "\n";
    EXPECT_LT(pool5_error, 1e-3) << name;
    EXPECT_LT(logits_error, 1e-3) << name;
  }
}

TEST_F(BvlcParity, TopClassesFromReferenceInput) {
  torch::NoGradGuard no_grad;
  const auto cat =
      top_k((*net_)->forward(read_f32(bvlc_fixtures() / "chelsea.input.f32", {1, 3, 224, 224})), 5);
  EXPECT_EQ(cat[0].first, 285);  // Egyptian cat
  EXPECT_NEAR(cat[0].second, 0.6199, 2e-3);
  EXPECT_EQ(cat[1].first, 282);  // tiger cat
  const auto coffee =
      top_k((*net_)->forward(read_f32(bvlc_fixtures() / "coffee.input.f32", {1, 3, 224, 224})), 5);
  EXPECT_EQ(coffee[0].first, 967);  // espresso
  EXPECT_NEAR(coffee[0].second, 0.9741, 2e-3);
  const auto names = read_class_names(bvlc_fixtures() / "synset_words.txt");
  EXPECT_EQ(names[285], "Egyptian cat");
  EXPECT_EQ(names[967], "espresso");
}

// Our own preprocessing of the PNGs (OpenCV, not the reference's PIL) gives the same top-1.
torch::Tensor png_as_rgb01(const fs::path& png, int interpolation) {
  cv::Mat bgr = cv::imread(png.string(), cv::IMREAD_COLOR);
  EXPECT_FALSE(bgr.empty()) << png;
  cv::Mat rgb, resized, f;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  cv::resize(rgb, resized, cv::Size(224, 224), 0, 0, interpolation);
  resized.convertTo(f, CV_32FC3, 1.0 / 255);
  return torch::from_blob(f.data, {1, 224, 224, 3}, torch::kFloat32).permute({0, 3, 1, 2}).clone();
}

TEST_F(BvlcParity, TopClassesThroughOurPreprocessing) {
  torch::NoGradGuard no_grad;
  for (int interpolation : {cv::INTER_AREA, cv::INTER_LINEAR}) {
    auto logits = (*net_)->forward(
        (*net_)->normalise_input(png_as_rgb01(bvlc_fixtures() / "chelsea.png", interpolation)));
    EXPECT_EQ(top_k(logits, 1)[0].first, 285) << interpolation;
    logits = (*net_)->forward(
        (*net_)->normalise_input(png_as_rgb01(bvlc_fixtures() / "coffee.png", interpolation)));
    EXPECT_EQ(top_k(logits, 1)[0].first, 967) << interpolation;
  }
}

TEST_F(BvlcParity, NormaliseInputIsCaffeConvention) {
  // RGB (1, 0.5, 0) -> BGR 0-255 minus (104, 117, 123).
  auto rgb = torch::tensor({1.0f, 0.5f, 0.0f}).view({1, 3, 1, 1});
  auto native = (*net_)->normalise_input(rgb);
  EXPECT_FLOAT_EQ(native[0][0][0][0].item<float>(), -104.0f);
  EXPECT_FLOAT_EQ(native[0][1][0][0].item<float>(), 127.5f - 117.0f);
  EXPECT_FLOAT_EQ(native[0][2][0][0].item<float>(), 255.0f - 123.0f);
}

TEST_F(BvlcParity, LastBlockFeedsLogits) {
  torch::NoGradGuard no_grad;
  const auto input = read_f32(bvlc_fixtures() / "chelsea.input.f32", {1, 3, 224, 224});
  auto [logits, last] = (*net_)->forward_with_last_block(input);
  EXPECT_EQ(last.sizes(), torch::IntArrayRef({1, 1024, 7, 7}));
  EXPECT_TRUE(torch::allclose(logits, (*net_)->forward(input)));
}

}  // namespace
}  // namespace gg::model
