// A progress line on stderr for long work: "label  37/120  31%  4.2 items/s  ETA 0:19".
// On a terminal it redraws one line; otherwise (CI, logs) it prints at most every few seconds.
// Thread-safe: tick() may be called from worker threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace gg {

class Progress {
 public:
  // total may be 0 when unknown. unit names the items ("patients", "images").
  Progress(std::string label, int64_t total, std::string unit, bool enabled = true);
  ~Progress();  // finishes the line if done() was not called

  void tick(int64_t n = 1, const std::string& note = {});
  void done(const std::string& note = {});
  double rate() const;  // items per second so far

 private:
  void draw(bool final_line, const std::string& note);

  std::string label_, unit_;
  int64_t total_, count_ = 0;
  bool enabled_, tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
  mutable std::mutex mutex_;
};

// "1:02:03" or "2:03".
std::string format_duration(double seconds);

}  // namespace gg
