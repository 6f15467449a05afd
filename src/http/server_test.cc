#include "rhip/http/server.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "rhip/http/serve.h"
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

TEST(PlatformRouter, FhirHealthzAndDecodedChineseQuery) {
  auto store = store::OpenStore({.url = "sqlite::memory:"});
  ASSERT_TRUE(store.ok());
  ServeOptions so;
  RunningServer s({}, PlatformRouter(so, **store));
  Client c(s.port());
  EXPECT_NE(c.Request("GET", "/healthz").find("\"ok\""), std::string::npos);
  std::string created = c.Request("POST", "/fhir/Patient", R"({"resourceType":"Patient","name":[{"text":"张伟"}]})",
                                  "Content-Type: application/fhir+json\r\n");
  ASSERT_NE(created.find("201 Created"), std::string::npos) << created;
  EXPECT_NE(created.find("Location: http://test/fhir/Patient/"), std::string::npos);
  // name=张 percent-encoded
  std::string found = c.Request("GET", "/fhir/Patient?name=%E5%BC%A0&_total=accurate");
  EXPECT_NE(found.find("\"total\":1"), std::string::npos) << found;
  EXPECT_NE(c.Request("GET", "/fhir/Nope/1").find("404"), std::string::npos);
  EXPECT_NE(c.Request("GET", "/fhir/metadata").find("CapabilityStatement"), std::string::npos);
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

// A write waiting on the store (here: on a read that must come first) sits on the
// blocking pool, not on an I/O thread: with one I/O thread the read still gets through.
TEST(HttpServer, WritesWaitOffTheIoThreadsSoReadsKeepFlowing) {
  std::promise<void> read_done;
  std::shared_future<void> done = read_done.get_future().share();
  Router r;
  r.Add("POST", "/slow", [done](const HttpRequest&) {
    const bool ok = done.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
    return HttpResponse::Json(ok ? 201 : 500, "{}");
  });
  r.Add("GET", "/fast", [&read_done](const HttpRequest&) {
    read_done.set_value();
    return HttpResponse::Json(200, "{}");
  });
  ServerOptions o;
  o.threads = 1;
  RunningServer server(o, std::move(r));
  Client writer(server.port());
  writer.SendRaw("POST /slow HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n");
  Client reader(server.port());
  EXPECT_EQ(reader.Request("GET", "/fast").rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(writer.ReadResponse().rfind("HTTP/1.1 201", 0), 0u);
}

}  // namespace
}  // namespace rhip::http
