// Reading the trainer's per-iteration log CSV.
#include <cmath>
#include <string>

#include "common/error.h"
#include "common/files.h"
#include "eval/internal.h"
#include "report/report.h"

namespace gg::report {

namespace {

constexpr const char* kHeader =
    "iteration,epoch,images,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate";

}  // namespace

std::vector<TrainingLogRow> read_training_log(const fs::path& csv) {
  using eval::detail::parse_double;
  const std::string file = csv.string();
  const std::string fix = std::string("expected the header '") + kHeader +
                          "' and one row per iteration, as `gliomagrade train` writes";
  const std::vector<std::string> lines = eval::detail::split_lines(read_file(csv));
  if (lines.empty() || lines[0] != kHeader)
    throw_bad_input(file,
                    "line 1: not a training-log header" +
                        (lines.empty() ? std::string(" (empty file)") : ": '" + lines[0] + "'"),
                    fix);
  std::vector<TrainingLogRow> rows;
  std::vector<std::string> f;
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    const std::string at = "line " + std::to_string(i + 1) + ": ";
    eval::detail::split_csv_line(lines[i], f);
    if (f.size() != 8)
      throw_bad_input(file, at + std::to_string(f.size()) + " fields, expected 8", fix);
    TrainingLogRow r;
    auto number = [&](size_t k, double& v) {
      if (!parse_double(f[k], v) || !std::isfinite(v))
        throw_bad_input(
            file, at + "field " + std::to_string(k + 1) + " '" + f[k] + "' is not a finite number",
            fix);
    };
    if (!eval::detail::parse_int(f[0], r.iteration) || !eval::detail::parse_int(f[1], r.epoch) ||
        !eval::detail::parse_long(f[2], r.images))
      throw_bad_input(file, at + "iteration, epoch and images must be integers", fix);
    number(3, r.train_loss);
    number(4, r.train_accuracy);
    number(7, r.learning_rate);
    r.has_val = !f[5].empty() || !f[6].empty();
    if (r.has_val) {
      number(5, r.val_loss);
      number(6, r.val_accuracy);
    } else {
      r.val_loss = r.val_accuracy = std::nan("");
    }
    auto fraction = [&](size_t k, double v) {
      if (v < 0 || v > 1)
        throw_bad_input(file, at + "accuracy '" + f[k] + "' is not a fraction in [0, 1]", fix);
    };
    fraction(4, r.train_accuracy);
    if (r.has_val) fraction(6, r.val_accuracy);
    rows.push_back(r);
  }
  if (rows.empty()) throw_bad_input(file, "no iterations in the training log", fix);
  return rows;
}

}  // namespace gg::report
