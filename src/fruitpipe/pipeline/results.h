// The rows of Results/ and Results_PCA/ and their Parquet schema (the output contract in
// docs/formats/dataset.md): path, label, features list<float>, image_sha256, width, height,
// subject_id (nullable), and for Results_PCA pcaFeatures list<double> instead of features.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fruitpipe/parquet/parquet.h"

namespace fruitpipe::pipeline {

struct ImageRow {
  std::string path;
  std::string label;
  std::string image_sha256;
  std::int32_t width = 0;
  std::int32_t height = 0;
  std::optional<std::string> subject_id;
};

// Rows plus one fixed-length vector per row, stored contiguously.
template <typename T>
struct RowBatch {
  std::vector<ImageRow> rows;
  int dim = 0;
  std::vector<T> vectors;  // rows.size() * dim
};
using FeatureBatch = RowBatch<float>;
using PcaBatch = RowBatch<double>;

parquet::Table ResultsTable(const FeatureBatch& batch);
parquet::Table ResultsPcaTable(const PcaBatch& batch);
FeatureBatch ParseResults(std::string_view parquet_bytes);
PcaBatch ParseResultsPca(std::string_view parquet_bytes);

}  // namespace fruitpipe::pipeline
