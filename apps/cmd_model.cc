#include "commands.h"

namespace fruitpipe::cli {

// Placeholder until this concern's commands land.
void AddModelCommands(CLI::App&) {}

}  // namespace fruitpipe::cli
