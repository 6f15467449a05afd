// Principal: who is calling, as established by a verified token — the role of
// issue 6, the institution (org code, `http://rhip.health/id/org`) or the EMPI
// person the role is bound to, and the SMART-style scopes the token grants.
//
// Roles:
//   system      an institution's system (--org): writes its own organization's resources
//   clinician   a clinician of an institution (--org): reads with a care relationship or break-glass
//   resident    a resident (--person, an EMPI Person id): only their own person
//   cdc         疾控中心 staff: de-identified line lists and aggregates
//   commission  卫健委 staff: de-identified line lists and aggregates
//   steward     data steward: what the EMPI review queue needs (Patient, Person, $match)
//   admin       the operator: everything, all of it audited
//
// Thread-safety: plain values.
//
// Example:
//   Principal p{.subject = "his-47000001", .role = Role::kSystem, .org = "47000001"};
//   RoleName(p.role) == "system";  ParseRole("clinician") → Role::kClinician
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rhip/core/status.h"

namespace rhip::security {

enum class Role { kSystem, kClinician, kResident, kCdc, kCommission, kSteward, kAdmin };

std::string_view RoleName(Role role);
// kInvalidArgument naming the accepted roles.
StatusOr<Role> ParseRole(std::string_view name);

struct Principal {
  std::string subject;  // user name, client id or "rhip-token:<operator>"
  Role role = Role::kResident;
  std::string org;      // system, clinician: the institution code
  std::string person;   // resident: the EMPI Person id
  std::vector<std::string> scopes;  // "system/*.read", "user/Observation.read", "patient/*.read" …
  std::string token_id;   // jti
  int64_t expires = 0;    // seconds since the epoch
  int64_t issued_at = 0;  // iat, seconds since the epoch (set by Issue/Verify)
  std::string client_id;  // the OAuth2 client a client_credentials token was issued to (claim client_id, RFC 9068)
};

// Checks the bindings a role needs (system/clinician need org, resident needs person).
Status ValidatePrincipal(const Principal& p);

// The SMART-on-FHIR v1 scopes a role gets by default ("system/*.read system/*.write").
std::vector<std::string> DefaultScopes(Role role, bool is_user);

// Whether `scopes` grant `access` ("read" or "write") to resource `type`:
// "<context>/<Type|*>.<read|write|*>" with any context (user, patient, system).
bool ScopesAllow(const std::vector<std::string>& scopes, std::string_view type, std::string_view access);

}  // namespace rhip::security
