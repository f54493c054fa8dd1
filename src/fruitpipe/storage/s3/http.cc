#include "fruitpipe/storage/s3/http.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <thread>

#include "fruitpipe/common/error.h"

namespace fruitpipe::storage::s3 {
namespace {

using Clock = std::chrono::steady_clock;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw IOError("libcurl: global init failed");
  });
}

std::string LowerAscii(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// One request on the wire: its easy handle, buffers and callback state.
struct Transfer {
  CURL* easy = nullptr;
  std::size_t index = 0;
  int attempt = 0;
  HttpRequest request;
  HttpResponse response;
  curl_slist* header_list = nullptr;
  std::size_t read_offset = 0;
  char error[CURL_ERROR_SIZE] = {};

  ~Transfer() { curl_slist_free_all(header_list); }
};

std::size_t OnWrite(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  t->response.body.append(data, size * n);
  return size * n;
}

std::size_t OnHeader(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  // A new status line (after 100 Continue or a redirect) starts a new header block.
  if (line.rfind("HTTP/", 0) == 0) {
    t->response.headers.clear();
    return size * n;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
    value.remove_suffix(1);
  t->response.headers[LowerAscii(std::string(line.substr(0, colon)))] = std::string(value);
  return size * n;
}

std::size_t OnRead(char* buffer, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t left = t->request.body.size() - t->read_offset;
  const std::size_t len = std::min(left, size * n);
  std::memcpy(buffer, t->request.body.data() + t->read_offset, len);
  t->read_offset += len;
  return len;
}

int OnSeek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<std::size_t>(offset) > t->request.body.size())
    return CURL_SEEKFUNC_FAIL;
  t->read_offset = static_cast<std::size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

void Configure(Transfer& t) {
  CURL* e = t.easy;
  const HttpRequest& r = t.request;
  curl_easy_reset(e);
  curl_easy_setopt(e, CURLOPT_URL, r.url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.error);
  curl_easy_setopt(e, CURLOPT_PRIVATE, &t);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(r.connect_timeout.count()));
  if (r.timeout.count() > 0) {
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(r.timeout.count()));
  } else {
    // No overall limit (objects can be large), but a transfer that stalls is abandoned.
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 30L);
  }
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &OnWrite);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
  if (r.bypass_proxy) curl_easy_setopt(e, CURLOPT_NOPROXY, "*");

  if (r.method == "GET") {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (r.method == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (r.method == "PUT") {
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
  } else if (r.method == "POST") {
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
  } else {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r.method.c_str());
  }
  if (r.method == "PUT" || r.method == "POST") {
    curl_easy_setopt(e, CURLOPT_READFUNCTION, &OnRead);
    curl_easy_setopt(e, CURLOPT_READDATA, &t);
    curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, &OnSeek);
    curl_easy_setopt(e, CURLOPT_SEEKDATA, &t);
  }

  // "Expect:" stops libcurl from waiting for 100-continue before sending a body.
  t.header_list = curl_slist_append(t.header_list, "Expect:");
  for (const auto& [name, value] : r.headers) {
    // "Name;" is libcurl's spelling of a header with an empty value.
    const std::string line = value.empty() ? name + ";" : name + ": " + value;
    t.header_list = curl_slist_append(t.header_list, line.c_str());
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.header_list);
}

}  // namespace

std::string HttpResponse::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

std::chrono::milliseconds RetryPolicy::Backoff(int attempt) const {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  double cap = static_cast<double>(base_delay.count());
  for (int i = 1; i < attempt && cap < static_cast<double>(max_delay.count()); ++i) cap *= 2;
  cap = std::min(cap, static_cast<double>(max_delay.count()));
  std::uniform_real_distribution<double> dist(0.0, cap);
  return std::chrono::milliseconds(static_cast<long long>(dist(rng)));
}

struct HttpClient::Session {
  CURLM* multi = nullptr;
  std::vector<CURL*> idle;

  Session() : multi(curl_multi_init()) {
    if (multi == nullptr) throw IOError("libcurl: cannot create a multi handle");
  }
  ~Session() {
    for (CURL* e : idle) curl_easy_cleanup(e);
    curl_multi_cleanup(multi);
  }
  CURL* TakeEasy() {
    if (!idle.empty()) {
      CURL* e = idle.back();
      idle.pop_back();
      return e;
    }
    CURL* e = curl_easy_init();
    if (e == nullptr) throw IOError("libcurl: cannot create an easy handle");
    return e;
  }
};

HttpClient::HttpClient() { GlobalInit(); }
HttpClient::~HttpClient() = default;

std::unique_ptr<HttpClient::Session> HttpClient::Borrow() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      auto s = std::move(idle_.back());
      idle_.pop_back();
      return s;
    }
  }
  return std::make_unique<Session>();
}

void HttpClient::Return(std::unique_ptr<Session> session) {
  std::lock_guard lock(mu_);
  idle_.push_back(std::move(session));
}

void HttpClient::Run(std::size_t count, int max_in_flight, const RetryPolicy& retry,
                     const std::function<HttpRequest(std::size_t)>& build,
                     const std::function<void(std::size_t, HttpResponse&&)>& done) {
  if (count == 0) return;
  const std::size_t limit = static_cast<std::size_t>(std::max(1, max_in_flight));
  const int max_attempts = std::max(1, retry.max_attempts);

  struct Due {
    std::size_t index;
    int attempt;
    Clock::time_point at;
  };
  std::unique_ptr<Session> session = Borrow();
  std::vector<std::unique_ptr<Transfer>> active;
  std::vector<Due> retries;
  std::size_t next = 0, finished = 0;

  auto start = [&](std::size_t index, int attempt) {
    auto t = std::make_unique<Transfer>();
    t->index = index;
    t->attempt = attempt;
    t->request = build(index);
    t->easy = session->TakeEasy();
    Configure(*t);
    if (curl_multi_add_handle(session->multi, t->easy) != CURLM_OK) {
      session->idle.push_back(t->easy);
      throw IOError("libcurl: cannot add a transfer");
    }
    active.push_back(std::move(t));
  };

  try {
    while (finished < count) {
      const auto now = Clock::now();
      while (active.size() < limit) {
        auto due = std::min_element(retries.begin(), retries.end(),
                                    [](const Due& a, const Due& b) { return a.at < b.at; });
        if (due != retries.end() && due->at <= now) {
          const Due d = *due;
          retries.erase(due);
          start(d.index, d.attempt);
        } else if (next < count) {
          start(next++, 1);
        } else {
          break;
        }
      }
      if (active.empty()) {
        const auto due = std::min_element(retries.begin(), retries.end(),
                                          [](const Due& a, const Due& b) { return a.at < b.at; });
        std::this_thread::sleep_until(due->at);
        continue;
      }

      int running = 0;
      curl_multi_perform(session->multi, &running);
      int queued = 0;
      while (CURLMsg* msg = curl_multi_info_read(session->multi, &queued)) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL* easy = msg->easy_handle;
        const CURLcode result = msg->data.result;
        auto it = std::find_if(active.begin(), active.end(),
                               [easy](const auto& t) { return t->easy == easy; });
        std::unique_ptr<Transfer> t = std::move(*it);
        active.erase(it);
        curl_multi_remove_handle(session->multi, easy);
        HttpResponse& resp = t->response;
        resp.attempts = t->attempt;
        if (result == CURLE_OK) {
          curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &resp.status);
        } else {
          resp.status = 0;
          resp.transport_code = static_cast<int>(result);
          resp.transport_error = t->error[0] != '\0' ? t->error : curl_easy_strerror(result);
        }
        session->idle.push_back(easy);
        t->easy = nullptr;
        if (!resp.ok() && t->attempt < max_attempts && retry.retryable && retry.retryable(resp)) {
          retries.push_back({t->index, t->attempt + 1, Clock::now() + retry.Backoff(t->attempt)});
          continue;
        }
        ++finished;
        done(t->index, std::move(resp));
      }
      if (!active.empty()) {
        auto wait = std::chrono::milliseconds(100);
        if (!retries.empty()) {
          const auto due = std::min_element(retries.begin(), retries.end(),
                                            [](const Due& a, const Due& b) { return a.at < b.at; });
          wait = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(due->at - Clock::now()),
                            std::chrono::milliseconds(0), wait);
        }
        curl_multi_poll(session->multi, nullptr, 0, static_cast<int>(wait.count()), nullptr);
      }
    }
  } catch (...) {
    // Abandon transfers still on the wire; their handles may hold half-read connections.
    for (auto& t : active) {
      curl_multi_remove_handle(session->multi, t->easy);
      curl_easy_cleanup(t->easy);
    }
    Return(std::move(session));
    throw;
  }
  Return(std::move(session));
}

HttpResponse HttpClient::Perform(const RetryPolicy& retry, const std::function<HttpRequest()>& build) {
  HttpResponse out;
  Run(1, 1, retry, [&](std::size_t) { return build(); },
      [&](std::size_t, HttpResponse&& r) { out = std::move(r); });
  return out;
}

}  // namespace fruitpipe::storage::s3
