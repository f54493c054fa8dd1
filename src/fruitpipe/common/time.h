// Clocks and the one text form of a time. Files record wall-clock times as seconds since the
// Unix epoch (run.json, shard timing) or as "YYYY-MM-DDTHH:MM:SSZ" in UTC, which sorts as text
// (run.json, the consent ledger, the audit log, the report); durations use the monotonic clock.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace fruitpipe {

double WallSeconds();              // since the Unix epoch, with a fraction
std::int64_t WallEpochSeconds();   // whole seconds since the Unix epoch
double MonotonicSeconds();         // an arbitrary origin; never goes back

// "2026-12-07T12:00:00Z"; with millis, "2026-12-07T12:00:00.123Z" (the service's logs).
std::string IsoUtc(double epoch_seconds, bool millis = false);
// Inverse of IsoUtc without millis; throws CorruptionError naming `what` on anything else.
std::int64_t ParseIsoUtc(std::string_view text, std::string_view what = "timestamp");

}  // namespace fruitpipe
