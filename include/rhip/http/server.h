// The HTTP/1.1 server (Boost.Beast over Asio) and its router.
//
// One io_context per I/O thread (one thread per core by default); a connection
// stays on the thread that accepted it. Reads and searches are handled on that
// thread itself (no hop to another pool); handlers are synchronous. The store's
// write path blocks its caller until the group commit is durable, so writes
// (POST, PUT, PATCH, DELETE) and operations (`$everything`, `$export`, … which
// may run long) hop to a pool of blocking threads
// (ServerOptions::blocking_threads), where many concurrent writers wait on, and
// share, one group commit while reads keep flowing on the I/O threads.
//
// Thread-safety: Router is immutable once the server starts; handlers are
// called concurrently from several threads.
//
// Example:
//   Router router;
//   router.Add("GET", "/healthz", [](const HttpRequest&) { return HttpResponse::Json(200, R"({"status":"ok"})"); });
//   HttpServer server(options, std::move(router));
//   RETURN_IF_ERROR(server.Listen());   // server.port() is now bound
//   server.Run();                       // until SIGTERM/SIGINT or Stop()
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rhip/core/status.h"

namespace rhip::http {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // percent-encoded path without the query: "/fhir/Patient/1"
  std::string query;   // raw query string without '?'
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names
  std::string body;
  std::string host;    // Host header
  std::string remote;  // peer address
  bool tls = false;    // arrived over HTTPS

  std::string_view Header(std::string_view lower_name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  static HttpResponse Json(int status, std::string body);
  // A JSON error body shaped like a FHIR OperationOutcome.
  static HttpResponse Error(int status, std::string_view code, std::string_view message);
};

using Handler = std::function<HttpResponse(const HttpRequest&)>;

class Router {
 public:
  // `method` empty = any method; `prefix` matches the path exactly or as a
  // prefix followed by '/' ("/fhir" matches "/fhir" and "/fhir/Patient").
  void Add(std::string method, std::string prefix, Handler handler);
  // The longest matching prefix wins; nullptr when none.
  const Handler* Match(std::string_view method, std::string_view path) const;

 private:
  struct Route {
    std::string method, prefix;
    Handler handler;
  };
  std::vector<Route> routes_;
};

struct ServerOptions {
  std::string bind = "127.0.0.1";
  int port = 8080;  // 0 = any free port (see HttpServer::port())
  int threads = 0;  // I/O threads (and read handlers); 0 = one per hardware thread, at least 2
  // Handlers of POST/PUT/PATCH/DELETE run on a pool of their own: a write waits
  // for the store's group commit, and that many writers can wait (and share one
  // commit) without holding up reads. 0 = run them on the I/O threads.
  int blocking_threads = 32;
  size_t body_limit = 64 * 1024 * 1024;
  std::chrono::seconds read_timeout{30};   // a request must arrive within this
  std::chrono::seconds idle_timeout{60};   // keep-alive connection idle limit
  std::chrono::seconds shutdown_grace{15}; // in-flight requests may finish within this
  bool access_log = true;
  bool handle_signals = true;              // SIGTERM/SIGINT start a graceful shutdown
  // HTTPS: PEM certificate chain and private key (both or neither); TLS 1.2+.
  std::string tls_cert, tls_key;
};

class HttpServer {
 public:
  HttpServer(ServerOptions options, Router router);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; errors name the address and the reason.
  Status Listen();
  int port() const;
  // Serves until Stop() or a signal; returns after in-flight requests finished
  // (or the grace period ended).
  void Run();
  // Starts a graceful shutdown; safe from any thread.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rhip::http
