#include "common/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace gg {

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  const long s = static_cast<long>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

Progress::Progress(std::string label, int64_t total, std::string unit, bool enabled)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(enabled),
      tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  if (!finished_ && count_ > 0) done();
}

double Progress::rate() const {
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return secs > 0 ? static_cast<double>(count_) / secs : 0.0;
}

void Progress::tick(int64_t n, const std::string& note) {
  std::lock_guard<std::mutex> lock(mutex_);
  count_ += n;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  if (since >= (tty_ ? 0.2 : 5.0)) {
    last_draw_ = now;
    draw(false, note);
  }
}

void Progress::done(const std::string& note) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  finished_ = true;
  draw(true, note);
}

void Progress::draw(bool final_line, const std::string& note) {
  if (!enabled_) return;
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double r = secs > 0 ? static_cast<double>(count_) / secs : 0.0;
  std::string line = fmt::format("{}  {}", label_, count_);
  if (total_ > 0) {
    line += fmt::format("/{}  {:3.0f}%", total_,
                        100.0 * static_cast<double>(count_) / static_cast<double>(total_));
  }
  line += fmt::format("  {:.1f} {}/s", r, unit_);
  if (final_line) {
    line += fmt::format("  in {}", format_duration(secs));
  } else if (total_ > 0 && r > 0) {
    line += fmt::format("  ETA {}", format_duration(static_cast<double>(total_ - count_) / r));
  }
  if (!note.empty()) line += "  " + note;
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace gg
