#include "rhip/testing/test_cert.h"
#include "rhip/http/server.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "rhip/http/serve.h"
#include "rhip/security/gate.h"
#include "rhip/store/store.h"

namespace rhip::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Runs an HttpServer on a free port in the background for one test.
class RunningServer {
 public:
  RunningServer(ServerOptions o, Router r) {
    o.port = 0;
    if (o.threads == 0) o.threads = 4;
    o.handle_signals = false;
    o.access_log = false;
    server_ = std::make_unique<HttpServer>(o, std::move(r));
    Status st = server_->Listen();
    EXPECT_TRUE(st.ok()) << st.ToString();
    thread_ = std::thread([this] { server_->Run(); });
  }
  ~RunningServer() {
    server_->Stop();
    thread_.join();
  }
  int port() const { return server_->port(); }
  HttpServer& server() { return *server_; }
  void Join() { thread_.join(); }

 private:
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

// A tiny blocking HTTP client over one connection.
class Client {
 public:
  explicit Client(int port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
    // A server bug must fail the test, not hang it: blocking reads give up after 10 s.
    timeval tv{10, 0};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  void SendRaw(const std::string& data) { asio::write(socket_, asio::buffer(data)); }
  std::string Request(const std::string& method, const std::string& target, const std::string& body = "",
                      const std::string& extra = "") {
    SendRaw(method + " " + target + " HTTP/1.1\r\nHost: test\r\n" + extra + "Content-Length: " +
            std::to_string(body.size()) + "\r\n\r\n" + body);
    return ReadResponse(method == "HEAD");
  }
  // Reads one response (status line, headers, Content-Length body); "" when the peer closed.
  std::string ReadResponse(bool head = false) {
    boost::system::error_code ec;
    size_t n = asio::read_until(socket_, buf_, "\r\n\r\n", ec);
    if (ec) return "";
    std::string headers(asio::buffers_begin(buf_.data()), asio::buffers_begin(buf_.data()) + static_cast<long>(n));
    buf_.consume(n);
    size_t len = 0;
    auto pos = headers.find("Content-Length: ");
    if (pos == std::string::npos) pos = headers.find("content-length: ");
    if (pos != std::string::npos) len = std::stoul(headers.substr(pos + 16));
    if (head) len = 0;
    if (buf_.size() < len) asio::read(socket_, buf_, asio::transfer_exactly(len - buf_.size()), ec);
    std::string body(asio::buffers_begin(buf_.data()), asio::buffers_begin(buf_.data()) + static_cast<long>(len));
    buf_.consume(len);
    return headers + body;
  }
  bool ClosedByPeer() {
    boost::system::error_code ec;
    char c;
    socket_.read_some(asio::buffer(&c, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

 private:
  asio::io_context ioc_;
  tcp::socket socket_;
  asio::streambuf buf_;
};

Router EchoRouter() {
  Router r;
  r.Add("GET", "/echo", [](const HttpRequest& req) {
    return HttpResponse::Json(200, "{\"path\":\"" + req.path + "\",\"query\":\"" + req.query + "\"}");
  });
  r.Add("POST", "/size", [](const HttpRequest& req) { return HttpResponse::Json(200, std::to_string(req.body.size())); });
  return r;
}

TEST(HttpServer, RoutesByLongestPrefixAndMethod) {
  Router r = EchoRouter();
  r.Add("GET", "/echo/deeper", [](const HttpRequest&) { return HttpResponse::Json(200, "\"deeper\""); });
  RunningServer s({}, std::move(r));
  Client c(s.port());
  EXPECT_NE(c.Request("GET", "/echo/x?a=1").find("\"path\":\"/echo/x\""), std::string::npos);
  EXPECT_NE(c.Request("GET", "/echo/deeper/y").find("deeper"), std::string::npos);
  EXPECT_NE(c.Request("GET", "/echoes").find("404"), std::string::npos);  // not a path-segment prefix
  EXPECT_NE(c.Request("DELETE", "/echo").find("404"), std::string::npos);
}

TEST(HttpServer, KeepAliveServesManyRequestsOnOneConnection) {
  RunningServer s({}, EchoRouter());
  Client c(s.port());
  for (int i = 0; i < 20; ++i) EXPECT_NE(c.Request("GET", "/echo?i=" + std::to_string(i)).find("200 OK"), std::string::npos);
}

TEST(HttpServer, HeadHasNoBodyButTheLength) {
  RunningServer s({}, EchoRouter());
  Client c(s.port());
  std::string r = c.Request("HEAD", "/echo");
  EXPECT_NE(r.find("200 OK"), std::string::npos);
  EXPECT_EQ(r.substr(r.find("\r\n\r\n") + 4), "");
  EXPECT_NE(c.Request("GET", "/echo").find("200 OK"), std::string::npos);  // connection still in sync
}

TEST(HttpServer, OversizedBodyGets413) {
  ServerOptions o;
  o.body_limit = 1024;
  RunningServer s(o, EchoRouter());
  Client c(s.port());
  EXPECT_NE(c.Request("POST", "/size", std::string(1000, 'x')).find("200 OK"), std::string::npos);
  std::string r = c.Request("POST", "/size", std::string(5000, 'x'));
  EXPECT_NE(r.find("413"), std::string::npos) << r;
  EXPECT_NE(r.find("OperationOutcome"), std::string::npos);
}

TEST(HttpServer, MalformedRequestGets400) {
  RunningServer s({}, EchoRouter());
  Client c(s.port());
  c.SendRaw("NOT A REQUEST\r\n\r\n");
  EXPECT_NE(c.ReadResponse().find("400"), std::string::npos);
}

TEST(HttpServer, SilentConnectionIsClosedAfterTheReadTimeout) {
  ServerOptions o;
  o.read_timeout = std::chrono::seconds(1);
  RunningServer s(o, EchoRouter());
  Client c(s.port());
  c.SendRaw("GET /echo HTTP/1.1\r\nHost: x\r\n");  // never finishes the headers
  EXPECT_TRUE(c.ClosedByPeer());
}

TEST(HttpServer, GracefulShutdownFinishesInFlightRequests) {
  std::promise<void> entered;
  std::promise<void> release;
  auto released = release.get_future().share();
  Router r;
  r.Add("GET", "/slow", [&entered, released](const HttpRequest&) {
    entered.set_value();
    released.wait();
    return HttpResponse::Json(200, "\"done\"");
  });
  ServerOptions o;
  o.port = 0;
  o.threads = 2;
  o.handle_signals = false;
  o.access_log = false;
  HttpServer server(o, std::move(r));
  ASSERT_TRUE(server.Listen().ok());
  std::thread run([&] { server.Run(); });
  Client c(server.port());
  auto response = std::async(std::launch::async, [&] { return c.Request("GET", "/slow"); });
  entered.get_future().wait();
  server.Stop();  // while the request is in flight
  release.set_value();
  EXPECT_NE(response.get().find("done"), std::string::npos);
  run.join();
  // no longer accepting
  asio::io_context ioc;
  tcp::socket sock(ioc);
  boost::system::error_code ec;
  sock.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(server.port())), ec);
  EXPECT_TRUE(ec);
}

// A data folder with a security gate (keys, accounts) for one test.
class GateDir {
 public:
  explicit GateDir(security::RateLimitOptions limit = {.rate = 1000, .burst = 2000})
      : dir_(std::filesystem::temp_directory_path() / ("rhip-gate-" + std::to_string(::getpid()) + "-" + std::to_string(n_++))) {
    std::filesystem::remove_all(dir_);
    auto g = security::Gate::Open({.data_dir = dir_.string(), .rate_limit = limit});
    EXPECT_TRUE(g.ok()) << g.status().ToString();
    gate_ = std::move(*g);
  }
  ~GateDir() {
    gate_.reset();  // its audit log writes into the folder until it closes
    std::filesystem::remove_all(dir_);
  }
  security::Gate* gate() { return gate_.get(); }
  // "Authorization: Bearer …\r\n" for a role.
  std::string Auth(security::Role role, std::string org = "", std::string person = "") {
    security::Principal p{.subject = "test", .role = role, .org = std::move(org), .person = std::move(person)};
    p.scopes = security::DefaultScopes(role, true);
    return "Authorization: Bearer " + *gate_->tokens().Issue(p, 600) + "\r\n";
  }

 private:
  static inline int n_ = 0;
  std::filesystem::path dir_;
  std::unique_ptr<security::Gate> gate_;
};

TEST(HttpServer, ServesHttpsWithTheGivenCertificateAndRefusesPlainHttpOnThatPort) {
  rhip::testing::TestCert tc("tls");
  ServerOptions o;
  o.tls_cert = tc.cert;
  o.tls_key = tc.key;
  RunningServer s(o, EchoRouter());
  asio::io_context ioc;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file(tc.cert);  // trust exactly this certificate
  ctx.set_verify_mode(asio::ssl::verify_peer);
  asio::ssl::stream<tcp::socket> tls(ioc, ctx);
  tls.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(s.port())));
  tls.handshake(asio::ssl::stream_base::client);
  EXPECT_GE(SSL_version(tls.native_handle()), TLS1_2_VERSION);
  const std::string req = "GET /echo?x=1 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
  asio::write(tls, asio::buffer(req));
  std::string all;
  boost::system::error_code ec;
  char buf[4096];
  for (;;) {
    size_t n = tls.read_some(asio::buffer(buf), ec);
    all.append(buf, n);
    if (ec) break;
  }
  EXPECT_NE(all.find("200 OK"), std::string::npos) << all;
  EXPECT_NE(all.find("\"query\":\"x=1\""), std::string::npos);
  // plain HTTP on the TLS port gets no HTTP answer
  Client plain(s.port());
  EXPECT_EQ(plain.Request("GET", "/echo"), "");
}

TEST(HttpServer, TlsNeedsAMatchingCertificateAndKey) {
  rhip::testing::TestCert tc("tls");
  ServerOptions o;
  o.port = 0;
  o.handle_signals = false;
  o.tls_cert = tc.cert;
  EXPECT_EQ(HttpServer(o, EchoRouter()).Listen().code(), StatusCode::kInvalidArgument);  // no key
  o.tls_key = "/nonexistent/key.pem";
  EXPECT_NE(HttpServer(o, EchoRouter()).Listen().message().find("key"), std::string::npos);
}

TEST(PlatformRouter, FhirHealthzAndDecodedChineseQuery) {
  auto store = store::OpenStore({.url = "sqlite::memory:"});
  ASSERT_TRUE(store.ok());
  GateDir g;
  ServeOptions so;
  so.gate = g.gate();
  RunningServer s({}, PlatformRouter(so, **store));
  Client c(s.port());
  const std::string admin = g.Auth(security::Role::kAdmin);
  EXPECT_NE(c.Request("GET", "/healthz").find("\"ok\""), std::string::npos);
  std::string created = c.Request("POST", "/fhir/Patient", R"({"resourceType":"Patient","name":[{"text":"张伟"}]})",
                                  "Content-Type: application/fhir+json\r\n" + admin);
  ASSERT_NE(created.find("201 Created"), std::string::npos) << created;
  EXPECT_NE(created.find("Location: http://test/fhir/Patient/"), std::string::npos);
  // name=张 percent-encoded
  std::string found = c.Request("GET", "/fhir/Patient?name=%E5%BC%A0&_total=accurate", "", admin);
  EXPECT_NE(found.find("\"total\":1"), std::string::npos) << found;
  EXPECT_NE(c.Request("GET", "/fhir/Nope/1", "", admin).find("404"), std::string::npos);
  EXPECT_NE(c.Request("GET", "/fhir/metadata").find("CapabilityStatement"), std::string::npos);
}

TEST(PlatformRouter, ApiNeedsAValidBearerTokenButHealthzAndMetadataDoNot) {
  auto store = store::OpenStore({.url = "sqlite::memory:"});
  ASSERT_TRUE(store.ok());
  GateDir g;
  ServeOptions so;
  so.gate = g.gate();
  so.extra_routes.push_back({"GET", "/api/hl7/status", [](const HttpRequest&) { return HttpResponse::Json(200, "{}"); }});
  RunningServer s({}, PlatformRouter(so, **store));
  Client c(s.port());
  std::string none = c.Request("GET", "/fhir/Patient");
  EXPECT_NE(none.find("401"), std::string::npos) << none;
  EXPECT_NE(none.find("WWW-Authenticate: Bearer"), std::string::npos);
  EXPECT_NE(c.Request("GET", "/fhir/Patient", "", "Authorization: Bearer not.a.token\r\n").find("401"), std::string::npos);
  EXPECT_NE(c.Request("GET", "/fhir/Patient", "", "Authorization: Basic eDp5\r\n").find("401"), std::string::npos);
  EXPECT_NE(c.Request("GET", "/api/hl7/status").find("401"), std::string::npos);  // other layers' routes too
  EXPECT_NE(c.Request("POST", "/fhir", "{}").find("401"), std::string::npos);
  EXPECT_NE(c.Request("GET", "/healthz").find("200 OK"), std::string::npos);
  EXPECT_NE(c.Request("GET", "/fhir/metadata").find("200 OK"), std::string::npos);
  EXPECT_NE(c.Request("GET", "/fhir/Patient", "", g.Auth(security::Role::kAdmin)).find("200 OK"), std::string::npos);
  EXPECT_NE(c.Request("GET", "/api/hl7/status", "", g.Auth(security::Role::kAdmin)).find("200 OK"), std::string::npos);
}

TEST(PlatformRouter, WithoutAGateEverythingButPublicRoutesIsUnavailable) {
  auto store = store::OpenStore({.url = "sqlite::memory:"});
  ASSERT_TRUE(store.ok());
  ServeOptions so;  // no gate, not insecure: secure by default
  RunningServer s({}, PlatformRouter(so, **store));
  Client c(s.port());
  EXPECT_NE(c.Request("GET", "/fhir/Patient").find("503"), std::string::npos);
  EXPECT_NE(c.Request("GET", "/healthz").find("200 OK"), std::string::npos);
}

TEST(PlatformRouter, InsecureDevServesWithoutTokensAndSaysSoInEveryResponse) {
  auto store = store::OpenStore({.url = "sqlite::memory:"});
  ASSERT_TRUE(store.ok());
  ServeOptions so;
  so.insecure_dev = true;
  RunningServer s({}, PlatformRouter(so, **store));
  Client c(s.port());
  std::string r = c.Request("GET", "/fhir/Patient");
  EXPECT_NE(r.find("200 OK"), std::string::npos);
  EXPECT_NE(r.find(std::string(kInsecureHeader) + ": security is OFF"), std::string::npos);
  EXPECT_NE(c.Request("GET", "/healthz").find(kInsecureHeader), std::string::npos);
}

TEST(PlatformRouter, TokenEndpointGrantsClientCredentialsAndPasswordsAndRefusesTheRest) {
  auto store = store::OpenStore({.url = "sqlite::memory:"});
  ASSERT_TRUE(store.ok());
  GateDir g;
  auto secret = g.gate()->accounts().AddClient({.id = "his-1", .org = "47000001"});
  ASSERT_TRUE(secret.ok());
  ASSERT_TRUE(g.gate()->accounts().AddUser({.name = "dr-li", .role = security::Role::kClinician, .org = "47000001"},
                                           "long enough password").ok());
  ServeOptions so;
  so.gate = g.gate();
  RunningServer s({}, PlatformRouter(so, **store));
  Client c(s.port());
  const std::string form = "Content-Type: application/x-www-form-urlencoded\r\n";
  std::string ok = c.Request("POST", "/auth/token", "grant_type=client_credentials&client_id=his-1&client_secret=" + *secret, form);
  ASSERT_NE(ok.find("200 OK"), std::string::npos) << ok;
  EXPECT_NE(ok.find("\"token_type\":\"Bearer\""), std::string::npos);
  EXPECT_NE(ok.find("\"expires_in\":900"), std::string::npos);
  EXPECT_NE(ok.find("Cache-Control: no-store"), std::string::npos);
  const size_t at = ok.find("\"access_token\":\"") + 16;
  const std::string token = ok.substr(at, ok.find('"', at) - at);
  const std::string api = c.Request("GET", "/fhir/Organization", "", "Authorization: Bearer " + token + "\r\n");
  EXPECT_NE(api.find("200 OK"), std::string::npos);
  // API responses are never cached, sniffed or framed; refusals too
  EXPECT_NE(api.find("Cache-Control: no-store"), std::string::npos) << api;
  EXPECT_NE(api.find("X-Content-Type-Options: nosniff"), std::string::npos);
  EXPECT_NE(api.find("frame-ancestors 'none'"), std::string::npos);
  EXPECT_EQ(api.find("Strict-Transport-Security"), std::string::npos);  // plain HTTP: no HSTS
  const std::string refused = c.Request("GET", "/fhir/Organization", "", "Authorization: Bearer nope\r\n");
  EXPECT_NE(refused.find("401"), std::string::npos);
  EXPECT_NE(refused.find("Cache-Control: no-store"), std::string::npos) << refused;
  EXPECT_NE(refused.find("X-Content-Type-Options: nosniff"), std::string::npos);
  // narrower scope: fine; wider: refused
  EXPECT_NE(c.Request("POST", "/auth/token",
                      "grant_type=client_credentials&client_id=his-1&scope=system%2F*.read&client_secret=" + *secret, form)
                .find("\"scope\":\"system/*.read\""),
            std::string::npos);
  EXPECT_NE(c.Request("POST", "/auth/token",
                      "grant_type=client_credentials&client_id=his-1&scope=system%2FPerson.write+admin&client_secret=" + *secret, form)
                .find("invalid_grant"),
            std::string::npos);
  std::string bad = c.Request("POST", "/auth/token", "grant_type=client_credentials&client_id=his-1&client_secret=guess", form);
  EXPECT_NE(bad.find("401"), std::string::npos);
  EXPECT_NE(bad.find("invalid_client"), std::string::npos);
  EXPECT_NE(c.Request("POST", "/auth/token", "grant_type=password&username=dr-li&password=long+enough+password", form)
                .find("200 OK"),
            std::string::npos);
  EXPECT_NE(c.Request("POST", "/auth/token", "grant_type=password&username=dr-li&password=nope", form).find("invalid_grant"),
            std::string::npos);
  EXPECT_NE(c.Request("POST", "/auth/token", "grant_type=implicit", form).find("unsupported_grant_type"), std::string::npos);
  EXPECT_NE(c.Request("POST", "/auth/token", "{}", "Content-Type: application/json\r\n").find("invalid_request"),
            std::string::npos);
}

TEST(PlatformRouter, StaticFilesWithSecurityHeadersAndNoTraversal) {
  auto dir = std::filesystem::temp_directory_path() / ("rhip-static-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "index.html") << "<html>rhip</html>";
  auto store = store::OpenStore({.url = "sqlite::memory:"});
  ASSERT_TRUE(store.ok());
  ServeOptions so;
  so.static_dir = dir.string();
  RunningServer s({}, PlatformRouter(so, **store));
  Client c(s.port());
  std::string r = c.Request("GET", "/");
  EXPECT_NE(r.find("<html>rhip</html>"), std::string::npos);
  EXPECT_NE(r.find("X-Content-Type-Options: nosniff"), std::string::npos);
  EXPECT_NE(r.find("Content-Security-Policy"), std::string::npos);
  EXPECT_NE(c.Request("GET", "/%2e%2e/etc/passwd").find("400"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// `method path` waits until a read on another connection has been answered. With one
// I/O thread that read only gets through if `method path` runs on the blocking pool.
void ExpectSlowRouteLeavesTheIoThreadFree(const std::string& method, const std::string& path, int status) {
  std::promise<void> read_done;
  std::shared_future<void> done = read_done.get_future().share();
  Router r;
  r.Add(method, path, [done, status](const HttpRequest&) {
    const bool ok = done.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
    return HttpResponse::Json(ok ? status : 500, "{}");
  });
  r.Add("GET", "/fast", [&read_done](const HttpRequest&) {
    read_done.set_value();
    return HttpResponse::Json(200, "{}");
  });
  ServerOptions o;
  o.threads = 1;
  RunningServer server(o, std::move(r));
  Client slow(server.port());
  slow.SendRaw(method + " " + path + " HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n");
  Client reader(server.port());
  EXPECT_EQ(reader.Request("GET", "/fast").rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(slow.ReadResponse().rfind("HTTP/1.1 " + std::to_string(status), 0), 0u);  // 500 if it held up /fast
}

// A write waiting on the store sits on the blocking pool, not on an I/O thread.
TEST(HttpServer, WritesWaitOffTheIoThreadsSoReadsKeepFlowing) { ExpectSlowRouteLeavesTheIoThreadFree("POST", "/slow", 201); }

// An operation ($everything, $export …) may run long even as a GET: the blocking pool too.
TEST(HttpServer, OperationsRunOffTheIoThreadsSoReadsKeepFlowing) {
  ExpectSlowRouteLeavesTheIoThreadFree("GET", "/fhir/Patient/1/$everything", 200);
}

TEST(PlatformRouter, RateLimitsEachClientAndTellsItWhenToRetry) {
  auto store = store::OpenStore({.url = "sqlite::memory:"});
  ASSERT_TRUE(store.ok());
  GateDir g({.rate = 0.001, .burst = 3});  // three requests, then (practically) none
  ServeOptions so;
  so.gate = g.gate();
  RunningServer s({}, PlatformRouter(so, **store));
  Client c(s.port());
  const std::string one = g.Auth(security::Role::kAdmin);
  for (int i = 0; i < 3; ++i) EXPECT_NE(c.Request("GET", "/fhir/Organization", "", one).find("200 OK"), std::string::npos);
  std::string limited = c.Request("GET", "/fhir/Organization", "", one);
  EXPECT_NE(limited.find("429"), std::string::npos) << limited;
  EXPECT_NE(limited.find("Retry-After: 1"), std::string::npos);
  // another client (another token subject) has its own bucket
  security::Principal p{.subject = "someone-else", .role = security::Role::kCdc};
  p.scopes = security::DefaultScopes(p.role, true);
  const std::string else_auth = "Authorization: Bearer " + *g.gate()->tokens().Issue(p, 600) + "\r\n";
  EXPECT_NE(c.Request("GET", "/fhir/Organization", "", else_auth).find("200 OK"), std::string::npos);
  // guessing tokens from one address is limited too
  for (int i = 0; i < 3; ++i) c.Request("GET", "/fhir/Organization", "", "Authorization: Bearer guess." + std::to_string(i) + ".x\r\n");
  EXPECT_NE(c.Request("GET", "/fhir/Organization", "", "Authorization: Bearer guess.9.x\r\n").find("429"), std::string::npos);
}

TEST(PlatformRouter, CorsOnlyForConfiguredOrigins) {
  auto store = store::OpenStore({.url = "sqlite::memory:"});
  ASSERT_TRUE(store.ok());
  GateDir g;
  ServeOptions so;
  so.gate = g.gate();
  so.cors_origins = {"https://portal.rhip.example"};
  RunningServer s({}, PlatformRouter(so, **store));
  Client c(s.port());
  const std::string pre = "Origin: https://portal.rhip.example\r\nAccess-Control-Request-Method: GET\r\n";
  std::string ok = c.Request("OPTIONS", "/fhir/Patient", "", pre);
  EXPECT_NE(ok.find("204"), std::string::npos) << ok;
  EXPECT_NE(ok.find("Access-Control-Allow-Origin: https://portal.rhip.example"), std::string::npos);
  EXPECT_NE(ok.find("Authorization"), std::string::npos);
  std::string evil = c.Request("OPTIONS", "/fhir/Patient", "", "Origin: https://evil.example\r\nAccess-Control-Request-Method: GET\r\n");
  EXPECT_NE(evil.find("403"), std::string::npos);
  EXPECT_EQ(evil.find("Access-Control-Allow-Origin"), std::string::npos);
  const std::string admin = g.Auth(security::Role::kAdmin);
  EXPECT_NE(c.Request("GET", "/fhir/Organization", "", admin + "Origin: https://portal.rhip.example\r\n")
                .find("Access-Control-Allow-Origin: https://portal.rhip.example"),
            std::string::npos);
  EXPECT_EQ(c.Request("GET", "/fhir/Organization", "", admin + "Origin: https://evil.example\r\n").find("Access-Control-Allow-Origin"),
            std::string::npos);
}

TEST(PlatformRouter, DeeplyNestedJsonIsRefusedBeforeItReachesTheStore) {
  auto store = store::OpenStore({.url = "sqlite::memory:"});
  ASSERT_TRUE(store.ok());
  GateDir g;
  ServeOptions so;
  so.gate = g.gate();
  RunningServer s({}, PlatformRouter(so, **store));
  Client c(s.port());
  std::string deep = R"({"resourceType":"Patient","extension":)" + std::string(200, '[') + std::string(200, ']') + "}";
  std::string r = c.Request("POST", "/fhir/Patient", deep, "Content-Type: application/fhir+json\r\n" + g.Auth(security::Role::kAdmin));
  EXPECT_NE(r.find("400"), std::string::npos) << r.substr(0, 300);
  EXPECT_NE(r.find("deep"), std::string::npos) << r.substr(0, 400);
  EXPECT_EQ(*(*store)->Count("Patient"), 0);
}

}  // namespace
}  // namespace rhip::http
