#include "rhip/security/policy.h"

#include <algorithm>
#include <string_view>

namespace rhip::security {
namespace {

Decision Allow(std::string why, Narrowing n = Narrowing::kNone) { return {Effect::kAllow, std::move(why), n, false}; }
Decision Redacted(std::string why) { return {Effect::kAllowRedacted, std::move(why), Narrowing::kNone, false}; }
Decision Deny(std::string why) { return {Effect::kDeny, std::move(why), Narrowing::kNone, false}; }

bool StartsWith(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

// Types outside the Patient compartment that still hold personal data or whole record sets.
bool IsRestrictedNonCompartmentType(const std::string& type) {
  return type == "Binary" || type == "Bundle" || type == "Linkage";
}

Decision ApiDecision(const Principal& p, const std::string& path) {
  auto under = [&](std::string_view prefix) {
    return path == prefix || (path.size() > prefix.size() && StartsWith(path, prefix) && path[prefix.size()] == '/');
  };
  if (under("/api/me")) {
    if (p.role == Role::kResident) return Allow("the resident's own access log");
    return Deny("only residents have a record of their own here");
  }
  if (under("/api/mpi")) {
    if (p.role == Role::kSteward) return Allow("data steward: the EMPI review queue");
    return Deny("the EMPI review API is for data stewards");
  }
  return Deny("this API is for operators (admin)");
}

Decision OperationDecision(const Principal& p, const TargetFacts& f) {
  const std::string& op = f.operation;
  if (op == "$match" || op == "$ihe-pix") {
    if (p.role == Role::kSteward) return Allow("data steward: patient matching");
    return Deny(op + " returns other institutions' patient records: it is for data stewards");
  }
  const bool analyst = p.role == Role::kCdc || p.role == Role::kCommission;
  if (op == "$export") {
    if (analyst) return Redacted("de-identified export: pseudonymised patient ids, no direct identifiers");
    return Deny("Bulk Data $export is for operators (admin) and, de-identified, for cdc and commission");
  }
  if (op == "$export-poll-status" || op == "$export-file") {
    if (analyst) return Allow("the status and files of an export job (the caller's own: checked per job)");
    return Deny("Bulk Data " + op + " is for operators (admin) and the cdc and commission roles");
  }
  if (StartsWith(op, "$export") || StartsWith(op, "$import")) return Deny("Bulk Data " + op + " is for operators (admin)");
  return Deny("operation " + op + " is for operators (admin)");
}

Decision WriteDecision(const Principal& p, Action action, const TargetFacts& f) {
  if (p.role == Role::kClinician)
    return Deny("clinicians write through their institution's system, not the regional API");
  if (p.role != Role::kSystem) return Deny(std::string(RoleName(p.role)) + " may not write records");
  const auto all_own = [&](const std::vector<std::string>& orgs) {
    return !orgs.empty() && std::all_of(orgs.begin(), orgs.end(), [&](const std::string& o) { return o == p.org; });
  };
  if (f.replaces_existing && !all_own(f.current_owner_orgs))
    return Deny(f.type + " belongs to another institution: institution " + p.org + " may change only its own records");
  if (action == Action::kDelete) {
    if (!f.replaces_existing) return Allow("nothing to delete");
    return Allow("institution " + p.org + " deletes its own record");
  }
  if (f.owner_orgs.empty())
    return Deny("cannot tell which institution this " + f.type +
                " belongs to: name it (Encounter.serviceProvider, Observation.performer, the MRN system …)");
  if (!all_own(f.owner_orgs))
    return Deny("the " + f.type + " names another institution as responsible: institution " + p.org +
                " writes only its own records");
  return Allow("institution " + p.org + " writes its own record");
}

// Reading one target that belongs to patients (read, instance history, $everything).
Decision PatientDataDecision(const Principal& p, Action action, const TargetFacts& f) {
  switch (p.role) {
    case Role::kAdmin: return f.deidentified ? Redacted("de-identified export, as asked") : Allow("operator");
    case Role::kResident:
      if (f.own_person) return Allow("the resident's own record");
      return Deny("this record belongs to another person: residents read only their own records");
    case Role::kSystem:
    case Role::kClinician: {
      if (f.care != CareRelation::kNone) {
        const char* why = f.care == CareRelation::kEncounter ? "an encounter at the institution in the last 90 days"
                          : f.care == CareRelation::kReferral ? "a referral to the institution"
                                                              : "a family-doctor contract with the institution";
        return Allow(std::string("care relationship: ") + why);
      }
      if (p.role == Role::kClinician && !f.break_glass_reason.empty()) {
        Decision d = Allow("break-glass: " + f.break_glass_reason);
        d.break_glass = true;
        return d;
      }
      return Deny("institution " + p.org +
                  " has no care relationship with this person (an encounter there in the last 90 days, a referral "
                  "to it, a family-doctor contract)" +
                  (p.role == Role::kClinician ? "; in an emergency send X-Break-Glass-Reason" : ""));
    }
    case Role::kCdc:
    case Role::kCommission:
      if (action == Action::kRead) return Redacted("de-identified view");
      return Deny("de-identified roles see line lists, not one person's full record or its history");
    case Role::kSteward:
      if (action != Action::kEverything && (f.type == "Patient" || f.type == "Person"))
        return Allow("data steward: identity records");
      return Deny("data stewards see Patient and Person records (what the review queue needs), not clinical data");
  }
  return Deny("unknown role");
}

Decision SearchDecision(const Principal& p, const TargetFacts& f) {
  if (!f.compartment_type) return Allow("directory data");
  switch (p.role) {
    case Role::kAdmin: return Allow("operator");
    case Role::kResident: return Allow("the resident's own records", Narrowing::kOwnPerson);
    case Role::kSystem:
    case Role::kClinician: return Allow("persons in the institution's care", Narrowing::kCareSet);
    case Role::kCdc:
    case Role::kCommission:
      if (f.identifying_search)
        return Deny("de-identified roles may not search by name, identifier, phone, address or birth date");
      return Redacted("de-identified line list");
    case Role::kSteward:
      if (f.type == "Patient" || f.type == "Person") return Allow("data steward: identity records");
      return Deny("data stewards see Patient and Person records (what the review queue needs), not clinical data");
  }
  return Deny("unknown role");
}

}  // namespace

bool IsIdentifyingParam(const std::string& param) {
  static const char* const kIdentifying[] = {"name", "family", "given", "identifier", "telecom", "phone", "email",
                                             "address", "phonetic", "birthdate", "link", "patient.identifier"};
  for (const char* k : kIdentifying)
    if (param == k) return true;
  return StartsWith(param, "address-");
}

Decision Decide(const Principal& p, Action action, const TargetFacts& f) {
  if (action == Action::kApi) {
    if (p.role == Role::kAdmin) return Allow("operator");
    return ApiDecision(p, f.api_path);
  }
  if (action == Action::kOperation) {
    if (p.role == Role::kAdmin) {
      if (f.operation == "$export" && f.deidentify_requested) return Redacted("de-identified export, as asked");
      return Allow("operator");
    }
    return OperationDecision(p, f);
  }
  if (action == Action::kJob) {
    if (p.role == Role::kAdmin) return Allow("operator");
    if (f.own_job) return Allow("the caller's own job");
    return Deny("this job was started by someone else: only they (or an operator) may see it");
  }
  // SMART scopes can only narrow what the role allows.
  const bool write = action == Action::kWrite || action == Action::kDelete;
  if (!f.type.empty() && !ScopesAllow(p.scopes, f.type, write ? "write" : "read"))
    return Deny("the token's scopes do not grant " + std::string(write ? "write" : "read") + " access to " + f.type);
  if (write) {
    if (p.role == Role::kAdmin) return Allow("operator");
    return WriteDecision(p, action, f);
  }
  if (IsRestrictedNonCompartmentType(f.type) && f.deidentified)
    return Deny(f.type + " resources cannot be de-identified: they are left out of de-identified exports");
  if (IsRestrictedNonCompartmentType(f.type) && p.role != Role::kAdmin)
    return Deny(f.type + " resources are for operators (admin)");
  switch (action) {
    case Action::kHistorySystem:
      if (p.role == Role::kAdmin) return Allow("operator");
      return Deny("system-wide history is for operators (admin)");
    case Action::kHistoryType:
      if (!f.compartment_type) return Allow("directory data");
      if (p.role == Role::kAdmin) return Allow("operator");
      return Deny("the history of every " + f.type + " is for operators (admin): ask for one resource's history");
    case Action::kSearch: return SearchDecision(p, f);
    case Action::kRead:
    case Action::kHistoryInstance:
    case Action::kEverything:
      // A resource of a compartment type that names no patient (a CareTeam of an
      // institution, a Schedule of a doctor) is nobody's personal record.
      if (!f.compartment_type || (f.patients.empty() && f.type != "Patient" && action != Action::kEverything)) {
        if (action == Action::kEverything && p.role != Role::kAdmin) return Deny("no such patient record");
        return Allow("directory data");
      }
      return PatientDataDecision(p, action, f);
    default: break;
  }
  return Deny("unknown action");
}

}  // namespace rhip::security
