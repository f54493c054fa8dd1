// The service's counters, rendered in the Prometheus text exposition format (version 0.0.4)
// for GET /metrics. Label values come from small fixed sets (routes, status codes, rejection
// categories), never from request data, so a hostile client cannot grow the series count.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fruitpipe::serve {

class Metrics {
 public:
  // Upper bounds (seconds) of the request latency histogram; +Inf is implicit.
  static std::vector<double> DefaultLatencyBuckets();

  explicit Metrics(std::vector<double> latency_buckets = DefaultLatencyBuckets());

  // One finished HTTP request: `route` is the matched route ("/v1/identify", "/healthz",
  // "/metrics") or "other"; `seconds` from the first byte of the handler to the response.
  void RecordRequest(std::string_view route, int status, double seconds);
  // An image that was identified: `unknown` when the answer was "unknown".
  void RecordIdentified(bool unknown);
  // A request refused before or during identification, by category ("too_many_pixels", ...).
  void RecordRejection(std::string_view category);
  void RequestStarted();
  void RequestFinished();
  // Constant labels describing the loaded model, rendered as fruitpipe_model_info{...} 1.
  void SetModelInfo(std::vector<std::pair<std::string, std::string>> labels);
  // fruitpipe_model_stale: 1 when a dataset the model was trained on has been erased from
  // since (serve::StaleDatasets): the model may hold the features of someone forgotten.
  void SetModelStale(bool stale);

  std::string RenderPrometheus() const;

  // For tests and the shutdown log line.
  std::uint64_t requests(std::string_view route, int status) const;
  std::uint64_t rejections(std::string_view category) const;
  std::uint64_t identified() const;

 private:
  struct Histogram {
    std::vector<std::uint64_t> counts;  // per bucket, not cumulative; last one is +Inf
    double sum = 0;
    std::uint64_t count = 0;
  };

  mutable std::mutex mu_;
  std::vector<double> buckets_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;
  std::map<std::string, Histogram> latency_;  // by route
  std::map<std::string, std::uint64_t> rejections_;
  std::uint64_t identified_known_ = 0;
  std::uint64_t identified_unknown_ = 0;
  std::int64_t in_flight_ = 0;
  std::vector<std::pair<std::string, std::string>> model_info_;
  bool model_stale_ = false;
};

// Escapes a label value for the exposition format (backslash, double quote, newline).
std::string EscapeLabelValue(std::string_view value);

}  // namespace fruitpipe::serve
