// report.html: one self-contained file (images as data URIs, inline CSS, no external URLs).
#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "common/error.h"
#include "common/files.h"
#include "report/canvas.h"
#include "report/report.h"

namespace gg::report {

namespace {

std::string escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string base64(const std::string& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += table[v >> 18];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += table[v & 63];
  }
  if (i < bytes.size()) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += table[v >> 18];
    out += table[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? table[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r") - a + 1);
}

std::vector<std::string> table_cells(const std::string& line) {
  std::string body = trim(line);
  if (!body.empty() && body.front() == '|') body.erase(0, 1);
  if (!body.empty() && body.back() == '|') body.pop_back();
  std::vector<std::string> cells;
  size_t start = 0;
  for (size_t bar; (bar = body.find('|', start)) != std::string::npos; start = bar + 1)
    cells.push_back(trim(body.substr(start, bar - start)));
  cells.push_back(trim(body.substr(start)));
  return cells;
}

bool is_separator_row(const std::string& line) {
  for (char c : line)
    if (c != '|' && c != '-' && c != ':' && c != ' ') return false;
  return line.find('-') != std::string::npos;
}

// Shown at its logical size (pixel width / the scale its pHYs records: our plots are 2x; other
// PNGs usually have none and show at their pixel size), never wider than the page.
std::string figure_html(const std::string& caption, const fs::path& png) {
  const std::string bytes = read_file(png);
  if (bytes.size() < 24 || bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0)
    throw_bad_input(png.string(), "report figure is not a PNG file",
                    "pass the .png written by the plot functions");
  // IHDR is the first chunk: width is the big-endian uint32 at byte 16.
  unsigned width = 0;
  for (int i = 16; i < 20; ++i) width = (width << 8) | static_cast<unsigned char>(bytes[i]);
  return "<figure><img alt=\"" + escape(caption) + "\" width=\"" +
         std::to_string(width / detail::png_scale(bytes)) + "\" src=\"data:image/png;base64," +
         base64(bytes) + "\"><figcaption>" + escape(caption) + "</figcaption></figure>\n";
}

constexpr const char* kStyle = R"(
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; color: #1a1a1a; margin: 0;
       background: #fafafa; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 32px 64px; background: #fff; }
h1 { font-size: 26px; margin: 8px 0 16px; }
h2 { font-size: 20px; margin-top: 36px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 16px; margin-top: 22px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 5px 10px; text-align: left; }
th { background: #f0f0f0; }
td:nth-child(n+2) { font-variant-numeric: tabular-nums; }
figure { margin: 18px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 13px; color: #555; margin-top: 4px; }
pre { background: #f6f6f6; padding: 12px; overflow-x: auto; font-size: 12px; }
p { line-height: 1.5; }
)";

}  // namespace

std::string markdown_to_html(const std::string& markdown) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= markdown.size()) {
    size_t end = markdown.find('\n', start);
    if (end == std::string::npos) end = markdown.size();
    lines.push_back(markdown.substr(start, end - start));
    start = end + 1;
  }
  std::string html, paragraph;
  auto flush_paragraph = [&] {
    if (!paragraph.empty()) html += "<p>" + escape(paragraph) + "</p>\n";
    paragraph.clear();
  };
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string line = trim(lines[i]);
    if (line.empty()) {
      flush_paragraph();
    } else if (line[0] == '#') {
      flush_paragraph();
      const size_t level = std::min<size_t>(line.find_first_not_of('#'), 6);
      const std::string tag = "h" + std::to_string(level);
      html += "<" + tag + ">" + escape(trim(line.substr(level))) + "</" + tag + ">\n";
    } else if (line[0] == '|') {
      flush_paragraph();
      html += "<table>\n";
      bool header = i + 1 < lines.size() && is_separator_row(trim(lines[i + 1]));
      for (; i < lines.size() && trim(lines[i]).rfind('|', 0) == 0; ++i) {
        if (is_separator_row(trim(lines[i]))) continue;
        const char* cell = header ? "th" : "td";
        html += "<tr>";
        for (const std::string& c : table_cells(lines[i]))
          html += std::string("<") + cell + ">" + escape(c) + "</" + cell + ">";
        html += "</tr>\n";
        header = false;
      }
      --i;
      html += "</table>\n";
    } else {
      paragraph += (paragraph.empty() ? "" : " ") + line;
    }
  }
  flush_paragraph();
  return html;
}

void write_report_html(const ReportInputs& in, const fs::path& path) {
  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
      escape(in.title) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n<main>\n";
  html += "<h1>" + escape(in.title) + "</h1>\n";
  if (!in.notes.empty()) html += markdown_to_html(in.notes);
  if (!in.table_markdown.empty()) {
    // The results table brings its own heading ("## Results: <protocol>").
    if (in.table_markdown[0] != '#') html += "<h2>Summary</h2>\n";
    html += markdown_to_html(in.table_markdown);
  }
  for (const FigureSection& s : in.sections) {
    html += "<h2>" + escape(s.heading) + "</h2>\n";
    for (const auto& [caption, png] : s.figures) html += figure_html(caption, png);
  }
  if (!in.figures.empty()) {
    html += "<h2>Figures</h2>\n";
    for (const auto& [caption, png] : in.figures) html += figure_html(caption, png);
  }
  if (!in.config_json.empty()) {
    std::string config = in.config_json;
    const nlohmann::json j = nlohmann::json::parse(in.config_json, nullptr, false);
    if (!j.is_discarded()) config = j.dump(2);
    html += "<h2>Provenance</h2>\n<pre>" + escape(config) + "</pre>\n";
  }
  html += "</main>\n</body>\n</html>\n";
  write_file_atomic(path, html);
}

}  // namespace gg::report
