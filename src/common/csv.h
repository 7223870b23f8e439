// common/csv.h: the one CSV dialect gliomagrade reads and writes (manifests, index.csv, split.csv,
// predictions.csv, training logs, BraTS name_mapping.csv): comma-separated, fields optionally in
// double quotes ("" inside quotes is a quote; quotes may span line breaks), CRLF or LF line ends,
// blank lines skipped, a leading UTF-8 byte order mark ignored. Numbers are parsed
// locale-independently (<charconv>), and every bad field is a gg::Error(kBadInput) naming the
// file, the line and the column.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace gg {

// One record of a CSV text: its fields and the 1-based line it starts on.
struct CsvRecord {
  int line = 0;
  std::vector<std::string> fields;
};

// Splits CSV text into records; each may have any number of fields (callers that want their own
// messages for a wrong field count use this). Throws gg::Error(kBadInput) naming `source` for a
// quoted field that is never closed.
std::vector<CsvRecord> parse_csv_records(std::string_view text, const std::string& source);

// Where a field came from, for error messages: "<file>: line <line>: <column> '<text>' ...".
struct CsvPlace {
  std::string file;
  int line = 0;
  std::string column;  // a column name ("rank") or any label ("field 4")
};

// A CSV file whose first record is a header and every other record has the header's field count.
struct CsvTable {
  std::string source;                          // the file name, used in error messages
  std::vector<std::string> header;             // surrounding spaces removed
  std::vector<std::vector<std::string>> rows;  // each row has header.size() fields
  std::vector<int> line;                       // 1-based line number of each row, for errors

  // Index of the column named `name` (case-insensitive, spaces ignored), or -1.
  int column(const std::string& name) const;
  // The place of rows[row][col], for the csv_int/csv_double family below.
  CsvPlace place(size_t row, int col) const;
};

// Parses CSV text into a table. Throws gg::Error(kBadInput) naming `source` when there is no
// header, a quote is never closed, or a row has another field count than the header (with the
// line number).
CsvTable parse_csv(std::string_view text, const std::string& source);
// read_file + parse_csv; also throws kBadInput naming the path when it cannot be read.
CsvTable read_csv(const std::filesystem::path& path);

// Quotes a field if it holds a comma, quote or line break, so that parse_csv gives it back.
std::string csv_field(std::string_view s);
// The fields joined by commas, each through csv_field (no line end).
std::string csv_line(const std::vector<std::string>& fields);
// Shortest decimal that reads back as the same double ("0.1", "1e-07"); "nan"/"inf"/"-inf".
std::string format_double(double v);

// Whole-field number parsing; spaces and tabs around the number are ignored. False when the field
// is empty, not entirely a number, or out of the type's range. parse_double accepts "nan"/"inf".
bool parse_int(std::string_view s, int& v);
bool parse_long(std::string_view s, long& v);
bool parse_uint64(std::string_view s, uint64_t& v);
bool parse_double(std::string_view s, double& v);

// The same, throwing gg::Error(kBadInput) on failure with the file of `at` and the problem
// "line <line>: <column> '<text>' is not an integer" (or "is out of range", "is not a number",
// "is not a finite number"); `fix` becomes the error's fix.
int csv_int(std::string_view s, const CsvPlace& at, const std::string& fix = {});
long csv_long(std::string_view s, const CsvPlace& at, const std::string& fix = {});
uint64_t csv_uint64(std::string_view s, const CsvPlace& at, const std::string& fix = {});
double csv_double(std::string_view s, const CsvPlace& at, const std::string& fix = {});
double csv_finite_double(std::string_view s, const CsvPlace& at, const std::string& fix = {});

}  // namespace gg
