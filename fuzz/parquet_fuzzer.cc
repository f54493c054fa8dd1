// libFuzzer target: the Parquet reader on arbitrary bytes. ReadParquet and ReadSummary must
// reject malformed files with a fruitpipe::Error (CorruptionError, InvalidArgumentError,
// NotFoundError), never crash, hang or allocate without bound. A file that reads must read
// again identically after a write round trip.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fruitpipe/common/error.h"
#include "fruitpipe/parquet/parquet.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view file(reinterpret_cast<const char*>(data), size);
  try {
    fruitpipe::parquet::ReadSummary(file, "fuzz.parquet");
  } catch (const fruitpipe::Error&) {
  }
  fruitpipe::parquet::Table table;
  try {
    table = fruitpipe::parquet::ReadParquet(file, {}, "fuzz.parquet");
  } catch (const fruitpipe::Error&) {
    return 0;
  }
  // What was read is a valid Table: writing and reading it back must give the same rows.
  const std::string again = fruitpipe::parquet::WriteParquet(table);
  const fruitpipe::parquet::Table reread = fruitpipe::parquet::ReadParquet(again, {}, "round trip");
  if (reread.num_rows() != table.num_rows() || reread.columns.size() != table.columns.size()) __builtin_trap();
  return 0;
}
