// predictions.csv round trip and errors, metrics.json contents, table.md shape.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "eval/eval.h"
#include "testing/testing.h"

namespace gg::eval {
namespace {

using gg::testing::TempDir;

std::string error_of(const fs::path& path) {
  try {
    read_predictions_csv(path);
  } catch (const gg::Error& e) {
    return e.file() + ": " + e.problem();
  }
  return "no error";
}

TEST(PredictionsCsv, RoundTripIsExact) {
  TempDir dir;
  const std::vector<SlicePrediction> rows = {
      {"BraTS19_TCIA01_1", 77, 0, 1, {0.1, 0.30000000000000004, 1.0}},
      {"needs,\"quotes\"", 3, 19, 0, {0.0, 1e-7, 0.123456789012345678}},
  };
  write_predictions_csv(rows, dir / "p.csv");
  const std::string text = read_file(dir / "p.csv");
  EXPECT_EQ(text.substr(0, text.find('\n')),
            "patient,z,rank,label,p_t1,p_t2,p_flair,p_vote_soft,vote_hard");
  EXPECT_NE(text.find("BraTS19_TCIA01_1,77,0,1,0.1,0.30000000000000004,1,"), std::string::npos);
  const std::vector<SlicePrediction> back = read_predictions_csv(dir / "p.csv");
  ASSERT_EQ(back.size(), 2u);
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(back[i].patient, rows[i].patient);
    EXPECT_EQ(back[i].z, rows[i].z);
    EXPECT_EQ(back[i].rank, rows[i].rank);
    EXPECT_EQ(back[i].label, rows[i].label);
    EXPECT_EQ(back[i].p, rows[i].p);  // bit-exact
  }
}

TEST(PredictionsCsv, AcceptsTheShortHeaderAndCrlf) {
  TempDir dir;
  write_file_atomic(dir / "p.csv",
                    "patient,z,rank,label,p_t1,p_t2,p_flair\r\nA,1,2,0,0.5,0.25,1\r\n");
  const std::vector<SlicePrediction> back = read_predictions_csv(dir / "p.csv");
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].p[1], 0.25);
}

TEST(PredictionsCsv, BadLinesNameTheLine) {
  TempDir dir;
  const std::string header = "patient,z,rank,label,p_t1,p_t2,p_flair,p_vote_soft,vote_hard\n";
  const fs::path f = dir / "p.csv";
  write_file_atomic(f, header + "A,1,0,1,0.5,0.5,0.5,0.5,1\nB,2,0,1,0.5,0.5\n");
  EXPECT_EQ(error_of(f), f.string() + ": line 3: 6 fields, expected 9");
  write_file_atomic(f, header + "A,1,0,2,0.5,0.5,0.5,0.5,1\n");
  EXPECT_EQ(error_of(f), f.string() + ": line 2: label '2' is not 0 (LGG) or 1 (HGG)");
  write_file_atomic(f, header + "A,1,0,1,0.5,abc,0.5,0.5,1\n");
  EXPECT_EQ(error_of(f), f.string() + ": line 2: p_t2 'abc' is not a probability in [0, 1]");
  write_file_atomic(f, header + "A,1,0,1,0.5,0.5,1.5,0.5,1\n");
  EXPECT_EQ(error_of(f), f.string() + ": line 2: p_flair '1.5' is not a probability in [0, 1]");
  write_file_atomic(f, header + "A,x,0,1,0.5,0.5,0.5,0.5,1\n");
  EXPECT_EQ(error_of(f), f.string() + ": line 2: z 'x' is not an integer");
  write_file_atomic(f, "id,grade\nA,HGG\n");
  EXPECT_EQ(error_of(f), f.string() + ": line 1: not a predictions CSV header: 'id,grade'");
  write_file_atomic(f, "");
  EXPECT_EQ(error_of(f), f.string() + ": line 1: not a predictions CSV header (empty file)");
  EXPECT_THROW(read_predictions_csv(dir / "missing.csv"), gg::Error);
}

std::vector<SlicePrediction> test_set() {
  return {
      {"H1", 0, 0, 1, {0.7, 0.8, 0.9}}, {"H1", 1, 1, 1, {0.4, 0.7, 0.8}},
      {"H2", 0, 0, 1, {0.6, 0.6, 0.7}}, {"H2", 1, 1, 1, {0.3, 0.9, 0.6}},
      {"L1", 0, 0, 0, {0.6, 0.7, 0.2}}, {"L1", 1, 1, 0, {0.5, 0.8, 0.1}},
      {"L2", 0, 0, 0, {0.2, 0.1, 0.3}}, {"L2", 1, 1, 0, {0.1, 0.2, 0.4}},
  };
}

TEST(MetricsJson, HoldsEveryLevelScorerAndComparison) {
  TempDir dir;
  const Evaluation e = evaluate(test_set(), "image-level split (paper)");
  write_metrics_json(e, dir / "metrics.json");
  const nlohmann::json j = nlohmann::json::parse(read_file(dir / "metrics.json"));
  EXPECT_EQ(j["protocol"], "image-level split (paper)");
  EXPECT_EQ(j["ci_level"], 0.95);
  for (const char* level : {"slice", "patient"})
    for (const char* key : {"t1", "t2", "flair", "vote_hard", "vote_soft"})
      ASSERT_TRUE(j["levels"][level].contains(key)) << level << " " << key;
  const auto& flair = j["levels"]["slice"]["flair"];
  EXPECT_EQ(flair["name"], "FLAIR");
  EXPECT_EQ(flair["auc"]["auc"], 1.0);
  EXPECT_EQ(flair["confusion"]["tp"], 4);
  EXPECT_TRUE(flair["roc"][0][2].is_null());  // +inf threshold
  EXPECT_EQ(flair["calibration"]["bin_count"].size(), 10u);
  EXPECT_EQ(j["comparisons"].size(), 20u);
  EXPECT_EQ(j["paper_reported"]["figures"]["vote_hard"]["auc"], 0.995);
}

TEST(TableMarkdown, PapersShapeWithProtocolAndPapersFigures) {
  const std::string md = table_markdown(evaluate(test_set(), "patient-level split (no leakage)"));
  EXPECT_EQ(md.rfind("## Results: patient-level split (no leakage)\n", 0), 0u) << md;
  EXPECT_NE(md.find("### Patient level (4 test patients: 2 HGG, 2 LGG)"), std::string::npos);
  EXPECT_NE(md.find("### Slice level (8 test slices: 4 HGG, 4 LGG)"), std::string::npos);
  EXPECT_NE(md.find("| FLAIR | 1.0000 (1.0000–1.0000) | 100.00 % | 100.00 % | 100.00 % | 0.9614 | "
                    "98.11 % |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| vote (hard majority) |"), std::string::npos);
  EXPECT_NE(md.find("| 0.9950 | 99.00 % |"), std::string::npos);
  EXPECT_NE(md.find("Paper's AUC"), std::string::npos);
  // Patient rows come first, slice rows second; T1 row before T2 before FLAIR before votes.
  EXPECT_LT(md.find("| T1 |"), md.find("| T2 |"));
  EXPECT_LT(md.find("| T2 |"), md.find("| FLAIR |"));
}

}  // namespace
}  // namespace gg::eval
