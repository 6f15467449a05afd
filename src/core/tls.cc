#include "rhip/core/tls.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace rhip {

namespace ssl = boost::asio::ssl;

StatusOr<std::unique_ptr<ssl::context>> MakeTlsServerContext(const TlsServerConfig& config) {
  if (config.cert.empty() || config.key.empty()) return InvalidArgument("TLS needs both --tls-cert and --tls-key");
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  boost::system::error_code ec;
  // TLS 1.2 and 1.3 only; OpenSSL's default cipher list for them.
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use,
                   ec);
  if (ec) return Status(StatusCode::kInternal, "cannot set TLS options: " + ec.message());
  ctx->use_certificate_chain_file(config.cert, ec);
  if (ec) return InvalidArgument("cannot use TLS certificate " + config.cert + ": " + ec.message());
  ctx->use_private_key_file(config.key, ssl::context::pem, ec);
  // OpenSSL notices a key of another certificate here already ("key values mismatch").
  if (ec && ec.message().find("mismatch") == std::string::npos)
    return InvalidArgument("cannot use TLS key " + config.key + ": " + ec.message());
  if (ec || SSL_CTX_check_private_key(ctx->native_handle()) != 1)
    return InvalidArgument("the TLS key " + config.key + " does not belong to " + config.cert);
  if (!config.client_ca.empty()) {
    ctx->load_verify_file(config.client_ca, ec);
    if (ec) return InvalidArgument("cannot use client CA " + config.client_ca + ": " + ec.message());
    // The CA's names go into the CertificateRequest, so clients pick the right certificate.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(config.client_ca.c_str());
    if (names == nullptr) return InvalidArgument("no CA certificate in " + config.client_ca);
    SSL_CTX_set_client_CA_list(ctx->native_handle(), names);  // takes ownership
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
    if (ec) return Status(StatusCode::kInternal, "cannot require client certificates: " + ec.message());
  }
  return ctx;
}

std::string PeerCommonName(const SSL* ssl) {
  if (ssl == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return {};
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return {};
  std::string out;
  const X509_NAME* subject = X509_get_subject_name(cert);
  const int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (i >= 0) {
    unsigned char* utf8 = nullptr;
    const int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
    if (n > 0) out.assign(reinterpret_cast<const char*>(utf8), static_cast<size_t>(n));
    OPENSSL_free(utf8);
  }
  X509_free(cert);
  return out;
}

}  // namespace rhip
