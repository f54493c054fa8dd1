#include "fruitpipe/report/report.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <string_view>
#include <variant>

#include "fruitpipe/common/error.h"
#include "fruitpipe/common/time.h"
#include "fruitpipe/dataset/dataset.h"
#include "fruitpipe/parquet/parquet.h"

namespace fruitpipe::report {

// The page template, compiled in from report_template.html (see CMakeLists.txt).
extern const char kReportTemplate[];

namespace {

using nlohmann::json;

constexpr std::string_view kDataPlaceholder = "__FRUITPIPE_REPORT_DATA__";


json ParseJson(const std::string& text, const std::string& uri) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw CorruptionError(uri + ": not valid JSON: " + e.what());
  }
}

bool IsPartFile(const std::string& key) {
  const std::string_view name = std::string_view(key).substr(key.find_last_of('/') + 1);
  constexpr std::string_view ext = ".parquet";
  return !name.empty() && name[0] != '_' && name[0] != '.' && name.size() > ext.size() &&
         name.substr(name.size() - ext.size()) == ext;
}

// The columns the scatter needs from one Results_PCA part.
struct PartPoints {
  std::vector<double> x, y;
  std::vector<std::string> label, path;
};

template <typename C>
const C& ColumnAs(const parquet::Table& t, std::string_view name, const std::string& uri, const char* kind) {
  const C* c = std::get_if<C>(&t.Get(name).data);
  if (c == nullptr) throw CorruptionError(uri + ": column " + std::string(name) + " is not " + kind);
  return *c;
}

PartPoints ReadPart(const std::string& bytes, const std::string& uri) {
  parquet::Table t;
  try {
    t = parquet::ReadParquet(bytes, {"path", "label", "pcaFeatures"}, uri);
  } catch (const NotFoundError& e) {
    throw CorruptionError(std::string(e.what()) + " (not a Results_PCA part)");
  }
  const auto& path = ColumnAs<parquet::StringColumn>(t, "path", uri, "a string");
  const auto& label = ColumnAs<parquet::StringColumn>(t, "label", uri, "a string");
  const auto& pca = ColumnAs<parquet::DoubleListColumn>(t, "pcaFeatures", uri, "list<double>");
  PartPoints p;
  const std::size_t rows = pca.rows();
  p.path = path.values;
  p.label = label.values;
  p.x.reserve(rows);
  p.y.reserve(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    const std::uint64_t b = pca.offsets[r], e = pca.offsets[r + 1];
    if (e == b) throw CorruptionError(uri + ": row " + std::to_string(r) + " has no PCA components");
    p.x.push_back(pca.values[b]);
    p.y.push_back(e - b > 1 ? pca.values[b + 1] : 0.0);
  }
  return p;
}

// Every part is fetched and decoded concurrently (S3 keeps many requests in flight), then
// concatenated in key order so the points, and the thinning, do not depend on timing.
Scatter LoadScatter(storage::Storage& out) {
  std::vector<std::string> keys;
  for (const auto& obj : out.List(std::string(dataset::kResultsPcaDir) + "/")) {
    if (IsPartFile(obj.key)) keys.push_back(obj.key);
  }
  std::map<std::string, PartPoints> parts;
  std::mutex mu;
  std::exception_ptr failure;
  out.GetMany(keys, [&](storage::FetchResult&& r) {
    try {
      if (!r.ok) throw IOError(r.error);
      PartPoints p = ReadPart(r.data, out.Uri(r.key));
      std::lock_guard lock(mu);
      parts[r.key] = std::move(p);
    } catch (...) {
      std::lock_guard lock(mu);
      if (!failure) failure = std::current_exception();
    }
  });
  if (failure) std::rethrow_exception(failure);

  Scatter s;
  std::set<std::string> labels;
  for (const auto& [key, p] : parts) labels.insert(p.label.begin(), p.label.end());
  s.labels.assign(labels.begin(), labels.end());
  for (auto& [key, p] : parts) {
    s.x.insert(s.x.end(), p.x.begin(), p.x.end());
    s.y.insert(s.y.end(), p.y.begin(), p.y.end());
    for (const auto& l : p.label) {
      s.label.push_back(static_cast<int>(std::lower_bound(s.labels.begin(), s.labels.end(), l) - s.labels.begin()));
    }
    for (auto& path : p.path) s.path.push_back(std::move(path));
  }
  return s;
}

// Coordinates as integers times a power of ten: four significant digits of the largest
// value are more than a canvas resolves, and integers keep the page small.
double QuantumFor(const std::vector<double>& x, const std::vector<double>& y) {
  double m = 0;
  for (double v : x) m = std::max(m, std::abs(v));
  for (double v : y) m = std::max(m, std::abs(v));
  if (!(m > 0) || !std::isfinite(m)) return 1.0;
  return std::pow(10.0, std::floor(std::log10(m)) - 3);
}

std::string CommonDirPrefix(const std::vector<std::string>& paths) {
  if (paths.empty()) return "";
  std::string_view prefix = paths.front();
  for (const auto& p : paths) {
    std::size_t i = 0;
    while (i < prefix.size() && i < p.size() && prefix[i] == p[i]) ++i;
    prefix = prefix.substr(0, i);
  }
  const std::size_t slash = prefix.find_last_of('/');
  return slash == std::string_view::npos ? "" : std::string(prefix.substr(0, slash + 1));
}

json ScatterJson(const Scatter& s) {
  const std::vector<std::size_t> keep = ThinIndices(s.size(), kMaxScatterPoints);
  std::vector<double> xs, ys;
  std::vector<std::string> paths;
  for (std::size_t i : keep) {
    xs.push_back(s.x[i]);
    ys.push_back(s.y[i]);
    paths.push_back(s.path[i]);
  }
  const double q = QuantumFor(xs, ys);
  const std::string prefix = CommonDirPrefix(paths);
  json jx = json::array(), jy = json::array(), jl = json::array(), jp = json::array();
  std::vector<std::int64_t> per_label(s.labels.size(), 0);
  for (int l : s.label) ++per_label[static_cast<std::size_t>(l)];
  for (std::size_t j = 0; j < keep.size(); ++j) {
    jx.push_back(std::isfinite(xs[j]) ? std::llround(xs[j] / q) : 0);
    jy.push_back(std::isfinite(ys[j]) ? std::llround(ys[j] / q) : 0);
    jl.push_back(s.label[keep[j]]);
    jp.push_back(paths[j].substr(prefix.size()));
  }
  return {{"total", s.size()},     {"shown", keep.size()}, {"max_points", kMaxScatterPoints},
          {"labels", s.labels},    {"label_totals", per_label},
          {"scale", q},            {"x", jx},
          {"y", jy},               {"label", jl},
          {"path_prefix", prefix}, {"path", jp}};
}

double IntervalsSeconds(const json& list) {
  double total = 0;
  for (const auto& iv : list) {
    if (iv.is_array() && iv.size() == 2 && iv[0].is_number() && iv[1].is_number()) {
      total += iv[1].get<double>() - iv[0].get<double>();
    }
  }
  return total;
}

}  // namespace

std::vector<std::size_t> ThinIndices(std::size_t n, std::size_t max) {
  std::vector<std::size_t> keep;
  if (n <= max) {
    keep.resize(n);
    for (std::size_t i = 0; i < n; ++i) keep[i] = i;
    return keep;
  }
  keep.reserve(max);
  // floor(j * n / max) for j < max: strictly increasing because n > max; 128-bit-free since
  // n * max stays far below 2^64 for any dataset a page can show.
  for (std::size_t j = 0; j < max; ++j) keep.push_back(j * n / max);
  return keep;
}

double Quantile(std::vector<double> values, double q) {
  if (values.empty()) throw InvalidArgumentError("quantile of an empty list");
  std::sort(values.begin(), values.end());
  const double pos = std::clamp(q, 0.0, 1.0) * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (values[hi] - values[lo]) * (pos - static_cast<double>(lo));
}

json StageSummary(const json& shard_timeline) {
  // "shard" is the whole bar (end - start), rows/rejected are counts, the rest are the sums
  // of a stage's intervals in the shard.
  struct Metric {
    const char* name;
    const char* unit;
    std::vector<double> values;
  };
  std::vector<Metric> metrics = {{"shard", "s", {}},    {"read", "s", {}},  {"decode", "s", {}},
                                 {"featurize", "s", {}}, {"write", "s", {}}, {"pca", "s", {}},
                                 {"rows", "images", {}}, {"rejected", "images", {}}};
  if (shard_timeline.is_array()) {
    for (const auto& shard : shard_timeline) {
      if (!shard.is_object()) continue;
      const json stages = shard.value("stages", json::object());
      for (auto& m : metrics) {
        const std::string name = m.name;
        if (name == "shard") {
          if (shard.value("start", json()).is_number() && shard.value("end", json()).is_number()) {
            m.values.push_back(shard["end"].get<double>() - shard["start"].get<double>());
          }
        } else if (name == "rows" || name == "rejected") {
          if (shard.value(name, json()).is_number()) m.values.push_back(shard[name].get<double>());
        } else if (stages.is_object() && stages.contains(name)) {
          m.values.push_back(IntervalsSeconds(stages[name]));
        }
      }
    }
  }
  json out = json::array();
  for (const auto& m : metrics) {
    if (m.values.empty()) continue;
    double total = 0;
    for (double v : m.values) total += v;
    out.push_back({{"metric", m.name},
                   {"unit", m.unit},
                   {"count", m.values.size()},
                   {"min", Quantile(m.values, 0.0)},
                   {"p25", Quantile(m.values, 0.25)},
                   {"median", Quantile(m.values, 0.5)},
                   {"p75", Quantile(m.values, 0.75)},
                   {"max", Quantile(m.values, 1.0)},
                   {"total", total}});
  }
  return out;
}

ReportData LoadReportData(storage::Storage& out) {
  ReportData d;
  const auto run = out.GetIfExists(dataset::kRunJsonKey);
  if (!run) {
    throw NotFoundError(out.Uri(dataset::kRunJsonKey) + ": missing (not a fruitpipe output folder, or its run has not finished)");
  }
  d.run = ParseJson(*run, out.Uri(dataset::kRunJsonKey));
  if (!d.run.is_object()) throw CorruptionError(out.Uri(dataset::kRunJsonKey) + ": not a JSON object");
  if (auto rejected = out.GetIfExists(dataset::kRejectedKey)) {
    d.rejected = json::array();
    for (const auto& r : dataset::ParseRejectedJsonl(*rejected, out.Uri(dataset::kRejectedKey))) {
      d.rejected.push_back({{"path", r.path}, {"reason", r.reason}});
    }
  }
  if (auto evaluation = out.GetIfExists(dataset::kEvaluationKey)) {
    d.evaluation = ParseJson(*evaluation, out.Uri(dataset::kEvaluationKey));
    if (!d.evaluation->is_object()) throw CorruptionError(out.Uri(dataset::kEvaluationKey) + ": not a JSON object");
  }
  d.scatter = LoadScatter(out);
  d.generated_at = IsoUtc(WallSeconds());
  return d;
}

std::string RenderReport(const ReportData& data) {
  json rejected = json::array();
  for (std::size_t i = 0; i < std::min(data.rejected.size(), kMaxRejectedRows); ++i) rejected.push_back(data.rejected[i]);
  const json blob = {{"run", data.run},
                     {"rejected", rejected},
                     {"rejected_total", data.rejected.size()},
                     {"evaluation", data.evaluation ? *data.evaluation : json(nullptr)},
                     {"stage_summary", StageSummary(data.run.value("shard_timeline", json::array()))},
                     {"scatter", ScatterJson(data.scatter)},
                     {"generated_at", data.generated_at}};
  // Inside <script> only "</script" (and "<!--") can end or confuse the element; '<' occurs
  // in JSON only within strings, where \u003c is the same character.
  const std::string text = blob.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string escaped;
  escaped.reserve(text.size() + 64);
  for (char c : text) {
    if (c == '<') escaped += "\\u003c"; else escaped += c;
  }
  const std::string_view tpl = kReportTemplate;
  const std::size_t at = tpl.find(kDataPlaceholder);
  std::string page;
  page.reserve(tpl.size() + escaped.size());
  page.append(tpl.substr(0, at));
  page.append(escaped);
  page.append(tpl.substr(at + kDataPlaceholder.size()));
  return page;
}

std::string WriteReport(storage::Storage& out) {
  out.Put(dataset::kReportKey, RenderReport(LoadReportData(out)));
  return out.Uri(dataset::kReportKey);
}

}  // namespace fruitpipe::report
