// Retention: contributed photos are kept for a limited time. The ledger records when each was
// ingested (the store's own timestamps are not reliable: S3 has no mtime that survives copies),
// and `fruitpipe purge --older-than DAYS` erases the expired ones with the erasure machinery.
#pragma once

#include <cstdint>
#include <vector>

#include "fruitpipe/privacy/consent_ledger.h"
#include "fruitpipe/privacy/erasure.h"
#include "fruitpipe/storage/storage.h"

namespace fruitpipe::privacy {

struct PurgeOutcome {
  std::vector<Contribution> expired;  // the photos purged (ledger rows)
  ErasureReport report;
};

// Erases the photos of `store` ingested before `cutoff` (epoch seconds): deletes them from the
// store, removes them from every dataset in `datasets`, then marks them erased in the ledger
// (last, so an interrupted purge is found and finished by the next one). Idempotent.
PurgeOutcome PurgeExpired(ConsentLedger& ledger, storage::Storage& store,
                          const std::vector<storage::Storage*>& datasets, std::int64_t cutoff,
                          std::int64_t now, const ErasureOptions& options = {});

}  // namespace fruitpipe::privacy
