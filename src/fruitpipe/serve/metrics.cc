#include "fruitpipe/serve/metrics.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace fruitpipe::serve {
namespace {

// Shortest round-trip form, as Prometheus clients print floats ("0.005", "10", "2.5").
std::string FormatDouble(double v) {
  std::string best;
  char buf[32];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v && (best.empty() || std::strlen(buf) < best.size())) best = buf;
  }
  return best;
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<double> Metrics::DefaultLatencyBuckets() {
  // Identification takes tens of milliseconds on one core; the tail matters up to seconds.
  return {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10};
}

Metrics::Metrics(std::vector<double> latency_buckets) : buckets_(std::move(latency_buckets)) {
  std::sort(buckets_.begin(), buckets_.end());
}

void Metrics::RecordRequest(std::string_view route, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{std::string(route), status}];
  Histogram& h = latency_[std::string(route)];
  if (h.counts.empty()) h.counts.assign(buckets_.size() + 1, 0);
  const auto bucket = std::lower_bound(buckets_.begin(), buckets_.end(), seconds) - buckets_.begin();
  ++h.counts[static_cast<std::size_t>(bucket)];
  h.sum += seconds;
  ++h.count;
}

void Metrics::RecordIdentified(bool unknown) {
  std::lock_guard<std::mutex> lock(mu_);
  ++(unknown ? identified_unknown_ : identified_known_);
}

void Metrics::RecordRejection(std::string_view category) {
  std::lock_guard<std::mutex> lock(mu_);
  ++rejections_[std::string(category)];
}

void Metrics::RequestStarted() {
  std::lock_guard<std::mutex> lock(mu_);
  ++in_flight_;
}

void Metrics::RequestFinished() {
  std::lock_guard<std::mutex> lock(mu_);
  --in_flight_;
}

void Metrics::SetModelInfo(std::vector<std::pair<std::string, std::string>> labels) {
  std::lock_guard<std::mutex> lock(mu_);
  model_info_ = std::move(labels);
}

void Metrics::SetModelStale(bool stale) {
  std::lock_guard lock(mu_);
  model_stale_ = stale;
}

std::uint64_t Metrics::requests(std::string_view route, int status) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = requests_.find({std::string(route), status});
  return it == requests_.end() ? 0 : it->second;
}

std::uint64_t Metrics::rejections(std::string_view category) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = rejections_.find(std::string(category));
  return it == rejections_.end() ? 0 : it->second;
}

std::uint64_t Metrics::identified() const {
  std::lock_guard<std::mutex> lock(mu_);
  return identified_known_ + identified_unknown_;
}

std::string Metrics::RenderPrometheus() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  auto line = [&out](const std::string& s) {
    out += s;
    out += '\n';
  };

  line("# HELP fruitpipe_http_requests_total HTTP requests answered, by route and status code.");
  line("# TYPE fruitpipe_http_requests_total counter");
  for (const auto& [key, n] : requests_) {
    line("fruitpipe_http_requests_total{route=\"" + EscapeLabelValue(key.first) + "\",code=\"" +
         std::to_string(key.second) + "\"} " + std::to_string(n));
  }

  line("# HELP fruitpipe_http_request_duration_seconds Time from request routing to response, by route.");
  line("# TYPE fruitpipe_http_request_duration_seconds histogram");
  for (const auto& [route, h] : latency_) {
    const std::string r = "route=\"" + EscapeLabelValue(route) + "\"";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      cumulative += h.counts[i];
      line("fruitpipe_http_request_duration_seconds_bucket{" + r + ",le=\"" + FormatDouble(buckets_[i]) + "\"} " +
           std::to_string(cumulative));
    }
    cumulative += h.counts.back();
    line("fruitpipe_http_request_duration_seconds_bucket{" + r + ",le=\"+Inf\"} " + std::to_string(cumulative));
    line("fruitpipe_http_request_duration_seconds_sum{" + r + "} " + FormatDouble(h.sum));
    line("fruitpipe_http_request_duration_seconds_count{" + r + "} " + std::to_string(h.count));
  }

  line("# HELP fruitpipe_images_identified_total Images decoded and identified, by outcome.");
  line("# TYPE fruitpipe_images_identified_total counter");
  line("fruitpipe_images_identified_total{result=\"known\"} " + std::to_string(identified_known_));
  line("fruitpipe_images_identified_total{result=\"unknown\"} " + std::to_string(identified_unknown_));

  line("# HELP fruitpipe_rejections_total Identify requests refused, by reason.");
  line("# TYPE fruitpipe_rejections_total counter");
  for (const auto& [reason, n] : rejections_) {
    line("fruitpipe_rejections_total{reason=\"" + EscapeLabelValue(reason) + "\"} " + std::to_string(n));
  }

  line("# HELP fruitpipe_http_requests_in_flight Requests being handled now.");
  line("# TYPE fruitpipe_http_requests_in_flight gauge");
  line("fruitpipe_http_requests_in_flight " + std::to_string(in_flight_));

  line("# HELP fruitpipe_model_stale 1 when a training dataset was erased from after the model was trained.");
  line("# TYPE fruitpipe_model_stale gauge");
  line(std::string("fruitpipe_model_stale ") + (model_stale_ ? "1" : "0"));
  if (!model_info_.empty()) {
    line("# HELP fruitpipe_model_info The identification model being served.");
    line("# TYPE fruitpipe_model_info gauge");
    std::string labels;
    for (const auto& [k, v] : model_info_) {
      if (!labels.empty()) labels += ',';
      labels += k + "=\"" + EscapeLabelValue(v) + "\"";
    }
    line("fruitpipe_model_info{" + labels + "} 1");
  }
  return out;
}

}  // namespace fruitpipe::serve
