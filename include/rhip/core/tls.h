// TLS server settings shared by every listener (HTTPS in http/, MLLP in
// ingest/): one place decides protocol versions, ciphers and certificate
// checks, so the listeners cannot drift apart.
//
//   - TLS 1.2 and 1.3 only (no SSLv2/3, TLS 1.0/1.1), OpenSSL's default ciphers;
//   - the key must match the certificate, or nothing starts;
//   - with a client CA (mutual TLS): a client must present a certificate that
//     CA issued, or the handshake fails.
//
// Thread-safety: a context is built once, before serving, then only read
// (OpenSSL SSL_CTX is safe to share between connections).
//
// Example:
//   ASSIGN_OR_RETURN(auto ctx, MakeTlsServerContext({.cert = "chain.pem", .key = "key.pem"}));
//   boost::asio::ssl::stream<tcp::socket&> tls(socket, *ctx);
#pragma once

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <string>

#include "rhip/core/status.h"

namespace rhip {

struct TlsServerConfig {
  std::string cert;       // PEM certificate chain (the server's first)
  std::string key;        // PEM private key of `cert`
  std::string client_ca;  // PEM CA certificate(s): require and verify client certificates; empty = none
};

// Errors (kInvalidArgument): a file missing or not PEM, the key not belonging
// to the certificate, an unreadable CA file; each message names the file.
StatusOr<std::unique_ptr<boost::asio::ssl::context>> MakeTlsServerContext(const TlsServerConfig& config);

// The subject common name (CN) of the certificate the peer of `ssl` presented
// and the handshake verified, in UTF-8; empty when there is none.
std::string PeerCommonName(const SSL* ssl);

}  // namespace rhip
