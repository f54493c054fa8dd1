// Test helpers shared by the Parquet tests: random tables of every column kind shaped like
// fruitpipe's outputs, and an exact (bitwise for floats) table comparison.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "fruitpipe/parquet/parquet.h"

namespace fruitpipe::parquet::testutil {

struct RandomTableOptions {
  std::size_t rows = 100;
  std::size_t min_list = 0;       // list lengths are uniform in [min_list, max_list]
  std::size_t max_list = 20;
  double null_fraction = 0.3;     // for the nullable string column
  bool special_floats = false;    // mix in NaN, +-inf, -0, denormals, extremes
  std::uint32_t seed = 1;
};

inline std::string RandomString(std::mt19937& rng, std::size_t max_len) {
  // ASCII, multi-byte UTF-8, quotes and backslashes.
  static const char* const kPieces[] = {"a", "Z", "0", "/", "_", "é", "Ä", "水", "🍎", " ", "'", "\"", "\\"};
  std::uniform_int_distribution<std::size_t> len(0, max_len);
  std::uniform_int_distribution<std::size_t> pick(0, std::size(kPieces) - 1);
  std::string s;
  const std::size_t n = len(rng);
  for (std::size_t i = 0; i < n; ++i) s += kPieces[pick(rng)];
  return s;
}

template <typename T>
T RandomFloat(std::mt19937& rng, bool special) {
  std::normal_distribution<T> normal(0, 3);
  if (special) {
    std::uniform_int_distribution<int> d(0, 15);
    switch (d(rng)) {
      case 0: return std::numeric_limits<T>::quiet_NaN();
      case 1: return std::numeric_limits<T>::infinity();
      case 2: return -std::numeric_limits<T>::infinity();
      case 3: return -T{0};
      case 4: return std::numeric_limits<T>::denorm_min();
      case 5: return std::numeric_limits<T>::max();
      case 6: return std::numeric_limits<T>::lowest();
      case 7: return T{0};
      default: break;
    }
  }
  return normal(rng);
}

template <typename T>
ListColumn<T> RandomList(std::mt19937& rng, const RandomTableOptions& o) {
  ListColumn<T> c;
  std::uniform_int_distribution<std::size_t> len(o.min_list, o.max_list);
  std::vector<T> row;
  for (std::size_t r = 0; r < o.rows; ++r) {
    row.resize(len(rng));
    for (T& v : row) v = RandomFloat<T>(rng, o.special_floats);
    c.AppendRow(row.data(), row.size());
  }
  return c;
}

// A table with every column kind: required strings, a nullable string, int32, int64,
// double, list<float> and list<double>.
inline Table RandomTable(const RandomTableOptions& o) {
  std::mt19937 rng(o.seed);
  Table t;
  StringColumn s, ns;
  ns.nullable = true;
  Int32Column i32;
  Int64Column i64;
  DoubleColumn d;
  std::bernoulli_distribution is_null(o.null_fraction);
  std::uniform_int_distribution<std::int32_t> di32(std::numeric_limits<std::int32_t>::min(),
                                                   std::numeric_limits<std::int32_t>::max());
  std::uniform_int_distribution<std::int64_t> di64(std::numeric_limits<std::int64_t>::min(),
                                                   std::numeric_limits<std::int64_t>::max());
  for (std::size_t r = 0; r < o.rows; ++r) {
    s.values.push_back(RandomString(rng, 12));
    const bool null = is_null(rng);
    ns.values.push_back(null ? std::string() : RandomString(rng, 30));
    ns.valid.push_back(!null);
    i32.values.push_back(di32(rng));
    i64.values.push_back(di64(rng));
    d.values.push_back(RandomFloat<double>(rng, o.special_floats));
  }
  t.columns.push_back({"s", std::move(s)});
  t.columns.push_back({"ns", std::move(ns)});
  t.columns.push_back({"i32", std::move(i32)});
  t.columns.push_back({"i64", std::move(i64)});
  t.columns.push_back({"d", std::move(d)});
  t.columns.push_back({"fl", RandomList<float>(rng, o)});
  t.columns.push_back({"dl", RandomList<double>(rng, o)});
  return t;
}

// A table shaped exactly like fruitpipe's Results (pca_dim == 0) or Results_PCA rows.
inline Table ResultsTable(std::size_t rows, std::size_t feature_dim, std::size_t pca_dim, bool some_subjects,
                          std::uint32_t seed) {
  std::mt19937 rng(seed);
  static const char* const kLabels[] = {"Apple Braeburn", "Banana", "Cherry 1", "Kiwi", "Pear Monster"};
  StringColumn path, label, sha, subject;
  subject.nullable = true;
  Int32Column width, height;
  FloatListColumn features;
  DoubleListColumn pca;
  std::normal_distribution<float> f(0.5f, 0.7f);
  std::normal_distribution<double> p(0, 10);
  std::vector<float> row(feature_dim);
  std::vector<double> prow(pca_dim);
  for (std::size_t r = 0; r < rows; ++r) {
    const std::string l = kLabels[r % std::size(kLabels)];
    label.values.push_back(l);
    path.values.push_back("s3://fruits-bucket/fruits-360/Test/" + l + "/r_" + std::to_string(r) + "_100.jpg");
    std::string hex;
    for (int i = 0; i < 64; ++i) hex.push_back("0123456789abcdef"[rng() % 16]);
    sha.values.push_back(hex);
    width.values.push_back(100 + static_cast<std::int32_t>(r % 7));
    height.values.push_back(100);
    const bool has_subject = some_subjects && r % 3 == 0;
    subject.values.push_back(has_subject ? "subj-" + std::to_string(r) : std::string());
    subject.valid.push_back(has_subject);
    for (float& v : row) v = std::max(0.0f, f(rng));  // ReLU6 features: many exact zeros
    features.AppendRow(row.data(), row.size());
    for (double& v : prow) v = p(rng);
    pca.AppendRow(prow.data(), prow.size());
  }
  Table t;
  t.columns.push_back({"path", std::move(path)});
  t.columns.push_back({"label", std::move(label)});
  if (pca_dim == 0) {
    t.columns.push_back({"features", std::move(features)});
  }
  t.columns.push_back({"image_sha256", std::move(sha)});
  t.columns.push_back({"width", std::move(width)});
  t.columns.push_back({"height", std::move(height)});
  t.columns.push_back({"subject_id", std::move(subject)});
  if (pca_dim > 0) t.columns.push_back({"pcaFeatures", std::move(pca)});
  t.metadata["fruitpipe.run_id"] = "test-run";
  return t;
}

template <typename T>
bool SameBits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

template <typename T>
void ExpectSameValues(const std::vector<T>& a, const std::vector<T>& b, const std::string& name) {
  ASSERT_EQ(a.size(), b.size()) << name;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if constexpr (std::is_floating_point_v<T>) {
      ASSERT_TRUE(SameBits(a[i], b[i])) << name << "[" << i << "]: " << a[i] << " vs " << b[i];
    } else {
      ASSERT_EQ(a[i], b[i]) << name << "[" << i << "]";
    }
  }
}

// Exact comparison; a nullable string column compares its validity, and its values only
// where valid (the writer does not store a null's placeholder).
inline void ExpectTablesEqual(const Table& want, const Table& got) {
  ASSERT_EQ(want.columns.size(), got.columns.size());
  EXPECT_EQ(want.metadata, got.metadata);
  for (std::size_t c = 0; c < want.columns.size(); ++c) {
    const Column& w = want.columns[c];
    const Column& g = got.columns[c];
    ASSERT_EQ(w.name, g.name);
    ASSERT_EQ(w.data.index(), g.data.index()) << w.name;
    std::visit(
        [&](const auto& wd) {
          using D = std::decay_t<decltype(wd)>;
          const D& gd = std::get<D>(g.data);
          if constexpr (std::is_same_v<D, StringColumn>) {
            ASSERT_EQ(wd.values.size(), gd.values.size()) << w.name;
            const bool optional = wd.nullable || !wd.valid.empty();
            ASSERT_EQ(gd.nullable, optional) << w.name;
            for (std::size_t i = 0; i < wd.values.size(); ++i) {
              const bool wv = wd.valid.empty() || wd.valid[i];
              const bool gv = gd.valid.empty() || gd.valid[i];
              ASSERT_EQ(wv, gv) << w.name << "[" << i << "]";
              if (wv) {
                ASSERT_EQ(wd.values[i], gd.values[i]) << w.name << "[" << i << "]";
              } else {
                ASSERT_EQ(gd.values[i], "") << w.name << "[" << i << "]";
              }
            }
          } else if constexpr (std::is_same_v<D, FloatListColumn> || std::is_same_v<D, DoubleListColumn>) {
            ASSERT_EQ(wd.offsets, gd.offsets) << w.name;
            ExpectSameValues(wd.values, gd.values, w.name);
          } else {
            ExpectSameValues(wd.values, gd.values, w.name);
          }
        },
        w.data);
  }
}

// The table the DuckDB-written fixtures in testdata/ hold (see testdata/README.md).
inline Table DuckDbFixtureTable() {
  Int64Column id;
  StringColumn s, ns;
  s.nullable = ns.nullable = true;
  Int32Column i32, small;
  DoubleColumn d;
  FloatListColumn fl;
  for (std::int64_t i = 0; i < 40; ++i) {
    id.values.push_back(i);
    s.values.push_back("label_" + std::to_string(i % 7));
    s.valid.push_back(true);
    ns.values.push_back(i % 5 == 0 ? "" : "Äpfel/" + std::to_string(i));
    ns.valid.push_back(i % 5 != 0);
    i32.values.push_back(static_cast<std::int32_t>(i * 7919 % 100003 - 50000));
    small.values.push_back(static_cast<std::int32_t>(i % 3));
    d.values.push_back(static_cast<double>(i) / 8.0);
    std::vector<float> row;
    for (std::int64_t k = 0; k < i % 4; ++k) row.push_back(static_cast<float>(i + k) / 4.0f);
    fl.AppendRow(row.data(), row.size());
  }
  Table t;
  t.columns = {{"id", id}, {"s", s}, {"ns", ns}, {"i32", i32}, {"small", small}, {"d", d}, {"fl", fl}};
  return t;
}

}  // namespace fruitpipe::parquet::testutil
