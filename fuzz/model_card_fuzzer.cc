// libFuzzer target: the model card parser on arbitrary text. Any malformed card must be an
// InvalidArgumentError naming the card; an accepted card must satisfy the documented ranges
// (docs/model-card.md).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fruitpipe/common/error.h"
#include "fruitpipe/model/model_card.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  fruitpipe::model::ModelCard card;
  try {
    card = fruitpipe::model::ParseModelCard(text, "/models/fuzz.json");
  } catch (const fruitpipe::InvalidArgumentError& e) {
    if (std::string(e.what()).rfind("model card /models/fuzz.json: ", 0) != 0) __builtin_trap();
    return 0;
  }
  if (card.dim < 1 || card.input.width < 1 || card.input.width > 8192 || card.input.height < 1 ||
      card.input.height > 8192 || card.sha256.size() != 64 || card.name.empty() || card.file.empty()) {
    __builtin_trap();
  }
  return 0;
}
