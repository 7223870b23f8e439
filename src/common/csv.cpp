// The CSV reader, writer helpers and number parsing shared by every stage.
#include "common/csv.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <utility>

#include "common/error.h"
#include "common/files.h"

namespace gg {

namespace {

std::string normalise_name(const std::string& s) {
  std::string t;
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c)))
      t += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return t;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

enum class Parsed { kOk, kNotANumber, kOutOfRange };

template <typename T>
Parsed parse_whole(std::string_view s, T& v) {
  s = trim(s);
  if (s.empty()) return Parsed::kNotANumber;
  T parsed{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), parsed);
  if (ec == std::errc::result_out_of_range) return Parsed::kOutOfRange;
  if (ec != std::errc() || end != s.data() + s.size()) return Parsed::kNotANumber;
  v = parsed;
  return Parsed::kOk;
}

[[noreturn]] void throw_bad_field(std::string_view s, const CsvPlace& at, const char* problem,
                                  const std::string& fix) {
  throw_bad_input(
      at.file,
      "line " + std::to_string(at.line) + ": " + at.column + " '" + std::string(s) + "' " + problem,
      fix);
}

template <typename T>
T checked_integer(std::string_view s, const CsvPlace& at, const std::string& fix) {
  T v{};
  switch (parse_whole(s, v)) {
    case Parsed::kOk:
      return v;
    case Parsed::kOutOfRange:
      throw_bad_field(s, at, "is out of range", fix);
    case Parsed::kNotANumber:
      break;
  }
  throw_bad_field(s, at, "is not an integer", fix);
}

}  // namespace

std::vector<CsvRecord> parse_csv_records(std::string_view text, const std::string& source) {
  std::vector<CsvRecord> records;
  CsvRecord record{1, {}};
  std::string field;
  bool in_quotes = false;
  bool any = false;  // the record has a comma or a quote, so it is not blank even if all empty
  int line = 1;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte order mark
  auto end_record = [&] {
    record.fields.push_back(std::move(field));
    field.clear();
    const bool blank = record.fields.size() == 1 && record.fields[0].empty() && !any;
    if (!blank) records.push_back(std::move(record));
    record.fields.clear();
    any = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        in_quotes = false;
      } else {
        if (c == '\n') ++line;
        field += c;
      }
    } else if (c == '"') {
      in_quotes = any = true;
    } else if (c == ',') {
      record.fields.push_back(std::move(field));
      field.clear();
      any = true;
    } else if (c == '\n') {
      end_record();
      record.line = ++line;
    } else if (c != '\r') {  // '\r' outside quotes: CRLF line ends
      field += c;
    }
  }
  if (in_quotes)
    throw_bad_input(source,
                    "unterminated quoted field starting on line " + std::to_string(record.line),
                    "close the quote");
  if (!field.empty() || !record.fields.empty() || any) end_record();
  return records;
}

int CsvTable::column(const std::string& name) const {
  const std::string want = normalise_name(name);
  for (size_t i = 0; i < header.size(); ++i)
    if (normalise_name(header[i]) == want) return static_cast<int>(i);
  return -1;
}

CsvPlace CsvTable::place(size_t row, int col) const {
  return {source, line.at(row), header.at(static_cast<size_t>(col))};
}

CsvTable parse_csv(std::string_view text, const std::string& source) {
  std::vector<CsvRecord> records = parse_csv_records(text, source);
  if (records.empty())
    throw_bad_input(source, "CSV file is empty (no header line)", "add a header line");
  CsvTable table;
  table.source = source;
  table.header = std::move(records[0].fields);
  for (auto& h : table.header) {
    const auto b = h.find_first_not_of(' '), e = h.find_last_not_of(' ');
    h = b == std::string::npos ? std::string() : h.substr(b, e - b + 1);
  }
  for (size_t r = 1; r < records.size(); ++r) {
    CsvRecord& record = records[r];
    if (record.fields.size() != table.header.size())
      throw_bad_input(source,
                      "line " + std::to_string(record.line) + " has " +
                          std::to_string(record.fields.size()) + " fields, the header has " +
                          std::to_string(table.header.size()),
                      "give every row the header's columns (quote fields that hold commas)");
    table.rows.push_back(std::move(record.fields));
    table.line.push_back(record.line);
  }
  return table;
}

CsvTable read_csv(const std::filesystem::path& path) {
  return parse_csv(read_file(path), path.string());
}

std::string csv_field(std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
  std::string quoted = "\"";
  for (char c : s) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + '"';
}

std::string csv_line(const std::vector<std::string>& fields) {
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) line += ',';
    line += csv_field(fields[i]);
  }
  return line;
}

std::string format_double(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

bool parse_int(std::string_view s, int& v) { return parse_whole(s, v) == Parsed::kOk; }
bool parse_long(std::string_view s, long& v) { return parse_whole(s, v) == Parsed::kOk; }
bool parse_uint64(std::string_view s, uint64_t& v) { return parse_whole(s, v) == Parsed::kOk; }
bool parse_double(std::string_view s, double& v) { return parse_whole(s, v) == Parsed::kOk; }

int csv_int(std::string_view s, const CsvPlace& at, const std::string& fix) {
  return checked_integer<int>(s, at, fix);
}
long csv_long(std::string_view s, const CsvPlace& at, const std::string& fix) {
  return checked_integer<long>(s, at, fix);
}
uint64_t csv_uint64(std::string_view s, const CsvPlace& at, const std::string& fix) {
  return checked_integer<uint64_t>(s, at, fix);
}

double csv_double(std::string_view s, const CsvPlace& at, const std::string& fix) {
  double v = 0;
  if (parse_whole(s, v) != Parsed::kOk) throw_bad_field(s, at, "is not a number", fix);
  return v;
}

double csv_finite_double(std::string_view s, const CsvPlace& at, const std::string& fix) {
  double v = 0;
  if (parse_whole(s, v) != Parsed::kOk || !std::isfinite(v))
    throw_bad_field(s, at, "is not a finite number", fix);
  return v;
}

}  // namespace gg
