// The two-class output module (MATLAB transfer learning), stage freezing, save/load of our weights.
#include "model/model.h"
#include "parity_util.h"

namespace gg::model {
namespace {

using test::bvlc_weights;

std::map<std::string, torch::Tensor> snapshot(GoogLeNet& net) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : net->named_parameters()) out[p.key()] = p.value().detach().clone();
  for (const auto& b : net->named_buffers()) out[b.key()] = b.value().detach().clone();
  return out;
}

GoogLeNet small_torchvision(bool aux) {
  GoogLeNetOptions options;
  options.variant = Variant::kTorchvision;
  options.aux_logits = aux;
  GoogLeNet net(options);
  net->init_weights(3);
  return net;
}

TEST(Head, SwapKeepsEveryPretrainedTensorBitIdentical) {
  if (!fs::exists(bvlc_weights())) GG_MISSING("no " << bvlc_weights());
  GoogLeNet net = load_pretrained(Variant::kBvlc, bvlc_weights());
  const auto before = snapshot(net);
  net->replace_classifier(2, /*seed=*/42);
  const auto after = snapshot(net);
  ASSERT_EQ(before.size(), after.size());
  int compared = 0;
  for (const auto& [name, t] : before) {
    if (name.rfind("fc.", 0) == 0) continue;
    EXPECT_TRUE(torch::equal(t, after.at(name))) << name;
    ++compared;
  }
  EXPECT_EQ(compared, 2 * (3 + 9 * 6));
  EXPECT_EQ(after.at("fc.weight").sizes(), torch::IntArrayRef({2, 1024}));
  EXPECT_TRUE(torch::equal(after.at("fc.bias"), torch::zeros({2})));
  EXPECT_NEAR(after.at("fc.weight").std().item<double>(), 0.01, 0.001);  // N(0, 0.01)
  EXPECT_EQ(net->options().num_classes, 2);

  // The same seed gives the same head; the head is the only "classifier" parameter set.
  GoogLeNet again = load_pretrained(Variant::kBvlc, bvlc_weights());
  again->replace_classifier(2, 42);
  EXPECT_TRUE(torch::equal(again->named_parameters()["fc.weight"], after.at("fc.weight")));
  EXPECT_EQ(net->classifier_parameters().size(), 2u);
  EXPECT_EQ(net->backbone_parameters().size(), 2u * (3 + 9 * 6));

  // P(HGG) is the softmax's second column.
  torch::NoGradGuard no_grad;
  const auto input = test::read_f32(test::bvlc_fixtures() / "chelsea.input.f32", {1, 3, 224, 224});
  const auto logits = net->forward(input);
  ASSERT_EQ(logits.sizes(), torch::IntArrayRef({1, 2}));
  const double p = hgg_probability(logits).item<double>();
  const double l0 = logits[0][0].item<double>(), l1 = logits[0][1].item<double>();
  EXPECT_NEAR(p, 1 / (1 + std::exp(l0 - l1)), 1e-6);
}

TEST(Head, LoadingPretrainedIntoATwoClassNetSkipsTheOldClassifier) {
  if (!fs::exists(bvlc_weights())) GG_MISSING("no " << bvlc_weights());
  GoogLeNetOptions options;  // bvlc
  options.num_classes = 2;
  GoogLeNet net(options);
  const StateDict state = read_caffemodel(bvlc_weights());
  EXPECT_THROW(load_state_dict(net, state, "bvlc"), gg::Error);  // fc is [1000,1024] in the file
  net->replace_classifier(2, 1);
  load_state_dict(net, state, "bvlc", /*allow_missing_classifier=*/true);
  EXPECT_TRUE(torch::equal(net->named_parameters()["conv1.conv.weight"], state.front().second));
}

TEST(Head, MismatchesNameTheTensor) {
  GoogLeNet net = small_torchvision(false);
  StateDict state;
  for (const auto& p : net->named_parameters())
    state.emplace_back(p.key(), p.value().detach().clone());
  for (const auto& b : net->named_buffers())
    state.emplace_back(b.key(), b.value().detach().clone());
  load_state_dict(net, state, "ok.pth");

  StateDict missing(state.begin() + 1, state.end());
  try {
    load_state_dict(net, missing, "missing.pth");
    FAIL();
  } catch (const gg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("conv1.conv.weight"), std::string::npos) << e.what();
  }
  StateDict extra = state;
  extra.emplace_back("inception9z.weight", torch::zeros({1}));
  EXPECT_THROW(load_state_dict(net, extra, "extra.pth"), gg::Error);
  StateDict misshaped = state;
  misshaped[0].second = torch::zeros({64, 3, 5, 5});
  try {
    load_state_dict(net, misshaped, "shape.pth");
    FAIL();
  } catch (const gg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("[64, 3, 5, 5]"), std::string::npos) << e.what();
  }
  GoogLeNet bvlc{GoogLeNetOptions{}};
  try {
    load_state_dict(bvlc, state, "tv.pth");
    FAIL();
  } catch (const gg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("torchvision"), std::string::npos) << e.what();
  }
}

TEST(Head, FreezeStagesStopsGradientsAndKeepsFrozenBatchNormInEval) {
  GoogLeNet net = small_torchvision(false);
  net->replace_classifier(2, 5);
  net->freeze_stages(2);  // stem + inception 3
  net->train();
  for (const auto& p : net->named_parameters()) {
    const std::string& n = p.key();
    const bool frozen = n.rfind("conv", 0) == 0 || n.rfind("inception3", 0) == 0;
    EXPECT_EQ(p.value().requires_grad(), !frozen) << n;
  }
  for (const auto& m : net->named_modules()) {
    if (!m.value()->as<torch::nn::BatchNorm2d>()) continue;
    const bool frozen = m.key().rfind("conv", 0) == 0 || m.key().rfind("inception3", 0) == 0;
    EXPECT_EQ(m.value()->is_training(), !frozen) << m.key();
  }
  EXPECT_EQ(net->classifier_parameters().size(), 2u);
  size_t trainable = 0;
  for (const auto& p : net->parameters()) trainable += p.requires_grad();
  EXPECT_EQ(net->backbone_parameters().size() + 2, trainable);
  // A training step leaves frozen tensors alone.
  const auto before = net->named_parameters()["conv1.conv.weight"].clone();
  const auto running_before = net->named_buffers()["conv1.bn.running_mean"].clone();
  torch::optim::SGD sgd(net->parameters(), 0.1);
  auto loss = net->forward(torch::rand({2, 3, 96, 96})).sum();
  loss.backward();
  sgd.step();
  EXPECT_TRUE(torch::equal(before, net->named_parameters()["conv1.conv.weight"]));
  EXPECT_TRUE(torch::equal(running_before, net->named_buffers()["conv1.bn.running_mean"]));
  net->freeze_stages(0);
  for (const auto& p : net->parameters()) EXPECT_TRUE(p.requires_grad());
  EXPECT_THROW(net->freeze_stages(5), gg::Error);
}

TEST(Head, AuxHeadsTrainAndSwap) {
  GoogLeNet net = small_torchvision(true);
  net->replace_classifier(2, 9);
  net->train();
  const auto out = net->forward_train(torch::rand({2, 3, 224, 224}));
  EXPECT_EQ(out.logits.sizes(), torch::IntArrayRef({2, 2}));
  EXPECT_EQ(out.aux1.sizes(), torch::IntArrayRef({2, 2}));
  EXPECT_EQ(out.aux2.sizes(), torch::IntArrayRef({2, 2}));
  EXPECT_EQ(net->classifier_parameters().size(), 6u);  // fc, aux1.fc2, aux2.fc2
  net->eval();
  EXPECT_FALSE(net->forward_train(torch::rand({1, 3, 224, 224})).aux1.defined());
}

TEST(Head, LastBlockKeepsItsGraphForGradCam) {
  GoogLeNet net{GoogLeNetOptions{Variant::kBvlc, 2}};
  net->init_weights(4);
  net->eval();
  auto [logits, last] = net->forward_with_last_block(torch::rand({1, 3, 224, 224}) * 255 - 117);
  last.retain_grad();
  logits[0][1].backward();
  ASSERT_TRUE(last.grad().defined());
  EXPECT_EQ(last.grad().sizes(), torch::IntArrayRef({1, 1024, 7, 7}));
  EXPECT_GT(last.grad().abs().sum().item<double>(), 0);
}

TEST(Head, ChannelsLastGivesTheSameOutputs) {
  torch::NoGradGuard no_grad;
  for (Variant variant : {Variant::kBvlc, Variant::kTorchvision}) {
    GoogLeNetOptions options;
    options.variant = variant;
    GoogLeNet net(options);
    net->init_weights(6);
    net->eval();
    const auto x = net->normalise_input(torch::rand({1, 3, 160, 160}));
    const auto nchw = net->forward(x);
    net->to_memory_format(torch::MemoryFormat::ChannelsLast);
    const auto nhwc = net->forward(x.contiguous(at::MemoryFormat::ChannelsLast));
    EXPECT_LT(test::relative_error(nhwc, nchw), 1e-4) << variant_name(variant);
  }
}

TEST(Weights, SaveLoadRoundTripIsExact) {
  gg::testing::TempDir dir;
  GoogLeNet net = small_torchvision(false);
  net->replace_classifier(2, 11);
  save_weights(net, dir / "t1.ggw");
  EXPECT_EQ(detect_format(dir / "t1.ggw"), WeightsFormat::kGliomagrade);
  const GoogLeNetOptions options = read_weights_options(dir / "t1.ggw");
  EXPECT_EQ(options.variant, Variant::kTorchvision);
  EXPECT_EQ(options.num_classes, 2);
  GoogLeNet loaded(options);
  load_weights(loaded, dir / "t1.ggw");
  const auto a = snapshot(net), b = snapshot(loaded);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
  // read_pretrained reads our own files too.
  EXPECT_EQ(read_pretrained(dir / "t1.ggw").size(), a.size());
}

TEST(Weights, WrongArchitectureTruncationAndCorruptionAreClearErrors) {
  gg::testing::TempDir dir;
  GoogLeNet net = small_torchvision(false);
  net->replace_classifier(2, 11);
  save_weights(net, dir / "w.ggw");
  auto expect_error = [&](GoogLeNet& target, const fs::path& file, const std::string& says) {
    try {
      load_weights(target, file);
      FAIL() << file;
    } catch (const gg::Error& e) {
      EXPECT_EQ(e.file(), file.string());
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
  };
  GoogLeNet bvlc_net(GoogLeNetOptions{Variant::kBvlc, 2});
  expect_error(bvlc_net, dir / "w.ggw", "torchvision");
  GoogLeNet three(GoogLeNetOptions{Variant::kTorchvision, 3});
  expect_error(three, dir / "w.ggw", "2 classes");

  const std::string bytes = gg::read_file(dir / "w.ggw");
  for (size_t cut :
       {size_t{0}, size_t{5}, size_t{15}, size_t{200}, bytes.size() / 2, bytes.size() - 1}) {
    gg::write_file_atomic(dir / "cut.ggw", bytes.substr(0, cut));
    EXPECT_THROW(load_weights(net, dir / "cut.ggw"), gg::Error) << cut;
  }
  std::string flipped = bytes;
  flipped[bytes.size() - 100] ^= 0x40;
  gg::write_file_atomic(dir / "flip.ggw", flipped);
  expect_error(net, dir / "flip.ggw", "checksum");
  EXPECT_THROW(load_weights(net, dir / "absent.ggw"), gg::Error);
}

}  // namespace
}  // namespace gg::model
