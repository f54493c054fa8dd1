// Wall-clock times as the ledger and the audit log record them: whole seconds since the Unix
// epoch in the API, "YYYY-MM-DDTHH:MM:SSZ" (UTC, sorts as text) on disk.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace fruitpipe::privacy {

std::int64_t NowEpochSeconds();
std::string IsoUtc(std::int64_t epoch_seconds);
// Inverse of IsoUtc; throws CorruptionError naming `what` on anything else.
std::int64_t ParseIsoUtc(std::string_view text, std::string_view what = "timestamp");

}  // namespace fruitpipe::privacy
