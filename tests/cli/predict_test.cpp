// End-to-end: `predict` on patients of a tiny `run` (its synthetic cohort and its model bundle).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/csv.h"
#include "common/files.h"
#include "testing/testing.h"
#include "tiny_run.h"

namespace gg {
namespace {

using testing::run_cli;

// The tiny run's model was trained on its coarse synthetic grid (3.875 mm), recorded in its
// model.json, so its patients are graded on that grid, not resampled.
// The first HGG patient of the run's cohort: <cohort>/HGG/<id>/<id>_<seq>.nii.gz.
fs::path first_patient_dir() {
  for (const auto& e : fs::directory_iterator(tiny_results() / "cohort/HGG")) return e.path();
  return {};
}
fs::path file_of(const fs::path& dir, const std::string& seq) {
  return dir / (dir.filename().string() + "_" + seq + ".nii.gz");
}
std::string patient_args(const fs::path& d) {
  return "--t1 " + q(file_of(d, "t1")) + " --t2 " + q(file_of(d, "t2")) + " --flair " +
         q(file_of(d, "flair"));
}

TEST(PredictCommand, OnePatientWithMaskWritesJsonSummaryAndOverlays) {
  if (!have_weights()) GG_MISSING("no BVLC weights");
  const fs::path d = first_patient_dir();
  testing::TempDir tmp;
  const auto r = run_cli("--quiet predict " + patient_args(d) + " --seg " + q(file_of(d, "seg")) +
                         " --model " + q(tiny_results() / "model") + " --out " + q(tmp / "pred"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string id = d.filename().string();
  for (const char* f :
       {"prediction.json", "summary.png", "gradcam_t1.png", "gradcam_t2.png", "gradcam_flair.png"})
    EXPECT_TRUE(fs::exists(tmp / "pred" / id / f)) << f;
  EXPECT_TRUE(fs::exists(tmp / "pred/predictions.csv"));
  const auto j = nlohmann::json::parse(read_file(tmp / "pred" / id / "prediction.json"));
  EXPECT_EQ(j["slices"]["choice"], "mask");
  EXPECT_EQ(j["slices"]["count"], 4);
  EXPECT_TRUE(j["grade"] == "HGG" || j["grade"] == "LGG");
  EXPECT_NE(r.output.find(id + ": "), std::string::npos) << r.output;
}

TEST(PredictCommand, WithoutOutPrintsJsonAndSliceOverrides) {
  if (!have_weights()) GG_MISSING("no BVLC weights");
  const fs::path d = first_patient_dir();
  const auto r = run_cli("--quiet predict " + patient_args(d) +
                         " --slice 20 --no-gradcam --id P1 --model " + q(tiny_results() / "model"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"choice\": \"user (--slice)\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"centre_z\": 20"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("P1: "), std::string::npos) << r.output;
  // stdout alone is one JSON document (it held the verdict line too, which broke piping).
  const auto piped = testing::run_cli_stdout("--quiet predict " + patient_args(d) +
                                             " --slice 20 --no-gradcam --id P1 --model " +
                                             q(tiny_results() / "model"));
  ASSERT_EQ(piped.exit_code, 0);
  const auto j = nlohmann::json::parse(piped.output);
  EXPECT_EQ(j["id"], "P1");
}

TEST(PredictCommand, CohortWithoutOutPrintsOneJsonArray) {
  if (!have_weights()) GG_MISSING("no BVLC weights");
  const auto r =
      testing::run_cli_stdout("--quiet predict --cohort " + q(tiny_results() / "cohort") +
                              " --no-gradcam --model " + q(tiny_results() / "model"));
  ASSERT_EQ(r.exit_code, 0);
  const auto j = nlohmann::json::parse(r.output);
  ASSERT_TRUE(j.is_array());
  EXPECT_EQ(j.size(), 6u);
  for (const auto& p : j) EXPECT_EQ(p["slices"]["choice"], "mask");
}

TEST(PredictCommand, WholeCohortWithoutMasks) {
  if (!have_weights()) GG_MISSING("no BVLC weights");
  testing::TempDir tmp;
  const auto r = run_cli("--quiet predict --cohort " + q(tiny_results() / "cohort") +
                         " --no-mask --no-gradcam --model " + q(tiny_results() / "model") +
                         " --out " + q(tmp / "pred"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string csv = read_file(tmp / "pred/predictions.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 7) << csv;  // header + 6 patients
  EXPECT_NE(csv.find(",auto,"), std::string::npos) << csv;
  // Second line: id,true_grade,grade,vote_hard_score,vote_soft,p_t1,p_t2,p_flair,...
  std::vector<std::string> fields;
  std::stringstream line(csv.substr(csv.find('\n') + 1));
  for (std::string f; fields.size() < 8 && std::getline(line, f, ',');) fields.push_back(f);
  ASSERT_EQ(fields.size(), 8u);
  for (int k = 4; k < 8; ++k) EXPECT_GT(std::stod(fields[size_t(k)]), 0.0) << csv;
}

TEST(PredictCommand, KeepGoingGradesTheOthersAndListsTheFailures) {
  if (!have_weights()) GG_MISSING("no BVLC weights");
  testing::TempDir tmp;
  const fs::path d = first_patient_dir();
  write_file_atomic(tmp / "broken_t2.nii.gz", read_file(file_of(d, "t2")).substr(0, 200));
  const auto row = [&](const std::string& id, const fs::path& t2) {
    return id + "," + file_of(d, "t1").string() + "," + t2.string() + "," +
           file_of(d, "flair").string() + "\n";
  };
  write_file_atomic(tmp / "cohort.csv", "id,t1,t2,flair\n" + row("good", file_of(d, "t2")) +
                                            row("bad", tmp / "broken_t2.nii.gz"));
  const std::string args = "--quiet predict --cohort " + q(tmp / "cohort.csv") +
                           " --no-gradcam --model " + q(tiny_results() / "model") + " --out ";
  // Without --keep-going the first bad patient stops everything, and nothing is written.
  auto r = run_cli(args + q(tmp / "strict"));
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_FALSE(fs::exists(tmp / "strict"));
  r = run_cli(args + q(tmp / "pred") + " --keep-going");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("1 of 2 patients could not be graded"), std::string::npos) << r.output;
  const CsvTable graded = read_csv(tmp / "pred/predictions.csv");
  ASSERT_EQ(graded.rows.size(), 1u);
  EXPECT_EQ(graded.rows[0][0], "good");
  const CsvTable failed = read_csv(tmp / "pred/failed.csv");
  ASSERT_EQ(failed.rows.size(), 1u);
  EXPECT_EQ(failed.rows[0][0], "bad");
  EXPECT_NE(failed.rows[0][1].find("broken_t2.nii.gz"), std::string::npos);
  EXPECT_FALSE(failed.rows[0][2].empty()) << "what is wrong";
}

// The tiny cohort's 3.875 mm slices raise thick_slices: reported in prediction.json (with a banner
// on summary.png), and an error with --strict that leaves nothing behind.
// The T2 file given as FLAIR: its intensities are unlike the training patients' FLAIR.
TEST(PredictCommand, QualityFlagsAreReportedAndStrictRefusesThem) {
  if (!have_weights()) GG_MISSING("no BVLC weights");
  const fs::path d = first_patient_dir();
  testing::TempDir tmp;
  const std::string wrong = "--t1 " + q(file_of(d, "t1")) + " --t2 " + q(file_of(d, "t2")) +
                            " --flair " + q(file_of(d, "t2")) + " --id wrong";
  const std::string args = "--quiet predict " + wrong + " --seg " + q(file_of(d, "seg")) +
                           " --no-gradcam --model " + q(tiny_results() / "model") + " --out ";
  auto r = run_cli(args + q(tmp / "pred"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[quality: intensity_out_of_range]"), std::string::npos) << r.output;
  const auto j = nlohmann::json::parse(read_file(tmp / "pred" / "wrong" / "prediction.json"));
  EXPECT_EQ(j["quality"]["flags"], nlohmann::json::array({"intensity_out_of_range"}));
  EXPECT_NE(j["quality"]["summary"].get<std::string>().find("flair's intensities"),
            std::string::npos);
  EXPECT_GT(j["intensity_vs_training"]["flair"]["distance"].get<double>(),
            j["intensity_vs_training"]["flair"]["limit"].get<double>());
  // The right files raise nothing against the same bundle.
  r = run_cli("--quiet predict " + patient_args(d) + " --seg " + q(file_of(d, "seg")) +
              " --no-gradcam --strict --model " + q(tiny_results() / "model") + " --out " +
              q(tmp / "right"));
  EXPECT_EQ(r.exit_code, 0) << r.output;

  r = run_cli(args + q(tmp / "strict") + " --strict");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("intensity_out_of_range"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(tmp / "strict"));
  // Without --out nothing goes to stdout either.
  const auto piped =
      testing::run_cli_stdout("--quiet predict " + wrong + " --seg " + q(file_of(d, "seg")) +
                              " --no-gradcam --strict " + "--model " + q(tiny_results() / "model"));
  EXPECT_EQ(piped.exit_code, 3);
  EXPECT_EQ(piped.output, "");
}

TEST(PredictCommand, BadInputsAreOneLineErrorsWithExitCode3AndNothingWritten) {
  if (!have_weights()) GG_MISSING("no BVLC weights");
  const fs::path d = first_patient_dir();
  testing::TempDir tmp;
  const std::string model = " --model " + q(tiny_results() / "model");
  // A truncated volume.
  write_file_atomic(tmp / "broken_t2.nii.gz", read_file(file_of(d, "t2")).substr(0, 200));
  auto r = run_cli("predict --t1 " + q(file_of(d, "t1")) + " --t2 " + q(tmp / "broken_t2.nii.gz") +
                   " --flair " + q(file_of(d, "flair")) + model + " --out " + q(tmp / "pred"));
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("broken_t2.nii.gz"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(tmp / "pred"));

  // A bundle of another format version.
  fs::copy(tiny_results() / "model", tmp / "old_model", fs::copy_options::recursive);
  std::string json = read_file(tmp / "old_model/model.json");
  json.replace(json.find("gliomagrade-bundle/1"), 20, "gliomagrade-bundle/0");
  write_file_atomic(tmp / "old_model/model.json", json);
  r = run_cli("predict " + patient_args(d) + " --model " + q(tmp / "old_model") + " --out " +
              q(tmp / "pred"));
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("model.json"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(tmp / "pred"));

  // --slice outside the volume; neither a patient nor a cohort.
  r = run_cli("predict " + patient_args(d) + " --slice 99" + model);
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("--slice 99"), std::string::npos) << r.output;
  r = run_cli("predict --t1 a.nii" + model);
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

}  // namespace
}  // namespace gg
