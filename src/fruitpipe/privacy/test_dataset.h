// Test-only: datasets with the exact layout `fruitpipe run` writes (plan, commit records,
// Results and Results_PCA parts, shard statistics, fitted or applied PCA model, rejected.jsonl,
// run.json, _SUCCESS), built directly from synthetic feature vectors through the pipeline's own
// writers, so erasure can be tested without the model. Plus readers for checking the result.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fruitpipe/pca/pca.h"
#include "fruitpipe/dataset/plan.h"
#include "fruitpipe/dataset/results.h"
#include "fruitpipe/storage/storage.h"

namespace fruitpipe::privacy::testdata {

struct Photo {
  std::string key;    // relative to the source, "<Label>/<name>"
  std::string label;
  std::optional<std::string> subject;
  std::string rejected_reason;  // non-empty: the shard worker rejected it (no row)
};

struct DatasetSpec {
  std::string source = "/data/store";
  int shard_size = 4;
  int dim = 8;
  int pca_k = 3;
  bool fitted = true;  // false: the model was "applied" from another dataset (run.json says so)
  std::string applied_model;  // non-empty: the serialized model applied (fitted = false)
  std::vector<Photo> photos;
  std::vector<dataset::Rejection> list_rejects;  // e.g. files without a label folder
};

// "<label>/contrib-<subject>-<n as 16 hex digits>.jpg"
std::string ContribKey(const std::string& label, const std::string& subject, int n);
// A deterministic feature vector for a key (label-dependent mean, so PCA has structure).
std::vector<float> FeatureOf(const std::string& key, const std::string& label, int dim);
// A mix of catalogue photos and contributions of `subjects`, `per_label` photos per label.
std::vector<Photo> MixedPhotos(const std::vector<std::string>& subjects, int labels, int per_label);

void BuildDataset(storage::Storage& out, const DatasetSpec& spec);

struct Row {
  dataset::ImageRow row;
  std::vector<double> values;  // features (Results) or pcaFeatures (Results_PCA)
};
bool operator==(const Row& a, const Row& b);

// Rows of the committed Results parts, by path.
std::map<std::string, Row> CommittedRows(storage::Storage& out);
// Rows of the Results_PCA parts of the current model, by path.
std::map<std::string, Row> PcaRows(storage::Storage& out);
// The committed shard statistics, by shard index.
std::map<int, pca::PcaStats> ShardStats(storage::Storage& out);

// Every object of a store (key -> bytes).
std::map<std::string, std::string> Snapshot(storage::Storage& store);

}  // namespace fruitpipe::privacy::testdata
