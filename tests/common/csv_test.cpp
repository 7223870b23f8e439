// The CSV dialect: quoting, line ends, blank lines, line numbers, typed fields and their errors.
#include "common/csv.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/error.h"
#include "common/files.h"
#include "testing/testing.h"

namespace gg {
namespace {

// "<file>: <problem>" of the gg::Error that f throws, with its exit code checked.
template <typename F>
std::string bad_input_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    return e.file() + ": " + e.problem();
  }
  return "no error";
}

TEST(ReadCsv, QuotesAndLineNumbers) {
  testing::TempDir dir;
  write_file_atomic(dir / "t.csv", "a, b\n\"x,1\",\"say \"\"hi\"\"\"\n\n3,4\n");
  const CsvTable t = read_csv(dir / "t.csv");
  EXPECT_EQ(t.source, (dir / "t.csv").string());
  EXPECT_EQ(t.header, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(t.column("B"), 1);
  EXPECT_EQ(t.column(" A "), 0);
  EXPECT_EQ(t.column("c"), -1);
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0], (std::vector<std::string>{"x,1", "say \"hi\""}));
  EXPECT_EQ(t.rows[1], (std::vector<std::string>{"3", "4"}));
  EXPECT_EQ(t.line, (std::vector<int>{2, 4}));
}

TEST(ParseCsv, CrlfBlankLinesAndByteOrderMark) {
  const CsvTable t = parse_csv("\xEF\xBB\xBFid,n\r\n\r\nP1,1\r\n\r\n\r\nP2,2", "mem");
  EXPECT_EQ(t.header, (std::vector<std::string>{"id", "n"}));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0], (std::vector<std::string>{"P1", "1"}));
  EXPECT_EQ(t.rows[1], (std::vector<std::string>{"P2", "2"}));  // no final line end
  EXPECT_EQ(t.line, (std::vector<int>{3, 6}));
}

TEST(ParseCsv, EmptyFieldsAreKeptAndALineOfCommasIsNotBlank) {
  const CsvTable t = parse_csv("a,b,c\n,,\n1,,3\n\"\",x,\n", "mem");
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_EQ(t.rows[0], (std::vector<std::string>{"", "", ""}));
  EXPECT_EQ(t.rows[1], (std::vector<std::string>{"1", "", "3"}));
  EXPECT_EQ(t.rows[2], (std::vector<std::string>{"", "x", ""}));
}

TEST(ParseCsv, QuotedLineBreaksStayInTheFieldAndCountLines) {
  const std::vector<CsvRecord> r = parse_csv_records("a,\"two\nlines\"\nb,c\n", "mem");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].line, 1);
  EXPECT_EQ(r[0].fields, (std::vector<std::string>{"a", "two\nlines"}));
  EXPECT_EQ(r[1].line, 3);
  EXPECT_EQ(r[1].fields, (std::vector<std::string>{"b", "c"}));
}

TEST(ParseCsvRecords, AllowsRaggedRecords) {
  const std::vector<CsvRecord> r = parse_csv_records("a,b,c\n1\n", "mem");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1].fields, (std::vector<std::string>{"1"}));
  EXPECT_TRUE(parse_csv_records("", "mem").empty());
  EXPECT_TRUE(parse_csv_records("\r\n\n", "mem").empty());
}

TEST(CsvField, QuotesOnlyWhenNeeded) {
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field(""), "");
  EXPECT_EQ(csv_field("x,1"), "\"x,1\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("a\nb"), "\"a\nb\"");
  EXPECT_EQ(csv_field("a\rb"), "\"a\rb\"");
  EXPECT_EQ(csv_line({"id", "x,y", ""}), "id,\"x,y\",");
}

TEST(CsvField, RoundTripsThroughTheReader) {
  const std::vector<std::string> fields = {
      "plain", "", "x,1", "\"", "\"\"", "say \"hi\", twice", "two\nlines", "crlf\r\nend", " pad "};
  std::string text = "h";
  for (size_t i = 1; i < fields.size(); ++i) text += ",h" + std::to_string(i);
  text += "\n" + csv_line(fields) + "\n";
  const CsvTable t = parse_csv(text, "mem");
  ASSERT_EQ(t.rows.size(), 1u);
  EXPECT_EQ(t.rows[0], fields);
}

TEST(ReadCsv, WrongFieldCountNamesTheLine) {
  EXPECT_EQ(bad_input_of([] { parse_csv("a,b\n1,2\n\n1,2,3\n", "t.csv"); }),
            "t.csv: line 4 has 3 fields, the header has 2");
  EXPECT_EQ(bad_input_of([] { parse_csv("a,b\n\"1,2\"\n", "t.csv"); }),
            "t.csv: line 2 has 1 fields, the header has 2");
}

TEST(ReadCsv, EmptyFileUnterminatedQuoteAndMissingFile) {
  EXPECT_EQ(bad_input_of([] { parse_csv("\n\r\n", "e.csv"); }),
            "e.csv: CSV file is empty (no header line)");
  EXPECT_EQ(bad_input_of([] { parse_csv("a,b\n1,2\n3,\"open\n4,5\n", "q.csv"); }),
            "q.csv: unterminated quoted field starting on line 3");
  testing::TempDir dir;
  const fs::path absent = dir / "absent.csv";
  EXPECT_EQ(bad_input_of([&] { read_csv(absent); }), absent.string() + ": cannot open file");
}

TEST(ParseNumbers, WholeFieldOnly) {
  int i = -1;
  EXPECT_TRUE(parse_int(" 42\t", i));
  EXPECT_EQ(i, 42);
  EXPECT_TRUE(parse_int("-7", i));
  EXPECT_EQ(i, -7);
  EXPECT_FALSE(parse_int("4x", i));
  EXPECT_FALSE(parse_int("", i));
  EXPECT_FALSE(parse_int("1.5", i));
  EXPECT_FALSE(parse_int("99999999999", i));
  EXPECT_EQ(i, -7);  // unchanged on failure
  long l = 0;
  EXPECT_TRUE(parse_long("99999999999", l));
  EXPECT_EQ(l, 99999999999L);
  uint64_t u = 0;
  EXPECT_TRUE(parse_uint64("18446744073709551615", u));
  EXPECT_EQ(u, std::numeric_limits<uint64_t>::max());
  EXPECT_FALSE(parse_uint64("-1", u));
  double d = 0;
  EXPECT_TRUE(parse_double("1e-07", d));
  EXPECT_EQ(d, 1e-7);
  EXPECT_TRUE(parse_double("nan", d));
  EXPECT_TRUE(std::isnan(d));
  EXPECT_FALSE(parse_double("0.5.", d));
  EXPECT_FALSE(parse_double("", d));
}

TEST(FormatDouble, ShortestRoundTrip) {
  EXPECT_EQ(format_double(0.1), "0.1");
  EXPECT_EQ(format_double(1.0), "1");
  EXPECT_EQ(format_double(1e-7), "1e-07");
  EXPECT_EQ(format_double(0.30000000000000004), "0.30000000000000004");
  EXPECT_EQ(format_double(std::nan("")), "nan");
  EXPECT_EQ(format_double(-std::numeric_limits<double>::infinity()), "-inf");
  double back = 0;
  ASSERT_TRUE(parse_double(format_double(0.123456789012345678), back));
  EXPECT_EQ(back, 0.123456789012345678);
}

TEST(CsvNumbers, BadFieldsNameFileLineAndColumn) {
  const CsvTable t =
      parse_csv("patient,rank,p\nA,3,0.5\n\nB,x,1e999\nC,99999999999,nan\n", "s.csv");
  const std::string fix = "make it again";
  EXPECT_EQ(csv_int(t.rows[0][1], t.place(0, 1), fix), 3);
  EXPECT_EQ(csv_double(t.rows[0][2], t.place(0, 2)), 0.5);
  EXPECT_EQ(bad_input_of([&] { csv_int(t.rows[1][1], t.place(1, 1), fix); }),
            "s.csv: line 4: rank 'x' is not an integer");
  EXPECT_EQ(bad_input_of([&] { csv_int(t.rows[2][1], t.place(2, 1)); }),
            "s.csv: line 5: rank '99999999999' is out of range");
  EXPECT_EQ(csv_long(t.rows[2][1], t.place(2, 1)), 99999999999L);
  EXPECT_EQ(bad_input_of([&] { csv_double(t.rows[1][2], t.place(1, 2)); }),
            "s.csv: line 4: p '1e999' is not a number");
  EXPECT_TRUE(std::isnan(csv_double(t.rows[2][2], t.place(2, 2))));
  EXPECT_EQ(bad_input_of([&] { csv_finite_double(t.rows[2][2], t.place(2, 2)); }),
            "s.csv: line 5: p 'nan' is not a finite number");
  EXPECT_EQ(bad_input_of([] {
              csv_uint64("-1", {"f.csv", 7, "seed"});
            }),
            "f.csv: line 7: seed '-1' is not an integer");
  try {
    csv_int("x", {"f.csv", 2, "z"}, fix);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.fix(), fix);
  }
}

}  // namespace
}  // namespace gg
