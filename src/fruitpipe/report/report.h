// The run report: one self-contained HTML page (OUT/report.html) showing what a run did —
// summary, shard timeline, stage durations, throughput, rejected inputs, PCA variance and
// scatter, class counts, and the evaluation when there is one. See docs/report.md.
//
// The page is a template compiled into the library (report_template.html) with the data
// injected as one JSON blob; its inline script draws every chart, so the file opens from
// disk with no server and no network access.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fruitpipe/storage/storage.h"

namespace fruitpipe::report {


// A browser stays responsive with a few tens of thousands of canvas points and the page
// stays around a megabyte; larger datasets are thinned (the page says so).
inline constexpr std::size_t kMaxScatterPoints = 20000;
// Rejected inputs embedded in the page; the full list stays in rejected.jsonl.
inline constexpr std::size_t kMaxRejectedRows = 5000;

// The first two principal components of every row of Results_PCA/, in part-file order.
struct Scatter {
  std::vector<std::string> labels;  // distinct labels, sorted
  std::vector<double> x, y;         // PC1, PC2 (PC2 is 0 when k == 1)
  std::vector<int> label;           // index into labels
  std::vector<std::string> path;
  std::size_t size() const { return x.size(); }
};

struct ReportData {
  nlohmann::json run = nlohmann::json::object();  // run.json as the pipeline wrote it
  nlohmann::json rejected = nlohmann::json::array();  // rejected.jsonl: [{"path","reason"}]
  std::optional<nlohmann::json> evaluation;       // evaluation.json, when present
  Scatter scatter;
  std::string generated_at;                       // UTC, ISO 8601
};

// Reads run.json (required: NotFoundError without it), rejected.jsonl, evaluation.json and
// Results_PCA/*.parquet from the dataset root `out`. Malformed inputs throw CorruptionError
// naming the object.
ReportData LoadReportData(storage::Storage& out);

// The complete HTML page. Thins the scatter to kMaxScatterPoints and the rejected list to
// kMaxRejectedRows.
std::string RenderReport(const ReportData& data);

// LoadReportData + RenderReport + an atomic Put of OUT/report.html. Returns its URI.
std::string WriteReport(storage::Storage& out);

// Indices of at most `max` of `n` rows, evenly spaced and increasing (deterministic, and
// every class keeps its share because rows are grouped by label).
std::vector<std::size_t> ThinIndices(std::size_t n, std::size_t max);

// Per-shard distribution of each stage's duration and of the shard sizes, as the Spark UI
// summarises tasks: [{"metric","unit","count","min","p25","median","p75","max","total"}].
nlohmann::json StageSummary(const nlohmann::json& shard_timeline);

// The q-quantile (0..1) of `values` with linear interpolation between closest ranks.
double Quantile(std::vector<double> values, double q);

}  // namespace fruitpipe::report
