#include "fruitpipe/pca/pca.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fruitpipe/common/error.h"
#include "fruitpipe/pca/binary_io.h"

namespace fruitpipe::pca {
namespace {

using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// n × dim rows = offset + latent · diag(scales) · Q with Q orthonormal rows, so the
// covariance spectrum decays geometrically with clear gaps between eigenvalues.
RowMajorF LowRankRows(int n, int dim, double offset, double decay, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  const int r = std::min(n, dim);
  Eigen::MatrixXd g(dim, r);
  for (double& v : g.reshaped()) v = normal(rng);
  const Eigen::MatrixXd q = Eigen::HouseholderQR<Eigen::MatrixXd>(g).householderQ() * Eigen::MatrixXd::Identity(dim, r);
  Eigen::MatrixXd latent(n, r);
  for (double& v : latent.reshaped()) v = normal(rng);
  for (int i = 0; i < r; ++i) latent.col(i) *= 0.8 * std::pow(decay, i);
  Eigen::MatrixXd x = latent * q.transpose();
  x.array() += offset;
  return x.cast<float>();
}

// What MobileNetV2's pooled ReLU6 features look like: non-negative, mostly small (mean about
// 0.5), a few large, bounded by 6, with correlated columns.
RowMajorF MobileNetLikeRows(int n, int dim, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  const int factors = 6;
  Eigen::MatrixXd mix(factors, dim);
  for (double& v : mix.reshaped()) v = normal(rng) * 0.4;
  RowMajorF x(n, dim);
  Eigen::VectorXd f(factors);
  for (int i = 0; i < n; ++i) {
    for (double& v : f) v = normal(rng);
    const Eigen::VectorXd row = mix.transpose() * f;
    for (int j = 0; j < dim; ++j) {
      x(i, j) = static_cast<float>(std::clamp(0.35 + row(j) + 0.05 * normal(rng), 0.0, 6.0));
    }
  }
  return x;
}

PcaStats StatsOf(const RowMajorF& x) {
  PcaStats s(static_cast<int>(x.cols()));
  s.AddBatch(x.data(), static_cast<int>(x.rows()));
  return s;
}

// Two-pass reference: SVD of the explicitly centred data, in double.
struct Reference {
  Eigen::VectorXd mean;
  Eigen::VectorXd eigenvalues;  // descending
  Eigen::MatrixXd components;   // rows, sign-normalised like FitPca
};

Reference TwoPassSvd(const RowMajorF& xf) {
  const Eigen::MatrixXd x = xf.cast<double>();
  Reference ref;
  ref.mean = x.colwise().mean().transpose();
  const Eigen::MatrixXd centered = x.rowwise() - ref.mean.transpose();
  const Eigen::BDCSVD<Eigen::MatrixXd> svd(centered, Eigen::ComputeThinV);
  ref.eigenvalues = svd.singularValues().array().square() / static_cast<double>(x.rows() - 1);
  ref.components = svd.matrixV().transpose();
  for (int i = 0; i < ref.components.rows(); ++i) {
    Eigen::Index at = 0;
    ref.components.row(i).cwiseAbs().maxCoeff(&at);
    if (ref.components(i, at) < 0) ref.components.row(i) *= -1.0;
  }
  return ref;
}

double MaxRelDiff(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return (a - b).cwiseAbs().maxCoeff() / std::max(b.cwiseAbs().maxCoeff(), 1e-300);
}

// Checks a fit against the two-pass SVD: eigenvalues within 1e-9 of the largest (normwise,
// which is what an eigensolver can promise for the small ones), leading eigenvalues within
// 1e-9 relative each, components of well-separated leading eigenvalues within 1e-9.
void ExpectMatchesSvd(const RowMajorF& x, const PcaModel& m) {
  const Reference ref = TwoPassSvd(x);
  ASSERT_EQ(m.mean.size(), ref.mean.size());
  EXPECT_LT(MaxRelDiff(m.mean, ref.mean), 1e-12);
  const double top = ref.eigenvalues(0);
  for (int i = 0; i < m.k; ++i) {
    SCOPED_TRACE("component " + std::to_string(i));
    EXPECT_LE(std::abs(m.explained_variance(i) - ref.eigenvalues(i)), 1e-9 * top);
    if (ref.eigenvalues(i) > 1e-3 * top) {
      EXPECT_LE(std::abs(m.explained_variance(i) - ref.eigenvalues(i)), 1e-9 * ref.eigenvalues(i));
      const double gap = std::min(ref.eigenvalues(i) - (i + 1 < ref.eigenvalues.size() ? ref.eigenvalues(i + 1) : 0.0),
                                  i > 0 ? ref.eigenvalues(i - 1) - ref.eigenvalues(i) : top);
      if (gap > 0.1 * ref.eigenvalues(i)) {
        EXPECT_LE((m.components.row(i) - ref.components.row(i)).cwiseAbs().maxCoeff(), 1e-9);
      }
    }
  }
  EXPECT_NEAR(m.total_variance, ref.eigenvalues.sum(), 1e-10 * ref.eigenvalues.sum());
}

struct Shape {
  int n;
  int dim;
};

class PcaSvdTest : public ::testing::TestWithParam<Shape> {};

TEST_P(PcaSvdTest, FitMatchesTwoPassSvd) {
  const Shape s = GetParam();
  const RowMajorF x = LowRankRows(s.n, s.dim, 0.5, 0.8, 17 + s.n * 31 + s.dim);
  const int bound = std::min(s.dim, s.n - 1);
  const PcaModel m = FitPca(StatsOf(x), {.k = bound});
  EXPECT_EQ(m.k, bound);
  EXPECT_EQ(m.n, s.n);
  ExpectMatchesSvd(x, m);
}

INSTANTIATE_TEST_SUITE_P(Shapes, PcaSvdTest,
                         ::testing::Values(Shape{200, 20}, Shape{2000, 64}, Shape{50, 80}, Shape{3, 5},
                                           Shape{1500, 1}, Shape{1100, 130}),
                         [](const auto& info) {
                           return "n" + std::to_string(info.param.n) + "_dim" + std::to_string(info.param.dim);
                         });

TEST(PcaTest, MobileNetScaledFeaturesMatchTwoPassSvd) {
  // 60,000 rows in 1,024-row shards merged like the reduce step, values like pooled ReLU6
  // outputs (0..6, mean about 0.5).
  const RowMajorF x = MobileNetLikeRows(60000, 48, 5);
  EXPECT_GT(x.minCoeff(), -1e-9);
  EXPECT_LE(x.maxCoeff(), 6.0f);
  EXPECT_NEAR(x.mean(), 0.5, 0.2);
  PcaStats stats(48);
  for (int start = 0; start < 60000; start += 1024) {  // shards as the pipeline cuts them
    PcaStats shard(48);
    shard.AddBatch(x.row(start).data(), std::min(1024, 60000 - start));
    stats.Merge(shard);
  }
  ExpectMatchesSvd(x, FitPca(stats, {.k = 47}));
}

TEST(PcaTest, LargeOffsetDoesNotCancel) {
  // Mean 5 with variances from 0.6 down to 3e-8. Accumulated about the origin, Σxxᵀ - nμμᵀ
  // cancels about 25 / λ: measured relative errors 2e-9 .. 3e-6 on the five smallest
  // eigenvalues. About the first row they stay below 1e-10.
  RowMajorF x = LowRankRows(20000, 8, 5.0, 0.3, 99);
  const Reference ref = TwoPassSvd(x);
  const PcaModel m = FitPca(StatsOf(x), {.k = 8});
  for (int i = 0; i < 8; ++i) {
    EXPECT_LE(std::abs(m.explained_variance(i) - ref.eigenvalues(i)), 1e-9 * ref.eigenvalues(i)) << i;
  }
}

TEST(PcaTest, AddBatchEqualsRowByRow) {
  const RowMajorF x = LowRankRows(2500, 12, 0.5, 0.7, 3);  // more than one internal chunk
  PcaStats rows(12);
  for (int i = 0; i < x.rows(); ++i) rows.Add(x.row(i).data());
  const PcaStats batch = StatsOf(x);
  EXPECT_EQ(rows.count(), batch.count());
  EXPECT_EQ(rows.shift(), batch.shift());
  EXPECT_LT(MaxRelDiff(rows.Scatter(), batch.Scatter()), 1e-12);
  EXPECT_LT(MaxRelDiff(rows.Sum(), batch.Sum()), 1e-12);
  EXPECT_LT(MaxRelDiff(rows.Symmetric(), (x.cast<double>().transpose() * x.cast<double>()).eval()), 1e-12);
}

TEST(PcaTest, MergeOfShardsEqualsOnePass) {
  const RowMajorF x = LowRankRows(900, 16, 0.5, 0.8, 4);
  PcaStats merged;
  for (int start : {0, 100, 550}) {
    const int end = start == 0 ? 100 : (start == 100 ? 550 : 900);
    PcaStats shard(16);
    shard.AddBatch(x.row(start).data(), end - start);
    merged.Merge(shard);
  }
  const PcaStats one = StatsOf(x);
  EXPECT_EQ(merged.count(), 900);
  EXPECT_LT(MaxRelDiff(merged.Scatter(), one.Scatter()), 1e-12);
  EXPECT_LT(MaxRelDiff(merged.Mean(), one.Mean()), 1e-12);
  const PcaModel a = FitPca(merged, {.k = 5});
  const PcaModel b = FitPca(one, {.k = 5});
  EXPECT_LT(MaxRelDiff(a.explained_variance, b.explained_variance), 1e-12);
  EXPECT_LT((a.components - b.components).cwiseAbs().maxCoeff(), 1e-10);
}

TEST(PcaTest, MergeIntoEmptyAndOfEmpty) {
  const RowMajorF x = LowRankRows(30, 4, 0.5, 0.8, 5);
  const PcaStats s = StatsOf(x);
  PcaStats empty;
  empty.Merge(s);
  EXPECT_EQ(empty.Serialize(), s.Serialize());  // exact: adopts the other side as is
  PcaStats t = s;
  t.Merge(PcaStats());
  t.Merge(PcaStats(4));
  EXPECT_EQ(t.Serialize(), s.Serialize());
  EXPECT_THROW(t.Merge(StatsOf(LowRankRows(5, 3, 0, 0.5, 1))), InvalidArgumentError);
}

TEST(PcaTest, SubtractRowEqualsStatsWithoutIt) {
  const RowMajorF x = LowRankRows(300, 10, 0.5, 0.8, 6);
  for (int drop : {0, 7, 299}) {  // 0 is the row the shift came from
    SCOPED_TRACE(drop);
    PcaStats s = StatsOf(x);
    s.Subtract(x.row(drop).data());
    RowMajorF rest(299, 10);
    for (int i = 0, j = 0; i < 300; ++i) {
      if (i != drop) rest.row(j++) = x.row(i);
    }
    const PcaStats expected = StatsOf(rest);
    EXPECT_EQ(s.count(), 299);
    EXPECT_LT(MaxRelDiff(s.Scatter(), expected.Scatter()), 1e-12);
    EXPECT_LT(MaxRelDiff(s.Mean(), expected.Mean()), 1e-12);
  }
}

TEST(PcaTest, UnmergeShardEqualsRest) {
  const RowMajorF x = LowRankRows(400, 10, 0.5, 0.8, 7);
  PcaStats subject(10);  // one contributor's rows, 150..199
  subject.AddBatch(x.row(150).data(), 50);
  PcaStats s = StatsOf(x);
  s.Unmerge(subject);
  PcaStats rest(10);
  rest.AddBatch(x.row(0).data(), 150);
  rest.AddBatch(x.row(200).data(), 200);
  EXPECT_EQ(s.count(), 350);
  EXPECT_LT(MaxRelDiff(s.Scatter(), rest.Scatter()), 1e-12);
  EXPECT_LT(MaxRelDiff(s.Mean(), rest.Mean()), 1e-12);
  EXPECT_THROW(subject.Unmerge(s), InvalidArgumentError);  // more rows than it holds
}

TEST(PcaTest, SubtractingEverythingLeavesExactlyEmpty) {
  const RowMajorF x = LowRankRows(20, 3, 0.5, 0.8, 8);
  PcaStats s = StatsOf(x);
  for (int i = 19; i >= 0; --i) s.Subtract(x.row(i).data());
  EXPECT_EQ(s.count(), 0);
  EXPECT_EQ(s.Serialize(), PcaStats(3).Serialize());
  EXPECT_THROW(s.Subtract(x.row(0).data()), InvalidArgumentError);
  s.AddBatch(x.data(), 20);
  EXPECT_LT(MaxRelDiff(s.Scatter(), StatsOf(x).Scatter()), 1e-12);
}

TEST(PcaTest, RejectsNonFiniteRowsWithoutChangingStats) {
  const RowMajorF x = LowRankRows(10, 3, 0.5, 0.8, 9);
  PcaStats s = StatsOf(x);
  const std::string before = s.Serialize();
  RowMajorF bad = x;
  bad(4, 1) = std::nanf("");
  EXPECT_THROW(s.AddBatch(bad.data(), 10), InvalidArgumentError);
  bad(4, 1) = INFINITY;
  EXPECT_THROW(s.Add(bad.row(4).data()), InvalidArgumentError);
  EXPECT_EQ(s.Serialize(), before);
  EXPECT_THROW(PcaStats().Add(x.data()), InvalidArgumentError);
  EXPECT_THROW(PcaStats(0), InvalidArgumentError);
}

TEST(PcaTest, StatsSerializationRoundTrip) {
  const RowMajorF x = LowRankRows(64, 9, 0.5, 0.8, 10);
  const PcaStats s = StatsOf(x);
  const std::string bytes = s.Serialize();
  EXPECT_EQ(bytes.substr(0, 8), "FPPCASTA");
  EXPECT_EQ(bytes.size(), 8 + 4 + 4 + 8 + 8 * (9 + 9 + 45) + 32u);
  const PcaStats back = PcaStats::Deserialize(bytes);
  EXPECT_EQ(back.count(), 64);
  EXPECT_EQ(back.dim(), 9);
  EXPECT_EQ(back.Scatter(), s.Scatter());
  EXPECT_EQ(back.Serialize(), bytes);
  EXPECT_EQ(PcaStats::Deserialize(PcaStats().Serialize()).dim(), 0);
}

// Every truncation and every single-bit flip must be rejected with CorruptionError.
template <typename T>
void ExpectEveryDamageRejected(const std::string& bytes) {
  for (std::size_t len = 0; len < bytes.size(); ++len) {
    EXPECT_THROW(T::Deserialize(std::string_view(bytes).substr(0, len)), CorruptionError) << "length " << len;
  }
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (unsigned char bit : {0x01, 0x80}) {
      std::string damaged = bytes;
      damaged[i] = static_cast<char>(damaged[i] ^ bit);
      EXPECT_THROW(T::Deserialize(damaged), CorruptionError) << "byte " << i;
    }
  }
  EXPECT_THROW(T::Deserialize(bytes + "x"), CorruptionError);
}

TEST(PcaTest, DamagedStatsAreCorruption) {
  ExpectEveryDamageRejected<PcaStats>(StatsOf(LowRankRows(10, 3, 0.5, 0.8, 11)).Serialize());
}

TEST(PcaTest, DamagedModelIsCorruption) {
  ExpectEveryDamageRejected<PcaModel>(FitPca(StatsOf(LowRankRows(10, 3, 0.5, 0.8, 12)), {.k = 2}).Serialize());
}

TEST(PcaTest, CorruptionMessageNamesTheSource) {
  try {
    PcaStats::Deserialize("FPPCASTAxxxx", "s3://b/run/_stats/shard-00003.bin");
    FAIL() << "no exception";
  } catch (const CorruptionError& e) {
    EXPECT_EQ(std::string(e.what()), "s3://b/run/_stats/shard-00003.bin: PCA statistics: truncated (12 bytes)");
  }
}

// Records with a valid checksum but fields a writer would never produce: the checksum is no
// defence against a crafted file, the field checks are.
TEST(PcaTest, CraftedStatsWithValidChecksumAreCorruption) {
  const auto record = [](std::uint32_t version, std::uint32_t dim, std::int64_t n, std::size_t doubles, double fill) {
    RecordWriter w("FPPCASTA");
    w.U32(version);
    w.U32(dim);
    w.I64(n);
    for (std::size_t i = 0; i < doubles; ++i) w.F64(fill);
    return w.Finish();
  };
  EXPECT_NO_THROW(PcaStats::Deserialize(record(1, 2, 5, 2 + 2 + 3, 1.0)));
  EXPECT_THROW(PcaStats::Deserialize(record(2, 2, 5, 7, 1.0)), CorruptionError);           // version
  EXPECT_THROW(PcaStats::Deserialize(record(1, 2, 5, 6, 1.0)), CorruptionError);           // short
  EXPECT_THROW(PcaStats::Deserialize(record(1, 0xffffffffu, 5, 7, 1.0)), CorruptionError);  // huge dim
  EXPECT_THROW(PcaStats::Deserialize(record(1, 65536, 5, 7, 1.0)), CorruptionError);       // size mismatch
  EXPECT_THROW(PcaStats::Deserialize(record(1, 2, -1, 7, 1.0)), CorruptionError);          // negative n
  EXPECT_THROW(PcaStats::Deserialize(record(1, 2, 0, 7, 1.0)), CorruptionError);           // sums, no rows
  EXPECT_THROW(PcaStats::Deserialize(record(1, 2, 5, 7, std::nan(""))), CorruptionError);  // NaN
  EXPECT_THROW(PcaStats::Deserialize(record(1, 0, 5, 0, 1.0)), CorruptionError);           // rows, no dim
}

TEST(PcaTest, ModelSerializationRoundTripAndTransform) {
  const RowMajorF x = LowRankRows(3000, 20, 0.5, 0.8, 13);
  const PcaModel m = FitPca(StatsOf(x), {.k = 6});
  const std::string bytes = m.Serialize();
  EXPECT_EQ(bytes.substr(0, 8), "FPPCAMOD");
  const PcaModel back = PcaModel::Deserialize(bytes);
  EXPECT_EQ(back.k, 6);
  EXPECT_EQ(back.dim, 20);
  EXPECT_EQ(back.n, 3000);
  EXPECT_EQ(back.components, m.components);
  EXPECT_EQ(back.mean, m.mean);
  EXPECT_EQ(back.explained_variance_ratio, m.explained_variance_ratio);
  EXPECT_EQ(back.Serialize(), bytes);

  // Transform = components · (x - mean); the batch (several GEMM chunks) agrees per row.
  std::vector<double> batch(3000 * 6);
  back.TransformBatch(x.data(), 3000, batch.data());
  for (int i : {0, 1023, 1024, 2999}) {
    std::vector<double> one(6);
    back.Transform(x.row(i).data(), one.data());
    const Eigen::VectorXd expected = m.components * (x.row(i).transpose().cast<double>() - m.mean);
    for (int c = 0; c < 6; ++c) {
      EXPECT_NEAR(one[c], expected(c), 1e-12);
      EXPECT_NEAR(batch[i * 6 + c], expected(c), 1e-12);
    }
  }
  // Projected training data has the explained variances as its column variances.
  const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, 6, Eigen::RowMajor>> z(batch.data(), 3000, 6);
  const Eigen::RowVectorXd var = (z.rowwise() - z.colwise().mean()).colwise().squaredNorm() / 2999.0;
  EXPECT_LT(MaxRelDiff(var.transpose(), m.explained_variance), 1e-9);
}

TEST(PcaTest, InconsistentModelIsNotSerialized) {
  PcaModel m = FitPca(StatsOf(LowRankRows(10, 3, 0.5, 0.8, 17)), {.k = 2});
  m.k = 3;
  EXPECT_THROW(m.Serialize(), InvalidArgumentError);
  EXPECT_THROW(PcaModel().Serialize(), InvalidArgumentError);
}

TEST(PcaTest, KByVariance) {
  const RowMajorF x = LowRankRows(500, 30, 0.5, 0.7, 14);
  const PcaStats s = StatsOf(x);
  for (double v : {0.3, 0.5, 0.9, 0.95, 0.99}) {
    SCOPED_TRACE(v);
    const PcaModel m = FitPca(s, {.variance = v});
    const double reached = m.explained_variance_ratio.sum();
    EXPECT_GE(reached, v);
    EXPECT_LT(reached - m.explained_variance_ratio(m.k - 1), v);  // one fewer does not reach it
  }
  EXPECT_EQ(FitPca(s, {.variance = 1.0}).k, 30);
  const nlohmann::json j = nlohmann::json::parse(FitPca(s, {.variance = 0.9}).ToJson());
  EXPECT_EQ(j.at("dim"), 30);
  EXPECT_EQ(j.at("n"), 500);
  EXPECT_EQ(j.at("explained_variance_ratio").size(), j.at("k").get<std::size_t>());
  EXPECT_GE(j.at("total_explained_variance_ratio").get<double>(), 0.9);
  EXPECT_DOUBLE_EQ(j.at("cumulative_explained_variance_ratio").back().get<double>(),
                   j.at("total_explained_variance_ratio").get<double>());
}

TEST(PcaTest, InvalidFitOptions) {
  const PcaStats s = StatsOf(LowRankRows(10, 20, 0.5, 0.8, 15));
  EXPECT_THROW(FitPca(s, {}), InvalidArgumentError);                          // neither
  EXPECT_THROW(FitPca(s, {.k = 2, .variance = 0.9}), InvalidArgumentError);   // both
  EXPECT_THROW(FitPca(s, {.k = -1}), InvalidArgumentError);
  EXPECT_THROW(FitPca(s, {.variance = 1.5}), InvalidArgumentError);
  EXPECT_THROW(FitPca(s, {.k = 10}), InvalidArgumentError);                   // > n-1 = 9
  EXPECT_EQ(FitPca(s, {.k = 9}).k, 9);
  EXPECT_EQ(FitPca(s, {.variance = 1.0}).k, 9);
  const RowMajorF ones = RowMajorF::Ones(1, 20);
  PcaStats one(20);
  one.Add(ones.data());
  EXPECT_THROW(FitPca(one, {.k = 1}), InvalidArgumentError);  // n < 2
  one.Add(ones.data());
  EXPECT_THROW(FitPca(one, {.k = 1}), InvalidArgumentError);  // zero variance
}

TEST(PcaTest, FitIsDeterministicWithSignConvention) {
  const RowMajorF x = LowRankRows(700, 25, 0.5, 0.85, 16);
  std::vector<PcaStats> shards;
  for (int start = 0; start < 700; start += 100) {
    PcaStats shard(25);
    shard.AddBatch(x.row(start).data(), 100);
    shards.push_back(shard);
  }
  const PcaStats a = MergeInOrder(shards);
  const PcaStats b = MergeInOrder(shards);
  EXPECT_EQ(a.Serialize(), b.Serialize());
  const PcaModel m1 = FitPca(a, {.k = 10});
  const PcaModel m2 = FitPca(PcaStats::Deserialize(b.Serialize()), {.k = 10});
  EXPECT_EQ(m1.Serialize(), m2.Serialize());
  for (int i = 0; i < m1.k; ++i) {
    Eigen::Index at = 0;
    m1.components.row(i).cwiseAbs().maxCoeff(&at);
    EXPECT_GT(m1.components(i, at), 0.0);
    EXPECT_NEAR(m1.components.row(i).norm(), 1.0, 1e-12);
    if (i > 0) {
      EXPECT_GE(m1.explained_variance(i - 1), m1.explained_variance(i));
    }
  }
}

}  // namespace
}  // namespace fruitpipe::pca
