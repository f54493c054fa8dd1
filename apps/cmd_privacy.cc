#include "commands.h"

namespace fruitpipe::cli {

// Placeholder until this concern's commands land.
void AddPrivacyCommands(CLI::App&) {}

}  // namespace fruitpipe::cli
