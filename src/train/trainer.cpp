// The training loop of one sequence model. Every random draw (head init, epoch order,
// augmentation, dropout) is a pure function of (seed, epoch, iteration), so a run resumed from a
// checkpoint replays exactly what an uninterrupted run would have done.
//
// Data-parallel (dist/): the mini-batch is global and each rank takes a contiguous shard of its
// rows. Every rank draws the whole batch's augmentation and dropout and applies its own rows, the
// loss of a shard is its weighted sum over the global batch's weight sum, and the gradients are
// summed over ranks: each SGD step is the single-process step up to float rounding, whatever the
// world size. (The torchvision variant's BatchNorm, when it is not frozen, normalises with each
// shard's own statistics: there the step depends on the world size. BVLC has no BatchNorm.)
#include <torch/torch.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "common/csv.h"
#include "common/error.h"
#include "common/files.h"
#include "common/progress.h"
#include "dist/collectives.h"
#include "model/model.h"
#include "train/train.h"

namespace gg::train {

namespace {

using nlohmann::json;

// splitmix64: decorrelates the streams of nearby (seed, epoch, iteration) triples.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
uint64_t stream_seed(uint64_t seed, uint64_t a, uint64_t b, uint64_t purpose) {
  return mix(mix(mix(seed ^ purpose) ^ a) ^ b);
}

struct LogRow {
  int iteration, epoch;
  long images;
  double train_loss, train_accuracy;
  bool has_val;
  double val_loss, val_accuracy, learning_rate;
};

std::string log_csv(const std::vector<LogRow>& rows) {
  std::string s =
      "iteration,epoch,images,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate\n";
  for (const auto& r : rows) {
    s += fmt::format("{},{},{},{:.6g},{:.6g},", r.iteration, r.epoch, r.images, r.train_loss,
                     r.train_accuracy);
    if (r.has_val)
      s += fmt::format("{:.6g},{:.6g}", r.val_loss, r.val_accuracy);
    else
      s += ",";
    s += fmt::format(",{:.6g}\n", r.learning_rate);
  }
  return s;
}

// The log saved with a checkpoint, read back on resume. Throws kBadInput naming the file and the
// line (and column, for a bad number) when it is not what log_csv wrote.
std::vector<LogRow> parse_log_csv(const std::string& text, const std::string& file) {
  const char* const fix = "the checkpoint is corrupt: start afresh in a new --out";
  const std::vector<CsvRecord> records = parse_csv_records(text, file);
  if (records.empty() || records[0].fields.size() != 8)
    throw_bad_input(file, "line 1: not a training-log header", fix);
  const std::vector<std::string>& names = records[0].fields;
  std::vector<LogRow> rows;
  for (size_t i = 1; i < records.size(); ++i) {
    const std::vector<std::string>& f = records[i].fields;
    const int line = records[i].line;
    if (f.size() != 8)
      throw_bad_input(
          file,
          "line " + std::to_string(line) + ": " + std::to_string(f.size()) + " fields, expected 8",
          fix);
    auto at = [&](size_t k) { return CsvPlace{file, line, names[k]}; };
    LogRow r{};
    r.iteration = csv_int(f[0], at(0), fix);
    r.epoch = csv_int(f[1], at(1), fix);
    r.images = csv_long(f[2], at(2), fix);
    r.train_loss = csv_double(f[3], at(3), fix);
    r.train_accuracy = csv_double(f[4], at(4), fix);
    r.has_val = !f[5].empty();
    if (r.has_val) {
      r.val_loss = csv_double(f[5], at(5), fix);
      r.val_accuracy = csv_double(f[6], at(6), fix);
    }
    r.learning_rate = csv_double(f[7], at(7), fix);
    rows.push_back(r);
  }
  return rows;
}

// Pixels of one part of the split, resident in memory as uint8 (6,700 slices are 336 MB).
struct Images {
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;  // 1 = HGG
  int size = 0;
  int64_t count() const { return static_cast<int64_t>(labels.size()); }
};

Images load_images(const prep::SliceStore& store, io::Sequence seq,
                   const std::vector<int64_t>& items) {
  Images im;
  im.size = store.size;
  im.pixels.resize(items.size() * size_t(store.size) * size_t(store.size));
  prep::read_slices(store, seq, items, im.pixels.data());
  for (int64_t i : items)
    im.labels.push_back(store.items[size_t(i)].grade == io::Grade::kHGG ? 1 : 0);
  return im;
}

// The augmentation of one image: reflection in x, then translation by (dx, dy) px.
struct Augmentation {
  bool flip_x = false;
  int dx = 0, dy = 0;
};

// The augmentations of a whole mini-batch, drawn in row order from the iteration's stream: every
// rank draws all of them, so row b is augmented the same whichever rank handles it.
std::vector<Augmentation> draw_augmentations(size_t rows, const TrainConfig& c,
                                             std::mt19937_64& rng) {
  std::uniform_int_distribution<int> shift(-c.translate_px, c.translate_px);
  std::bernoulli_distribution flip(0.5);
  std::vector<Augmentation> out(rows);
  for (auto& a : out) {
    a.flip_x = c.flip_x && flip(rng);
    if (c.translate_px > 0) a.dx = shift(rng), a.dy = shift(rng);
  }
  return out;
}

// A training batch as float [B,3,S,S] RGB in [0,1] (grey replicated, as MATLAB feeds grey images
// to GoogLeNet), with MATLAB-style augmentation (aug[b] for rows[b]), zero fill. (Unaugmented
// input goes through model::slices_to_input.)
torch::Tensor make_training_batch(const Images& im, const std::vector<int64_t>& rows,
                                  const std::vector<Augmentation>& aug) {
  const int s = im.size;
  auto batch = torch::zeros({int64_t(rows.size()), 1, s, s}, torch::kFloat32);
  float* out = batch.data_ptr<float>();
  for (size_t b = 0; b < rows.size(); ++b) {
    const int dx = aug[b].dx, dy = aug[b].dy;
    const bool fx = aug[b].flip_x;
    const uint8_t* src = im.pixels.data() + size_t(rows[b]) * s * s;
    float* dst = out + b * size_t(s) * s;
    for (int y = 0; y < s; ++y) {
      const int sy = y - dy;
      if (sy < 0 || sy >= s) continue;
      for (int x = 0; x < s; ++x) {
        int sx = x - dx;
        if (sx < 0 || sx >= s) continue;
        if (fx) sx = s - 1 - sx;
        dst[y * s + x] = src[sy * s + sx] * (1.0f / 255.0f);
      }
    }
  }
  return batch.expand({int64_t(rows.size()), 3, s, s}).contiguous();
}

torch::Tensor to_layout(torch::Tensor x, bool channels_last) {
  return channels_last ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x;
}

struct ValStats {
  double loss = 0, accuracy = 0;
};

// Validation loss (class-weighted mean) and accuracy. With `comm`, each rank scores its shard of
// the validation images and the sums are all-reduced.
ValStats validate(model::GoogLeNet& net, const Images& val, const torch::Tensor& class_weights,
                  const TrainConfig& c, dist::Communicator* comm, int iteration) {
  const dist::Shard sh =
      comm ? dist::shard_of(val.count(), comm->rank(), comm->size()) : dist::Shard{0, val.count()};
  double sums[3] = {0, 0, 0};  // weighted loss, weight, correct
  if (sh.size() > 0) {
    const auto logits =
        model::batched_logits(net, val.pixels.data() + size_t(sh.begin) * val.size * val.size,
                              sh.size(), val.size, 32, c.channels_last);
    torch::NoGradGuard no_grad;
    const std::vector<int64_t> labels(val.labels.begin() + sh.begin, val.labels.begin() + sh.end);
    const auto y = torch::tensor(labels, torch::kInt64);
    const auto per_item = torch::nn::functional::cross_entropy(
        logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
    const auto w = class_weights.cpu().index_select(0, y);
    sums[0] = (per_item * w).to(torch::kFloat64).sum().item<double>();
    sums[1] = w.to(torch::kFloat64).sum().item<double>();
    sums[2] = double(logits.argmax(1).eq(y).sum().item<int64_t>());
  }
  if (comm) {
    auto t = torch::tensor({sums[0], sums[1], sums[2]}, torch::kFloat64);
    dist::all_reduce_sum(*comm, {t}, fmt::format("validation at iteration {}", iteration));
    for (int k = 0; k < 3; ++k) sums[k] = t[k].item<double>();
  }
  return {sums[0] / std::max(sums[1], 1e-12), sums[2] / double(std::max<int64_t>(1, val.count()))};
}

// The order in which epoch `epoch` visits the training rows.
std::vector<int64_t> epoch_order(const Images& train, const TrainConfig& c, int epoch) {
  std::mt19937_64 rng(stream_seed(c.seed, uint64_t(epoch), 0, 0x5e9));
  std::vector<int64_t> order;
  if (c.balance == Balance::kOversample) {
    std::vector<int64_t> by_class[2];
    for (int64_t i = 0; i < train.count(); ++i) by_class[train.labels[size_t(i)]].push_back(i);
    const size_t target = std::max(by_class[0].size(), by_class[1].size());
    for (auto& cls : by_class) {
      order.insert(order.end(), cls.begin(), cls.end());
      std::uniform_int_distribution<size_t> pick(0, cls.size() - 1);
      for (size_t k = cls.size(); k < target; ++k) order.push_back(cls[pick(rng)]);
    }
  } else {
    order.resize(size_t(train.count()));
    std::iota(order.begin(), order.end(), 0);
  }
  std::shuffle(order.begin(), order.end(), rng);
  return order;
}

struct Checkpoint {
  int epoch = 0;               // epoch to continue in
  int iteration_in_epoch = 0;  // next iteration within it
  int iterations = 0;          // done so far
  long images = 0;
  double best_val_loss = INFINITY, best_val_accuracy = 0;
  int best_iteration = 0;
  std::string config_json;
};

void save_checkpoint(model::GoogLeNet& net, torch::optim::SGD& opt, const Checkpoint& ck,
                     const std::vector<LogRow>& log, const fs::path& dir) {
  const fs::path old = dir.string() + ".old";
  std::error_code ec;
  {
    StagingDir stage(dir.string() + ".new", true);
    model::save_weights(net, stage.path() / "weights.pt");
    // In memory first: libtorch's file writer aborts the process when a write fails.
    std::ostringstream optimizer_bytes;
    torch::save(opt, optimizer_bytes);
    write_file_atomic(stage.path() / "optimizer.pt", optimizer_bytes.str());
    const json j = {{"epoch", ck.epoch},
                    {"iteration_in_epoch", ck.iteration_in_epoch},
                    {"iterations", ck.iterations},
                    {"images", ck.images},
                    {"best_val_loss", ck.best_val_loss},
                    {"best_val_accuracy", ck.best_val_accuracy},
                    {"best_iteration", ck.best_iteration},
                    {"config", json::parse(ck.config_json)}};
    write_file_atomic(stage.path() / "state.json", j.dump(2));
    write_file_atomic(stage.path() / "log.csv", log_csv(log));
    stage.commit();
  }
  // Swap in the new checkpoint; at every instant one complete checkpoint exists (dir or dir.old).
  fs::remove_all(old, ec);
  if (fs::exists(dir)) fs::rename(dir, old, ec);
  fs::rename(dir.string() + ".new", dir, ec);
  if (ec) throw_runtime(dir.string(), "cannot move checkpoint into place: " + ec.message());
  fs::remove_all(old, ec);
}

bool load_checkpoint(model::GoogLeNet& net, torch::optim::SGD& opt, Checkpoint* ck,
                     std::vector<LogRow>* log, fs::path dir, const std::string& config_json) {
  if (!fs::exists(dir / "state.json") && fs::exists(dir.string() + ".old"))
    dir = dir.string() + ".old";
  if (!fs::exists(dir / "state.json")) return false;
  const json j = json::parse(read_file(dir / "state.json"));
  // The config must match, or "resume" would silently train something else.
  json saved = j.at("config"), now = json::parse(config_json);
  saved.erase("epochs"), now.erase("epochs");  // more epochs may be asked for on resume
  if (saved != now)
    throw_bad_input((dir / "state.json").string(),
                    "checkpoint was written with another training config",
                    "resume with the same options, or start afresh in a new --out");
  model::load_weights(net, dir / "weights.pt");
  torch::load(opt, (dir / "optimizer.pt").string());
  ck->epoch = j.at("epoch");
  ck->iteration_in_epoch = j.at("iteration_in_epoch");
  ck->iterations = j.at("iterations");
  ck->images = j.at("images");
  ck->best_val_loss =
      j.at("best_val_loss").is_null() ? INFINITY : j.at("best_val_loss").get<double>();
  ck->best_val_accuracy = j.at("best_val_accuracy");
  ck->best_iteration = j.at("best_iteration");
  *log = parse_log_csv(read_file(dir / "log.csv"), (dir / "log.csv").string());
  return true;
}

}  // namespace

void set_compute_threads(int threads) {
  const int n = threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(n);
}

TrainResult train_sequence(const prep::SliceStore& store, const data::Split& split,
                           io::Sequence seq, const TrainConfig& c, const fs::path& out_dir,
                           bool resume, dist::Communicator* comm) {
  const bool writer = !comm || comm->writer();  // rank 0 alone writes files and shows progress
  const std::string seq_name = io::sequence_name(seq);
  if (c.batch_size < 1 || c.epochs < 1)
    throw_bad_input("", "batch size and epochs must be at least 1");
  const auto train_items = split.items_in(data::Part::kTrain);
  const auto val_items = split.items_in(data::Part::kVal);
  if (train_items.empty() || val_items.empty())
    throw_bad_input(store.dir.string(), "the split has an empty train or validation part",
                    "use a larger cohort or other split fractions");
  const Images train = load_images(store, seq, train_items);
  const Images val = load_images(store, seq, val_items);
  const int64_t n_hgg = std::accumulate(train.labels.begin(), train.labels.end(), int64_t{0});
  const int64_t n_lgg = train.count() - n_hgg;
  if (n_hgg == 0 || n_lgg == 0)
    throw_bad_input(store.dir.string(), "the training part holds one grade only",
                    "a model cannot learn LGG vs HGG without both; check the cohort's grades");

  // Data-parallel ranks on GPUs: "cuda" is this node's GPU of the rank (LOCAL_RANK).
  torch::Device device = model::resolve_device(c.device);
  if (comm && c.device == "cuda")
    device = model::resolve_device(fmt::format("cuda:{}", comm->local_rank()));

  // Class weights n / (2 n_c): each grade contributes half of the loss.
  float weight_of[2] = {1.0f, 1.0f};  // by label
  if (c.balance == Balance::kWeightedLoss) {
    weight_of[0] = float(train.count()) / (2.0f * float(n_lgg));
    weight_of[1] = float(train.count()) / (2.0f * float(n_hgg));
  }
  const auto class_weights =
      torch::tensor({weight_of[0], weight_of[1]}, torch::kFloat32).to(device);

  const model::Variant variant = model::parse_variant(c.variant);
  model::GoogLeNet net = model::load_pretrained(variant, c.pretrained, /*transform_input=*/true);
  net->replace_classifier(2, stream_seed(c.seed, 0, 0, 0x4ead));
  net->freeze_stages(c.freeze_stages);
  net->to(device);
  if (c.channels_last) net->to_memory_format(torch::MemoryFormat::ChannelsLast);
  net->train();

  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(net->backbone_parameters(),
                      std::make_unique<torch::optim::SGDOptions>(c.learning_rate));
  groups.emplace_back(net->classifier_parameters(), std::make_unique<torch::optim::SGDOptions>(
                                                        c.learning_rate * c.head_lr_factor));
  for (auto& g : groups) {
    auto& o = static_cast<torch::optim::SGDOptions&>(g.options());
    o.momentum(c.momentum).weight_decay(c.weight_decay);
  }
  torch::optim::SGD opt(std::move(groups), torch::optim::SGDOptions(c.learning_rate));

  const BundlePaths paths{out_dir};
  const fs::path ck_dir = paths.checkpoint_dir(seq);
  const fs::path log_path = paths.training_log(seq);
  const fs::path best_path = paths.weights(seq);
  const std::string config_json = config_to_json(c);
  Checkpoint ck;
  ck.config_json = config_json;
  std::vector<LogRow> log;
  if (resume && !load_checkpoint(net, opt, &ck, &log, ck_dir, config_json))
    throw_bad_input(ck_dir.string(), "no checkpoint to resume from",
                    "run without --resume to start training");
  if (comm) {
    // One model on every rank: they built the same one from the same files and seed; rank 0's
    // copy makes it certain (a replica that drifted would silently train another model).
    std::vector<torch::Tensor> params;
    for (const auto& p : net->parameters()) params.push_back(p);
    dist::broadcast_from_rank0(*comm, params, "the initial weights of " + seq_name);
  }

  const int per_epoch = std::max<int>(1, int(epoch_order(train, c, 0).size()) / c.batch_size);
  const int total = per_epoch * c.epochs;
  const int validate_every = c.validate_every > 0 ? c.validate_every : std::max(1, per_epoch / 4);
  Progress progress(fmt::format("train {:<5}", seq_name),
                    int64_t(total - ck.iterations) * c.batch_size, "img",
                    c.show_progress && writer);
  const auto t0 = std::chrono::steady_clock::now();
  long session_images = 0;
  double communication_seconds = 0;
  TrainResult result;
  result.world_size = comm ? comm->size() : 1;
  result.sequence = seq;
  result.best_weights = best_path;
  result.log_csv = log_path;

  std::optional<model::FrozenNet> frozen_prefix;
  for (int epoch = ck.epoch; epoch < c.epochs; ++epoch) {
    const auto order = epoch_order(train, c, epoch);
    for (int it = (epoch == ck.epoch ? ck.iteration_in_epoch : 0); it < per_epoch; ++it) {
      if (c.stop_after_iterations > 0 && ck.iterations >= c.stop_after_iterations) {
        if (writer) write_file_atomic(log_path, log_csv(log));
        result.iterations = ck.iterations;
        return result;  // simulated interruption: the last checkpoint is what survives
      }
      std::mt19937_64 rng(stream_seed(c.seed, uint64_t(epoch), uint64_t(it), 0xa06));
      // A training part smaller than one mini-batch makes one smaller batch (it read past the
      // end of `order` before); otherwise the incomplete last batch is dropped, as MATLAB does.
      const auto end = std::min<int64_t>(int64_t(order.size()), int64_t(it + 1) * c.batch_size);
      const std::vector<int64_t> batch(order.begin() + int64_t(it) * c.batch_size,
                                       order.begin() + end);
      const int64_t n = int64_t(batch.size());
      const auto augmentations = draw_augmentations(batch.size(), c, rng);
      const dist::Shard sh =
          comm ? dist::shard_of(n, comm->rank(), comm->size()) : dist::Shard{0, n};
      const std::vector<int64_t> rows(batch.begin() + sh.begin, batch.begin() + sh.end);
      double batch_weight = 0, shard_weight = 0;
      for (int64_t b = 0; b < n; ++b) {
        const float w = weight_of[train.labels[size_t(batch[size_t(b)])]];
        batch_weight += w;
        if (b >= sh.begin && b < sh.end) shard_weight += w;
      }
      torch::manual_seed(stream_seed(c.seed, uint64_t(epoch), uint64_t(it), 0xd40));  // dropout

      opt.zero_grad();
      double loss_value = 0;
      int64_t correct = 0;
      if (!rows.empty()) {
        auto x = to_layout(net->normalise_input(make_training_batch(
                               train, rows,
                               std::vector<Augmentation>(augmentations.begin() + sh.begin,
                                                         augmentations.begin() + sh.end))),
                           c.channels_last)
                     .to(device);
        std::vector<int64_t> labels;
        for (int64_t r : rows) labels.push_back(train.labels[size_t(r)]);
        const auto y = torch::tensor(labels, torch::kInt64).to(device);
        // Frozen stages run frozen (pre-packed, no autograd): built once, at the first batch,
        // from the weights as loaded (frozen parameters never change during training).
        if (c.freeze_stages > 0 && !frozen_prefix) frozen_prefix.emplace(net, x.size(0), x.size(2));
        auto logits = net->forward_shard(x, n, sh.begin, frozen_prefix ? &*frozen_prefix : nullptr);
        auto loss = torch::nn::functional::cross_entropy(
            logits, y, torch::nn::functional::CrossEntropyFuncOptions().weight(class_weights));
        // The shard's weighted mean times its share of the batch's weight: summed over ranks,
        // the batch's weighted mean (a whole batch on one process: no factor at all).
        if (shard_weight != batch_weight) loss = loss * (shard_weight / batch_weight);
        loss.backward();
        loss_value = loss.item<double>();
        correct = logits.argmax(1).eq(y).sum().item<int64_t>();
      }
      if (comm) {
        std::vector<torch::Tensor> sums;
        for (auto& p : net->parameters()) {
          if (!p.requires_grad()) continue;
          if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);  // an empty shard
          sums.push_back(p.grad());
        }
        auto stats = torch::tensor({loss_value, double(correct)}, torch::kFloat64);
        sums.push_back(stats);
        const auto tc = std::chrono::steady_clock::now();
        dist::all_reduce_sum(*comm, sums,
                             fmt::format("the gradients of iteration {}", ck.iterations + 1));
        communication_seconds +=
            std::chrono::duration<double>(std::chrono::steady_clock::now() - tc).count();
        loss_value = stats[0].item<double>();
        correct = int64_t(stats[1].item<double>());
      }
      opt.step();
      if (!std::isfinite(loss_value))
        throw_runtime(
            log_path.string(),
            fmt::format("training loss became {} at iteration {}", loss_value, ck.iterations + 1),
            "lower --lr, or check the slice store for corrupt images");

      ck.iterations++;
      ck.images += long(n);
      session_images += long(n);
      LogRow row{ck.iterations, epoch + 1, ck.images, loss_value,     double(correct) / double(n),
                 false,         0,         0,         c.learning_rate};
      const bool last = epoch == c.epochs - 1 && it == per_epoch - 1;
      if (ck.iterations % validate_every == 0 || last) {
        const ValStats v = validate(net, val, class_weights, c, comm, ck.iterations);
        row.has_val = true, row.val_loss = v.loss, row.val_accuracy = v.accuracy;
        if (v.loss < ck.best_val_loss) {
          ck.best_val_loss = v.loss, ck.best_val_accuracy = v.accuracy,
          ck.best_iteration = ck.iterations;
          if (writer) model::save_weights(net, best_path);
        }
      }
      log.push_back(row);
      progress.tick(long(n),
                    fmt::format("epoch {}/{} loss {:.3f}", epoch + 1, c.epochs, loss_value));

      const bool epoch_end = it == per_epoch - 1;
      if (epoch_end || (c.checkpoint_every > 0 && ck.iterations % c.checkpoint_every == 0)) {
        ck.epoch = epoch_end ? epoch + 1 : epoch;
        ck.iteration_in_epoch = epoch_end ? 0 : it + 1;
        if (writer) {
          save_checkpoint(net, opt, ck, log, ck_dir);
          write_file_atomic(log_path, log_csv(log));
        }
      } else if (writer && ck.iterations % 10 == 0) {
        write_file_atomic(log_path, log_csv(log));
      }
    }
  }
  progress.done(
      fmt::format("best val loss {:.3f} at iteration {}", ck.best_val_loss, ck.best_iteration));
  if (writer) write_file_atomic(log_path, log_csv(log));
  result.completed = true;
  result.iterations = ck.iterations;
  result.best_iteration = ck.best_iteration;
  result.best_val_loss = ck.best_val_loss;
  result.best_val_accuracy = ck.best_val_accuracy;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  result.images_per_second = result.seconds > 0 ? double(session_images) / result.seconds : 0;
  result.communication_seconds = communication_seconds;
  return result;
}

bool has_checkpoint(const fs::path& out_dir, io::Sequence sequence) {
  const fs::path dir = BundlePaths{out_dir}.checkpoint_dir(sequence);
  return fs::exists(dir / "state.json") || fs::exists(dir.string() + ".old/state.json");
}

std::vector<double> predict_items(const fs::path& weights, const std::string& variant,
                                  const prep::SliceStore& store, io::Sequence seq,
                                  const std::vector<int64_t>& items, int batch_size,
                                  bool show_progress, const std::string& device) {
  const model::GoogLeNetOptions o = model::read_weights_options(weights);
  if (o.variant != model::parse_variant(variant) || o.num_classes != 2)
    throw_bad_input(weights.string(),
                    fmt::format("holds a {}-class {} GoogLeNet, expected a 2-class {} one",
                                o.num_classes, model::variant_name(o.variant), variant),
                    "use the weights of a gliomagrade model bundle");
  model::GoogLeNet net(o);
  model::load_weights(net, weights);
  net->to(model::resolve_device(device));
  net->to_memory_format(torch::MemoryFormat::ChannelsLast);  // with channels-last input: 2x faster
  const Images im = load_images(store, seq, items);
  Progress progress(fmt::format("predict {:<5}", io::sequence_name(seq)), im.count(), "img",
                    show_progress);
  const auto logits = model::batched_logits(net, im.pixels.data(), im.count(), im.size, batch_size,
                                            true, [&](int64_t count) { progress.tick(count); });
  progress.done();
  const auto prob = model::hgg_probability(logits).to(torch::kFloat64).cpu().contiguous();
  return std::vector<double>(prob.data_ptr<double>(), prob.data_ptr<double>() + prob.numel());
}

}  // namespace gg::train
