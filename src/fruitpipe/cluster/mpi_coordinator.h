// Cluster runs with Open MPI: `mpirun -np N fruitpipe run SRC OUT`. The same binary runs
// without mpirun; CreateCoordinator detects which it is. Shards are handed out dynamically
// through an atomic counter on rank 0 (MPI one-sided Fetch_and_op), so a rank that finishes
// early takes more; statistics are gathered to rank 0, which fits and broadcasts the model.
#pragma once

#include <memory>

#include "fruitpipe/cluster/coordinator.h"

namespace fruitpipe::cluster {

// True when this process was started by an MPI launcher (mpirun, srun with PMIx).
bool LaunchedByMpi();

// An MPI coordinator when launched by MPI, else a LocalCoordinator.
std::unique_ptr<Coordinator> CreateCoordinator();

}  // namespace fruitpipe::cluster
