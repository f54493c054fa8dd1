#include "fruitpipe/serve/metrics.h"

#include <gtest/gtest.h>

#include <sstream>
#include <thread>
#include <vector>

namespace fruitpipe::serve {
namespace {

// The value of the sample line that starts with `series` followed by a space.
std::string Sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return line.substr(series.size() + 1);
  }
  return "<missing>";
}

TEST(MetricsTest, CountsRequestsByRouteAndStatus) {
  Metrics m;
  m.RecordRequest("/v1/identify", 200, 0.02);
  m.RecordRequest("/v1/identify", 200, 0.03);
  m.RecordRequest("/v1/identify", 422, 0.001);
  m.RecordRequest("/healthz", 200, 0.0001);
  EXPECT_EQ(m.requests("/v1/identify", 200), 2u);
  EXPECT_EQ(m.requests("/v1/identify", 422), 1u);
  EXPECT_EQ(m.requests("/metrics", 200), 0u);
  const std::string text = m.RenderPrometheus();
  EXPECT_EQ(Sample(text, "fruitpipe_http_requests_total{route=\"/v1/identify\",code=\"200\"}"), "2");
  EXPECT_EQ(Sample(text, "fruitpipe_http_requests_total{route=\"/v1/identify\",code=\"422\"}"), "1");
  EXPECT_EQ(Sample(text, "fruitpipe_http_requests_total{route=\"/healthz\",code=\"200\"}"), "1");
  EXPECT_NE(text.find("# TYPE fruitpipe_http_requests_total counter\n"), std::string::npos);
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithInfAndSum) {
  Metrics m({0.01, 0.1, 1, 10});
  m.RecordRequest("/v1/identify", 200, 0.005);  // le 0.01
  m.RecordRequest("/v1/identify", 200, 0.01);   // le 0.01 (bounds are inclusive)
  m.RecordRequest("/v1/identify", 200, 0.05);   // le 0.1
  m.RecordRequest("/v1/identify", 200, 3.0);    // le 10
  m.RecordRequest("/v1/identify", 200, 30.0);   // +Inf only
  const std::string text = m.RenderPrometheus();
  const std::string b = "fruitpipe_http_request_duration_seconds_bucket{route=\"/v1/identify\",le=";
  EXPECT_EQ(Sample(text, b + "\"0.01\"}"), "2");
  EXPECT_EQ(Sample(text, b + "\"0.1\"}"), "3");
  EXPECT_EQ(Sample(text, b + "\"1\"}"), "3");
  EXPECT_EQ(Sample(text, b + "\"10\"}"), "4");  // shortest form, not 1e+01
  EXPECT_EQ(Sample(text, b + "\"+Inf\"}"), "5");
  EXPECT_EQ(Sample(text, "fruitpipe_http_request_duration_seconds_count{route=\"/v1/identify\"}"), "5");
  EXPECT_NEAR(std::stod(Sample(text, "fruitpipe_http_request_duration_seconds_sum{route=\"/v1/identify\"}")), 33.065,
              1e-12);
  EXPECT_NE(text.find("# TYPE fruitpipe_http_request_duration_seconds histogram\n"), std::string::npos);
}

TEST(MetricsTest, IdentifiedRejectionsInFlightAndModelInfo) {
  Metrics m;
  m.RecordIdentified(false);
  m.RecordIdentified(false);
  m.RecordIdentified(true);
  m.RecordRejection("too_many_pixels");
  m.RecordRejection("too_many_pixels");
  m.RecordRejection("not_an_image");
  m.RequestStarted();
  m.RequestStarted();
  m.RequestFinished();
  m.SetModelInfo({{"model", "fruits \"dev\"\\1\n"}});
  EXPECT_EQ(m.identified(), 3u);
  EXPECT_EQ(m.rejections("too_many_pixels"), 2u);
  const std::string text = m.RenderPrometheus();
  EXPECT_EQ(Sample(text, "fruitpipe_images_identified_total{result=\"known\"}"), "2");
  EXPECT_EQ(Sample(text, "fruitpipe_images_identified_total{result=\"unknown\"}"), "1");
  EXPECT_EQ(Sample(text, "fruitpipe_rejections_total{reason=\"too_many_pixels\"}"), "2");
  EXPECT_EQ(Sample(text, "fruitpipe_rejections_total{reason=\"not_an_image\"}"), "1");
  EXPECT_EQ(Sample(text, "fruitpipe_http_requests_in_flight"), "1");
  EXPECT_EQ(Sample(text, "fruitpipe_model_info{model=\"fruits \\\"dev\\\"\\\\1\\n\"}"), "1");
  EXPECT_EQ(Sample(text, "fruitpipe_model_stale"), "0");
  m.SetModelStale(true);
  EXPECT_EQ(Sample(m.RenderPrometheus(), "fruitpipe_model_stale"), "1");
}

TEST(MetricsTest, ConcurrentUpdatesAreAllCounted) {
  Metrics m;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&m] {
      for (int i = 0; i < 1000; ++i) {
        m.RecordRequest("/v1/identify", 200, 0.01);
        m.RecordIdentified(i % 2 == 0);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(m.requests("/v1/identify", 200), 8000u);
  EXPECT_EQ(m.identified(), 8000u);
}

TEST(MetricsTest, EscapeLabelValue) {
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

}  // namespace
}  // namespace fruitpipe::serve
