// torchvision GoogLeNet against ../shared/fixtures/torchvision (written by PyTorch 1.13.1 /
// torchvision 0.14.1 with make_fixtures.py): random weights in the legacy torch.save format,
// reference inputs/outputs in the zip format, both read by our own checkpoint reader.
#include "model/model.h"
#include "parity_util.h"

namespace gg::model {
namespace {

using test::relative_error;
using test::tv_fixtures;

fs::path weights_file() { return tv_fixtures() / "googlenet-random-legacy.pth"; }

torch::Tensor find(const StateDict& state, const std::string& name) {
  for (const auto& [n, t] : state) {
    if (n == name) return t;
  }
  ADD_FAILURE() << "no tensor " << name;
  return {};
}

class TorchvisionParity : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(weights_file())) GG_MISSING("no " << weights_file());
  }
};

TEST_F(TorchvisionParity, ReadsLegacyStateDictInOrder) {
  const StateDict state = read_torch_checkpoint(weights_file());
  EXPECT_EQ(detect_format(weights_file()), WeightsFormat::kTorchLegacy);
  EXPECT_EQ(state.front().first, "conv1.conv.weight");
  EXPECT_EQ(state.back().first, "fc.bias");
  EXPECT_EQ(find(state, "conv1.bn.num_batches_tracked").scalar_type(), torch::kInt64);
  EXPECT_EQ(find(state, "conv1.bn.num_batches_tracked").item<int64_t>(),
            8);  // 8 batches in make_fixtures.py
  EXPECT_EQ(find(state, "aux1.fc1.weight").sizes(), torch::IntArrayRef({1024, 2048}));
  EXPECT_EQ(infer_variant(state), Variant::kTorchvision);
  // A GoogLeNet with aux heads: every parameter and buffer of our module, nothing else.
  GoogLeNetOptions options;
  options.variant = Variant::kTorchvision;
  options.aux_logits = true;
  GoogLeNet net(options);
  EXPECT_EQ(state.size(), net->named_parameters().size() + net->named_buffers().size());
}

TEST_F(TorchvisionParity, ReadsZipReferenceFile) {
  EXPECT_EQ(detect_format(tv_fixtures() / "reference-io.pt"), WeightsFormat::kTorchZip);
  const StateDict io = read_torch_checkpoint(tv_fixtures() / "reference-io.pt");
  ASSERT_EQ(io.size(), 7u);
  EXPECT_EQ(io[0].first, "input");
  EXPECT_EQ(io[0].second.sizes(), torch::IntArrayRef({2, 3, 224, 224}));
  // The input is make_fixtures.py's img0 normalised: pixel (0,0) of img0 is (0, 0, 0).
  EXPECT_NEAR(io[0].second[0][0][0][0].item<float>(), (0 - 0.485) / 0.229, 1e-5);
  EXPECT_NEAR(io[0].second[0][2][223][223].item<float>(), (1 - 0.406) / 0.225, 1e-5);
}

TEST_F(TorchvisionParity, EvalOutputsMatchReference) {
  torch::NoGradGuard no_grad;
  const StateDict io = read_torch_checkpoint(tv_fixtures() / "reference-io.pt");
  const auto input = find(io, "input");
  GoogLeNet net = load_pretrained(Variant::kTorchvision, weights_file(), /*transform_input=*/true);
  const double logits = relative_error(net->forward(input), find(io, "logits_eval"));
  const double features = relative_error(net->features(input), find(io, "features_eval"));
  GoogLeNet plain =
      load_pretrained(Variant::kTorchvision, weights_file(), /*transform_input=*/false);
  const double logits_plain =
      relative_error(plain->forward(input), find(io, "logits_eval_notransform"));
  std::cout << "eval rel error: logits " << logits << ", features " << features
            << ", logits (no transform) " << logits_plain << "\n";
  EXPECT_LT(logits, 1e-4);
  EXPECT_LT(features, 1e-4);
  EXPECT_LT(logits_plain, 1e-4);
}

// ---- Train mode: replaying make_fixtures.py's random stream ----
// The train-mode references include dropout masks (aux 0.7, main 0.2) drawn from PyTorch's global
// CPU generator. Debian's libtorch 1.13.1 is the library python3-torch 1.13.1 runs on, so the same
// ops on same-sized tensors after torch.manual_seed(0) draw the same numbers. The replay below
// consumes the stream exactly as the script did; only the draw order and counts matter (the
// values are discarded: the weights come from the .pth).

struct ConvShape {
  int64_t out, in, kernel;
};

// Every Conv2d of torchvision's GoogLeNet trunk in registration order (conv1..conv3, then per
// inception block: branch1, branch2 1x1 and 3x3, branch3 1x1 and 3x3, branch4 pool-proj).
std::vector<ConvShape> trunk_convs() {
  std::vector<ConvShape> convs = {{64, 3, 7}, {64, 64, 1}, {192, 64, 3}};
  const int64_t blocks[9][7] = {
      {192, 64, 96, 128, 16, 32, 32},     {256, 128, 128, 192, 32, 96, 64},
      {480, 192, 96, 208, 16, 48, 64},    {512, 160, 112, 224, 24, 64, 64},
      {512, 128, 128, 256, 24, 64, 64},   {512, 112, 144, 288, 32, 64, 64},
      {528, 256, 160, 320, 32, 128, 128}, {832, 256, 160, 320, 32, 128, 128},
      {832, 384, 192, 384, 48, 128, 128}};
  for (const auto& b : blocks) {
    convs.insert(convs.end(), {{b[1], b[0], 1},
                               {b[2], b[0], 1},
                               {b[3], b[2], 3},
                               {b[4], b[0], 1},
                               {b[5], b[4], 3},
                               {b[6], b[0], 1}});
  }
  return convs;
}

// nn.Conv2d(bias=False) construction: kaiming_uniform_(weight) = one uniform_ over the weight.
void construct_conv(const ConvShape& c) {
  torch::empty({c.out, c.in, c.kernel, c.kernel}).uniform_(-1, 1);
}
// nn.Linear construction: kaiming_uniform_(weight), then uniform_(bias).
void construct_linear(int64_t in, int64_t out) {
  torch::empty({out, in}).uniform_(-1, 1);
  torch::empty({out}).uniform_(-1, 1);
}
void construct_aux(int64_t in_channels) {
  construct_conv({128, in_channels, 1});
  construct_linear(2048, 1024);
  construct_linear(1024, 1000);
}
// torchvision.models.googlenet(aux_logits=aux, init_weights=False): __init__ registration order.
void construct_googlenet(bool aux) {
  for (const auto& c : trunk_convs()) construct_conv(c);
  if (aux) {
    construct_aux(512);
    construct_aux(528);
  }
  construct_linear(1024, 1000);
}

// The script's init loop over net.modules() (pre-order = registration order here).
void init_basic_conv(const ConvShape& c) {
  torch::empty({c.out, c.in, c.kernel, c.kernel}).normal_(0, 1);  // kaiming_normal_
  torch::empty({c.out}).uniform_(0.5, 1.5);                       // bn.weight
  torch::empty({c.out}).normal_(0, 0.1);                          // bn.bias
}
void init_linear(int64_t in, int64_t out) {
  torch::empty({out, in}).normal_(0, 1);
  torch::empty({out}).normal_(0, 0.1);
}

void replay_make_fixtures_until_final_forward() {
  torch::manual_seed(0);
  construct_googlenet(/*aux=*/true);                       // (a)
  for (const auto& c : trunk_convs()) init_basic_conv(c);  // (b)
  for (int64_t in_channels : {512, 528}) {
    init_basic_conv({128, in_channels, 1});
    init_linear(2048, 1024);
    init_linear(1024, 1000);
  }
  init_linear(1024, 1000);
  for (int batch = 0; batch < 8; ++batch) {  // (c)
    torch::rand({4, 3, 224, 224});
    const auto hidden = torch::ones({4, 1024});
    torch::dropout(hidden, 0.7, true);  // aux1
    torch::dropout(hidden, 0.7, true);  // aux2
    torch::dropout(hidden, 0.2, true);  // main
  }
  construct_googlenet(false);  // (d) build(True, False)
  construct_googlenet(false);  //     build(False, False)
  construct_googlenet(true);   //     build(True, True)
}

TEST_F(TorchvisionParity, TrainModeOutputsMatchReferenceByReplayingItsRandomStream) {
  const StateDict io = read_torch_checkpoint(tv_fixtures() / "reference-io.pt");
  GoogLeNetOptions options;
  options.variant = Variant::kTorchvision;
  options.aux_logits = true;
  options.transform_input = true;
  GoogLeNet net(options);
  load_state_dict(net, read_torch_checkpoint(weights_file()), weights_file().string());
  net->train();
  torch::NoGradGuard no_grad;
  replay_make_fixtures_until_final_forward();
  const auto out = net->forward_train(find(io, "input"));  // (e)
  const double logits = relative_error(out.logits, find(io, "logits_train"));
  // torchvision 0.14's GoogLeNet.forward unpacks _forward's (x, aux2, aux1) as (x, aux1, aux2),
  // so its output field aux_logits1 (the fixture's "aux1_train") holds the head after inception
  // 4d (module aux2) and aux_logits2 the head after 4a (module aux1). Ours are by module.
  const double aux1 = relative_error(out.aux1, find(io, "aux2_train"));
  const double aux2 = relative_error(out.aux2, find(io, "aux1_train"));
  std::cout << "train rel error: logits " << logits << ", aux1 (module) " << aux1
            << ", aux2 (module) " << aux2 << "\n";
  EXPECT_LT(logits, 1e-4);
  EXPECT_LT(aux1, 1e-4);
  EXPECT_LT(aux2, 1e-4);
}

TEST_F(TorchvisionParity, BuildingANetLeavesTheGlobalRandomStreamAlone) {
  torch::manual_seed(7);
  const auto expected = torch::rand({8});
  torch::manual_seed(7);
  GoogLeNetOptions options;
  options.variant = Variant::kTorchvision;
  options.aux_logits = true;
  GoogLeNet net(options);
  net->replace_classifier(2, 1);
  EXPECT_TRUE(torch::equal(torch::rand({8}), expected));
}

}  // namespace
}  // namespace gg::model
