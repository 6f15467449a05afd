#include "rhip/http/serve.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "rhip/core/time.h"
#include "rhip/core/url.h"
#include "rhip/fhir/operation_outcome.h"
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

// Headers of every API response: nothing of a person's record is cached by a
// browser or proxy, sniffed into another type or framed; HTTPS is remembered.
void ApiSecurityHeaders(const HttpRequest& req, HttpResponse& r) {
  bool has_cache = false;
  for (const auto& [k, v] : r.headers) has_cache = has_cache || k == "Cache-Control";
  if (!has_cache) r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
  if (req.tls) r.headers.emplace_back("Strict-Transport-Security", "max-age=31536000");
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


// The caller of a guarded route, as the gate established it, and the guard
// that decides (and remembers, for the audit log) what the request may touch.
struct Caller {
  security::Principal principal;
  std::unique_ptr<security::Guard> guard;  // nullptr without a gate
};
using GuardedHandler = std::function<HttpResponse(const HttpRequest&, Caller&)>;

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

// The FHIR restful-interaction code and AuditEvent action of a request.
std::pair<std::string, std::string> AuditSubtype(const HttpRequest& req) {
  if (req.path.rfind("/fhir", 0) != 0) return {"api", req.method == "GET" ? "R" : "E"};
  const std::vector<std::string> seg = SplitPath(std::string_view(req.path).substr(5));
  for (const auto& s : seg)
    if (!s.empty() && s[0] == '$') return {"operation", "E"};
  const std::string& m = req.method;
  if (m == "GET" || m == "HEAD") {
    if (seg.empty()) return {"search-system", "R"};
    if (seg[0] == "_history") return {"history-system", "R"};
    if (seg.size() == 1) return {"search-type", "R"};
    if (seg.size() == 2) return {seg[1] == "_history" ? "history-type" : "read", "R"};
    if (seg.size() == 3) return {"history-instance", "R"};
    return {"vread", "R"};
  }
  if (m == "POST") {
    if (seg.empty())
      return {req.body.find("\"transaction\"") != std::string::npos ? "transaction" : "batch", "E"};
    if (seg.size() == 2 && seg[1] == "_search") return {"search-type", "R"};
    return {"create", "C"};
  }
  if (m == "PUT") return {"update", "U"};
  if (m == "DELETE") return {"delete", "D"};
  if (m == "PATCH") return {"patch", "U"};
  return {"unknown", "E"};
}

// The OperationOutcome's first diagnostics, for the audit record of a failure.
std::string Diagnostics(const std::string& body) {
  const size_t at = body.find("\"diagnostics\":\"");
  if (at == std::string::npos) return {};
  const size_t from = at + 15;
  size_t to = from;
  while (to < body.size() && body[to] != '"') to += body[to] == '\\' ? 2 : 1;
  return body.substr(from, std::min<size_t>(to - from, 400));
}

// One AuditEvent per guarded request: who, which patients, what, why, outcome.
void Audit(security::Gate* gate, const HttpRequest& req, const Caller* caller, const HttpResponse& resp) {
  if (!gate || !gate->audit()) return;
  security::AuditEntry e;
  auto [subtype, action] = AuditSubtype(req);
  e.subtype = std::move(subtype);
  e.action = std::move(action);
  e.http_status = resp.status;
  e.outcome = resp.status < 400 ? 0 : resp.status < 500 ? 4 : 8;
  e.remote = req.remote;
  e.what = req.method + " " + req.path + (req.query.empty() ? "" : "?" + req.query);
  if (caller) {
    e.who = caller->principal.subject;
    e.role = std::string(security::RoleName(caller->principal.role));
    e.org = caller->principal.org;
    e.person = caller->principal.person;
    e.token_id = caller->principal.token_id;
  } else {
    e.who = "anonymous";
  }
  if (resp.status >= 400) e.outcome_desc = Diagnostics(resp.body);
  if (caller && caller->guard) {
    const security::AccessRecord& rec = caller->guard->Record();
    e.patients.assign(rec.patients.begin(), rec.patients.end());
    if (rec.break_glass) e.break_glass_reason = caller->guard->break_glass_reason();
    if (resp.status < 400 && rec.withheld > 0)
      e.outcome_desc = std::to_string(rec.withheld) + " resource(s) withheld: " + rec.denials.front();
    if (rec.redacted && e.outcome_desc.empty()) e.outcome_desc = "de-identified";
  }
  gate->audit()->Record(std::move(e));
}

// The one place every protected request passes through: who is calling, before
// the handler runs, and the audit record after it.
Handler Guarded(const ServeOptions& o, GuardedHandler handler) {
  return [gate = o.gate, insecure = o.insecure_dev, handler = std::move(handler)](const HttpRequest& req) {
    Caller caller;
    if (insecure) {
      caller.principal = InsecureDevPrincipal();
    } else if (!gate) {
      return HttpResponse::Error(503, "security", "security is not configured (no gate); start with --insecure-dev for development");
    } else {
      auto who = gate->Authenticate(req.Header("authorization"));
      // Per-client rate limit: the token's subject, or the address of a caller without one.
      if (!gate->limiter().Allow(who.ok() ? who->subject : "remote:" + req.remote, NowMicros())) {
        HttpResponse slow = HttpResponse::Error(429, "throttled", "too many requests from this client: slow down");
        slow.headers.emplace_back("Retry-After", "1");
        Audit(gate, req, nullptr, slow);
        ApiSecurityHeaders(req, slow);
        return slow;
      }
      if (!who.ok()) {
        HttpResponse refused = Unauthenticated(who.status());
        Audit(gate, req, nullptr, refused);
        ApiSecurityHeaders(req, refused);
        return refused;
      }
      caller.principal = std::move(*who);
    }
    if (gate) caller.guard = gate->NewGuard(caller.principal, std::string(req.Header("x-break-glass-reason")));
    HttpResponse resp = handler(req, caller);
    Audit(gate, req, &caller, resp);
    ApiSecurityHeaders(req, resp);
    return resp;
  };
}

Handler Unguarded(Handler h) { return h; }

// Strict CORS: only the configured origins get Access-Control-Allow-Origin.
Handler Cors(const ServeOptions& o, Handler h) {
  if (o.cors_origins.empty()) return h;
  return [origins = o.cors_origins, h = std::move(h)](const HttpRequest& req) {
    HttpResponse r = h(req);
    const std::string origin(req.Header("origin"));
    if (!origin.empty() && std::find(origins.begin(), origins.end(), origin) != origins.end()) {
      r.headers.emplace_back("Access-Control-Allow-Origin", origin);
      r.headers.emplace_back("Access-Control-Expose-Headers", "Location, ETag, Content-Location, Last-Modified");
      r.headers.emplace_back("Vary", "Origin");
    }
    return r;
  };
}

HttpResponse Preflight(const std::vector<std::string>& origins, const HttpRequest& req) {
  const std::string origin(req.Header("origin"));
  if (origin.empty() || std::find(origins.begin(), origins.end(), origin) == origins.end())
    return HttpResponse::Error(403, "forbidden", "cross-origin requests from '" + origin + "' are not allowed");
  HttpResponse r;
  r.status = 204;
  r.headers.emplace_back("Access-Control-Allow-Origin", origin);
  r.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE");
  r.headers.emplace_back("Access-Control-Allow-Headers",
                         "Authorization, Content-Type, Prefer, If-Match, If-None-Exist, X-Break-Glass-Reason");
  r.headers.emplace_back("Access-Control-Max-Age", "600");
  r.headers.emplace_back("Vary", "Origin");
  return r;
}

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
  if (!gate->login_limiter().Allow("login:" + req.remote, NowMicros())) {
    HttpResponse r = oauth_error(429, "slow_down", "too many token requests from this address");
    r.headers.emplace_back("Retry-After", "1");
    return r;
  }
  security::GrantError error = security::GrantError::kInvalidRequest;
  const auto form = ParseQueryString(req.body);
  auto grant = gate->Grant(form, req.Header("authorization"), &error);
  if (gate->audit()) {
    security::AuditEntry e;
    e.type = "login";
    e.subtype = "login";
    e.action = "E";
    e.remote = req.remote;
    e.what = "POST /auth/token";
    e.http_status = grant.ok() ? 200 : error == security::GrantError::kInvalidClient ? 401 : 400;
    e.outcome = grant.ok() ? 0 : 4;
    if (grant.ok()) {
      e.who = grant->principal.subject;
      e.role = std::string(security::RoleName(grant->principal.role));
      e.org = grant->principal.org;
      e.person = grant->principal.person;
    } else {
      for (const auto& [k, v] : form)
        if (k == "username" || k == "client_id") e.who = v;
      e.outcome_desc = grant.status().message();
    }
    gate->audit()->Record(std::move(e));
  }
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

// POST /auth/revoke (admin): adds a rule to the revocation list, which every
// request's authentication consults (this server at once, others within a second).
HttpResponse RevokeEndpoint(security::Gate* gate, const HttpRequest& req, const Caller& c) {
  if (!gate) return HttpResponse::Error(503, "security", "security is off (--insecure-dev): there are no tokens to revoke");
  security::Decision d = gate->AuthorizeApi(c.principal, req.path);
  if (d.effect == security::Effect::kDeny)
    return HttpResponse::Error(403, "forbidden", "access denied for " + std::string(security::RoleName(c.principal.role)) + ": " + d.reason);
  if (req.Header("content-type").rfind("application/x-www-form-urlencoded", 0) != 0)
    return HttpResponse::Error(400, "invalid", "send the revocation as application/x-www-form-urlencoded (token, jti, subject, client, before, reason)");
  auto rule = gate->Revoke(ParseQueryString(req.body), c.principal);
  if (!rule.ok()) return HttpResponse::Error(fhir::HttpStatusFor(rule.status().code()), "invalid", rule.status().message());
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartObject();
  w.Key("revoked");
  w.StartObject();
  for (auto [k, v] : {std::pair{"jti", &rule->jti}, std::pair{"subject", &rule->subject}, std::pair{"client", &rule->client},
                      std::pair{"by", &rule->by}, std::pair{"reason", &rule->reason}}) {
    if (v->empty()) continue;
    w.Key(k);
    w.String(v->c_str());
  }
  if (rule->before) {
    w.Key("before");
    w.String(FormatInstant(rule->before * kMicrosPerSecond).c_str());
  }
  w.Key("at");
  w.String(FormatInstant(rule->at * kMicrosPerSecond).c_str());
  w.EndObject();
  w.EndObject();
  HttpResponse r = HttpResponse::Json(200, std::string(b.GetString(), b.GetSize()));
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

HttpResponse AccessLog(security::Gate* gate, const HttpRequest& req, const Caller& c) {
  if (!gate || !gate->audit()) return HttpResponse::Error(503, "transient", "the audit log is not available");
  security::Decision d = gate->AuthorizeApi(c.principal, req.path);
  if (d.effect == security::Effect::kDeny)
    return HttpResponse::Error(403, "forbidden", "access denied for " + std::string(security::RoleName(c.principal.role)) + ": " + d.reason);
  std::vector<std::string> patients;
  if (gate->persons()) patients = gate->persons()->PatientsOf(c.principal.person);
  if (Status st = gate->audit()->Flush(); !st.ok()) return HttpResponse::Error(503, "transient", st.message());
  auto events = gate->audit()->ForPatients(patients, 200);
  if (!events.ok()) return HttpResponse::Error(500, "exception", events.status().message());
  // A summary per access, without the other patients an event may name.
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartObject();
  w.Key("person");
  w.String(c.principal.person.c_str());
  w.Key("entries");
  w.StartArray();
  for (const std::string& json : *events) {
    rapidjson::Document ev;
    ev.Parse(json.data(), json.size());
    if (ev.HasParseError() || !ev.IsObject()) continue;
    auto str = [](const rapidjson::Value& o, const char* k) -> std::string {
      return o.IsObject() && o.HasMember(k) && o[k].IsString() ? o[k].GetString() : "";
    };
    w.StartObject();
    w.Key("recorded");
    w.String(str(ev, "recorded").c_str());
    if (ev.HasMember("subtype") && ev["subtype"].IsArray() && !ev["subtype"].Empty()) {
      w.Key("interaction");
      w.String(str(ev["subtype"][0], "code").c_str());
    }
    w.Key("outcome");
    w.String(str(ev, "outcome") == "0" ? "allowed" : "refused");
    if (ev.HasMember("agent") && ev["agent"].IsArray()) {
      for (const auto& a : ev["agent"].GetArray()) {
        const std::string type = a.HasMember("type") ? str(a["type"], "text") : "";
        const rapidjson::Value* who = a.HasMember("who") ? &a["who"] : nullptr;
        if (!who) continue;
        if (type == "institution") {
          w.Key("institution");
          w.String(who->HasMember("identifier") ? str((*who)["identifier"], "value").c_str() : "");
        } else {
          w.Key("who");
          w.String(str(*who, "display").c_str());
          w.Key("role");
          w.String(type.c_str());
        }
      }
    }
    if (ev.HasMember("purposeOfEvent") && ev["purposeOfEvent"].IsArray() && !ev["purposeOfEvent"].Empty()) {
      w.Key("breakGlassReason");
      w.String(str(ev["purposeOfEvent"][0], "text").c_str());
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return HttpResponse::Json(200, std::string(b.GetString(), b.GetSize()));
}

}  // namespace

Router PlatformRouter(const ServeOptions& options, store::Store& store) {
  // shared_ptr: the service is owned jointly by the route handlers (copies of the lambda).
  std::shared_ptr<fhir::FhirService> fhir = fhir::NewFhirService(&store, options.fhir);
  Router router;
  auto add = [&](std::string method, std::string prefix, Handler h) {
    router.Add(std::move(method), std::move(prefix), Marked(options, Cors(options, std::move(h))));
  };
  // CORS preflights (no credentials): before the other routes, so they win the prefix ties.
  for (const char* prefix : {"/fhir", "/api", "/auth"})
    add("OPTIONS", prefix, [origins = options.cors_origins](const HttpRequest& req) { return Preflight(origins, req); });
  add("GET", "/healthz", Unguarded([&store](const HttpRequest&) {
    // A primary-key look-up: proves the store answers without costing a scan.
    auto probe = store.Read("Patient", "healthz-probe");
    if (!probe.ok() && probe.status().code() != StatusCode::kNotFound && probe.status().code() != StatusCode::kGone)
      return HttpResponse::Error(503, "transient", probe.status().message());
    return HttpResponse::Json(200, R"({"status":"ok"})");
  }));
  auto fhir_handler = [fhir](const HttpRequest& req, const Caller* caller) {
    fhir::RestRequest r;
    r.method = req.method == "HEAD" ? "GET" : req.method;
    r.path = PercentDecode(req.path.size() > 5 ? std::string_view(req.path).substr(6) : std::string_view());
    r.query = ParseQueryString(req.query);
    r.headers = req.headers;
    r.body = req.body;
    r.base_url = std::string(req.tls ? "https://" : "http://") + (req.host.empty() ? std::string("localhost") : req.host) + "/fhir";
    // Every decision FhirService takes for this request goes through the caller's guard.
    security::Guard* guard = caller ? caller->guard.get() : nullptr;
    r.access = guard;
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
  add("", "/fhir", Guarded(options, [fhir_handler](const HttpRequest& req, Caller& c) { return fhir_handler(req, &c); }));
  // The CapabilityStatement is public (SMART clients read it before they have a token).
  add("GET", "/fhir/metadata", Unguarded([fhir_handler](const HttpRequest& req) { return fhir_handler(req, nullptr); }));
  add("POST", "/auth/token", Unguarded([gate = options.gate](const HttpRequest& req) { return TokenEndpoint(gate, req); }));
  add("POST", "/auth/revoke",
      Guarded(options, [gate = options.gate](const HttpRequest& req, Caller& c) { return RevokeEndpoint(gate, req, c); }));
  for (const auto& r : options.extra_routes)
    add(r.method, r.prefix,
        Guarded(options, [h = r.handler, gate = options.gate](const HttpRequest& req, Caller& c) {
          if (gate) {
            security::Decision d = gate->AuthorizeApi(c.principal, req.path);
            if (d.effect == security::Effect::kDeny)
              return HttpResponse::Error(403, "forbidden", "access denied for " + std::string(security::RoleName(c.principal.role)) +
                                                               " " + c.principal.subject + ": " + d.reason);
          }
          return h(req);
        }));
  // A resident's own access log: who read their records, when, why.
  add("GET", "/api/me/access-log",
      Guarded(options, [gate = options.gate](const HttpRequest& req, Caller& c) { return AccessLog(gate, req, c); }));
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
