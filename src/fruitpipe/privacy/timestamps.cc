#include "fruitpipe/privacy/timestamps.h"

#include <chrono>
#include <cstdio>
#include <ctime>

#include "fruitpipe/common/error.h"

namespace fruitpipe::privacy {

std::int64_t NowEpochSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string IsoUtc(std::int64_t epoch_seconds) {
  const std::time_t t = static_cast<std::time_t>(epoch_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
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

}  // namespace fruitpipe::privacy
