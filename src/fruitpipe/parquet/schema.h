// Interprets a file's flattened schema (FileMetaData.schema) as fruitpipe column kinds:
// which top-level fields map to which Table column, where their leaf column chunks are, and
// their definition/repetition levels. Shared by ReadParquet and ReadSummary.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fruitpipe/parquet/metadata.h"

namespace fruitpipe::parquet {

enum class ColumnKind { kString, kInt32, kInt64, kDouble, kFloatList, kDoubleList, kUnsupported };

struct ColumnSchema {
  std::string name;
  ColumnKind kind = ColumnKind::kUnsupported;
  std::string description;  // "string", "string (nullable)", "int32", "list<float>", ...
  std::size_t first_leaf = 0;  // index of its first leaf column chunk in each row group
  std::size_t num_leaves = 0;
  // For supported kinds (exactly one leaf):
  std::vector<std::string> leaf_path;  // path_in_schema of the leaf
  format::Type physical = format::Type::kBoolean;
  bool optional = false;  // scalars: the leaf is optional (may hold nulls)
  int max_def = 0;
  int max_rep = 0;
  // Lists: the definition level of an empty list (a null list is below it, a present
  // element at max_def, a null element in between).
  int def_empty_list = 0;
};

struct FileSchema {
  std::vector<ColumnSchema> columns;  // top-level fields, in file order
  std::size_t num_leaves = 0;
};

// Throws CorruptionError (naming `what`) when the flattened tree is malformed.
FileSchema InterpretSchema(const std::vector<format::SchemaElement>& schema, std::string_view what);

}  // namespace fruitpipe::parquet
