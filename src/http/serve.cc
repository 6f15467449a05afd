#include "rhip/http/serve.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "rhip/core/url.h"
#include "rhip/fhir/rest.h"

namespace rhip::http {
namespace {

std::string MimeType(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json") return "application/json";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".woff2") return "font/woff2";
  return "application/octet-stream";
}

void SecurityHeaders(HttpResponse& r) {
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Content-Security-Policy", "default-src 'self'");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("X-Frame-Options", "DENY");
}

HttpResponse StaticFile(const std::string& root, const HttpRequest& req) {
  std::string rel = PercentDecode(req.path);
  if (rel.find("..") != std::string::npos || rel.find('\0') != std::string::npos)
    return HttpResponse::Error(400, "invalid", "path may not contain '..'");
  std::filesystem::path p = std::filesystem::path(root) / rel.substr(1);
  std::error_code ec;
  if (std::filesystem::is_directory(p, ec)) p /= "index.html";
  if (!std::filesystem::is_regular_file(p, ec)) {
    // single-page application: unknown paths fall back to index.html
    p = std::filesystem::path(root) / "index.html";
    if (!std::filesystem::is_regular_file(p, ec)) return HttpResponse::Error(404, "not-found", "no such file");
  }
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  HttpResponse r;
  r.content_type = MimeType(p);
  r.body = ss.str();
  SecurityHeaders(r);
  return r;
}

}  // namespace

Router PlatformRouter(const ServeOptions& options, store::Store& store) {
  // shared_ptr: the service is owned jointly by the route handlers (copies of the lambda).
  std::shared_ptr<fhir::FhirService> fhir = fhir::NewFhirService(&store, options.fhir);
  Router router;
  router.Add("GET", "/healthz", [&store](const HttpRequest&) {
    // A primary-key look-up: proves the store answers without costing a scan.
    auto probe = store.Read("Patient", "healthz-probe");
    if (!probe.ok() && probe.status().code() != StatusCode::kNotFound && probe.status().code() != StatusCode::kGone)
      return HttpResponse::Error(503, "transient", probe.status().message());
    return HttpResponse::Json(200, R"({"status":"ok"})");
  });
  router.Add("", "/fhir", [fhir](const HttpRequest& req) {
    fhir::RestRequest r;
    r.method = req.method == "HEAD" ? "GET" : req.method;
    r.path = PercentDecode(req.path.size() > 5 ? std::string_view(req.path).substr(6) : std::string_view());
    r.query = ParseQueryString(req.query);
    r.headers = req.headers;
    r.body = req.body;
    r.base_url = "http://" + (req.host.empty() ? std::string("localhost") : req.host) + "/fhir";
    fhir::RestResponse out = fhir->Handle(r);
    HttpResponse h;
    h.status = out.status;
    h.content_type = out.content_type;
    h.headers = std::move(out.headers);
    h.body = std::move(out.body);
    return h;
  });
  for (const auto& r : options.extra_routes) router.Add(r.method, r.prefix, r.handler);
  if (!options.static_dir.empty()) {
    std::string root = options.static_dir;
    router.Add("GET", "/", [root](const HttpRequest& req) { return StaticFile(root, req); });
  }
  return router;
}

Status Serve(const ServeOptions& options, store::Store& store, const std::function<void(int port)>& on_listening) {
  HttpServer server(options.server, PlatformRouter(options, store));
  RETURN_IF_ERROR(server.Listen());
  if (on_listening) on_listening(server.port());
  server.Run();
  return Status::Ok();
}

}  // namespace rhip::http
