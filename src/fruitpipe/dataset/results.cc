#include "fruitpipe/dataset/results.h"

#include "fruitpipe/common/error.h"

namespace fruitpipe::dataset {
namespace {

// The key columns shared by Results and Results_PCA, in contract order around the vector.
template <typename T, typename ListT>
parquet::Table MakeTable(const RowBatch<T>& batch, const char* vector_name) {
  parquet::StringColumn path, label, sha, subject;
  parquet::Int32Column width, height;
  ListT vectors;
  subject.nullable = true;
  const std::size_t n = batch.rows.size();
  if (batch.vectors.size() != n * static_cast<std::size_t>(batch.dim)) {
    throw InvalidArgumentError("results: vector block does not match the row count");
  }
  for (std::size_t i = 0; i < n; ++i) {
    const ImageRow& r = batch.rows[i];
    path.values.push_back(r.path);
    label.values.push_back(r.label);
    sha.values.push_back(r.image_sha256);
    width.values.push_back(r.width);
    height.values.push_back(r.height);
    subject.values.push_back(r.subject_id.value_or(""));
    subject.valid.push_back(r.subject_id.has_value());
    vectors.AppendRow(batch.vectors.data() + i * batch.dim, static_cast<std::size_t>(batch.dim));
  }
  parquet::Table t;
  t.columns.push_back({"path", std::move(path)});
  t.columns.push_back({"label", std::move(label)});
  t.columns.push_back({vector_name, std::move(vectors)});
  t.columns.push_back({"image_sha256", std::move(sha)});
  t.columns.push_back({"width", std::move(width)});
  t.columns.push_back({"height", std::move(height)});
  t.columns.push_back({"subject_id", std::move(subject)});
  return t;
}

template <typename T, typename ListT>
RowBatch<T> ParseTable(std::string_view bytes, const char* vector_name) {
  const parquet::Table t = parquet::ReadParquet(bytes);
  auto column = [&](const char* name) -> const parquet::ColumnData& { return t.Get(name).data; };
  try {
    const auto& path = std::get<parquet::StringColumn>(column("path"));
    const auto& label = std::get<parquet::StringColumn>(column("label"));
    const auto& sha = std::get<parquet::StringColumn>(column("image_sha256"));
    const auto& width = std::get<parquet::Int32Column>(column("width"));
    const auto& height = std::get<parquet::Int32Column>(column("height"));
    const auto& subject = std::get<parquet::StringColumn>(column("subject_id"));
    const auto& vectors = std::get<ListT>(column(vector_name));
    RowBatch<T> batch;
    const std::size_t n = t.num_rows();
    batch.rows.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      ImageRow& r = batch.rows[i];
      r.path = path.values[i];
      r.label = label.values[i];
      r.image_sha256 = sha.values[i];
      r.width = width.values[i];
      r.height = height.values[i];
      if (subject.valid.empty() || subject.valid[i]) r.subject_id = subject.values[i];
      const std::size_t len = vectors.offsets[i + 1] - vectors.offsets[i];
      if (i == 0) batch.dim = static_cast<int>(len);
      if (len != static_cast<std::size_t>(batch.dim)) {
        throw CorruptionError(std::string(vector_name) + ": rows have different lengths");
      }
    }
    batch.vectors = vectors.values;
    return batch;
  } catch (const std::bad_variant_access&) {
    throw CorruptionError("results: a column has an unexpected type");
  }
}

}  // namespace

parquet::Table ResultsTable(const FeatureBatch& batch) {
  return MakeTable<float, parquet::FloatListColumn>(batch, "features");
}

parquet::Table ResultsPcaTable(const PcaBatch& batch) {
  return MakeTable<double, parquet::DoubleListColumn>(batch, "pcaFeatures");
}

FeatureBatch ParseResults(std::string_view bytes) {
  return ParseTable<float, parquet::FloatListColumn>(bytes, "features");
}

PcaBatch ParseResultsPca(std::string_view bytes) {
  return ParseTable<double, parquet::DoubleListColumn>(bytes, "pcaFeatures");
}

PcaBatch Project(const pca::PcaModel& model, FeatureBatch&& features) {
  PcaBatch projected;
  projected.dim = model.k;
  projected.rows = std::move(features.rows);
  projected.vectors.resize(projected.rows.size() * static_cast<std::size_t>(model.k));
  if (!projected.rows.empty()) {
    model.TransformBatch(features.vectors.data(), static_cast<int>(projected.rows.size()), projected.vectors.data());
  }
  return projected;
}

}  // namespace fruitpipe::dataset
