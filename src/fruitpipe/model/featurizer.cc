#include "fruitpipe/model/featurizer.h"

#include "fruitpipe/common/error.h"

namespace fruitpipe::model {

std::unique_ptr<Featurizer> CreateFeaturizer(const ModelCard& card, const FeaturizerOptions& options) {
  VerifyModelFile(card);
  if (options.backend == "opencv") return CreateOpenCvFeaturizer(card, options);
  if (options.backend == "onednn") return CreateOneDnnFeaturizer(card, options);
  if (options.backend != "auto") {
    throw InvalidArgumentError("unknown backend '" + options.backend + "' (expected auto, opencv or onednn)");
  }
  // "auto" prefers the fast engine and falls back to the reference one when oneDNN declines the
  // model (an operator it does not implement, a build without it). int8 exists only in oneDNN,
  // so there the refusal is the answer.
  try {
    return CreateOneDnnFeaturizer(card, options);
  } catch (const InvalidArgumentError&) {
    if (options.precision != "fp32") throw;
    return CreateOpenCvFeaturizer(card, options);
  }
}

}  // namespace fruitpipe::model
