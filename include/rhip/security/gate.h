// Gate: the security layer assembled for a data folder — the token service
// (DATA/keys), the accounts (DATA/accounts.json), the OAuth2 token endpoint's
// grants, the facts of authorization and the audit log (DATA/audit.db). The HTTP layer asks it who a request's bearer token
// belongs to before any route that needs one runs.
//
// Thread-safety: all methods may be called from many threads.
//
// Example:
//   ASSIGN_OR_RETURN(auto gate, Gate::Open({.data_dir = "data/demo"}));
//   ASSIGN_OR_RETURN(Principal who, gate->Authenticate(request.Header("authorization")));
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rhip/core/status.h"
#include "rhip/mpi/person_directory.h"
#include "rhip/security/accounts.h"
#include "rhip/security/audit.h"
#include "rhip/security/care.h"
#include "rhip/security/guard.h"
#include "rhip/security/person_links.h"
#include "rhip/security/principal.h"
#include "rhip/security/rate_limit.h"
#include "rhip/security/revocation.h"
#include "rhip/security/token.h"

namespace rhip::security {

struct GateOptions {
  std::string data_dir;
  int64_t token_ttl_seconds = 15 * 60;  // what POST /auth/token grants
  LockoutPolicy lockout;
  // Where the facts of authorization come from. `store` null: no facts (tests of
  // tokens only). `persons` null: the interim StorePersonDirectory over the
  // store's Person resources (the EMPI's own directory replaces it when wired).
  store::Store* store = nullptr;
  const mpi::PersonDirectory* persons = nullptr;
  bool audit = true;  // keep the audit log (DATA/audit.db)
  std::optional<store::StoreKey> store_key{};  // the data folder's store key (encrypts DATA/audit.db); none: plain
  // Requests per second per client (token subject; remote address for callers
  // without a valid token and for logins); 0 = no limit.
  RateLimitOptions rate_limit{.rate = 1000, .burst = 2000};
  RateLimitOptions login_rate_limit{.rate = 5, .burst = 20};
  // AuditOptions::anchor_path / anchor_interval (rhip serve --audit-anchor).
  std::string audit_anchor;
  std::chrono::milliseconds audit_anchor_interval{std::chrono::seconds(60)};
};

struct TokenGrant {
  std::string access_token;
  int64_t expires_in = 0;
  Principal principal;
};

// Why a grant failed, in RFC 6749 §5.2 terms.
enum class GrantError { kInvalidRequest, kUnsupportedGrantType, kInvalidClient, kInvalidGrant };

class Gate {
 public:
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;
  ~Gate();

  static StatusOr<std::unique_ptr<Gate>> Open(GateOptions options);

  // The principal of an "Authorization: Bearer <jwt>" header; kUnauthenticated
  // (missing, malformed, expired, bad signature, revoked …) saying why.
  StatusOr<Principal> Authenticate(std::string_view authorization) const;

  // POST /auth/revoke (admin): `form` names one of token (a JWT, RFC 7009),
  // jti, subject, client, and/or before (an instant or seconds since the
  // epoch), with an optional reason. Returns the rule written to
  // DATA/revocations.json; kInvalidArgument saying what is missing.
  StatusOr<RevocationRule> Revoke(const std::vector<std::pair<std::string, std::string>>& form, const Principal& by);

  // POST /auth/token: `form` is the decoded x-www-form-urlencoded body;
  // `authorization` an optional "Basic base64(id:secret)" header for clients.
  // grant_type=client_credentials (client_id, client_secret, optional scope ⊆
  // the client's) or grant_type=password (username, password). On failure
  // `*error` says which OAuth2 error it is and the Status says why.
  StatusOr<TokenGrant> Grant(const std::vector<std::pair<std::string, std::string>>& form,
                             std::string_view authorization, GrantError* error);

  // The per-request access control FhirService consults, for `principal`.
  // `break_glass_reason` is the X-Break-Glass-Reason header (honoured for clinicians only).
  std::unique_ptr<Guard> NewGuard(const Principal& principal, std::string break_glass_reason) const;

  // A non-FHIR API route (/api/…): the policy's decision for the caller.
  Decision AuthorizeApi(const Principal& principal, const std::string& path) const;

  // Keeps the facts (care relationships, institutions, interim person links) current.
  void OnWritten(const store::ResourceVersion& written);

  const mpi::PersonDirectory* persons() const { return persons_; }
  // The audit log; nullptr when GateOptions::audit is off.
  AuditLog* audit() { return audit_.get(); }
  RateLimiter& limiter() { return limiter_; }
  RateLimiter& login_limiter() { return login_limiter_; }
  TokenService& tokens() { return *tokens_; }
  RevocationList& revocations() { return *revocations_; }
  Accounts& accounts() { return *accounts_; }

 private:
  explicit Gate(GateOptions options)
      : options_(std::move(options)), limiter_(options_.rate_limit), login_limiter_(options_.login_rate_limit) {}
  GateOptions options_;
  RateLimiter limiter_;
  RateLimiter login_limiter_;
  std::unique_ptr<TokenService> tokens_;
  std::unique_ptr<RevocationList> revocations_;
  std::unique_ptr<Accounts> accounts_;
  CareRelationships care_;
  StorePersonDirectory interim_persons_;
  const mpi::PersonDirectory* persons_ = nullptr;
  std::unique_ptr<AuditLog> audit_;
  // Shared with export jobs, which may outlive the request that started them.
  std::shared_ptr<const Pseudonymizer> pseudonyms_;
};

}  // namespace rhip::security
