// A small libcurl client: keeps connections open between requests (each caller borrows a curl
// multi handle, which owns a connection cache) and runs batches with many requests in flight,
// retrying transient failures with exponential backoff and full jitter.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "fruitpipe/storage/s3/sigv4.h"

namespace fruitpipe::storage::s3 {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  HeaderList headers;
  std::string_view body;  // not owned: it must outlive the call
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds timeout{0};  // whole transfer; 0 = none (stalls end by low speed)
  bool bypass_proxy = false;             // loopback and metadata endpoints never use a proxy
};

struct HttpResponse {
  long status = 0;          // 0 when no HTTP response arrived (see transport_error)
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  int transport_code = 0;   // CURLcode; 0 = OK
  std::string transport_error;
  int attempts = 0;         // how many times the request was sent

  bool ok() const { return transport_code == 0 && status >= 200 && status < 300; }
  std::string Header(const std::string& lower_name) const;
};

struct RetryPolicy {
  int max_attempts = 1;
  std::chrono::milliseconds base_delay{100};
  std::chrono::milliseconds max_delay{5000};
  // Whether a finished attempt should be retried (5xx, throttling, resets ...).
  std::function<bool(const HttpResponse&)> retryable;

  // Full jitter: uniform in [0, min(max_delay, base_delay * 2^(attempt-1))].
  std::chrono::milliseconds Backoff(int attempt) const;
};

class HttpClient {
 public:
  HttpClient();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Runs `count` requests, at most `max_in_flight` at a time. `build(i)` makes request i; it is
  // called again for each retry (so it can re-sign). `done(i, response)` receives the final
  // response of each request, on the calling thread, in completion order; it may throw, which
  // cancels the rest.
  void Run(std::size_t count, int max_in_flight, const RetryPolicy& retry,
           const std::function<HttpRequest(std::size_t)>& build,
           const std::function<void(std::size_t, HttpResponse&&)>& done);

  // One request with retries.
  HttpResponse Perform(const RetryPolicy& retry, const std::function<HttpRequest()>& build);

 private:
  struct Session;  // a curl multi handle plus idle easy handles
  std::unique_ptr<Session> Borrow();
  void Return(std::unique_ptr<Session> session);

  std::mutex mu_;
  std::vector<std::unique_ptr<Session>> idle_;
};

}  // namespace fruitpipe::storage::s3
