// io/csv.h: the small CSV dialect gliomagrade reads and writes (manifests, index.csv, split.csv,
// BraTS name_mapping.csv): comma-separated, first line a header, fields optionally in double
// quotes ("" inside quotes is a quote), CRLF or LF line ends, blank lines skipped.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace gg::io {

struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // each row has header.size() fields
  std::vector<int> line;                       // 1-based line number of each row, for errors

  // Index of the column named `name` (case-insensitive, surrounding spaces ignored), or -1.
  int column(const std::string& name) const;
};

// Reads a CSV file. Throws gg::Error(kBadInput) naming the file when it cannot be read, has no
// header, or a row has a different number of fields than the header (with the line number).
CsvTable read_csv(const std::filesystem::path& path);

// Quotes a field if it holds a comma, quote or line break.
std::string csv_field(const std::string& s);

}  // namespace gg::io
