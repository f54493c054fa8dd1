// run, featurize, pca, reduce, inspect: the batch pipeline's commands.
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "options.h"
#include "fruitpipe/cluster/mpi_coordinator.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/parquet/parquet.h"
#include "fruitpipe/cluster/coordinator.h"
#include "fruitpipe/dataset/dataset.h"
#include "fruitpipe/pipeline/progress.h"
#include "fruitpipe/pipeline/run.h"
#include "fruitpipe/privacy/consent_ledger.h"
#include "fruitpipe/report/report.h"
#include "fruitpipe/storage/storage.h"

namespace fruitpipe::cli {
namespace {

using nlohmann::json;

struct PipelineArgs {
  pipeline::RunOptions run;
  ModelOptions model;
  std::string compression = "snappy";
  std::string worker;  // "I/N"
  int worker_index = 0, worker_count = 0;  // worker_count 0: not an array worker
  std::string consent_ledger;
  double pca_variance = 0;
  int pca_k = 0;
  bool quiet = false;
  bool json_output = false;
};

void AddCommonRunOptions(CLI::App* cmd, PipelineArgs* a) {
  AddModelOptions(cmd, &a->model);
  AddStorageOptions(cmd, &a->run.storage);
  cmd->add_option("--threads", a->run.threads, "threads per process (default: cores / processes on this machine)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--batch", a->run.batch_size, "images per inference batch")->default_val(32)->check(CLI::Range(1, 1024));
  cmd->add_option("--shard-size", a->run.shard_size,
                  "images per shard: the unit of work, commit and resume (independent of workers)")
      ->default_val(1024)
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--compression", a->compression, "Parquet page compression")
      ->check(CLI::IsMember({"snappy", "zstd", "none"}))
      ->default_val("snappy");
  cmd->add_option("--max-pixels", a->run.limits.max_pixels, "reject images declaring more pixels than this")
      ->default_val(40'000'000);
  cmd->add_option("--max-bytes", a->run.limits.max_bytes, "reject image files larger than this")
      ->default_val(64u << 20);
  cmd->add_flag("--resume", a->run.resume, "finish an interrupted run in OUT: committed shards are kept");
  cmd->add_flag("--incremental", a->run.incremental,
                "add the images of SRC that OUT does not hold yet, then refit PCA over everything");
  cmd->add_option("--limit", a->run.limit, "only the first N images of the sorted listing (quick looks)");
  cmd->add_option("--worker", a->worker,
                  "array-job worker I/N (0-based): featurize shards with index % N == I, then exit; "
                  "`fruitpipe reduce OUT` finishes");
  cmd->add_option("--consent-ledger", a->consent_ledger,
                  "consent ledger (SQLite): contributed photos whose subject has no 'training' consent "
                  "are left out (docs/gdpr.md)");
  cmd->add_flag("--quiet,-q", a->quiet, "no progress line");
  cmd->add_flag("--json", a->json_output, "print run.json to stdout instead of the summary");
}

void AddPcaOptions(CLI::App* cmd, PipelineArgs* a) {
  auto* k = cmd->add_option("--pca-k", a->pca_k, "number of principal components")->check(CLI::Range(1, 100000));
  auto* v = cmd->add_option("--pca-variance", a->pca_variance,
                            "smallest k explaining this share of variance (default 0.95)")
                ->check(CLI::Range(0.0, 1.0));
  auto* m = cmd->add_option("--pca-model", a->run.pca_model,
                            "apply an existing PCA model (a _pca_model.bin file or a previous run's OUT) "
                            "instead of fitting — fit on Training, apply to Test");
  k->excludes(v)->excludes(m);
  v->excludes(m);
}

// report.html is part of every finished dataset; a failure to draw it is reported, and the
// data stays valid.
void WriteReportOrWarn(storage::Storage& out) {
  try {
    report::WriteReport(out);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fruitpipe: warning: report.html not written: %s\n", e.what());
  }
}

void Finalize(PipelineArgs* a) {
  // A newcomer's first mistake, said plainly (remote sources are checked when listed).
  if (!a->run.source.empty() && !storage::IsRemoteUri(a->run.source) && !std::filesystem::is_directory(a->run.source)) {
    throw InvalidArgumentError(a->run.source + ": " +
                               (std::filesystem::exists(a->run.source) ? "not a folder" : "no such folder") +
                               " (SRC is a folder of <Label>/ folders of photos)");
  }
  a->run.before_success = WriteReportOrWarn;
  if (!a->consent_ledger.empty()) a->run.admit_filter = privacy::MakeConsentFilter(a->consent_ledger, "training");
  a->run.compression = a->compression == "zstd"   ? parquet::Compression::kZstd
                       : a->compression == "none" ? parquet::Compression::kUncompressed
                                                  : parquet::Compression::kSnappy;
  a->run.featurizer = a->model.featurizer;
  a->run.progress = !a->quiet;
  if (a->pca_k > 0) {
    a->run.pca_fit.k = a->pca_k;
  } else {
    // Default: keep 95% of the variance — enough for a linear classifier on these features
    // while cutting the 1280 dimensions several-fold (docs/pca.md has the figures).
    a->run.pca_fit.variance = a->pca_variance > 0 ? a->pca_variance : 0.95;
  }
  if (!a->worker.empty()) {
    int i = -1, n = 0;
    char tail = 0;
    if (std::sscanf(a->worker.c_str(), "%d/%d%c", &i, &n, &tail) != 2 || n < 1 || i < 0 || i >= n) {
      throw InvalidArgumentError("--worker " + a->worker + ": expected I/N with 0 <= I < N");
    }
    a->worker_index = i;
    a->worker_count = n;
    a->run.pca_stage = false;
    // Workers share one dataset by design: each finds the plan the first one wrote.
    if (!a->run.incremental) a->run.resume = true;
  }
}

// An array worker's coordinator for --worker I/N, else an MPI one under mpirun, else local.
std::unique_ptr<cluster::Coordinator> MakeCoordinator(const PipelineArgs& a) {
  if (a.worker_count == 0) return cluster::CreateCoordinator();
  if (cluster::LaunchedByMpi()) throw InvalidArgumentError("--worker: array-job workers are not started by mpirun");
  return std::make_unique<cluster::ArrayWorkerCoordinator>(a.worker_index, a.worker_count);
}

// Runs a stage; on a cluster, an error on one rank ends the whole job with a clear message
// instead of leaving the other ranks waiting in a collective.
json RunOnCluster(cluster::Coordinator& coordinator, const std::function<json()>& stage) {
  try {
    return stage();
  } catch (const std::exception& e) {
    if (coordinator.size() > 1) {
      std::fprintf(stderr, "fruitpipe: error: %s: %s\n", coordinator.worker_name().c_str(), e.what());
      coordinator.Abort(kExitError);
    }
    throw;
  }
}

void PrintSummary(const json& run) {
  std::fprintf(stderr, "\n%s: %s -> %s\n", run.value("command", "run").c_str(), run.value("source", "").c_str(),
               run.value("output", "").c_str());
  std::fprintf(stderr, "  images        %lld rows (%lld featurized now), %lld rejected (see rejected.jsonl)\n",
               static_cast<long long>(run.value("images", 0)), static_cast<long long>(run.value("images_processed", 0)),
               static_cast<long long>(run.value("rejected", 0)));
  std::fprintf(stderr, "  time          %s, %.1f images/s\n", pipeline::FormatDuration(run.value("seconds", 0.0)).c_str(),
               run.value("images_per_second", 0.0));
  if (run.contains("model")) {
    const auto& m = run["model"];
    std::fprintf(stderr, "  model         %s (%s, %s, %d px)\n", m.value("name", "").c_str(), m.value("backend", "").c_str(),
                 m.value("precision", "").c_str(), m.value("input_size", 0));
  }
  if (run.contains("pca")) {
    const auto& p = run["pca"];
    std::fprintf(stderr, "  pca           k=%d, explained variance %.4f (%s)\n", p.value("k", 0),
                 p.value("total_explained_variance_ratio", 0.0), p.value("fitted", false) ? "fitted" : "applied");
  }
  if (run.contains("stages")) {
    std::string line;
    for (auto& [stage, secs] : run["stages"].items()) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%s %.2fs  ", stage.c_str(), secs.get<double>());
      line += buf;
    }
    std::fprintf(stderr, "  stages        %s\n", line.c_str());
  }
}

void Execute(PipelineArgs* a) {
  Finalize(a);
  a->run.model_card = model::ResolveModelCardPath(a->model.card);
  auto coordinator = MakeCoordinator(*a);
  const json run = RunOnCluster(*coordinator, [&] { return pipeline::RunPipeline(a->run, *coordinator); });
  if (!coordinator->is_root()) return;
  if (run.value("exit_code", 0) != 0) ExitCode() = kExitPartial;
  if (a->json_output) {
    std::cout << run.dump(2) << std::endl;
  } else {
    PrintSummary(run);
  }
}

// inspect: schema, row count and first rows of a Parquet file or of every part in a folder.
void Inspect(const std::string& target, int rows, const storage::StorageOptions& sopt) {
  std::vector<std::pair<std::string, std::string>> files;  // uri, bytes
  auto as_dir = storage::OpenStorage(target, sopt);
  std::vector<storage::ObjectInfo> parts;
  for (auto& obj : as_dir->List("")) {
    if (obj.key.size() > 8 && obj.key.compare(obj.key.size() - 8, 8, ".parquet") == 0 &&
        obj.key.find("/_") == std::string::npos && obj.key[0] != '_') {
      parts.push_back(obj);
    }
  }
  if (parts.empty()) {
    const auto slash = target.find_last_of('/');
    auto parent = storage::OpenStorage(slash == std::string::npos ? "." : target.substr(0, slash), sopt);
    const std::string name = slash == std::string::npos ? target : target.substr(slash + 1);
    auto bytes = parent->GetIfExists(name);
    if (!bytes) throw NotFoundError(target + ": no Parquet file or folder of part files");
    files.emplace_back(target, std::move(*bytes));
  } else {
    for (const auto& p : parts) files.emplace_back(as_dir->Uri(p.key), as_dir->Get(p.key));
  }
  std::int64_t total = 0;
  for (const auto& [uri, bytes] : files) {
    const parquet::FileSummary s = parquet::ReadSummary(bytes);
    total += s.num_rows;
    std::printf("%s\n  rows %lld, row groups %zu, %zu bytes, created by %s\n", uri.c_str(),
                static_cast<long long>(s.num_rows), s.num_row_groups, bytes.size(), s.created_by.c_str());
  }
  const parquet::FileSummary first = parquet::ReadSummary(files.front().second);
  std::printf("schema:\n");
  for (const auto& [name, type] : first.schema) std::printf("  %-14s %s\n", name.c_str(), type.c_str());
  std::printf("total rows: %lld in %zu file(s)\n", static_cast<long long>(total), files.size());
  if (rows <= 0) return;
  const parquet::Table t = parquet::ReadParquet(files.front().second);
  std::printf("first %d rows of %s:\n", rows, files.front().first.c_str());
  for (std::size_t r = 0; r < std::min<std::size_t>(static_cast<std::size_t>(rows), t.num_rows()); ++r) {
    json row = json::object();
    for (const auto& c : t.columns) {
      std::visit(
          [&](const auto& col) {
            using C = std::decay_t<decltype(col)>;
            if constexpr (std::is_same_v<C, parquet::StringColumn>) {
              if (!col.valid.empty() && !col.valid[r]) {
                row[c.name] = nullptr;
              } else {
                row[c.name] = col.values[r];
              }
            } else if constexpr (std::is_same_v<C, parquet::FloatListColumn> || std::is_same_v<C, parquet::DoubleListColumn>) {
              const auto b = col.offsets[r], e = col.offsets[r + 1];
              json preview = json::array();
              for (auto i = b; i < std::min(e, b + 4); ++i) preview.push_back(col.values[i]);
              row[c.name] = json{{"len", e - b}, {"head", preview}};
            } else {
              row[c.name] = col.values[r];
            }
          },
          c.data);
    }
    std::printf("  %s\n", row.dump().c_str());
  }
}

}  // namespace

void AddPipelineCommands(CLI::App& app) {
  // Argument structs live as long as the app (the callbacks run after parsing).
  static PipelineArgs run_args, featurize_args, pca_args;
  static storage::StorageOptions inspect_storage;
  static std::string inspect_target;
  static int inspect_rows = 3;

  auto* run = app.add_subcommand("run", "the full pipeline: list SRC, featurize, PCA, write Parquet to OUT");
  run->add_option("SRC", run_args.run.source, "source root: a folder or s3://bucket/prefix of <Label>/<image> files")->required();
  run->add_option("OUT", run_args.run.output, "output dataset root (folder or s3://bucket/prefix)")->required();
  AddCommonRunOptions(run, &run_args);
  AddPcaOptions(run, &run_args);
  run->callback([] { Execute(&run_args); });

  auto* featurize = app.add_subcommand("featurize", "featurize only: Results/ and PCA statistics, no PCA stage");
  featurize->add_option("SRC", featurize_args.run.source, "source root")->required();
  featurize->add_option("OUT", featurize_args.run.output, "output dataset root")->required();
  AddCommonRunOptions(featurize, &featurize_args);
  featurize->callback([] {
    featurize_args.run.command = "featurize";
    featurize_args.run.pca_stage = false;
    Execute(&featurize_args);
  });

  auto* pca = app.add_subcommand("pca", "the PCA stage on an existing dataset: fit (or apply) and rewrite Results_PCA/");
  pca->add_option("OUT", pca_args.run.output, "dataset root")->required();
  AddPcaOptions(pca, &pca_args);
  AddStorageOptions(pca, &pca_args.run.storage);
  pca->add_flag("--json", pca_args.json_output, "print run.json to stdout");
  pca->callback([] {
    Finalize(&pca_args);
    pca_args.run.command = "pca";
    auto coordinator = MakeCoordinator(pca_args);
    const json run = RunOnCluster(*coordinator, [&] { return pipeline::RunPcaOnly(pca_args.run, *coordinator); });
    if (!coordinator->is_root()) return;
    if (run.value("exit_code", 0) != 0) ExitCode() = kExitPartial;
    if (pca_args.json_output) std::cout << run.dump(2) << std::endl; else PrintSummary(run);
  });

  static PipelineArgs reduce_args;
  auto* reduce = app.add_subcommand("reduce", "after array-job workers: fit PCA, write Results_PCA/, run.json and _SUCCESS");
  reduce->add_option("OUT", reduce_args.run.output, "dataset root")->required();
  AddPcaOptions(reduce, &reduce_args);
  AddStorageOptions(reduce, &reduce_args.run.storage);
  reduce->callback([] {
    Finalize(&reduce_args);
    reduce_args.run.command = "reduce";
    auto coordinator = MakeCoordinator(reduce_args);
    const json run = RunOnCluster(*coordinator, [&] { return pipeline::RunPcaOnly(reduce_args.run, *coordinator); });
    if (!coordinator->is_root()) return;
    if (run.value("exit_code", 0) != 0) ExitCode() = kExitPartial;
    PrintSummary(run);
  });

  auto* inspect = app.add_subcommand("inspect", "schema, row count and first rows of a Parquet file or a folder of parts");
  inspect->add_option("FILE_OR_DIR", inspect_target, "a .parquet file, or Results/ / Results_PCA/")->required();
  inspect->add_option("--rows,-n", inspect_rows, "rows to show")->default_val(3);
  AddStorageOptions(inspect, &inspect_storage);
  inspect->callback([] { Inspect(inspect_target, inspect_rows, inspect_storage); });
}

}  // namespace fruitpipe::cli
