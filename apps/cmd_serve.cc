#include "commands.h"

namespace fruitpipe::cli {

// Placeholder until this concern's commands land.
void AddServeCommands(CLI::App&) {}

}  // namespace fruitpipe::cli
