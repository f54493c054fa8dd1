// A live progress line on stderr: done/total, images/s, ETA. On a terminal it redraws one
// line; otherwise (logs, CI) it prints a line at most every few seconds.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace fruitpipe::pipeline {

class Progress {
 public:
  Progress(std::string what, std::int64_t total, bool enabled);
  void Add(std::int64_t n);
  void Finish();

 private:
  void Print(bool final);
  std::string what_;
  std::int64_t total_;
  std::int64_t done_ = 0;
  bool enabled_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_print_;
  std::mutex mu_;
};

// "1m23s", "4.2s"
std::string FormatDuration(double seconds);

}  // namespace fruitpipe::pipeline
