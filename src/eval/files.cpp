// The evaluation's files: predictions.csv, metrics.json, table.md.
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "common/csv.h"
#include "common/error.h"
#include "common/files.h"
#include "eval/eval.h"

namespace gg::eval {

namespace {

constexpr const char* kHeader = "patient,z,rank,label,p_t1,p_t2,p_flair,p_vote_soft,vote_hard";
constexpr const char* kHeaderShort = "patient,z,rank,label,p_t1,p_t2,p_flair";

// JSON has no NaN or infinity: write null. ordered_json keeps fields in the order written (the
// protocol first, comparisons after the metrics) for human readers.
nlohmann::ordered_json number(double v) {
  return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json();
}

nlohmann::ordered_json numbers(const std::vector<double>& v) {
  nlohmann::ordered_json a = nlohmann::ordered_json::array();
  for (double x : v) a.push_back(number(x));
  return a;
}

nlohmann::ordered_json to_json(const AucCi& a) {
  return {{"auc", number(a.auc)},  {"variance", number(a.variance)},
          {"ci_lo", number(a.lo)}, {"ci_hi", number(a.hi)},
          {"ci_level", a.level},   {"ci_method", a.ci_method}};
}

nlohmann::ordered_json to_json(const BinaryMetrics& m) {
  nlohmann::ordered_json roc = nlohmann::ordered_json::array();
  for (const RocPoint& r : m.roc)
    roc.push_back({number(r.fpr), number(r.tpr), number(r.threshold)});
  const Calibration& c = m.calibration;
  return {{"n", m.n},
          {"positives_hgg", m.positives},
          {"negatives_lgg", m.negatives},
          {"auc", to_json(m.auc)},
          {"accuracy", number(m.accuracy)},
          {"sensitivity_hgg", number(m.sensitivity)},
          {"specificity_lgg", number(m.specificity)},
          {"f1", number(m.f1)},
          {"confusion", {{"tp", m.tp}, {"fp", m.fp}, {"tn", m.tn}, {"fn", m.fn}}},
          {"roc_columns", {"fpr", "tpr", "threshold (null = +inf)"}},
          {"roc", roc},
          {"calibration",
           {{"bins", c.bins},
            {"ece", number(c.ece)},
            {"brier", number(c.brier)},
            {"bin_confidence", numbers(c.bin_confidence)},
            {"bin_accuracy", numbers(c.bin_accuracy)},
            {"bin_count", c.bin_count}}}};
}

std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string percent(double v) { return std::isfinite(v) ? fixed(100 * v, 2) + " %" : "n/a"; }

std::string auc_cell(const AucCi& a) {
  if (!std::isfinite(a.auc)) return "n/a";
  if (!std::isfinite(a.lo)) return fixed(a.auc, 4) + " (CI n/a)";
  return fixed(a.auc, 4) + " (" + fixed(a.lo, 4) + "–" + fixed(a.hi, 4) + ")";
}

void append_level_table(std::string& md, const Evaluation& e, Level level, bool with_paper) {
  const auto& by_scorer = e.metrics.at(level);
  const BinaryMetrics& any = by_scorer.begin()->second;
  const char* unit = level == Level::kSlice ? "slices" : "patients";
  md += std::string("### ") + (level == Level::kSlice ? "Slice level" : "Patient level") + " (" +
        std::to_string(any.n) + " test " + unit + ": " + std::to_string(any.positives) + " HGG, " +
        std::to_string(any.negatives) + " LGG)\n\n";
  const std::string ci = fixed(100 * e.ci_level, 0) + "% CI";
  md += "| Model | AUC (" + ci + ") | Accuracy | Sensitivity (HGG) | Specificity (LGG)";
  md += with_paper ? " | Paper's AUC | Paper's accuracy |\n" : " |\n";
  md += with_paper ? "|---|---|---|---|---|---|---|\n" : "|---|---|---|---|---|\n";
  for (const auto& [scorer, m] : by_scorer) {
    md += std::string("| ") + scorer_name(scorer) + " | " + auc_cell(m.auc) + " | " +
          percent(m.accuracy) + " | " + percent(m.sensitivity) + " | " + percent(m.specificity);
    if (with_paper) {
      std::string paper_auc = "—", paper_acc = "—";
      for (const PaperFigure& f : kPaperFigures) {
        if (f.scorer != scorer) continue;
        paper_auc = fixed(f.auc, 4);
        paper_acc = fixed(f.accuracy_percent, 2) + " %";
      }
      md += " | " + paper_auc + " | " + paper_acc;
    }
    md += " |\n";
  }
  md += "\n";
}

}  // namespace

void write_predictions_csv(const std::vector<SlicePrediction>& rows, const fs::path& path) {
  bool cv = false;
  for (const SlicePrediction& r : rows) cv = cv || r.fold >= 0;
  std::string out = std::string(cv ? "repeat,fold," : "") + kHeader + "\n";
  for (const SlicePrediction& r : rows) {
    if (cv) out += std::to_string(r.repeat) + "," + std::to_string(r.fold) + ",";
    out += csv_field(r.patient) + "," + std::to_string(r.z) + "," + std::to_string(r.rank) + "," +
           std::to_string(r.label);
    for (double p : r.p) out += "," + format_double(p);
    out += "," + format_double(soft_vote(r.p)) + "," + std::to_string(hard_vote(r.p)) + "\n";
  }
  write_file_atomic(path, out);
}

std::vector<SlicePrediction> read_predictions_csv(const fs::path& path) {
  const std::string file = path.string();
  const std::vector<CsvRecord> records = parse_csv_records(read_file(path), file);
  const std::string fix = std::string("expected the header '") + kHeader +
                          "' and one row per slice, as `gliomagrade evaluate` writes";
  std::string header = records.empty() ? std::string() : csv_line(records[0].fields);
  // Cross-validation predictions lead with repeat,fold.
  const std::string cv_prefix = "repeat,fold,";
  const bool cv = header.compare(0, cv_prefix.size(), cv_prefix) == 0;
  if (cv) header = header.substr(cv_prefix.size());
  if (records.empty() || (header != kHeader && header != kHeaderShort))
    throw_bad_input(file,
                    "line " + std::to_string(records.empty() ? 1 : records[0].line) +
                        ": not a predictions CSV header" +
                        (records.empty() ? std::string(" (empty file)") : ": '" + header + "'"),
                    fix);
  const size_t skip = cv ? 2 : 0;
  const size_t columns = (header == kHeader ? 9 : 7) + skip;
  std::vector<SlicePrediction> rows;
  for (size_t i = 1; i < records.size(); ++i) {
    const std::vector<std::string>& all = records[i].fields;
    const std::string at = "line " + std::to_string(records[i].line) + ": ";
    if (all.size() != columns)
      throw_bad_input(
          file, at + std::to_string(all.size()) + " fields, expected " + std::to_string(columns),
          fix);
    SlicePrediction r;
    if (cv) {
      r.repeat = csv_int(all[0], {file, records[i].line, "repeat"}, fix);
      r.fold = csv_int(all[1], {file, records[i].line, "fold"}, fix);
    }
    const std::vector<std::string> f(all.begin() + long(skip), all.end());
    r.patient = f[0];
    if (r.patient.empty()) throw_bad_input(file, at + "empty patient id", fix);
    r.z = csv_int(f[1], {file, records[i].line, "z"}, fix);
    r.rank = csv_int(f[2], {file, records[i].line, "rank"}, fix);
    if (!parse_int(f[3], r.label) || (r.label != 0 && r.label != 1))
      throw_bad_input(file, at + "label '" + f[3] + "' is not 0 (LGG) or 1 (HGG)", fix);
    static const char* names[] = {"p_t1", "p_t2", "p_flair"};
    for (int k = 0; k < 3; ++k) {
      if (!parse_double(f[4 + k], r.p[k]) || !(r.p[k] >= 0 && r.p[k] <= 1))
        throw_bad_input(file, at + names[k] + " '" + f[4 + k] + "' is not a probability in [0, 1]",
                        fix);
    }
    rows.push_back(r);
  }
  return rows;
}

std::string metrics_json(const Evaluation& e) {
  nlohmann::ordered_json levels = nlohmann::ordered_json::object();
  for (const auto& [level, by_scorer] : e.metrics) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const auto& [scorer, m] : by_scorer) {
      j[scorer_key(scorer)] = to_json(m);
      j[scorer_key(scorer)]["name"] = scorer_name(scorer);
    }
    levels[level_name(level)] = j;
  }
  nlohmann::ordered_json comparisons = nlohmann::ordered_json::array();
  for (const AucComparison& c : e.comparisons)
    comparisons.push_back({{"level", level_name(c.level)},
                           {"a", scorer_key(c.a)},
                           {"b", scorer_key(c.b)},
                           {"auc_a", number(c.auc_a)},
                           {"auc_b", number(c.auc_b)},
                           {"z", number(c.z)},
                           {"p", number(c.p)}});
  nlohmann::ordered_json paper = nlohmann::ordered_json::object();
  for (const PaperFigure& f : kPaperFigures)
    paper[scorer_key(f.scorer)] = {{"auc", f.auc}, {"accuracy", f.accuracy_percent / 100}};
  const nlohmann::ordered_json j = {
      {"protocol", e.protocol},
      {"ci_level", e.ci_level},
      {"positive_class", "HGG (label 1)"},
      {"levels", levels},
      {"comparisons_method", "paired DeLong test, two-sided, uncorrected for multiple comparisons"},
      {"comparisons", comparisons},
      {"paper_reported", {{"unit", "slice, image-level random split"}, {"figures", paper}}}};
  return j.dump(2) + "\n";
}

void write_metrics_json(const Evaluation& e, const fs::path& path) {
  write_file_atomic(path, metrics_json(e));
}

std::string table_markdown(const Evaluation& e) {
  std::string md = "## Results: " + e.protocol + "\n\n";
  if (e.metrics.count(Level::kPatient)) append_level_table(md, e, Level::kPatient, false);
  if (e.metrics.count(Level::kSlice)) append_level_table(md, e, Level::kSlice, true);
  md +=
      "AUC: Mann-Whitney with DeLong (1988) variance; CI by the normal approximation on the AUC "
      "scale, clipped to [0, 1]. The hard vote (the paper's) is a majority of the three models' "
      "labels (P(HGG) >= 0.5) and its AUC uses the fraction of HGG votes as its score; the soft "
      "vote is the mean of the three P(HGG). Patient level: mean of the patient's slice "
      "probabilities. Slice-level CIs treat slices as independent, but slices of one patient are "
      "correlated, so they are too narrow. The paper's figures are as it reports them, at slice "
      "level after an image-level random split (slices of one patient in both training and test "
      "sets).\n";
  return md;
}

}  // namespace gg::eval
