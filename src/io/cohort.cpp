// Cohort discovery: BraTS 2018/2019 folders, BraTS 2020 with name_mapping.csv, manifest CSV.
#include <algorithm>
#include <cctype>
#include <map>

#include "common/csv.h"
#include "common/error.h"
#include "io/io.h"

namespace gg::io {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "<ID>_flair.nii.gz" -> "flair"; "" when the name is not a NIfTI file with a suffix.
std::string sequence_suffix(const std::string& filename) {
  std::string name = lower(filename);
  for (const char* ext : {".nii.gz", ".nii"}) {
    const std::string e = ext;
    if (name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0) {
      name.resize(name.size() - e.size());
      const auto us = name.rfind('_');
      return us == std::string::npos ? std::string() : name.substr(us + 1);
    }
  }
  return {};
}

// Finds <dir>/<anything>_{t1,t1ce,t2,flair,seg}.nii[.gz] (t1ce and seg optional; others ignored).
Case case_from_folder(const fs::path& dir, const std::string& id, Grade grade) {
  Case c;
  c.id = id;
  c.grade = grade;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw_bad_input(dir.string(), "patient folder not found",
                    "check the cohort folder is complete");
  std::map<std::string, std::vector<fs::path>> found;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file()) continue;
    std::string suffix = sequence_suffix(entry.path().filename().string());
    if (suffix == "segm") suffix = "seg";  // BraTS 2020 case 355 ships "W39_1998.09.19_Segm.nii"
    if (suffix == "t1" || suffix == "t1ce" || suffix == "t2" || suffix == "flair" ||
        suffix == "seg")
      found[suffix].push_back(entry.path());
  }
  for (const char* suffix : {"t1", "t1ce", "t2", "flair", "seg"}) {
    auto& paths = found[suffix];
    std::sort(paths.begin(), paths.end());
    if (paths.size() > 1)
      throw_bad_input(paths[1].string(),
                      std::string("more than one _") + suffix + " volume in " + dir.string() +
                          " (also " + paths[0].filename().string() + ")",
                      "keep one file per sequence in each patient folder");
    const fs::path p = paths.empty() ? fs::path() : paths[0];
    const bool optional = std::string(suffix) == "seg" || std::string(suffix) == "t1ce";
    if (p.empty() && !optional)
      throw_bad_input((dir / (id + "_" + suffix + ".nii.gz")).string(),
                      std::string("missing ") + suffix + " volume of patient " + id,
                      "add the file (BraTS naming <ID>_t1/_t2/_flair/_seg.nii.gz) or remove the "
                      "patient folder");
    if (std::string(suffix) == "t1") c.t1 = p;
    if (std::string(suffix) == "t1ce") c.t1ce = p;
    if (std::string(suffix) == "t2") c.t2 = p;
    if (std::string(suffix) == "flair") c.flair = p;
    if (std::string(suffix) == "seg") c.seg = p;
  }
  return c;
}

std::vector<fs::path> subfolders(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory() && e.path().filename().string().rfind('.', 0) != 0)
      out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<Case> brats2019(const fs::path& root) {
  std::vector<Case> cases;
  for (const auto& [folder, grade] :
       {std::pair{"HGG", Grade::kHGG}, std::pair{"LGG", Grade::kLGG}}) {
    const fs::path dir = root / folder;
    if (!fs::is_directory(dir)) continue;
    for (const auto& patient : subfolders(dir))
      cases.push_back(case_from_folder(patient, patient.filename().string(), grade));
  }
  return cases;
}

std::vector<Case> brats2020(const fs::path& root, const fs::path& mapping) {
  const CsvTable table = read_csv(mapping);
  const int id_col = table.column("BraTS_2020_subject_ID");
  const int grade_col = table.column("Grade");
  if (id_col < 0 || grade_col < 0)
    throw_bad_input(mapping.string(), "needs the columns Grade and BraTS_2020_subject_ID",
                    "use the name_mapping.csv shipped with BraTS 2020");
  std::vector<Case> cases;
  for (size_t r = 0; r < table.rows.size(); ++r) {
    const std::string& id = table.rows[r][size_t(id_col)];
    if (id.empty()) continue;
    Grade grade;
    try {
      grade = parse_grade(table.rows[r][size_t(grade_col)]);
    } catch (const Error& e) {
      throw_bad_input(mapping.string(),
                      "line " + std::to_string(table.line[r]) + ": " + e.problem(), e.fix());
    }
    cases.push_back(case_from_folder(root / id, id, grade));
  }
  return cases;
}

// A volume file or a DICOM series directory (read_volume reads both).
bool is_volume_path(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) || fs::is_directory(p, ec);
}

fs::path manifest_path(const fs::path& base, const std::string& field) {
  if (field.empty()) return {};
  const fs::path p(field);
  return p.is_absolute() ? p : base / p;
}

std::vector<Case> manifest(const fs::path& csv) {
  const CsvTable table = read_csv(csv);
  const char* required[] = {"id", "t1", "t2", "flair"};
  for (const char* name : required)
    if (table.column(name) < 0)
      throw_bad_input(csv.string(), std::string("manifest has no '") + name + "' column",
                      "use the header id,grade,t1,t2,flair,seg");
  const int id_col = table.column("id"), grade_col = table.column("grade"),
            seg_col = table.column("seg"), t1ce_col = table.column("t1ce");
  const fs::path base = csv.parent_path();
  std::vector<Case> cases;
  for (size_t r = 0; r < table.rows.size(); ++r) {
    const auto& row = table.rows[r];
    const std::string where = "line " + std::to_string(table.line[r]) + ": ";
    Case c;
    c.id = row[size_t(id_col)];
    if (c.id.empty())
      throw_bad_input(csv.string(), where + "empty id", "give every row a patient id");
    try {
      c.grade = grade_col < 0 ? Grade::kUnknown : parse_grade(row[size_t(grade_col)]);
    } catch (const Error& e) {
      throw_bad_input(csv.string(), where + e.problem(), e.fix());
    }
    for (Sequence s : kSequences) {
      const std::string field = row[size_t(table.column(sequence_name(s)))];
      if (field.empty())
        throw_bad_input(csv.string(),
                        where + "no " + sequence_name(s) + " path for patient " + c.id,
                        "every patient needs t1, t2 and flair");
      const fs::path p = manifest_path(base, field);
      if (!is_volume_path(p))
        throw_bad_input(
            p.string(),
            std::string("missing ") + sequence_name(s) + " volume of patient " + c.id + " (" +
                csv.filename().string() + " " + where.substr(0, where.size() - 2) + ")",
            "fix the path in the manifest (paths are relative to the manifest's folder)");
      (s == Sequence::kT1 ? c.t1 : s == Sequence::kT2 ? c.t2 : c.flair) = p;
    }
    if (t1ce_col >= 0 && !row[size_t(t1ce_col)].empty()) {
      c.t1ce = manifest_path(base, row[size_t(t1ce_col)]);
      if (!is_volume_path(c.t1ce))
        throw_bad_input(c.t1ce.string(), "missing t1ce volume of patient " + c.id,
                        "fix the path in the manifest, or leave the t1ce field empty");
    }
    if (seg_col >= 0) {
      c.seg = manifest_path(base, row[size_t(seg_col)]);
      if (!c.seg.empty() && !is_volume_path(c.seg))
        throw_bad_input(c.seg.string(), "missing seg (mask) volume of patient " + c.id,
                        "fix the path in the manifest, or leave the seg field empty");
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

}  // namespace

std::vector<Case> discover_cohort(const fs::path& root) {
  std::error_code ec;
  if (!fs::exists(root, ec))
    throw_bad_input(root.string(), "not found", "give a BraTS folder or a manifest CSV");
  std::vector<Case> cases;
  if (fs::is_regular_file(root, ec)) {
    cases = manifest(root);
  } else if (fs::is_directory(root / "HGG") || fs::is_directory(root / "LGG")) {
    cases = brats2019(root);
  } else if (fs::is_regular_file(root / "name_mapping.csv")) {
    cases = brats2020(root, root / "name_mapping.csv");
  } else {
    throw_bad_input(root.string(), "not a recognised cohort layout",
                    "give a BraTS 2018/2019 folder (HGG/ and LGG/), a BraTS 2020 folder with "
                    "name_mapping.csv, or a manifest CSV (id,grade,t1,t2,flair,seg)");
  }
  if (cases.empty())
    throw_bad_input(root.string(), "no patients found",
                    "check the folder holds the patient folders");
  std::stable_sort(cases.begin(), cases.end(),
                   [](const Case& a, const Case& b) { return a.id < b.id; });
  for (size_t i = 1; i < cases.size(); ++i)
    if (cases[i].id == cases[i - 1].id)
      throw_bad_input(root.string(),
                      "duplicate patient id '" + cases[i].id + "' (" +
                          cases[i - 1].t1.parent_path().string() + " and " +
                          cases[i].t1.parent_path().string() + ")",
                      "give every patient a unique id");
  return cases;
}

}  // namespace gg::io
