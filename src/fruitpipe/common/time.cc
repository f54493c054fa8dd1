#include "fruitpipe/common/time.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "fruitpipe/common/error.h"

namespace fruitpipe {

double WallSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::int64_t WallEpochSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

double MonotonicSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string IsoUtc(double epoch_seconds, bool millis) {
  const double whole = std::floor(epoch_seconds);
  const std::time_t t = static_cast<std::time_t>(whole);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec);
  std::string text = buf;
  if (millis) {
    const int ms = std::min(999, static_cast<int>((epoch_seconds - whole) * 1000.0));
    std::snprintf(buf, sizeof buf, ".%03d", ms);
    text += buf;
  }
  return text + "Z";
}

std::int64_t ParseIsoUtc(std::string_view text, std::string_view what) {
  std::tm tm{};
  char z = 0;
  int consumed = 0;
  const std::string s(text);
  if (s.size() != 20 ||
      std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &z, &consumed) != 7 ||
      z != 'Z' || consumed != 20) {
    throw CorruptionError(std::string(what) + ": '" + s + "' is not a UTC time like 2024-05-01T12:00:00Z");
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<std::int64_t>(timegm(&tm));
}

}  // namespace fruitpipe
