// Compares two fruitpipe datasets (local folders) by content: the rows, not the file names or
// how the work was split. Shared by the integration tests (scale-out, S3 end to end).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fruitpipe/common/env_vars.h"
#include "fruitpipe/pca/pca.h"
#include "fruitpipe/dataset/results.h"

namespace fruitpipe::testing {

struct DatasetRow {
  dataset::ImageRow meta;
  std::vector<float> features;
  std::vector<double> pca;
};

// Every row of the dataset in `out`, by its key relative to the run's source (the row's path
// minus the source root named in _plan.json), so that a run of s3://bucket/Test and one of
// /tmp/x/Test compare row by row.
inline std::map<std::string, DatasetRow> ReadDataset(const std::filesystem::path& out) {
  namespace fs = std::filesystem;
  const auto plan = nlohmann::json::parse(ReadLocalFile((out / "_plan.json").string()));
  std::string root = plan.at("source").get<std::string>();
  if (!root.empty() && root.back() != '/') root += '/';
  const auto relative = [&root](const std::string& path) {
    EXPECT_EQ(path.rfind(root, 0), 0u) << path << " is not under the source " << root;
    return path.rfind(root, 0) == 0 ? path.substr(root.size()) : path;
  };
  std::map<std::string, DatasetRow> rows;
  // Hidden files (a killed write's temporary) are not part of a dataset, for us as for Spark.
  const auto hidden = [](const fs::path& p) { return p.filename().string().front() == '.'; };
  for (const auto& e : fs::directory_iterator(out / "Results")) {
    if (hidden(e.path())) continue;
    const auto b = dataset::ParseResults(ReadLocalFile(e.path().string()));
    for (std::size_t i = 0; i < b.rows.size(); ++i) {
      DatasetRow& r = rows[relative(b.rows[i].path)];
      EXPECT_TRUE(r.features.empty()) << "duplicate row " << b.rows[i].path;
      r.meta = b.rows[i];
      r.features.assign(b.vectors.begin() + static_cast<long>(i * b.dim),
                        b.vectors.begin() + static_cast<long>((i + 1) * b.dim));
    }
  }
  for (const auto& e : fs::directory_iterator(out / "Results_PCA")) {
    if (hidden(e.path())) continue;
    const auto b = dataset::ParseResultsPca(ReadLocalFile(e.path().string()));
    for (std::size_t i = 0; i < b.rows.size(); ++i) {
      DatasetRow& r = rows[relative(b.rows[i].path)];
      EXPECT_TRUE(r.pca.empty()) << "duplicate PCA row " << b.rows[i].path;
      r.pca.assign(b.vectors.begin() + static_cast<long>(i * b.dim),
                   b.vectors.begin() + static_cast<long>((i + 1) * b.dim));
    }
  }
  return rows;
}

// Same rows (relative key, label, content hash), same features bit for bit; PCA coordinates
// and explained variances within `pca_tolerance` (relative to the component's scale), since
// statistics summed in another order round differently.
inline void ExpectSameDataset(const std::filesystem::path& expected_dir, const std::filesystem::path& actual_dir,
                              double pca_tolerance) {
  ASSERT_TRUE(std::filesystem::exists(actual_dir / "_SUCCESS")) << actual_dir;
  const auto expected = ReadDataset(expected_dir);
  const auto actual = ReadDataset(actual_dir);
  ASSERT_EQ(expected.size(), actual.size());
  for (const auto& [key, e] : expected) {
    auto it = actual.find(key);
    ASSERT_NE(it, actual.end()) << key;
    const DatasetRow& a = it->second;
    EXPECT_EQ(a.meta.label, e.meta.label) << key;
    EXPECT_EQ(a.meta.image_sha256, e.meta.image_sha256) << key;
    ASSERT_EQ(a.features, e.features) << key;
    ASSERT_EQ(a.pca.size(), e.pca.size()) << key;
    for (std::size_t k = 0; k < e.pca.size(); ++k) {
      EXPECT_NEAR(a.pca[k], e.pca[k], pca_tolerance * (1.0 + std::abs(e.pca[k]))) << key << " pc" << k;
    }
  }
  const auto em = pca::PcaModel::Deserialize(ReadLocalFile((expected_dir / "_pca_model.bin").string()));
  const auto am = pca::PcaModel::Deserialize(ReadLocalFile((actual_dir / "_pca_model.bin").string()));
  ASSERT_EQ(em.k, am.k);
  for (int i = 0; i < em.k; ++i) {
    EXPECT_NEAR(am.explained_variance[i], em.explained_variance[i], pca_tolerance * em.explained_variance[i]);
  }
}

}  // namespace fruitpipe::testing
