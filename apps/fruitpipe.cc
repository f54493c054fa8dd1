// fruitpipe: fruit photos -> MobileNetV2 features -> PCA -> Parquet, on one machine or a
// cluster; plus identification, privacy and reporting commands. See README.md.
#include <cstdio>
#include <exception>

#include "commands.h"
#include "options.h"
#include "fruitpipe/common/error.h"

namespace fruitpipe::cli {

int& ExitCode() {
  static int code = kExitOk;
  return code;
}

}  // namespace fruitpipe::cli

int main(int argc, char** argv) {
  using namespace fruitpipe::cli;
  CLI::App app{"fruitpipe — fruit photos to features, PCA, Parquet and a fruit identifier", "fruitpipe"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "fruitpipe 0.1.0");
  RegisterStorageSchemes();
  AddPipelineCommands(app);
  AddModelCommands(app);
  AddIdentifyCommands(app);
  AddServeCommands(app);
  AddPrivacyCommands(app);
  AddReportCommands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  } catch (const fruitpipe::InvalidArgumentError& e) {
    std::fprintf(stderr, "fruitpipe: error: %s\n", e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fruitpipe: error: %s\n", e.what());
    return kExitError;
  }
  return ExitCode();
}
