// TaskOrder <-> JSON: how `run --jobs` hands one training to a child process. Every field of
// RunOptions that the child uses is written, and reading is strict (every key known, every key
// present), so the parent and the child cannot silently disagree on an option.
#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "protocol/protocol.h"

namespace gg::protocol {

namespace {

using nlohmann::json;

constexpr const char* kOrderFormat = "gliomagrade-task-order/1";

json cohort_to_json(const CohortOptions& c) {
  return {{"data", c.data.string()},
          {"slices", c.slices},
          {"threads", c.threads},
          {"synth",
           {{"lgg", c.synth.lgg},
            {"hgg", c.synth.hgg},
            {"difficulty", c.synth.difficulty},
            {"size", c.synth.size},
            {"seed", c.synth.seed}}}};
}

// The keys of `j`, each exactly once: an unknown or missing key is an error naming it.
class StrictObject {
 public:
  StrictObject(const json& j, std::string where, const std::string& source)
      : j_(j), where_(std::move(where)), source_(source) {
    if (!j.is_object()) throw_bad_input(source_, where_ + " must be a JSON object");
    for (const auto& item : j.items()) unread_.push_back(item.key());
  }
  const json& at(const std::string& key) {
    if (!j_.contains(key))
      throw_bad_input(source_, "task order: " + where_ + " lacks '" + key + "'",
                      "start the run again with the same gliomagrade that wrote it");
    unread_.erase(std::remove(unread_.begin(), unread_.end(), key), unread_.end());
    return j_.at(key);
  }
  void expect_all_read() const {
    if (!unread_.empty())
      throw_bad_input(source_, "task order: unknown key '" + unread_.front() + "' in " + where_,
                      "start the run again with the same gliomagrade that wrote it");
  }

 private:
  const json& j_;
  std::string where_;
  const std::string& source_;
  std::vector<std::string> unread_;
};

CohortOptions cohort_from_json(const json& j, const std::string& source) {
  StrictObject o(j, "cohort", source);
  CohortOptions c;
  c.data = o.at("data").get<std::string>();
  c.slices = o.at("slices").get<int>();
  c.threads = o.at("threads").get<int>();
  StrictObject s(o.at("synth"), "cohort.synth", source);
  c.synth.lgg = s.at("lgg").get<int>();
  c.synth.hgg = s.at("hgg").get<int>();
  c.synth.difficulty = s.at("difficulty").get<double>();
  c.synth.size = s.at("size").get<std::array<int, 3>>();
  c.synth.seed = s.at("seed").get<uint64_t>();
  s.expect_all_read();
  o.expect_all_read();
  return c;
}

}  // namespace

std::string task_order_to_json(const TaskOrder& order) {
  const RunOptions& o = order.options;
  const json j = {
      {"format", kOrderFormat},
      {"out", order.out.string()},
      {"task", o.task},
      {"cohort", cohort_to_json(o.cohort)},
      {"split", data::split_by_name(o.split_by)},
      {"split_seed", o.split_seed},
      {"folds", o.folds},
      {"repeats", o.repeats},
      {"resume", o.resume},
      {"show_progress", o.show_progress},
      // The model's definition, then what config_to_json leaves out: how this training runs.
      {"training", json::parse(train::config_to_json(o.train))},
      {"device", o.train.device},
      {"stop_after_iterations", o.train.stop_after_iterations}};
  return j.dump(2) + "\n";
}

TaskOrder task_order_from_json(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw_bad_input(source, std::string("task order is not valid JSON: ") + e.what());
  }
  TaskOrder order;
  RunOptions& o = order.options;
  try {
    StrictObject top(j, "the task order", source);
    if (top.at("format") != kOrderFormat)
      throw_bad_input(
          source, "not a task order of this gliomagrade (format " + top.at("format").dump() + ")");
    order.out = top.at("out").get<std::string>();
    o.task = top.at("task").get<int>();
    o.cohort = cohort_from_json(top.at("cohort"), source);
    o.split_by = data::parse_split_by(top.at("split").get<std::string>());
    o.split_seed = top.at("split_seed").get<uint64_t>();
    o.folds = top.at("folds").get<int>();
    o.repeats = top.at("repeats").get<int>();
    o.resume = top.at("resume").get<bool>();
    o.show_progress = top.at("show_progress").get<bool>();
    o.train = train::config_from_json(top.at("training").dump(), source);
    o.train.device = top.at("device").get<std::string>();
    o.train.stop_after_iterations = top.at("stop_after_iterations").get<int>();
    o.train.show_progress = o.show_progress;
    top.expect_all_read();
  } catch (const json::exception& e) {
    throw_bad_input(source, std::string("wrong type in task order: ") + e.what());
  }
  if (o.task < 1)
    throw_bad_input(source, "task order names task " + std::to_string(o.task) + ", not 1 or more");
  o.jobs = 1;
  return order;
}

}  // namespace gg::protocol
