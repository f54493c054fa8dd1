// Crash testing (LevelDB-style fault injection): when FRUITPIPE_CRASH_BEFORE_PUT=N is set,
// every store opened by OpenStorage is wrapped so that the process kills itself with SIGKILL
// right before the N-th Put of the process (1-based, counted across stores). Tests use it to
// stop a run inside a commit, inside the PCA stage or while writing run.json, then check that
// --resume produces exactly the output of an uninterrupted run. Unset, nothing is wrapped.
#pragma once

#include <memory>

#include "fruitpipe/storage/storage.h"

namespace fruitpipe::storage {

std::unique_ptr<Storage> MaybeInjectCrashes(std::unique_ptr<Storage> inner);

}  // namespace fruitpipe::storage
