#include "fruitpipe/common/error.h"
#include "fruitpipe/model/featurizer.h"

namespace fruitpipe::model {

// Placeholder until the oneDNN engine lands (issue 8).
std::unique_ptr<Featurizer> CreateOneDnnFeaturizer(const ModelCard&, const FeaturizerOptions&) {
  throw InvalidArgumentError("backend 'onednn' is not available in this build; use --backend opencv");
}

}  // namespace fruitpipe::model
