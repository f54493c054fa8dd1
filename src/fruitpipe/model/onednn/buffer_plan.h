// Memory for a built plan (engine_internal.h): activation buffers shared between slots whose
// lifetimes do not overlap, one scratchpad shared by all steps, and each step's arguments
// bound to them. Internal to the backend.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include "fruitpipe/model/onednn/engine_internal.h"

namespace fruitpipe::model::onednn {

// Needs every step added (slot lifetimes final); allocates into plan->buffers and sets the
// slots' memories (input and output without data: set per call) and the steps' exec_args.
void PlaceBuffers(const dnnl::engine& eng, Plan* plan);

}  // namespace fruitpipe::model::onednn
