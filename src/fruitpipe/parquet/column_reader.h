// One reader per column kind: decodes a column's chunk in each row group (through
// ReadColumnChunk) and assembles rows from its levels into the Table column.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "fruitpipe/parquet/chunk_reader.h"
#include "fruitpipe/parquet/parquet.h"
#include "fruitpipe/parquet/schema.h"

namespace fruitpipe::parquet {

class ColumnReader {
 public:
  virtual ~ColumnReader() = default;
  // Appends the `num_rows` rows of this column's chunk in one row group. Throws
  // CorruptionError when the chunk does not hold exactly that many rows, and
  // InvalidArgumentError for values the column kind cannot hold (nulls in an int column,
  // null lists or elements).
  virtual void ReadRowGroup(std::string_view pages, const format::ColumnMetaData& meta, std::int64_t num_rows,
                            DecodeContext* ctx) = 0;
  virtual Column Finish() = 0;
};

// `schema` must be of a supported kind; `what` names the file and column in errors.
std::unique_ptr<ColumnReader> MakeColumnReader(const ColumnSchema& schema, std::string what);

}  // namespace fruitpipe::parquet
