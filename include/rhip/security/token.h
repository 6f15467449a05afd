// Access tokens: JWT (RFC 7519) signed ES256 (ECDSA P-256 with SHA-256,
// RFC 7518 §3.4) by OpenSSL, with the signing key's id in the header's `kid`.
//
// Keys are PEM files in a folder of the data directory (DATA/keys/<kid>.pem,
// mode 0600). The newest key signs; every key in the folder verifies, so a
// rotation (Rotate) keeps tokens signed by the previous key valid until they
// expire; deleting a key file revokes every token it signed. A token naming a
// kid this process has not loaded makes it re-read the folder (at most once a
// second), so `rhip token` and `rhip keys rotate` work beside a running server.
//
// Verify checks alg (ES256 only: "none" and HMAC are refused), kid, signature,
// iss, exp (no leeway) and the role's bindings, and caches verified tokens so
// that a request pays a hash look-up, not an ECDSA verification.
//
// Thread-safety: Issue, Verify and Rotate may be called from many threads.
//
// Example:
//   ASSIGN_OR_RETURN(auto tokens, TokenService::Open(data + "/keys"));
//   ASSIGN_OR_RETURN(std::string jwt, tokens->Issue(principal, 900));
//   ASSIGN_OR_RETURN(Principal p, tokens->Verify(jwt));   // kUnauthenticated with the reason
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "rhip/core/status.h"
#include "rhip/security/principal.h"

namespace rhip::security {

class TokenService {
 public:
  virtual ~TokenService() = default;
  TokenService(const TokenService&) = delete;
  TokenService& operator=(const TokenService&) = delete;

  // Seconds since the epoch; tests pass their own clock.
  using Clock = std::function<int64_t()>;

  // Opens the key folder, creating it and a first key when there is none.
  static StatusOr<std::unique_ptr<TokenService>> Open(const std::string& keys_dir, Clock clock = nullptr);

  // A signed token for `p` valid for `ttl_seconds` (p.expires and p.token_id are set here).
  virtual StatusOr<std::string> Issue(const Principal& p, int64_t ttl_seconds) const = 0;
  // The principal of a valid token; kUnauthenticated saying why not.
  virtual StatusOr<Principal> Verify(std::string_view token) const = 0;
  // Adds a new signing key; returns its kid.
  virtual StatusOr<std::string> Rotate() = 0;
  virtual std::string SigningKid() const = 0;

 protected:
  TokenService() = default;
};

// Base64url without padding (RFC 4648 §5), as JWT uses it.
std::string Base64UrlEncode(std::string_view bytes);
// std::nullopt-like failure: kInvalidArgument on a character outside the alphabet.
StatusOr<std::string> Base64UrlDecode(std::string_view text);

}  // namespace rhip::security
