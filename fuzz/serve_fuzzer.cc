// libFuzzer target: the HTTP service's request handling. The real Server (cpp-httplib with
// fruitpipe's routes, limits and token check) and a real Identifier (the model directory in
// $FRUITPIPE_FUZZ_MODEL_DIR, featurizer from its card) run in this process on 127.0.0.1; each
// input is sent as the raw bytes of one connection (request line, headers, body, possibly
// several pipelined requests), then the answer is read to the end. The service must answer
// every request it parses with a status that is not 500 (an exception escaped a handler), and
// never crash or hang. Without $FRUITPIPE_FUZZ_MODEL_DIR the target does nothing (the CTest
// wrapper skips it): serve exposes no request entry point that works without a socket and a
// model (docs/robustness.md).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "fruitpipe/serve/identifier.h"
#include "fruitpipe/serve/server.h"

namespace {

struct Service {
  std::unique_ptr<fruitpipe::serve::Identifier> identifier;
  std::unique_ptr<fruitpipe::serve::Server> server;
  std::thread runner;
  int port = 0;
};

Service* service = nullptr;

bool SendAll(int fd, const std::uint8_t* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) return false;  // the server may close early (refused request): fine
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* model_dir = std::getenv("FRUITPIPE_FUZZ_MODEL_DIR");
  if (model_dir == nullptr || *model_dir == '\0') {
    std::fprintf(stderr, "serve_fuzzer: FRUITPIPE_FUZZ_MODEL_DIR is not set; every input is ignored\n");
    return 0;
  }
  service = new Service;
  fruitpipe::serve::IdentifierOptions io;
  io.workers = 1;
  service->identifier = std::make_unique<fruitpipe::serve::Identifier>(model_dir, io);
  fruitpipe::serve::ServerOptions so;
  so.port = 0;
  so.token = "fuzz-token";
  so.max_body_bytes = 1 << 20;
  so.timeout_ms = 2000;
  so.connection_threads = 4;
  so.log_requests = false;
  service->server = std::make_unique<fruitpipe::serve::Server>(*service->identifier, so);
  service->server->Bind();
  service->port = service->server->port();
  service->runner = std::thread([] { service->server->Run(); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (service == nullptr) return 0;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) std::abort();
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(service->port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // The listener may not have started yet on the first input.
  for (int attempt = 0; ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0; ++attempt) {
    if (attempt == 500) std::abort();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  SendAll(fd, data, size);
  ::shutdown(fd, SHUT_WR);
  std::string response;
  char buf[4096];
  while (true) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      std::fprintf(stderr, "serve_fuzzer: no end of response within 5 s\n");
      std::abort();
    }
    if (n <= 0) break;
    response.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  // Every status line in the answer (pipelined requests get one each).
  for (std::size_t at = response.find("HTTP/1.1 "); at != std::string::npos; at = response.find("HTTP/1.1 ", at + 1)) {
    if (response.compare(at + 9, 3, "500") == 0) {
      std::fprintf(stderr, "serve_fuzzer: HTTP 500:\n%s\n", response.c_str());
      std::abort();
    }
  }
  return 0;
}
