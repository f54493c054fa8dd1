// The figure for issue 6: how long forgetting one subject takes on a dataset of the dev size
// (1,800 rows of 1,280 MobileNetV2-sized features in 2 shards, on local disk), PCA refit
// included. Synthetic features with the pipeline's own layout: the cost does not depend on
// where the vectors came from.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "fruitpipe/common/hash.h"
#include "fruitpipe/common/testing.h"
#include "fruitpipe/privacy/erasure.h"
#include "fruitpipe/privacy/test_dataset.h"

namespace fruitpipe::privacy {
namespace {

TEST(ForgetDevSizeTest, ForgetOneSubjectOf1800Rows) {
  testing::TempDir dir;
  auto out = storage::OpenStorage(dir.str());
  testdata::DatasetSpec spec;
  spec.dim = 1280;
  spec.shard_size = 900;
  spec.pca_k = 100;
  std::vector<std::string> subjects;
  for (int i = 0; i < 30; ++i) subjects.push_back(Sha256Hex("user" + std::to_string(i)));
  spec.photos = testdata::MixedPhotos(subjects, 120, 15);  // 1,800 photos, 1,200 contributed
  testdata::BuildDataset(*out, spec);

  const auto start = std::chrono::steady_clock::now();
  ErasureSelector selector;
  selector.subjects.insert(subjects[7]);
  ErasureReport report;
  EraseFromDataset(*out, selector, &report);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // The fit alone, on the same statistics: the part of the cost `fruitpipe pca` pays too.
  std::vector<pca::PcaStats> parts;
  for (auto& [i, st] : testdata::ShardStats(*out)) parts.push_back(st);
  const auto fit_start = std::chrono::steady_clock::now();
  pca::PcaFitOptions fit;
  fit.k = 100;
  pca::FitPca(pca::MergeInOrder(parts), fit);
  const double fit_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - fit_start).count();

  const auto theirs = std::count_if(spec.photos.begin(), spec.photos.end(),
                                    [&](const testdata::Photo& p) { return p.subject == subjects[7]; });
  EXPECT_EQ(report.rows_removed, theirs);
  EXPECT_EQ(report.shards_rewritten, 2);
  EXPECT_EQ(report.pca, "refit");
  EXPECT_EQ(testdata::CommittedRows(*out).size(), 1800u - theirs);
  std::printf("forget 1 subject (%ld of 1800 rows, dim 1280, 2 shards, PCA k=100 refit): %.2f s, "
              "of which the PCA fit alone takes %.2f s\n",
              static_cast<long>(theirs), seconds, fit_seconds);
  RecordProperty("forget_seconds", std::to_string(seconds));
  RecordProperty("pca_fit_seconds", std::to_string(fit_seconds));
}

}  // namespace
}  // namespace fruitpipe::privacy
