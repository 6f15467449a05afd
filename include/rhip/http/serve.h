// Serving a data folder: the routes of the platform (/healthz, /fhir, the web
// UI's static files) on an HttpServer, over an open Store.
//
// Example:
//   ServeOptions o; o.server.port = 8080;
//   RETURN_IF_ERROR(Serve(o, *store, [](int port) { std::cout << "listening on " << port; }));
#pragma once

#include <functional>
#include <string>

#include "rhip/core/status.h"
#include "rhip/fhir/rest.h"
#include "rhip/http/server.h"
#include "rhip/store/store.h"

namespace rhip::http {

struct ServeOptions {
  ServerOptions server;
  std::string static_dir;  // the web UI's built files; empty = none
  fhir::FhirServiceOptions fhir;  // page sizes; operations registered by other layers (Bulk Data)
  // More routes from other layers (e.g. GET /api/hl7/status), added as they are.
  struct ExtraRoute {
    std::string method, prefix;
    Handler handler;
  };
  std::vector<ExtraRoute> extra_routes;
};

// Builds the routes and serves until SIGTERM/SIGINT. `on_listening` is called
// once the port is bound (with the bound port).
Status Serve(const ServeOptions& options, store::Store& store, const std::function<void(int port)>& on_listening);

// The router Serve uses, for tests that drive the server in-process.
Router PlatformRouter(const ServeOptions& options, store::Store& store);

}  // namespace rhip::http
