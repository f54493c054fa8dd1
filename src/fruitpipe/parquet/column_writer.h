// One writer per column kind: each knows its schema elements, splits its rows into pages,
// encodes levels and PLAIN values, and computes the chunk statistics that are cheap to keep.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "fruitpipe/parquet/compression.h"
#include "fruitpipe/parquet/metadata.h"
#include "fruitpipe/parquet/parquet.h"

namespace fruitpipe::parquet {

class ColumnWriter {
 public:
  virtual ~ColumnWriter() = default;

  virtual std::size_t rows() const = 0;
  // Appends the column's schema elements, depth-first.
  virtual void AppendSchema(std::vector<format::SchemaElement>* schema) const = 0;
  // Writes rows [begin, end) as one column chunk at the end of *file.
  virtual format::ColumnChunk WriteChunk(std::size_t begin, std::size_t end, PageCodec* codec,
                                         std::string* file) = 0;
};

// Validates the column (throws InvalidArgumentError naming it) and returns its writer.
// The writer refers to `column`, which must outlive it.
std::unique_ptr<ColumnWriter> MakeColumnWriter(const Column& column, const WriteOptions& options);

}  // namespace fruitpipe::parquet
