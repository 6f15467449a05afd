// Serving a data folder: the routes of the platform (/healthz, /fhir, /auth,
// /api, the web UI's static files) on an HttpServer, over an open Store.
//
// Every route but /healthz, /fhir/metadata, POST /auth/token and the static
// files needs a bearer token: PlatformRouter wraps each handler (its own and
// the extra routes of other layers) in one guard that asks the security Gate
// who the caller is before the handler runs. Without a gate every guarded
// route answers 503, unless `insecure_dev` is set: then every request is
// served as an operator (admin) and every response says so in a header.
//
// Example:
//   ServeOptions o; o.server.port = 8080; o.gate = gate.get();
//   RETURN_IF_ERROR(Serve(o, *store, [](int port) { std::cout << "listening on " << port; }));
#pragma once

#include <functional>
#include <string>

#include "rhip/core/status.h"
#include "rhip/fhir/rest.h"
#include "rhip/http/server.h"
#include "rhip/security/gate.h"
#include "rhip/store/store.h"

namespace rhip::http {

// The header every response carries when security is off.
inline constexpr char kInsecureHeader[] = "X-Rhip-Insecure";

struct ServeOptions {
  ServerOptions server;
  std::string static_dir;  // the web UI's built files; empty = none
  fhir::FhirServiceOptions fhir;  // page sizes; operations registered by other layers (Bulk Data)
  // More routes from other layers (e.g. GET /api/hl7/status), added as they are.
  // They need a token like every API route.
  struct ExtraRoute {
    std::string method, prefix;
    Handler handler;
  };
  std::vector<ExtraRoute> extra_routes;
  security::Gate* gate = nullptr;  // must outlive the router
  bool insecure_dev = false;       // rhip serve --insecure-dev: no tokens, everyone is admin
  // Browser origins allowed to call the API cross-origin (--cors-origin); none by
  // default: no CORS header is ever sent for another origin, preflights get 403.
  std::vector<std::string> cors_origins;
};

// Builds the routes and serves until SIGTERM/SIGINT. `on_listening` is called
// once the port is bound (with the bound port).
Status Serve(const ServeOptions& options, store::Store& store, const std::function<void(int port)>& on_listening);

// The router Serve uses, for tests that drive the server in-process.
Router PlatformRouter(const ServeOptions& options, store::Store& store);

}  // namespace rhip::http
