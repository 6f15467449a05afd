#include "rhip/security/gate.h"

#include <sodium.h>
#include <strings.h>

#include "rhip/core/time.h"

namespace rhip::security {
namespace {

std::string_view FormValue(const std::vector<std::pair<std::string, std::string>>& form, std::string_view k) {
  for (const auto& [name, value] : form)
    if (name == k) return value;
  return {};
}

std::vector<std::string> SplitScopes(std::string_view s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    size_t sp = s.find(' ', i);
    if (sp == std::string_view::npos) sp = s.size();
    if (sp > i) out.emplace_back(s.substr(i, sp - i));
    i = sp + 1;
  }
  return out;
}

}  // namespace

Gate::~Gate() = default;

StatusOr<std::unique_ptr<Gate>> Gate::Open(GateOptions options) {
  std::unique_ptr<Gate> g(new Gate(std::move(options)));
  ASSIGN_OR_RETURN(g->tokens_, TokenService::Open(g->options_.data_dir + "/keys"));
  ASSIGN_OR_RETURN(g->revocations_, RevocationList::Open(g->options_.data_dir + "/revocations.json"));
  ASSIGN_OR_RETURN(g->accounts_, Accounts::Open(g->options_.data_dir + "/accounts.json", g->options_.lockout));
  ASSIGN_OR_RETURN(Pseudonymizer pseudonyms, Pseudonymizer::Open(g->options_.data_dir + "/keys"));
  g->pseudonyms_ = std::make_shared<const Pseudonymizer>(std::move(pseudonyms));
  if (g->options_.audit) {
    ASSIGN_OR_RETURN(g->audit_, AuditLog::Open({.dir = g->options_.data_dir,
                                                .anchor_path = g->options_.audit_anchor,
                                                .anchor_interval = g->options_.audit_anchor_interval,
                                                .store_key = g->options_.store_key}));
  }
  g->persons_ = g->options_.persons;
  if (store::Store* store = g->options_.store) {
    RETURN_IF_ERROR(g->care_.Load(*store));
    if (!g->persons_) {
      RETURN_IF_ERROR(g->interim_persons_.Load(*store));
      g->persons_ = &g->interim_persons_;
    }
  }
  return g;
}

std::unique_ptr<Guard> Gate::NewGuard(const Principal& principal, std::string break_glass_reason) const {
  return std::make_unique<Guard>(principal, std::move(break_glass_reason), options_.store, persons_,
                                 options_.store ? &care_ : nullptr, pseudonyms_);
}

Decision Gate::AuthorizeApi(const Principal& principal, const std::string& path) const {
  TargetFacts f;
  f.api_path = path;
  return Decide(principal, Action::kApi, f);
}

void Gate::OnWritten(const store::ResourceVersion& written) {
  care_.OnWritten(written);
  if (persons_ == &interim_persons_) interim_persons_.OnWritten(written);
}

StatusOr<Principal> Gate::Authenticate(std::string_view authorization) const {
  if (authorization.empty())
    return Status(StatusCode::kUnauthenticated,
                  "this API needs a bearer token: POST /auth/token, or `rhip token --data DIR --role R` for operators");
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() <= kBearer.size() || strncasecmp(authorization.data(), "bearer ", kBearer.size()) != 0)
    return Status(StatusCode::kUnauthenticated, "the Authorization header must be 'Bearer <token>'");
  // The verified-token cache answers Verify; the revocation list is asked on every request.
  ASSIGN_OR_RETURN(Principal p, tokens_->Verify(authorization.substr(kBearer.size())));
  if (std::string why; revocations_->IsRevoked(p, &why))
    return Status(StatusCode::kUnauthenticated, "invalid token: revoked: " + why + "; get a new token");
  return p;
}

StatusOr<RevocationRule> Gate::Revoke(const std::vector<std::pair<std::string, std::string>>& form, const Principal& by) {
  RevocationRule r;
  r.jti = std::string(FormValue(form, "jti"));
  r.subject = std::string(FormValue(form, "subject"));
  r.client = std::string(FormValue(form, "client"));
  r.reason = std::string(FormValue(form, "reason"));
  r.by = by.subject;
  if (std::string_view token = FormValue(form, "token"); !token.empty()) {
    // RFC 7009: the token itself. Only a token this deployment signed names a jti worth keeping.
    if (!r.jti.empty()) return InvalidArgument("send token or jti, not both");
    ASSIGN_OR_RETURN(Principal of, tokens_->Verify(token));
    r.jti = of.token_id;
  }
  if (std::string_view before = FormValue(form, "before"); !before.empty()) {
    ASSIGN_OR_RETURN(r.before, ParseRevocationTime(before));
  }
  return revocations_->Add(std::move(r));
}

StatusOr<TokenGrant> Gate::Grant(const std::vector<std::pair<std::string, std::string>>& form,
                                 std::string_view authorization, GrantError* error) {
  const std::string_view grant = FormValue(form, "grant_type");
  const int64_t now = NowMicros() / kMicrosPerSecond;
  StatusOr<Principal> who = Status(StatusCode::kInternal, "no grant");
  if (grant == "client_credentials") {
    std::string id(FormValue(form, "client_id")), secret(FormValue(form, "client_secret"));
    if (authorization.size() > 6 && strncasecmp(authorization.data(), "basic ", 6) == 0) {
      std::string_view b64 = authorization.substr(6);
      std::string raw(b64.size(), '\0');
      size_t len = 0;
      if (sodium_base642bin(reinterpret_cast<unsigned char*>(raw.data()), raw.size(), b64.data(), b64.size(), nullptr,
                            &len, nullptr, sodium_base64_VARIANT_ORIGINAL) == 0) {
        raw.resize(len);
        const size_t colon = raw.find(':');
        if (colon != std::string::npos) {
          id = raw.substr(0, colon);
          secret = raw.substr(colon + 1);
        }
      }
    }
    if (id.empty() || secret.empty()) {
      *error = GrantError::kInvalidClient;
      return Status(StatusCode::kUnauthenticated, "client_credentials needs client_id and client_secret");
    }
    who = accounts_->ClientLogin(id, secret, now);
    if (!who.ok()) *error = GrantError::kInvalidClient;
  } else if (grant == "password") {
    std::string_view user = FormValue(form, "username"), password = FormValue(form, "password");
    if (user.empty() || password.empty()) {
      *error = GrantError::kInvalidRequest;
      return InvalidArgument("the password grant needs username and password");
    }
    who = accounts_->PasswordLogin(user, password, now);
    if (!who.ok()) *error = GrantError::kInvalidGrant;
  } else {
    *error = grant.empty() ? GrantError::kInvalidRequest : GrantError::kUnsupportedGrantType;
    return InvalidArgument(grant.empty() ? "grant_type is required"
                                         : "grant_type '" + std::string(grant) +
                                               "' is not supported: use client_credentials or password");
  }
  if (!who.ok()) return who.status();
  // A client may ask for fewer scopes than it has, never more.
  if (std::string_view asked = FormValue(form, "scope"); !asked.empty()) {
    std::vector<std::string> narrowed;
    for (const std::string& s : SplitScopes(asked)) {
      bool granted = false;
      for (const std::string& have : who->scopes) granted = granted || have == s;
      if (!granted) {
        *error = GrantError::kInvalidGrant;
        return Status(StatusCode::kPermissionDenied, "scope '" + s + "' is not granted to " + who->subject);
      }
      narrowed.push_back(s);
    }
    who->scopes = std::move(narrowed);
  }
  TokenGrant g;
  ASSIGN_OR_RETURN(g.access_token, tokens_->Issue(*who, options_.token_ttl_seconds));
  g.expires_in = options_.token_ttl_seconds;
  g.principal = std::move(*who);
  return g;
}

}  // namespace rhip::security
