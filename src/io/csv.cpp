#include "io/csv.h"

#include <algorithm>
#include <cctype>

#include "common/error.h"
#include "common/files.h"

namespace gg::io {

namespace {

std::string normalise_name(const std::string& s) {
  std::string t;
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c)))
      t += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return t;
}

// Splits the text into records of fields; quotes may span line breaks.
std::vector<std::pair<int, std::vector<std::string>>> parse(const std::string& text,
                                                            const std::string& file) {
  std::vector<std::pair<int, std::vector<std::string>>> records;
  std::vector<std::string> fields;
  std::string field;
  bool in_quotes = false, any = false;
  int line = 1, record_line = 1;
  size_t start = 0;
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) start = 3;  // UTF-8 byte order mark
  auto end_record = [&] {
    fields.push_back(field);
    field.clear();
    const bool blank = fields.size() == 1 && fields[0].empty() && !any;
    if (!blank) records.emplace_back(record_line, std::move(fields));
    fields.clear();
    any = false;
  };
  for (size_t i = start; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
    } else if (c == '"') {
      in_quotes = true;
      any = true;
    } else if (c == ',') {
      fields.push_back(field);
      field.clear();
      any = true;
    } else if (c == '\r') {
      // dropped: CRLF line ends
    } else if (c == '\n') {
      end_record();
      record_line = ++line;
    } else {
      field += c;
    }
  }
  if (in_quotes)
    throw_bad_input(file,
                    "unterminated quoted field starting on line " + std::to_string(record_line),
                    "close the quote");
  if (!field.empty() || !fields.empty() || any) end_record();
  return records;
}

}  // namespace

int CsvTable::column(const std::string& name) const {
  const std::string want = normalise_name(name);
  for (size_t i = 0; i < header.size(); ++i)
    if (normalise_name(header[i]) == want) return static_cast<int>(i);
  return -1;
}

CsvTable read_csv(const std::filesystem::path& path) {
  const std::string file = path.string();
  auto records = parse(read_file(path), file);
  if (records.empty())
    throw_bad_input(file, "CSV file is empty (no header line)", "add a header line");
  CsvTable table;
  table.header = std::move(records[0].second);
  for (auto& h : table.header) {
    const auto b = h.find_first_not_of(' '), e = h.find_last_not_of(' ');
    h = b == std::string::npos ? std::string() : h.substr(b, e - b + 1);
  }
  for (size_t r = 1; r < records.size(); ++r) {
    auto& [line, fields] = records[r];
    if (fields.size() != table.header.size())
      throw_bad_input(file,
                      "line " + std::to_string(line) + " has " + std::to_string(fields.size()) +
                          " fields, the header has " + std::to_string(table.header.size()),
                      "give every row the header's columns (quote fields that hold commas)");
    table.rows.push_back(std::move(fields));
    table.line.push_back(line);
  }
  return table;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace gg::io
