// report: regenerates OUT/report.html from run.json and the outputs (docs/report.md).
#include <cstdio>
#include <string>

#include "commands.h"
#include "options.h"
#include "fruitpipe/report/report.h"
#include "fruitpipe/storage/storage.h"

namespace fruitpipe::cli {

void AddReportCommands(CLI::App& app) {
  static std::string output;
  static storage::StorageOptions storage_options;
  auto* report = app.add_subcommand(
      "report", "write OUT/report.html: the run's self-contained HTML report (timeline, stages, PCA, classes, "
                "rejected inputs, and the evaluation when OUT/evaluation.json exists)");
  report->add_option("OUT", output, "dataset root holding run.json (folder or s3://bucket/prefix)")->required();
  AddStorageOptions(report, &storage_options);
  report->callback([] {
    auto out = storage::OpenStorage(output, storage_options);
    std::printf("%s\n", report::WriteReport(*out).c_str());
  });
}

}  // namespace fruitpipe::cli
