// The policy module: the one function that decides what a principal may do
// (issue 6). Pure: it gets every fact it needs in TargetFacts (gathered by the
// guard from the store, the care-relationship index and the EMPI) and returns
// allow / allow-with-redaction / deny with the reason, plus how a search must
// be narrowed. Nothing else in rhip decides access; handlers only ask.
//
// The rules (docs/SECURITY.md has the table):
//   admin       everything (audited like everyone else).
//   system      reads like a clinician of its institution (no break-glass);
//               writes only resources whose responsible organizations (and,
//               for an update or delete, those of the version it replaces) are
//               all its own.
//   clinician   reads a person's records with a care relationship between the
//               institution and the person (an encounter there in the last 90
//               days, a referral to it, a family-doctor contract with it) or
//               by break-glass with a stated reason (allowed, flagged for
//               review); searches are narrowed to the persons in its care.
//               No FHIR writes (clinicians write through their institution's system).
//   resident    only their own person's records; searches narrowed to them.
//   cdc, commission  de-identified: patient data comes redacted (no names, ID
//               numbers, phones, street addresses, exact birth dates); no
//               searches by identifying parameters; no single-patient
//               $everything, no history, no writes.
//   steward     Patient and Person records in full, $match / $ihe-pix, the
//               EMPI review API (/api/mpi); no clinical records.
// Everyone authenticated reads directory data (Organization, Practitioner,
// Location, terminology …: types outside the Patient compartment), except
// Binary, Bundle and Linkage. Type- and system-level history of patient data
// and Bulk Data $import are for admin only; Bulk Data $export is for admin
// (plain, or de-identified when asked) and, always de-identified (pseudonymised
// ids, no direct identifiers: allow-with-redaction), for cdc and commission. An
// export job's status and files are for whoever started it (and admin). A
// token's SMART scopes can only narrow what the role allows.
//
// Thread-safety: pure function.
//
// Example:
//   Decision d = Decide(principal, Action::kRead, {.type = "Observation", .compartment_type = true,
//                                                  .patients = {"p1"}, .care = CareRelation::kEncounter});
//   if (d.effect == Effect::kDeny) return PermissionDenied(d.reason);
#pragma once

#include <string>
#include <vector>

#include "rhip/security/principal.h"

namespace rhip::security {

enum class Action {
  kRead,             // read, vread, each resource a search/history/$everything returns
  kSearch,           // a search of a type (before it runs)
  kHistoryInstance,  // Type/id/_history
  kHistoryType,      // Type/_history
  kHistorySystem,    // _history
  kEverything,       // Patient/id/$everything
  kWrite,            // create, update (incl. conditional), transaction entry
  kDelete,
  kOperation,        // $export, $import, $match …
  kApi,              // a non-FHIR API route (/api/…)
  kJob,              // the status, files or cancellation of an asynchronous job ($export)
};

// The closest care relationship between the principal's institution and the
// person(s) a target belongs to.
enum class CareRelation { kNone, kEncounter, kReferral, kContract };

struct TargetFacts {
  std::string type;                     // resource type ("" for system level / API)
  bool compartment_type = false;        // the type can belong to a patient (Patient CompartmentDefinition)
  std::vector<std::string> patients;    // the Patient records the target belongs to
  bool own_person = false;              // resident: every one of `patients` is a record of their person
  CareRelation care = CareRelation::kNone;  // system/clinician: with every person of `patients`
  std::string break_glass_reason;       // clinician: the stated reason, empty = none
  std::vector<std::string> owner_orgs;  // write: institution codes the new version names as responsible
  bool replaces_existing = false;       // update/delete of a stored resource
  std::vector<std::string> current_owner_orgs;  // … and the codes the stored version names
  bool identifying_search = false;      // search: filters on name, identifier, phone, address, birth date
  std::string operation;                // kOperation: "$export", "$match" …
  std::string api_path;                 // kApi: "/api/mpi/queue"
  bool deidentify_requested = false;    // kOperation $export: the caller asked for a de-identified export
  bool deidentified = false;            // kRead: for a de-identified export (what cannot be de-identified is withheld)
  bool own_job = false;                 // kJob: the caller started the job
};

enum class Effect { kAllow, kAllowRedacted, kDeny };

// How a permitted search must be narrowed before it runs.
enum class Narrowing { kNone, kOwnPerson, kCareSet };

struct Decision {
  Effect effect = Effect::kDeny;
  std::string reason;  // why (for a denial: what the caller can do about it)
  Narrowing narrowing = Narrowing::kNone;
  bool break_glass = false;  // allowed only because of break-glass: flag for review
};

Decision Decide(const Principal& principal, Action action, const TargetFacts& facts);

// Search parameters that identify a person (name, identifier, telecom, address,
// birth date …): de-identified roles may not filter on them.
bool IsIdentifyingParam(const std::string& param);

}  // namespace rhip::security
