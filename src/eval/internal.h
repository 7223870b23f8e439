// Internal helpers shared by eval/*.cpp and report/*.cpp; not part of the public API.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gg::eval::detail {

// Throws kBadInput unless labels and scores have the same size, labels are 0/1 and scores finite.
void check_labels_scores(const std::vector<int>& labels, const std::vector<double>& scores,
                         const char* what);

// x with Phi(x) = q for the standard normal distribution, q in (0, 1).
double normal_quantile(double q);

// Splits one CSV line into fields (RFC 4180 quoting: "a,b" and "" inside quotes). Returns false
// on an unterminated quote.
bool split_csv_line(std::string_view line, std::vector<std::string>& fields);
// Quotes a field if it holds a comma, quote or newline.
std::string csv_field(std::string_view s);
// Splits text into lines, dropping a trailing '\r' from each (Windows files).
std::vector<std::string> split_lines(std::string_view text);

// Shortest round-trip decimal form of a double ("0.1", "1e-05"); "nan"/"inf" for non-finite.
std::string format_double(double v);
// Parses a whole field as a double / int (locale-independent). False if not entirely a number.
bool parse_double(std::string_view s, double& v);
bool parse_int(std::string_view s, int& v);
bool parse_long(std::string_view s, long& v);

}  // namespace gg::eval::detail
