// Right to erasure: removing contributed photos and every trace of them from a dataset —
// Results rows, Results_PCA rows, shard PCA statistics, the PCA model fitted on them, the
// plan (so --resume/--incremental cannot bring them back) and rejected.jsonl — using only
// Storage calls, so local folders and S3 behave the same.
//
// Crash safety. The shard's commit record (_shards/shard-SSSSS.json) is the commit point:
//   1. _erasure.json is written (what is being erased; whether _SUCCESS was there), _SUCCESS
//      deleted: readers and the next erasure know the dataset is mid-change. The SHA-256 of
//      the erased rows' photos join _erased_photos.json, so no later run (--resume,
//      --incremental, a copy of the photo under the source) featurizes them again.
//   2. _plan.json is rewritten without the photos.
//   3. Per affected shard: the new Results part and the new statistics are written under new
//      names, then the commit record is switched to them, then the old part and statistics are
//      deleted. A crash before the switch leaves the old, complete shard; after it, the new
//      one. Other subjects' rows are never absent from the committed dataset.
//   4. Files no commit record names (old parts and statistics of a crashed erasure, orphans of
//      a crashed run) are deleted from Results/ and _stats/.
//   5. PCA: a model fitted on this dataset is refitted from the summed new statistics (same k)
//      and every Results_PCA part rewritten for it; a model applied from elsewhere is kept and
//      the selected rows are filtered out of its parts.
//   6. rejected.jsonl and run.json are updated, report.html drawn again from what is left;
//      _SUCCESS is restored; _erasure.json deleted.
// Re-running after a crash at any step completes the erasure (and any other erasure pending
// in _erasure.json) and reaches the same bytes as an uninterrupted run. An erasure must not
// run while `fruitpipe run` writes the same dataset (step 4 would delete its uncommitted parts).
//
// Shard statistics are recomputed from the kept rows rather than obtained by subtracting the
// erased rows: PcaStats keeps its first row as the shift about which it accumulates, so
// subtraction could leave an erased person's feature vector in the file (docs/gdpr.md).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "fruitpipe/parquet/parquet.h"
#include "fruitpipe/storage/storage.h"

namespace fruitpipe::privacy {

// What to erase: every photo of some subjects (forget), and single photos (retention), named
// "<Label>/<file name>". Only contributed photos ("contrib-<subject>-..." names, or rows with
// a subject_id) can match; catalogue images never do.
struct ErasureSelector {
  std::set<std::string> subjects;
  std::set<std::string> photos;

  bool empty() const { return subjects.empty() && photos.empty(); }
  // `key_or_uri`: a store key, a plan key, or a row's full path. `subject_id`: the row's.
  bool Matches(std::string_view key_or_uri, const std::optional<std::string>& subject_id = std::nullopt) const;
  // The subject a matching photo belongs to (from its row or its file name).
  static std::optional<std::string> SubjectOf(std::string_view key_or_uri,
                                              const std::optional<std::string>& subject_id = std::nullopt);
};

struct ErasureReport {
  std::int64_t photos_deleted = 0;            // raw photos removed from stores
  std::int64_t rows_removed = 0;              // Results rows
  std::int64_t pca_rows_removed = 0;          // Results_PCA rows (filtered, or dropped by refit)
  std::int64_t shards_rewritten = 0;
  std::int64_t plan_entries_removed = 0;
  std::int64_t rejected_entries_removed = 0;  // rejected.jsonl lines and commit-record entries
  std::int64_t orphans_deleted = 0;
  std::int64_t pca_parts_written = 0;
  std::int64_t photos_suppressed = 0;         // SHA-256 added to _erased_photos.json
  std::int64_t datasets_reprojected = 0;      // applied-model datasets projected again
  // "refit", "filtered" (a model applied from elsewhere, kept), "dropped" (fewer than 2 rows
  // left: no model can be fitted), "none" (no PCA model), "unchanged" (nothing erased).
  std::string pca = "unchanged";
  std::string report = "unchanged";           // report.html: "regenerated", "deleted", "unchanged"
  bool completed_pending = false;             // an interrupted erasure was found and finished
  std::map<std::string, std::int64_t> photos_by_subject;
  std::map<std::string, std::int64_t> rows_by_subject;

  nlohmann::json ToJson() const;  // counts only (no subject ids)
};

// Deletes the selected photos from a raw-photo store (any label folder). Idempotent.
void DeletePhotos(storage::Storage& store, const ErasureSelector& selector, ErasureReport* report);

struct ErasureOptions {
  parquet::Compression compression = parquet::Compression::kSnappy;  // of rewritten parts
};

// Removes the selected photos from the dataset at `out` as described above. Does nothing
// (no write at all) when the dataset holds nothing selected and no erasure is pending.
// Throws InvalidArgumentError when `out` is not a fruitpipe dataset.
void EraseFromDataset(storage::Storage& out, const ErasureSelector& selector, ErasureReport* report,
                      const ErasureOptions& options = {});

// Erases from every dataset, then projects again each one whose PCA model was applied from
// another of them (`run --pca-model TRAIN`): forget --dataset TRAIN --dataset TEST leaves TEST
// projected with TRAIN's refitted model, as a fresh run of TEST would be.
void EraseFromDatasets(const std::vector<storage::Storage*>& datasets, const ErasureSelector& selector,
                       ErasureReport* report, const ErasureOptions& options = {});

}  // namespace fruitpipe::privacy
