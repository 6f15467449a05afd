// The HL7 v2 listener: MLLP (Minimal Lower Layer Protocol) over TCP, Boost.Asio.
//
// A frame is <VT 0x0B> message <FS 0x1C><CR 0x0D>. Each connection is served
// in order: one frame is read, handed to the handler (on the I/O thread, or a
// worker pool; its writes wait for the store's group commit, so concurrent
// connections share commits), and its ACK written back before the next frame
// is taken. Bad framing:
//   - bytes outside a frame are skipped (whitespace) or, beyond a few KB of
//     garbage, close the connection;
//   - a frame larger than max_message_bytes is read to its end and discarded,
//     and answered with AR ("message too large") built from its MSH;
//   - a connection that closes mid-frame, or sends nothing for idle_timeout,
//     is closed; nothing was acknowledged, so nothing is lost.
// One misbehaving connection never stops the others.
//
// TLS (tls_cert/tls_key; `rhip serve --tls-cert/--tls-key` turns it on for
// MLLP as for HTTPS, core/tls.h): every connection starts with a TLS handshake
// (TLS 1.2+, within handshake_timeout); a client that does not speak TLS — a
// plain MLLP sender — fails the handshake and is closed without an answer.
// Framing, ACKs and durability are the same inside TLS. With tls_client_ca
// (mutual TLS) a client must present a certificate that CA issued; its subject
// CN is handed to the handler as the peer's identity (MllpPeer::certificate_cn).
//
// Thread-safety: Start/Stop from one thread; the handler is called concurrently.
//
// Example:
//   MllpServer mllp({.port = 2575}, [&](std::string_view msg, const MllpPeer&) { return processor.Process(msg); });
//   RETURN_IF_ERROR(mllp.Start());
//   ...
//   mllp.Stop();  // finishes the messages in hand, then closes
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "rhip/core/status.h"

namespace rhip::ingest {

struct MllpOptions {
  std::string bind = "127.0.0.1";
  int port = 2575;  // 0 = any free port (see port())
  // Messages are processed on the I/O thread that read them (a thread per
  // connection being processed; the store's group commit is shared by all of
  // them), which costs two thread hand-offs fewer per message than a pool.
  int io_threads = 8;
  int workers = 0;  // > 0: process on a pool of this many threads instead
  size_t max_message_bytes = 16 * 1024 * 1024;
  std::chrono::seconds idle_timeout{300};
  // TLS: PEM certificate chain and key (both or neither); client CA for mutual TLS.
  std::string tls_cert, tls_key, tls_client_ca;
  std::chrono::seconds handshake_timeout{10};
};

// Who sent a message, as far as the connection tells.
struct MllpPeer {
  std::string address;         // "ip:port"
  bool tls = false;
  std::string certificate_cn;  // subject CN of the verified client certificate (mutual TLS), else ""
};

// Returns the ACK (the bytes to frame and send back) for one message.
using MllpHandler = std::function<std::string(std::string_view message, const MllpPeer& peer)>;

class MllpServer {
 public:
  MllpServer(MllpOptions options, MllpHandler handler);
  ~MllpServer();
  MllpServer(const MllpServer&) = delete;
  MllpServer& operator=(const MllpServer&) = delete;

  // Binds, listens and starts serving on background threads. kInvalidArgument
  // for a bad bind address or TLS files (core/tls.h), kUnavailable when the port is taken.
  Status Start();
  int port() const;
  // Stops accepting, lets messages being processed finish and their ACKs go out, closes.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// MLLP framing for clients and tests: <VT> message <FS><CR>.
std::string MllpFrame(std::string_view message);

// A blocking MLLP client (one connection): for `rhip hl7 send`, tests and benchmarks.
class MllpClient {
 public:
  MllpClient();
  ~MllpClient();
  MllpClient(MllpClient&&) noexcept;
  MllpClient& operator=(MllpClient&&) noexcept;
  Status Connect(const std::string& host, int port);
  // Sends one message and waits for its acknowledgement (the bytes inside the reply frame).
  StatusOr<std::string> Send(std::string_view message);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rhip::ingest
