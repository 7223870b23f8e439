// Reading the trainer's per-iteration log CSV.
#include <cmath>
#include <string>

#include "common/csv.h"
#include "common/error.h"
#include "common/files.h"
#include "report/report.h"

namespace gg::report {

namespace {

constexpr const char* kHeader =
    "iteration,epoch,images,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate";

}  // namespace

std::vector<TrainingLogRow> read_training_log(const fs::path& csv) {
  const std::string file = csv.string();
  const std::string fix = std::string("expected the header '") + kHeader +
                          "' and one row per iteration, as `gliomagrade train` writes";
  const std::vector<CsvRecord> records = parse_csv_records(read_file(csv), file);
  const std::string header = records.empty() ? std::string() : csv_line(records[0].fields);
  if (header != kHeader)
    throw_bad_input(file,
                    "line " + std::to_string(records.empty() ? 1 : records[0].line) +
                        ": not a training-log header" +
                        (records.empty() ? std::string(" (empty file)") : ": '" + header + "'"),
                    fix);
  std::vector<TrainingLogRow> rows;
  for (size_t i = 1; i < records.size(); ++i) {
    const std::vector<std::string>& f = records[i].fields;
    const int line = records[i].line;
    const std::string at = "line " + std::to_string(line) + ": ";
    if (f.size() != 8)
      throw_bad_input(file, at + std::to_string(f.size()) + " fields, expected 8", fix);
    TrainingLogRow r;
    auto number = [&](size_t k) {
      return csv_finite_double(f[k], {file, line, "field " + std::to_string(k + 1)}, fix);
    };
    if (!parse_int(f[0], r.iteration) || !parse_int(f[1], r.epoch) || !parse_long(f[2], r.images))
      throw_bad_input(file, at + "iteration, epoch and images must be integers", fix);
    r.train_loss = number(3);
    r.train_accuracy = number(4);
    r.learning_rate = number(7);
    r.has_val = !f[5].empty() || !f[6].empty();
    if (r.has_val) {
      r.val_loss = number(5);
      r.val_accuracy = number(6);
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
