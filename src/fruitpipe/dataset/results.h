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
#include "fruitpipe/pca/pca.h"

namespace fruitpipe::dataset {

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

  // The rows for which keep(row) is true, with their vectors, in order.
  template <typename Keep>
  RowBatch Filtered(Keep keep) const {
    RowBatch kept;
    kept.dim = dim;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (!keep(rows[i])) continue;
      kept.rows.push_back(rows[i]);
      const T* v = vectors.data() + i * static_cast<std::size_t>(dim);
      kept.vectors.insert(kept.vectors.end(), v, v + dim);
    }
    return kept;
  }
};
using FeatureBatch = RowBatch<float>;
using PcaBatch = RowBatch<double>;

parquet::Table ResultsTable(const FeatureBatch& batch);
parquet::Table ResultsPcaTable(const PcaBatch& batch);
FeatureBatch ParseResults(std::string_view parquet_bytes);
PcaBatch ParseResultsPca(std::string_view parquet_bytes);

// The rows of a Results part projected with `model`: what its Results_PCA part holds.
PcaBatch Project(const pca::PcaModel& model, FeatureBatch&& features);

}  // namespace fruitpipe::dataset
