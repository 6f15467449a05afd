#include "rhip/http/server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <pthread.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "rhip/core/log.h"
#include "rhip/core/tls.h"

namespace rhip::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

std::string_view HttpRequest::Header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return v;
  return {};
}

HttpResponse HttpResponse::Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::Error(int status, std::string_view code, std::string_view message) {
  std::string esc;
  for (char c : MaskIdentifiers(message)) {
    if (c == '"' || c == '\\') esc += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    esc += c;
  }
  return Json(status, std::string(R"({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":")") +
                          std::string(code) + R"(","diagnostics":")" + esc + R"("}]})");
}

void Router::Add(std::string method, std::string prefix, Handler handler) {
  routes_.push_back({std::move(method), std::move(prefix), std::move(handler)});
}

const Handler* Router::Match(std::string_view method, std::string_view path) const {
  const Route* best = nullptr;
  for (const Route& r : routes_) {
    if (!r.method.empty() && r.method != method && !(r.method == "GET" && method == "HEAD")) continue;
    bool match = path == r.prefix ||
                 (path.size() > r.prefix.size() && path.rfind(r.prefix, 0) == 0 &&
                  (r.prefix.back() == '/' || path[r.prefix.size()] == '/'));
    if (match && (!best || r.prefix.size() > best->prefix.size())) best = &r;
  }
  return best ? &best->handler : nullptr;
}

namespace {

int DefaultThreads() {
  int hw = static_cast<int>(std::thread::hardware_concurrency());
  // One per core: each runs its own io_context, so more threads than cores only
  // add context switches (bench/RESULTS.md: 2 threads on 2 cores cost 27 µs per
  // /healthz and 110 µs per read, 4 threads 39-48 and 137-189 µs).
  return std::max(2, hw);
}

}  // namespace

struct HttpServer::Impl {
  ServerOptions options;
  Router router;
  // One io_context per I/O thread, each run by that thread alone: a connection
  // lives on one of them (round robin at accept), so its handlers never meet
  // another thread's (no strands, no cross-thread wake-ups inside Asio's
  // scheduler). contexts[0] also holds the acceptor, the signals and the drain timer.
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  size_t next_context = 0;  // only the accept handler (on contexts[0]) touches it
  asio::io_context& ioc;
  tcp::acceptor acceptor{ioc};
  asio::signal_set signals{ioc};
  std::atomic<bool> stopping{false};
  std::atomic<int> in_flight{0};
  asio::steady_timer drain_timer{ioc};                        // used only by the PollDrained chain
  std::chrono::steady_clock::time_point drain_deadline;      // set once, on the io_context
  std::atomic<int64_t> next_id{1};
  int bound_port = 0;
  // TLS (--tls-cert/--tls-key): set up by Listen; null = plain HTTP.
  std::unique_ptr<asio::ssl::context> tls;
  std::optional<asio::thread_pool> blocking_pool;  // handlers of writes; none when blocking_threads = 0

  static asio::io_context& MakeContexts(std::vector<std::unique_ptr<asio::io_context>>& contexts, int n) {
    for (int i = 0; i < std::max(1, n); ++i) contexts.push_back(std::make_unique<asio::io_context>(1));
    return *contexts[0];
  }

  Impl(ServerOptions o, Router r)
      : options(std::move(o)),
        router(std::move(r)),
        ioc(MakeContexts(contexts, options.threads > 0 ? options.threads : DefaultThreads())) {
    for (auto& c : contexts) guards.push_back(asio::make_work_guard(*c));
    if (options.blocking_threads > 0) blocking_pool.emplace(static_cast<size_t>(options.blocking_threads));
  }

  // One connection; Stream is beast::tcp_stream (HTTP) or ssl_stream over it (HTTPS).
  template <class Stream>
  class Session : public std::enable_shared_from_this<Session<Stream>> {
   public:
    template <class... Extra>
    Session(tcp::socket socket, Impl* server, Extra&... extra) : stream_(std::move(socket), extra...), server_(server) {
      beast::error_code ec;
      auto ep = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
      if (!ec) remote_ = ep.address().to_string();
    }
    void Start() {
      asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
        if constexpr (kTls) {
          beast::get_lowest_layer(self->stream_).expires_after(self->server_->options.read_timeout);
          self->stream_.async_handshake(asio::ssl::stream_base::server, [self](beast::error_code ec) {
            if (ec) return self->Close();  // not TLS, bad certificate …: nothing to answer
            self->Read();
          });
        } else {
          self->Read();
        }
      });
    }

   private:
    static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
    auto& Lowest() { return beast::get_lowest_layer(stream_); }
    void Read() {
      parser_.emplace();
      parser_->body_limit(server_->options.body_limit);
      parser_->header_limit(64 * 1024);
      Lowest().expires_after(first_ ? server_->options.read_timeout : server_->options.idle_timeout);
      bhttp::async_read(stream_, buffer_, *parser_,
                        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
    }

    void OnRead(beast::error_code ec) {
      first_ = false;
      if (ec == bhttp::error::body_limit) {
        HttpResponse r = HttpResponse::Error(413, "too-costly",
                                             "request body exceeds the limit of " +
                                                 std::to_string(server_->options.body_limit) + " bytes");
        Send(std::move(r), false, "-", "-", 0);
        return;
      }
      if (ec == bhttp::error::header_limit) {
        Send(HttpResponse::Error(431, "too-costly", "request headers too large"), false, "-", "-", 0);
        return;
      }
      if (ec) {
        if (ec != bhttp::error::end_of_stream && ec != beast::error::timeout && ec != asio::error::operation_aborted &&
            ec != asio::error::connection_reset) {
          if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category()) {
            Send(HttpResponse::Error(400, "structure", "malformed HTTP request: " + ec.message()), false, "-", "-", 0);
            return;
          }
        }
        Close();
        return;
      }
      ++server_->in_flight;
      auto start = std::chrono::steady_clock::now();
      auto& req = parser_->get();
      HttpRequest r;
      r.method = std::string(req.method_string());
      std::string_view target(req.target().data(), req.target().size());
      size_t q = target.find('?');
      r.path = std::string(target.substr(0, q));
      if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
      r.headers.reserve(16);
      for (const auto& f : req) {
        std::string name(f.name_string());
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
        r.headers.emplace_back(std::move(name), std::string(f.value()));
      }
      r.body = std::move(req.body());
      r.host = std::string(req[bhttp::field::host]);
      r.remote = remote_;
      r.tls = kTls;
      const bool keep_alive = req.keep_alive() && !server_->stopping.load();
      const Handler* h = server_->router.Match(r.method, r.path);
      if (!h) {
        Finish(HttpResponse::Error(404, "not-found", "no such path: " + r.path), keep_alive, r.method, target, start);
        return;
      }
      // A write blocks until the store's group commit is durable: it waits on the
      // blocking pool, so the I/O threads keep serving reads and many writers can
      // share one commit. Operations ($everything, $export …) may run long: they
      // go there too, so they never hold up the other connections of this thread.
      if (server_->blocking_pool && (r.method == "POST" || r.method == "PUT" || r.method == "PATCH" ||
                                     r.method == "DELETE" || r.path.find("/$") != std::string::npos)) {
        asio::post(*server_->blocking_pool, [self = this->shared_from_this(), h, r = std::move(r), keep_alive, target,
                                             start]() mutable {
          HttpResponse resp = (*h)(r);
          asio::post(self->stream_.get_executor(),
                     [self, resp = std::move(resp), keep_alive, method = std::move(r.method), target, start]() mutable {
                       self->Finish(std::move(resp), keep_alive, method, target, start);
                     });
        });
        return;
      }
      Finish((*h)(r), keep_alive, r.method, target, start);
    }

    void Finish(HttpResponse resp, bool keep_alive, const std::string& method, std::string_view target,
                std::chrono::steady_clock::time_point start) {
      if (method == "HEAD") {
        head_length_ = resp.body.size();
        resp.body.clear();
      } else {
        head_length_ = std::string::npos;
      }
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
      Send(std::move(resp), keep_alive, method, target, us);
    }

    void Send(HttpResponse r, bool keep_alive, std::string_view method, std::string_view target, int64_t us) {
      auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
      res->version(11);
      res->result(static_cast<unsigned>(r.status));
      res->set(bhttp::field::server, "rhip");
      if (!r.body.empty() || head_length_ != std::string::npos || r.status != 204)
        res->set(bhttp::field::content_type, r.content_type);
      for (auto& [k, v] : r.headers) res->set(k, v);
      const size_t bytes = r.body.size();
      res->body() = std::move(r.body);
      res->keep_alive(keep_alive);
      if (head_length_ != std::string::npos && res->body().empty()) {
        res->content_length(head_length_);
      } else {
        res->prepare_payload();
      }
      if (server_->options.access_log && method != "-") {
        log::Access("id={} remote={} method={} target=\"{}\" status={} bytes={} dur_us={}",
                  server_->next_id++, remote_, method, target, r.status, bytes, us);
      }
      res_ = res;
      Lowest().expires_after(server_->options.read_timeout);
      const bool counted = method != "-";
      bhttp::async_write(stream_, *res, [self = this->shared_from_this(), keep_alive, counted, res](beast::error_code ec, size_t) {
        if (counted) --self->server_->in_flight;
        self->res_.reset();
        if (ec || !keep_alive) {
          self->Close();
          return;
        }
        self->Read();
      });
    }

    void Close() {
      beast::error_code ec;
      Lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
      Lowest().close();
    }

    Stream stream_;
    beast::flat_buffer buffer_;
    std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
    std::shared_ptr<void> res_;
    Impl* server_;
    std::string remote_;
    bool first_ = true;
    size_t head_length_ = std::string::npos;
  };

  void Accept() {
    asio::io_context& target = *contexts[next_context++ % contexts.size()];
    acceptor.async_accept(target, [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      } else if (stopping.load()) {
        return;  // accepted while shutting down: the socket closes here
      } else {
        socket.set_option(tcp::no_delay(true), ec);
        if (tls)
          std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(std::move(socket), this, *tls)->Start();
        else
          std::make_shared<Session<beast::tcp_stream>>(std::move(socket), this)->Start();
      }
      if (!stopping.load()) Accept();
    });
  }

  // Graceful shutdown runs on the io_context itself (no helper thread may
  // outlive Run()): stop accepting, then poll until no request is in flight or
  // the grace period ends, then stop the loop. Run() joins its threads, so a
  // handler still inside the store finishes before Run() returns.
  void BeginShutdown() {
    if (stopping.exchange(true)) return;
    asio::post(ioc, [this] {
      beast::error_code ec;
      acceptor.close(ec);
      signals.cancel(ec);
      drain_deadline = std::chrono::steady_clock::now() + options.shutdown_grace;
      PollDrained();
    });
  }

  void PollDrained() {
    if (in_flight.load() == 0 || std::chrono::steady_clock::now() >= drain_deadline) {
      for (auto& c : contexts) c->stop();
      return;
    }
    drain_timer.expires_after(std::chrono::milliseconds(5));
    drain_timer.async_wait([this](beast::error_code ec) {
      if (!ec) PollDrained();
    });
  }
};

HttpServer::HttpServer(ServerOptions options, Router router)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(router))) {}

HttpServer::~HttpServer() = default;

Status HttpServer::Listen() {
  beast::error_code ec;
  if (!impl_->options.tls_cert.empty() || !impl_->options.tls_key.empty()) {
    // The same settings as every TLS listener (core/tls.h): TLS 1.2+, key matching the certificate.
    auto ctx = MakeTlsServerContext({.cert = impl_->options.tls_cert, .key = impl_->options.tls_key, .client_ca = {}});
    if (!ctx.ok()) return ctx.status();
    impl_->tls = std::move(*ctx);
  }
  auto address = asio::ip::make_address(impl_->options.bind, ec);
  if (ec) return InvalidArgument("cannot listen on '" + impl_->options.bind + "': not an IP address");
  tcp::endpoint ep(address, static_cast<unsigned short>(impl_->options.port));
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status(StatusCode::kUnavailable, "cannot listen on " + impl_->options.bind + ":" +
                                                std::to_string(impl_->options.port) + ": " + ec.message() +
                                                " (is another server using the port? try --port)");
  }
  impl_->bound_port = a.local_endpoint().port();
  return Status::Ok();
}

int HttpServer::port() const { return impl_->bound_port; }

void HttpServer::Run() {
  Impl& s = *impl_;
  if (s.options.handle_signals) {
    s.signals.add(SIGINT);
    s.signals.add(SIGTERM);
    s.signals.async_wait([&s](beast::error_code ec, int sig) {
      if (ec) return;
      log::Info("signal={} shutting down: finishing in-flight requests", sig);
      s.BeginShutdown();
    });
  }
  s.Accept();
  std::vector<std::thread> threads;
  for (size_t i = 1; i < s.contexts.size(); ++i)
    threads.emplace_back([&s, i] {
      pthread_setname_np(pthread_self(), "rhip-http");
      s.contexts[i]->run();
    });
  s.ioc.run();
  for (auto& t : threads) t.join();
  if (s.blocking_pool) s.blocking_pool->join();  // writes that outlived the grace period finish before Run returns
}

void HttpServer::Stop() { impl_->BeginShutdown(); }

}  // namespace rhip::http
