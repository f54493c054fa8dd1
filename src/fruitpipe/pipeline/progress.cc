#include "fruitpipe/pipeline/progress.h"

#include <unistd.h>

#include <cstdio>

namespace fruitpipe::pipeline {

std::string FormatDuration(double seconds) {
  char buf[32];
  if (seconds < 60) {
    std::snprintf(buf, sizeof buf, "%.1fs", seconds);
  } else if (seconds < 3600) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(seconds) / 60, static_cast<int>(seconds) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(seconds) / 3600,
                  (static_cast<int>(seconds) % 3600) / 60);
  }
  return buf;
}

Progress::Progress(std::string what, std::int64_t total, bool enabled)
    : what_(std::move(what)),
      total_(total),
      enabled_(enabled),
      tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

void Progress::Add(std::int64_t n) {
  std::lock_guard lock(mu_);
  done_ += n;
  const auto now = std::chrono::steady_clock::now();
  const auto interval = tty_ ? std::chrono::milliseconds(200) : std::chrono::milliseconds(5000);
  if (now - last_print_ >= interval) {
    last_print_ = now;
    Print(false);
  }
}

void Progress::Finish() {
  std::lock_guard lock(mu_);
  Print(true);
}

void Progress::Print(bool final) {
  if (!enabled_) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : 0.0;
  const double pct = total_ > 0 ? 100.0 * static_cast<double>(done_) / static_cast<double>(total_) : 100.0;
  std::fprintf(stderr, "%s%s %lld/%lld (%.0f%%)  %.1f img/s  %s %s%s", tty_ ? "\r\033[K" : "", what_.c_str(),
               static_cast<long long>(done_), static_cast<long long>(total_), pct, rate,
               final ? "elapsed" : "ETA", FormatDuration(final ? elapsed : eta).c_str(),
               (tty_ && !final) ? "" : "\n");
  std::fflush(stderr);
}

}  // namespace fruitpipe::pipeline
