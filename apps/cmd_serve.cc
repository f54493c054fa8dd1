// serve: the real-time identification service (docs/serving.md).
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <memory>
#include <cstdio>
#include <ctime>
#include <thread>

#include "commands.h"
#include "options.h"
#include "fruitpipe/common/error.h"
#include "fruitpipe/serve/app_backend.h"
#include "fruitpipe/serve/identifier.h"
#include "fruitpipe/serve/model_dir.h"
#include "fruitpipe/serve/server.h"

namespace fruitpipe::cli {
namespace {

struct ServeArgs {
  std::string model_dir;
  serve::IdentifierOptions identifier;
  serve::ServerOptions server;
  storage::StorageOptions storage;
  std::string token_file;
  serve::AppOptions app;  // contributions, consent, erasure requests: with --ledger and --store
};

void Serve(ServeArgs* a) {
  if (!a->token_file.empty()) a->server.token = serve::ReadTokenFile(a->token_file);
  // The per-image limit follows the body limit: an image cannot be larger than its request.
  a->identifier.limits.max_bytes = a->server.max_body_bytes;

  // Signals are taken by one thread with sigwait, so they are blocked here, before any other
  // thread exists, and every thread inherits the mask. A peer that closes early must not kill
  // the process with SIGPIPE.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  serve::Identifier identifier(a->model_dir, a->identifier, a->storage);
  std::unique_ptr<serve::AppBackend> app;
  if (!a->app.ledger.empty() || !a->app.store.empty()) {
    if (a->app.ledger.empty() || a->app.store.empty()) {
      throw InvalidArgumentError("serve: contributions need both --ledger and --store (and the subject key)");
    }
    CheckKeyApart(a->app.subject_key_file, {a->app.store});
    a->app.store = NormalRoot(a->app.store);
    a->app.storage = a->storage;
    app = std::make_unique<serve::AppBackend>(a->app, identifier.model().classes(), identifier.limits());
  }
  serve::Server server(identifier, a->server, app.get());
  server.metrics().SetModelStale(serve::WarnIfStale(identifier.model(), a->storage));
  server.Bind();

  std::atomic<bool> done{false};
  std::thread signal_thread([&] {
    const timespec poll{0, 100'000'000};
    while (!done.load()) {
      siginfo_t info;
      const int sig = sigtimedwait(&stop_signals, &info, &poll);
      if (sig == SIGTERM || sig == SIGINT) {
        std::fprintf(stderr, "fruitpipe serve: %s received, finishing requests in flight\n",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT");
        server.Stop();
        return;
      }
    }
  });

  std::fprintf(stderr, "fruitpipe serve: listening on http://%s:%d (model %s, %zu classes, %d workers, %s%s%s)\n",
               a->server.host.c_str(), server.port(), identifier.model().id.c_str(),
               identifier.model().classes().size(), identifier.workers(), identifier.feature_backend().c_str(),
               a->server.token.empty() ? ", no token" : ", bearer token required",
               app ? (", contributions to " + app->store_uri()).c_str() : "");
  std::fflush(stderr);
  server.Run();
  done = true;
  signal_thread.join();
  std::fprintf(stderr, "fruitpipe serve: stopped after %llu images identified\n",
               static_cast<unsigned long long>(server.metrics().identified()));
}

}  // namespace

void AddServeCommands(CLI::App& app) {
  static ServeArgs args;
  auto* cmd = app.add_subcommand(
      "serve",
      "identify fruit photos over HTTP: POST /v1/identify, GET /v1/classes, the app's page at GET /, GET /healthz, "
      "GET /metrics; with --ledger and --store also the app's contributions, consent and erasure requests");
  cmd->add_option("MODEL_DIR", args.model_dir, "a model trained by `fruitpipe train`")->required();
  cmd->add_option("--port", args.server.port, "TCP port (0: any free port, printed at start)")
      ->default_val(8080)
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--host", args.server.host,
                  "address to listen on; keep 127.0.0.1 behind a TLS-terminating proxy")
      ->default_val("127.0.0.1");
  cmd->add_option("--token-file", args.token_file,
                  "require 'Authorization: Bearer <token>' with the token in this file (first line)");
  cmd->add_option("--max-body-bytes", args.server.max_body_bytes, "largest accepted request body (413 above)")
      ->default_val(20u << 20)
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30));
  cmd->add_option("--max-pixels", args.identifier.limits.max_pixels,
                  "largest declared width*height, checked before decoding (422 above)")
      ->default_val(25'000'000)
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 32));
  cmd->add_option("--timeout-ms", args.server.timeout_ms,
                  "per request: receiving the body and waiting for a free worker (408 / 503)")
      ->default_val(10000)
      ->check(CLI::Range(100, 600000));
  cmd->add_option("--threads", args.identifier.workers,
                  "images identified at once, one featurizer each (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--head-timeout-ms", args.server.head_timeout_ms,
                  "the whole request line and headers must arrive within this (408 and close)")
      ->default_val(10000)
      ->check(CLI::Range(100, 600000));
  cmd->add_option("--connections", args.server.connection_threads,
                  "requests handled at once; one more is answered 503 (connections sending their "
                  "headers or idle hold none)")
      ->default_val(64)
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--max-connections-per-client", args.server.max_connections_per_client,
                  "open connections per client address, loopback included (503 above; 0: no cap)")
      ->default_val(16)
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--max-connections", args.server.max_connections, "open connections in all (503 above)")
      ->default_val(1024)
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_flag("--quiet-requests", [](std::int64_t) { args.server.log_requests = false; },
                "no log line per request");
  cmd->add_option("--model", args.identifier.model_card,
                  "feature model card (default: the one MODEL_DIR records, else $FRUITPIPE_MODEL)")
      ->group("Model");
  cmd->add_option("--backend", args.identifier.backend, "inference engine (default: the Training run's)")
      ->check(CLI::IsMember({"onednn", "opencv"}))
      ->group("Model");
  cmd->add_option("--calibration-dir", args.identifier.calibration_dir, "images for int8 calibration (int8 models)")
      ->group("Model");
  cmd->add_option("--ledger", args.app.ledger,
                  "consent ledger (SQLite; created when missing): enables POST /v1/contributions, GET|POST "
                  "/v1/consent and POST /v1/erasure-requests, with --store")
      ->group("Contributions");
  cmd->add_option("--store", args.app.store, "where contributed photos are stored (a folder or s3://...)")
      ->group("Contributions");
  cmd->add_option("--subject-key-file", args.app.subject_key_file,
                  "pseudonymisation key for the X-Subject-Id user ids (mode 0600; default: $FRUITPIPE_SUBJECT_KEY)")
      ->group("Contributions");
  cmd->add_option("--audit-log", args.app.audit_log,
                  "audit log (default: $FRUITPIPE_AUDIT_LOG, else audit.jsonl beside the ledger)")
      ->group("Contributions");
  cmd->add_option("--contributions-per-minute", args.app.contributions_per_minute,
                  "contributions each client address may send a minute after its burst (429 above; 0: no limit)")
      ->default_val(6)
      ->check(CLI::Range(0, 100000))
      ->group("Contributions");
  cmd->add_option("--contributions-burst", args.app.contributions_burst,
                  "contributions a client address may send at once")
      ->default_val(3)
      ->check(CLI::Range(1, 100000))
      ->group("Contributions");
  AddStorageOptions(cmd, &args.storage);
  cmd->callback([] { Serve(&args); });
}

}  // namespace fruitpipe::cli
