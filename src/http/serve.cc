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


// The caller of a guarded route, as the gate established it.
struct Caller {
  security::Principal principal;
};
using GuardedHandler = std::function<HttpResponse(const HttpRequest&, const Caller&)>;

security::Principal InsecureDevPrincipal() {
  security::Principal p;
  p.subject = "insecure-dev";
  p.role = security::Role::kAdmin;
  p.scopes = security::DefaultScopes(security::Role::kAdmin, true);
  return p;
}

HttpResponse Unauthenticated(const Status& st) {
  HttpResponse r = HttpResponse::Error(401, "login", st.message());
  std::string why;
  for (char c : st.message())
    if (c != '"' && c != '\\') why += c;
  r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"rhip\", error=\"invalid_token\", error_description=\"" + why + "\"");
  return r;
}

// The one place every protected request passes through: who is calling, before
// the handler runs.
Handler Guarded(const ServeOptions& o, GuardedHandler handler) {
  return [gate = o.gate, insecure = o.insecure_dev, handler = std::move(handler)](const HttpRequest& req) {
    Caller caller;
    if (insecure) {
      caller.principal = InsecureDevPrincipal();
      return handler(req, caller);
    }
    if (!gate)
      return HttpResponse::Error(503, "security", "security is not configured (no gate); start with --insecure-dev for development");
    auto who = gate->Authenticate(req.Header("authorization"));
    if (!who.ok()) return Unauthenticated(who.status());
    caller.principal = std::move(*who);
    return handler(req, caller);
  };
}

Handler Unguarded(Handler h) { return h; }

// Marks every response while security is off.
Handler Marked(const ServeOptions& o, Handler h) {
  if (!o.insecure_dev) return h;
  return [h = std::move(h)](const HttpRequest& req) {
    HttpResponse r = h(req);
    r.headers.emplace_back(kInsecureHeader, "security is OFF (rhip serve --insecure-dev): no tokens, every caller is admin");
    return r;
  };
}

std::string JsonEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out;
}

// POST /auth/token (RFC 6749 §4.3 password, §4.4 client credentials).
HttpResponse TokenEndpoint(security::Gate* gate, const HttpRequest& req) {
  auto oauth_error = [](int status, std::string_view code, std::string_view why) {
    HttpResponse r = HttpResponse::Json(status, "{\"error\":\"" + std::string(code) + "\",\"error_description\":\"" +
                                                    JsonEscape(why) + "\"}");
    r.headers.emplace_back("Cache-Control", "no-store");
    if (status == 401) r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"rhip\"");
    return r;
  };
  if (!gate) return oauth_error(503, "temporarily_unavailable", "security is off (--insecure-dev): no tokens are issued");
  if (req.Header("content-type").rfind("application/x-www-form-urlencoded", 0) != 0)
    return oauth_error(400, "invalid_request", "send the grant as application/x-www-form-urlencoded");
  security::GrantError error = security::GrantError::kInvalidRequest;
  auto grant = gate->Grant(ParseQueryString(req.body), req.Header("authorization"), &error);
  if (!grant.ok()) {
    switch (error) {
      case security::GrantError::kInvalidClient: return oauth_error(401, "invalid_client", grant.status().message());
      case security::GrantError::kInvalidGrant: return oauth_error(400, "invalid_grant", grant.status().message());
      case security::GrantError::kUnsupportedGrantType:
        return oauth_error(400, "unsupported_grant_type", grant.status().message());
      case security::GrantError::kInvalidRequest: return oauth_error(400, "invalid_request", grant.status().message());
    }
  }
  std::string scope;
  for (const auto& s : grant->principal.scopes) scope += (scope.empty() ? "" : " ") + s;
  HttpResponse r = HttpResponse::Json(200, "{\"access_token\":\"" + grant->access_token +
                                               "\",\"token_type\":\"Bearer\",\"expires_in\":" +
                                               std::to_string(grant->expires_in) + ",\"scope\":\"" + JsonEscape(scope) + "\"}");
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

}  // namespace

Router PlatformRouter(const ServeOptions& options, store::Store& store) {
  // shared_ptr: the service is owned jointly by the route handlers (copies of the lambda).
  std::shared_ptr<fhir::FhirService> fhir = fhir::NewFhirService(&store, options.fhir);
  Router router;
  auto add = [&](std::string method, std::string prefix, Handler h) {
    router.Add(std::move(method), std::move(prefix), Marked(options, std::move(h)));
  };
  add("GET", "/healthz", Unguarded([&store](const HttpRequest&) {
    // A primary-key look-up: proves the store answers without costing a scan.
    auto probe = store.Read("Patient", "healthz-probe");
    if (!probe.ok() && probe.status().code() != StatusCode::kNotFound && probe.status().code() != StatusCode::kGone)
      return HttpResponse::Error(503, "transient", probe.status().message());
    return HttpResponse::Json(200, R"({"status":"ok"})");
  }));
  auto fhir_handler = [fhir, gate = options.gate](const HttpRequest& req, const Caller* caller) {
    fhir::RestRequest r;
    r.method = req.method == "HEAD" ? "GET" : req.method;
    r.path = PercentDecode(req.path.size() > 5 ? std::string_view(req.path).substr(6) : std::string_view());
    r.query = ParseQueryString(req.query);
    r.headers = req.headers;
    r.body = req.body;
    r.base_url = "http://" + (req.host.empty() ? std::string("localhost") : req.host) + "/fhir";
    // Every decision FhirService takes for this request goes through the caller's guard.
    std::unique_ptr<security::Guard> guard;
    if (caller && gate) {
      guard = gate->NewGuard(caller->principal, std::string(req.Header("x-break-glass-reason")));
      r.access = guard.get();
    }
    fhir::RestResponse out = fhir->Handle(r);
    HttpResponse h;
    h.status = out.status;
    h.content_type = out.content_type;
    h.headers = std::move(out.headers);
    h.body = std::move(out.body);
    if (guard && guard->Record().break_glass)
      h.headers.emplace_back("X-Rhip-Break-Glass", "access recorded and flagged for review");
    return h;
  };
  add("", "/fhir", Guarded(options, [fhir_handler](const HttpRequest& req, const Caller& c) { return fhir_handler(req, &c); }));
  // The CapabilityStatement is public (SMART clients read it before they have a token).
  add("GET", "/fhir/metadata", Unguarded([fhir_handler](const HttpRequest& req) { return fhir_handler(req, nullptr); }));
  add("POST", "/auth/token", Unguarded([gate = options.gate](const HttpRequest& req) { return TokenEndpoint(gate, req); }));
  for (const auto& r : options.extra_routes)
    add(r.method, r.prefix,
        Guarded(options, [h = r.handler, gate = options.gate](const HttpRequest& req, const Caller& c) {
          if (gate) {
            security::Decision d = gate->AuthorizeApi(c.principal, req.path);
            if (d.effect == security::Effect::kDeny)
              return HttpResponse::Error(403, "forbidden", "access denied for " + std::string(security::RoleName(c.principal.role)) +
                                                               " " + c.principal.subject + ": " + d.reason);
          }
          return h(req);
        }));
  if (!options.static_dir.empty()) {
    std::string root = options.static_dir;
    add("GET", "/", Unguarded([root](const HttpRequest& req) { return StaticFile(root, req); }));
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
