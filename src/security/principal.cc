#include "rhip/security/principal.h"

#include <array>
#include <utility>

namespace rhip::security {
namespace {

constexpr std::array<std::pair<Role, std::string_view>, 7> kRoles{{
    {Role::kSystem, "system"},
    {Role::kClinician, "clinician"},
    {Role::kResident, "resident"},
    {Role::kCdc, "cdc"},
    {Role::kCommission, "commission"},
    {Role::kSteward, "steward"},
    {Role::kAdmin, "admin"},
}};

}  // namespace

std::string_view RoleName(Role role) {
  for (const auto& [r, name] : kRoles)
    if (r == role) return name;
  return "unknown";
}

StatusOr<Role> ParseRole(std::string_view name) {
  for (const auto& [r, n] : kRoles)
    if (n == name) return r;
  return InvalidArgument("unknown role '" + std::string(name) +
                         "': use system, clinician, resident, cdc, commission, steward or admin");
}

Status ValidatePrincipal(const Principal& p) {
  if ((p.role == Role::kSystem || p.role == Role::kClinician) && p.org.empty())
    return InvalidArgument("role " + std::string(RoleName(p.role)) + " needs an institution code (--org)");
  if (p.role == Role::kResident && p.person.empty())
    return InvalidArgument("role resident needs an EMPI person id (--person)");
  if (p.subject.empty()) return InvalidArgument("a principal needs a subject");
  return Status::Ok();
}

std::vector<std::string> DefaultScopes(Role role, bool is_user) {
  const std::string ctx = role == Role::kResident ? "patient" : is_user ? "user" : "system";
  switch (role) {
    case Role::kSystem:
    case Role::kAdmin:
      return {ctx + "/*.read", ctx + "/*.write"};
    default:
      return {ctx + "/*.read"};
  }
}

bool ScopesAllow(const std::vector<std::string>& scopes, std::string_view type, std::string_view access) {
  for (std::string_view s : scopes) {
    const size_t slash = s.find('/');
    const size_t dot = s.rfind('.');
    if (slash == std::string_view::npos || dot == std::string_view::npos || dot < slash) continue;
    std::string_view t = s.substr(slash + 1, dot - slash - 1);
    std::string_view a = s.substr(dot + 1);
    if ((t == "*" || t == type) && (a == "*" || a == access)) return true;
  }
  return false;
}

}  // namespace rhip::security
