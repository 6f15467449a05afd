#include "rhip/ingest/mllp_server.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <array>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "rhip/core/log.h"
#include "rhip/core/tls.h"
#include "rhip/hl7/message.h"

namespace rhip::ingest {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr char kStart = 0x0B, kEnd = 0x1C, kCr = 0x0D;
constexpr size_t kMaxGarbage = 4096;  // bytes outside any frame before we give up on a peer
constexpr size_t kHeadBytes = 4096;   // kept of an oversized frame, to answer it

struct Frame {
  std::string message;
  bool oversized = false;
};

}  // namespace

std::string MllpFrame(std::string_view message) {
  std::string out;
  out.reserve(message.size() + 3);
  out += kStart;
  out += message;
  out += kEnd;
  out += kCr;
  return out;
}

struct MllpServer::Impl {
  class Session;

  Impl(MllpOptions o, MllpHandler h)
      : options(std::move(o)), handler(std::move(h)), acceptor(ioc), workers(static_cast<size_t>(std::max(1, options.workers))) {}

  void Accept();

  void Forget(Session* s) {
    std::lock_guard lock(mu);
    sessions.erase(s);
  }

  MllpOptions options;
  MllpHandler handler;
  // Declared before the io_context so they outlive it: destroying it destroys
  // pending handlers, whose sessions unregister themselves here.
  std::mutex mu;
  std::condition_variable idle_cv;
  int in_flight = 0;  // messages in the handler (guarded by mu)
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;
  asio::io_context ioc;
  tcp::acceptor acceptor;
  asio::thread_pool workers;
  std::unique_ptr<asio::ssl::context> tls;  // null: plain MLLP
  std::vector<std::thread> threads;
  std::atomic<bool> stopping{false};
  int port = 0;
  bool started = false;
};

// One connection; every callback runs on the socket's strand.
class MllpServer::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Impl& impl, tcp::socket socket) : impl_(impl), socket_(std::move(socket)), timer_(socket_.get_executor()) {
    boost::system::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    peer_ = ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
    if (impl_.tls) tls_.emplace(socket_, *impl_.tls);
  }
  ~Session() { impl_.Forget(this); }

  void Start() {
    if (!tls_) return ReadMore();
    // The handshake first, bounded: a peer that sends nothing (or plain MLLP) does not hold the slot.
    timer_.expires_after(impl_.options.handshake_timeout);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) {
        log::Warn("mllp peer={} no TLS handshake within {} s: closing", self->peer_, self->impl_.options.handshake_timeout.count());
        self->Close();
      }
    });
    tls_->async_handshake(asio::ssl::stream_base::server, [self = shared_from_this()](boost::system::error_code ec) {
      self->timer_.cancel();
      if (ec) {
        // Plain MLLP on the TLS port, an untrusted client certificate …: nothing to answer.
        log::Warn("mllp peer={} TLS handshake failed: {}", self->peer_, ec.message());
        return self->Close();
      }
      self->cn_ = PeerCommonName(self->tls_->native_handle());
      self->ReadMore();
    });
  }

  void Close() {
    boost::system::error_code ec;
    timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

  asio::any_io_executor executor() { return socket_.get_executor(); }

 private:
  void ReadMore() {
    if (impl_.stopping) return Close();
    reading_ = true;
    reading_since_ = std::chrono::steady_clock::now();
    if (!watching_) {
      watching_ = true;
      WatchIdle(impl_.options.idle_timeout);
    }
    auto on_read = [self = shared_from_this()](boost::system::error_code ec, size_t n) {
      self->reading_ = false;
      if (ec) {
        if (self->state_ != State::kOutside && ec == asio::error::eof)
          log::Warn("mllp peer={} closed the connection inside a frame ({} bytes): nothing acknowledged", self->peer_,
                    self->frame_.size());
        return self->Close();
      }
      self->Consume(self->buf_.data(), n);
      if (self->broken_) {
        log::Warn("mllp peer={} sent {}+ bytes outside any MLLP frame: closing", self->peer_, kMaxGarbage);
        return self->Close();
      }
      self->Next();
    };
    if (tls_) tls_->async_read_some(asio::buffer(buf_), std::move(on_read));
    else socket_.async_read_some(asio::buffer(buf_), std::move(on_read));
  }

  // The idle clock: one timer per connection, re-armed when it fires rather than for every
  // message (arming a timer per message cost a timerfd update and a cancelled handler). A
  // peer idles only while we wait for its bytes; a message being processed is not idle.
  void WatchIdle(std::chrono::steady_clock::duration wait) {
    timer_.expires_after(wait);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || !self->socket_.is_open()) return;
      const auto timeout = std::chrono::duration_cast<std::chrono::steady_clock::duration>(self->impl_.options.idle_timeout);
      const auto idle = std::chrono::steady_clock::now() - self->reading_since_;
      if (!self->reading_ || idle < timeout) return self->WatchIdle(self->reading_ ? timeout - idle : timeout);
      log::Info("mllp peer={} idle for {} s: closing", self->peer_, self->impl_.options.idle_timeout.count());
      self->Close();
    });
  }

  void Next() {
    if (ready_.empty()) return ReadMore();
    Frame f = std::move(ready_.front());
    ready_.pop_front();
    {
      std::lock_guard lock(impl_.mu);
      ++impl_.in_flight;
    }
    auto work = [self = shared_from_this(), f = std::move(f)]() mutable -> std::string {
      std::string ack;
      if (f.oversized) {
        hl7::Hl7Error e;
        e.code = hl7::ErrorCode::kApplicationInternal;
        e.reject = true;
        e.text = "the message exceeds " + std::to_string(self->impl_.options.max_message_bytes) +
                 " bytes and was not read; split it or send the attachments another way";
        ack = hl7::BuildAck(hl7::Identify(f.message), hl7::AckCode::kReject, &e, "RHIPBIG", "");
        log::Warn("mllp peer={} message over {} bytes refused", self->peer_, self->impl_.options.max_message_bytes);
      } else {
        ack = self->impl_.handler(f.message, MllpPeer{.address = self->peer_, .tls = self->tls_.has_value(), .certificate_cn = self->cn_});
      }
      return ack;
    };
    if (impl_.options.workers > 0) {
      asio::post(impl_.workers, [self = shared_from_this(), work = std::move(work)]() mutable {
        asio::post(self->executor(), [self, ack = work()]() mutable { self->Write(std::move(ack)); });
      });
    } else {
      Write(work());  // on this connection's strand already
    }
  }

  void Write(std::string ack) {
    out_ = MllpFrame(ack);
    auto on_written = [self = shared_from_this()](boost::system::error_code ec, size_t) {
      {
        std::lock_guard lock(self->impl_.mu);
        --self->impl_.in_flight;
      }
      self->impl_.idle_cv.notify_all();
      if (ec) return self->Close();
      self->Next();
    };
    if (tls_) asio::async_write(*tls_, asio::buffer(out_), std::move(on_written));
    else asio::async_write(socket_, asio::buffer(out_), std::move(on_written));
  }

  // MLLP framing across reads. Inside a frame the bytes up to the next start or end
  // byte are taken as one span.
  void Consume(const char* data, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      const char c = data[i];
      switch (state_) {
        case State::kOutside:
          if (c == kStart) {
            state_ = State::kInside;
            frame_.clear();
          } else if (c != '\r' && c != '\n' && c != ' ' && c != kEnd && ++garbage_ > kMaxGarbage) {
            broken_ = true;
            return;
          }
          break;
        case State::kInside: {
          size_t j = i;
          while (j < n && data[j] != kEnd && data[j] != kStart) ++j;
          const size_t span = j - i;
          if (frame_.size() + span > impl_.options.max_message_bytes) {
            // Too big: keep its head (to answer it) and skip the rest up to its end.
            if (frame_.size() < kHeadBytes) frame_.append(data + i, std::min(span, kHeadBytes - frame_.size()));
            frame_.resize(std::min(frame_.size(), kHeadBytes));
            frame_.shrink_to_fit();
            state_ = State::kDiscarding;
            i = j - 1;  // the start or end byte at j (if any) is seen by the discarding state
            break;
          }
          frame_.append(data + i, span);
          i = j;
          if (i == n) return;
          if (data[i] == kEnd) {
            ready_.push_back({std::move(frame_), false});
            frame_.clear();
            state_ = State::kOutside;
            garbage_ = 0;
          } else {  // a new frame before the last one ended: that one was truncated
            log::Warn("mllp peer={} frame of {} bytes had no end: discarded", peer_, frame_.size());
            frame_.clear();
          }
          break;
        }
        case State::kDiscarding:
          if (c == kEnd) {
            ready_.push_back({std::move(frame_), true});
            frame_.clear();
            state_ = State::kOutside;
          }
          break;
      }
    }
  }

  enum class State { kOutside, kInside, kDiscarding };
  Impl& impl_;
  tcp::socket socket_;
  std::optional<asio::ssl::stream<tcp::socket&>> tls_;  // over socket_, when the listener is TLS
  asio::steady_timer timer_;
  std::string peer_;
  std::string cn_;  // verified client certificate's CN (mutual TLS)
  std::array<char, 64 * 1024> buf_{};
  bool watching_ = false;  // the idle timer runs
  bool reading_ = false;   // waiting for the peer's bytes, since reading_since_
  std::chrono::steady_clock::time_point reading_since_;
  State state_ = State::kOutside;
  std::string frame_;
  size_t garbage_ = 0;
  bool broken_ = false;
  std::deque<Frame> ready_;  // whole frames not yet answered (a client may pipeline)
  std::string out_;
};

void MllpServer::Impl::Accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](boost::system::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec != asio::error::operation_aborted) log::Warn("mllp accept failed: {}", ec.message());
      if (!stopping && acceptor.is_open()) Accept();
      return;
    }
    auto s = std::make_shared<Session>(*this, std::move(socket));
    {
      std::lock_guard lock(mu);
      sessions[s.get()] = s;
    }
    s->Start();
    Accept();
  });
}

MllpServer::MllpServer(MllpOptions options, MllpHandler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

MllpServer::~MllpServer() { Stop(); }

Status MllpServer::Start() {
  Impl& s = *impl_;
  boost::system::error_code ec;
  if (!s.options.tls_cert.empty() || !s.options.tls_key.empty() || !s.options.tls_client_ca.empty()) {
    // The same settings as HTTPS (core/tls.h).
    auto ctx = MakeTlsServerContext({.cert = s.options.tls_cert, .key = s.options.tls_key, .client_ca = s.options.tls_client_ca});
    if (!ctx.ok()) return ctx.status();
    s.tls = std::move(*ctx);
  }
  const auto address = asio::ip::make_address(s.options.bind, ec);
  if (ec) return InvalidArgument("--bind '" + s.options.bind + "' is not an IP address");
  const tcp::endpoint ep(address, static_cast<unsigned short>(s.options.port));
  s.acceptor.open(ep.protocol(), ec);
  if (!ec) s.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(ep, ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status(StatusCode::kUnavailable, "cannot listen for MLLP on " + s.options.bind + ":" +
                                                std::to_string(s.options.port) + ": " + ec.message());
  }
  s.port = s.acceptor.local_endpoint().port();
  s.Accept();
  for (int i = 0; i < std::max(1, s.options.io_threads); ++i) {
    s.threads.emplace_back([&s] {
      pthread_setname_np(pthread_self(), "rhip-mllp");
      s.ioc.run();
    });
  }
  s.started = true;
  log::Info("mllp listening on {}:{}{}", s.options.bind, s.port,
            s.tls ? (s.options.tls_client_ca.empty() ? " (TLS)" : " (TLS, client certificates required)") : "");
  return Status::Ok();
}

int MllpServer::port() const { return impl_->port; }

void MllpServer::Stop() {
  Impl& s = *impl_;
  if (!s.started || s.stopping.exchange(true)) return;
  asio::post(s.ioc, [&s] {
    boost::system::error_code ec;
    s.acceptor.close(ec);
  });
  {
    // Messages in the handler finish and their ACKs are written.
    std::unique_lock lock(s.mu);
    s.idle_cv.wait_for(lock, std::chrono::seconds(15), [&] { return s.in_flight == 0; });
  }
  std::vector<std::shared_ptr<Impl::Session>> open;
  {
    std::lock_guard lock(s.mu);
    for (auto& [p, w] : s.sessions)
      if (auto sp = w.lock()) open.push_back(sp);
  }
  for (auto& sp : open) asio::post(sp->executor(), [sp] { sp->Close(); });
  open.clear();
  s.workers.join();
  s.ioc.stop();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
  log::Info("mllp stopped");
}

struct MllpClient::Impl {
  asio::io_context ioc;
  tcp::socket socket{ioc};
  std::string pending;  // bytes read past the last reply
};

MllpClient::MllpClient() : impl_(std::make_unique<Impl>()) {}
MllpClient::~MllpClient() = default;
MllpClient::MllpClient(MllpClient&&) noexcept = default;
MllpClient& MllpClient::operator=(MllpClient&&) noexcept = default;

Status MllpClient::Connect(const std::string& host, int port) {
  boost::system::error_code ec;
  tcp::resolver resolver(impl_->ioc);
  auto endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (!ec) asio::connect(impl_->socket, endpoints, ec);
  if (!ec) impl_->socket.set_option(tcp::no_delay(true), ec);
  if (ec) return Status(StatusCode::kUnavailable, "cannot connect to " + host + ":" + std::to_string(port) + ": " + ec.message());
  return Status::Ok();
}

StatusOr<std::string> MllpClient::Send(std::string_view message) {
  boost::system::error_code ec;
  asio::write(impl_->socket, asio::buffer(MllpFrame(message)), ec);
  if (ec) return Status(StatusCode::kUnavailable, "send failed: " + ec.message());
  std::string& in = impl_->pending;
  while (true) {
    const size_t start = in.find(kStart);
    const size_t end = start == std::string::npos ? std::string::npos : in.find(kEnd, start);
    if (end != std::string::npos) {
      std::string reply = in.substr(start + 1, end - start - 1);
      in.erase(0, end + 1 < in.size() && in[end + 1] == kCr ? end + 2 : end + 1);
      return reply;
    }
    char buf[8192];
    const size_t n = impl_->socket.read_some(asio::buffer(buf), ec);
    if (ec) return Status(StatusCode::kUnavailable, "no acknowledgement: " + ec.message());
    in.append(buf, n);
  }
}

}  // namespace rhip::ingest
