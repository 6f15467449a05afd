// Guard: the security layer's answer to FhirService's AccessControl hook for
// one request of one principal. It gathers the facts the policy needs (which
// patients a resource belongs to, whether they are the resident's own person,
// the care relationship of the caller's institution, responsible
// organizations of a write), asks Decide (policy.h), narrows searches, redacts
// for de-identified roles, and remembers what the request touched and why for
// the audit log (Record()).
//
// Thread-safety: one request's calls are sequential (see fhir/access.h).
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "rhip/fhir/access.h"
#include "rhip/fhir/json.h"
#include "rhip/mpi/person_directory.h"
#include "rhip/security/care.h"
#include "rhip/security/policy.h"
#include "rhip/security/principal.h"
#include "rhip/security/pseudonym.h"
#include "rhip/store/store.h"

namespace rhip::security {

// What one request touched, for its AuditEvent.
struct AccessRecord {
  std::set<std::string> patients;  // Patient records disclosed, written or asked for
  std::vector<std::string> denials;  // reasons of refusals (the request's or of withheld resources)
  int withheld = 0;                  // resources left out of bundles
  bool break_glass = false;          // something was shown only because of break-glass
  bool redacted = false;
};

class Guard : public fhir::AccessControl {
 public:
  // `persons` and `care` may be null (no facts: nothing is anyone's own, no care).
  // `pseudonyms` (may be null: no de-identified exports) is shared with the
  // export jobs this guard's request starts, which outlive the request.
  Guard(Principal principal, std::string break_glass_reason, store::Store* store,
        const mpi::PersonDirectory* persons, const CareRelationships* care,
        std::shared_ptr<const Pseudonymizer> pseudonyms = nullptr);

  Status OnSearch(store::SearchQuery& query) override;
  Status OnHistory(std::string_view type, std::string_view id) override;
  Status OnEverything(std::string_view patient_id) override;
  Status OnOperation(std::string_view name, const fhir::RestRequest& request) override;
  Status OnDisclose(store::ResourceVersion& version) override;
  Status OnWrite(std::string_view type, std::string_view id, const store::IndexRows* index) override;
  std::unique_ptr<fhir::DisclosureRules> RulesForJob() override;
  Status OnJobAccess(std::string_view owner) override;

  const Principal& principal() const { return principal_; }
  const std::string& break_glass_reason() const { return break_glass_reason_; }
  const AccessRecord& Record() const { return record_; }

 private:
  TargetFacts PatientFacts(const std::string& type, std::vector<std::string> patients) const;
  std::vector<std::string> RecordsOfSamePersons(const std::vector<std::string>& patients) const;
  std::vector<std::string> OwnerOrgs(const std::string& type, const store::IndexRows& rows) const;
  Status Refuse(const Decision& d);

  Principal principal_;
  std::string break_glass_reason_;
  store::Store* store_;
  const mpi::PersonDirectory* persons_;
  const CareRelationships* care_;
  bool redact_ = false;  // set by a redacted search decision
  std::shared_ptr<const Pseudonymizer> pseudonyms_;
  bool export_deidentified_ = false;  // set by OnOperation("$export")
  AccessRecord record_;
};

// Who a job belongs to (DisclosureRules::owner): role and subject.
std::string JobOwnerOf(const Principal& p);

// The de-identified form of a resource for cdc/commission: no narrative, names,
// identifiers, telecom, photos, contacts, notes or reference displays; addresses
// reduced to district/city/state/country; birth dates to the year.
void Deidentify(fhir::Json& doc);

}  // namespace rhip::security
