// The CLI is one binary with subcommands; each concern registers its own commands here so
// that apps/fruitpipe.cc stays a thin dispatcher.
#pragma once

#include <CLI/CLI.hpp>

namespace fruitpipe::cli {

// A command's callback stores its exit status here (the codes below; README.md lists them).
int& ExitCode();

// Exit codes scripts can rely on.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;      // the command failed; the message says why
inline constexpr int kExitUsage = 2;      // bad arguments
inline constexpr int kExitPartial = 3;    // finished, but some work items failed (see output)

void AddPipelineCommands(CLI::App& app);  // run, featurize, pca, reduce, inspect   (cmd_pipeline.cc)
void AddModelCommands(CLI::App& app);     // model info|verify|fetch                (cmd_model.cc)
void AddIdentifyCommands(CLI::App& app);  // train, evaluate, predict               (cmd_identify.cc)
void AddServeCommands(CLI::App& app);     // serve                                  (cmd_serve.cc)
void AddPrivacyCommands(CLI::App& app);   // ingest, forget, purge, audit           (cmd_privacy.cc)
void AddReportCommands(CLI::App& app);    // report                                 (cmd_report.cc)

}  // namespace fruitpipe::cli
