// Decoders for the delta encodings of Encodings.md, which Parquet "V2" writers (DuckDB's
// PARQUET_VERSION V2, Spark, pyarrow) use for integers and strings:
//
//   DELTA_BINARY_PACKED:     <block size> <miniblocks per block> <value count> <first value>
//                            then blocks of <min delta> <miniblock bit widths> <miniblocks>
//   DELTA_LENGTH_BYTE_ARRAY: lengths as DELTA_BINARY_PACKED, then the bytes back to back
//   DELTA_BYTE_ARRAY:        prefix lengths as DELTA_BINARY_PACKED, then suffixes as
//                            DELTA_LENGTH_BYTE_ARRAY; each value is a prefix of the one
//                            before plus its suffix
//
// Input is hostile: every length is checked against the data; errors throw CorruptionError
// naming `what`.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace fruitpipe::parquet {

// Decodes exactly n values (the stream must declare n) and appends them to *out.
// Returns the bytes consumed. T is std::int32_t or std::int64_t; arithmetic wraps as the
// spec requires.
template <typename T>
std::size_t DecodeDeltaBinaryPacked(std::string_view data, std::size_t n, std::vector<T>* out,
                                    std::string_view what);

// Decodes n byte arrays as views into `data`. Returns the bytes consumed.
std::size_t DecodeDeltaLengthByteArray(std::string_view data, std::size_t n, std::vector<std::string_view>* out,
                                       std::string_view what);

// Decodes n byte arrays and appends them to *out. Shared prefixes repeat bytes the page does
// not hold, so `charge` is told the total output size before anything is allocated (and may
// throw to refuse it). Returns the bytes consumed.
std::size_t DecodeDeltaByteArray(std::string_view data, std::size_t n, std::vector<std::string>* out,
                                 std::string_view what, const std::function<void(std::uint64_t)>& charge);

}  // namespace fruitpipe::parquet
