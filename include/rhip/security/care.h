// CareRelationships: which institution cares for which Patient record, the
// fact every clinician read is checked against, kept in memory so the check
// costs a hash look-up. Loaded from the store at start (Scan of Encounter,
// ServiceRequest, EpisodeOfCare, Organization) and kept current by every
// committed write (OnWritten), as DOMAIN.md part A sends them:
//   - an Encounter at the institution (serviceProvider) counts for 90 days
//     after it ended (or started, while it has no end);
//   - a referral (ServiceRequest category `referral`) to the institution
//     (performer) counts while it is active, and for 90 days after authoredOn;
//   - a family-doctor contract (EpisodeOfCare type `family-doctor-contract`)
//     managed by the institution (managingOrganization) counts during its period.
// Organization references are resolved to institution codes through each
// Organization's `http://rhip.health/id/org` identifier (its id when unknown).
//
// Thread-safety: all methods may be called concurrently (one shared mutex).
//
// Example:
//   CareRelationships care;
//   RETURN_IF_ERROR(care.Load(*store));
//   care.RelationOf("47000001", {"p-1"}, NowMicros());   // CareRelation::kEncounter
#pragma once

#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rhip/core/status.h"
#include "rhip/security/policy.h"
#include "rhip/store/store.h"

namespace rhip::security {

class CareRelationships {
 public:
  CareRelationships() = default;
  CareRelationships(const CareRelationships&) = delete;
  CareRelationships& operator=(const CareRelationships&) = delete;

  Status Load(store::Store& store);
  void OnWritten(const store::ResourceVersion& written);

  // The strongest relationship the institution has now with any of the records
  // (encounter > referral > contract); kNone when there is none.
  CareRelation RelationOf(std::string_view org_code, const std::vector<std::string>& patient_ids, Micros now) const;
  // Every Patient record the institution has a relationship with now.
  std::vector<std::string> PatientsInCareOf(std::string_view org_code, Micros now) const;
  // The institution code of Organization/{id}.
  std::string OrgCodeOf(std::string_view org_id) const;

  static constexpr Micros kEncounterWindow = 90 * kMicrosPerDay;

 private:
  struct Fact {
    std::string patient;
    std::string org_id;
    CareRelation kind = CareRelation::kNone;
    Micros from = 0;
    Micros until = 0;
  };
  void Apply(const store::ResourceVersion& v);  // REQUIRES(mu_)
  void Remove(const std::string& key);          // REQUIRES(mu_)
  std::string CodeOfLocked(std::string_view org_id) const;

  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::vector<Fact>> by_resource_;  // GUARDED_BY(mu_) "Encounter/1" → facts
  std::unordered_map<std::string, std::vector<Fact>> by_patient_;   // GUARDED_BY(mu_)
  std::unordered_map<std::string, std::unordered_map<std::string, int>> patients_by_org_;  // GUARDED_BY(mu_)
  std::unordered_map<std::string, std::string> org_codes_;          // GUARDED_BY(mu_) org id → code
  std::unordered_map<std::string, std::vector<std::string>> org_ids_;  // GUARDED_BY(mu_) code → org ids
};

}  // namespace rhip::security
