#include "fruitpipe/privacy/retention.h"

namespace fruitpipe::privacy {

PurgeOutcome PurgeExpired(ConsentLedger& ledger, storage::Storage& store,
                          const std::vector<storage::Storage*>& datasets, std::int64_t cutoff,
                          std::int64_t now, const ErasureOptions& options) {
  PurgeOutcome outcome;
  outcome.expired = ledger.ContributionsBefore(store.Uri(""), cutoff);
  ErasureSelector selector;
  for (const Contribution& c : outcome.expired) {
    selector.photos.insert(c.key);
    store.Delete(c.key);  // a missing key is fine: removed by an earlier, interrupted purge
    ++outcome.report.photos_deleted;
    ++outcome.report.photos_by_subject[c.subject_id];
  }
  // Even with nothing expired, a dataset may hold an interrupted erasure to finish.
  for (storage::Storage* dataset : datasets) EraseFromDataset(*dataset, selector, &outcome.report, options);
  for (const Contribution& c : outcome.expired) ledger.MarkErased(c.store, c.key, now);
  return outcome;
}

}  // namespace fruitpipe::privacy
