#include "rhip/security/policy.h"

#include <gtest/gtest.h>

namespace rhip::security {
namespace {

Principal Of(Role role, std::string org = "", std::string person = "") {
  Principal p{.subject = "t", .role = role, .org = std::move(org), .person = std::move(person)};
  p.scopes = DefaultScopes(role, role != Role::kSystem);
  return p;
}

TargetFacts Obs(std::vector<std::string> patients = {"p1"}) {
  return {.type = "Observation", .compartment_type = true, .patients = std::move(patients)};
}

TEST(Policy, AdminMayDoEverything) {
  const Principal a = Of(Role::kAdmin);
  for (Action act : {Action::kRead, Action::kSearch, Action::kHistoryInstance, Action::kHistoryType,
                     Action::kHistorySystem, Action::kEverything, Action::kWrite, Action::kDelete})
    EXPECT_EQ(Decide(a, act, Obs()).effect, Effect::kAllow);
  EXPECT_EQ(Decide(a, Action::kOperation, {.operation = "$export"}).effect, Effect::kAllow);
  EXPECT_EQ(Decide(a, Action::kApi, {.api_path = "/api/hl7/status"}).effect, Effect::kAllow);
}

TEST(Policy, ResidentReadsOnlyTheirOwnPerson) {
  const Principal r = Of(Role::kResident, "", "P1");
  TargetFacts own = Obs();
  own.own_person = true;
  EXPECT_EQ(Decide(r, Action::kRead, own).effect, Effect::kAllow);
  EXPECT_EQ(Decide(r, Action::kEverything, own).effect, Effect::kAllow);
  Decision other = Decide(r, Action::kRead, Obs());
  EXPECT_EQ(other.effect, Effect::kDeny);
  EXPECT_NE(other.reason.find("another person"), std::string::npos);
  Decision search = Decide(r, Action::kSearch, {.type = "Observation", .compartment_type = true});
  EXPECT_EQ(search.effect, Effect::kAllow);
  EXPECT_EQ(search.narrowing, Narrowing::kOwnPerson);
  EXPECT_EQ(Decide(r, Action::kWrite, own).effect, Effect::kDeny);
  EXPECT_EQ(Decide(r, Action::kHistoryType, Obs()).effect, Effect::kDeny);
  EXPECT_EQ(Decide(r, Action::kHistorySystem, {}).effect, Effect::kDeny);
  EXPECT_EQ(Decide(r, Action::kOperation, {.operation = "$match"}).effect, Effect::kDeny);
  EXPECT_EQ(Decide(r, Action::kApi, {.api_path = "/api/me/access-log"}).effect, Effect::kAllow);
  EXPECT_EQ(Decide(r, Action::kApi, {.api_path = "/api/mpi/queue"}).effect, Effect::kDeny);
}

TEST(Policy, ClinicianNeedsACareRelationshipOrBreakGlass) {
  const Principal c = Of(Role::kClinician, "47000001");
  for (CareRelation rel : {CareRelation::kEncounter, CareRelation::kReferral, CareRelation::kContract}) {
    TargetFacts f = Obs();
    f.care = rel;
    Decision d = Decide(c, Action::kRead, f);
    EXPECT_EQ(d.effect, Effect::kAllow);
    EXPECT_FALSE(d.break_glass);
  }
  Decision none = Decide(c, Action::kRead, Obs());
  EXPECT_EQ(none.effect, Effect::kDeny);
  EXPECT_NE(none.reason.find("X-Break-Glass-Reason"), std::string::npos);
  TargetFacts glass = Obs();
  glass.break_glass_reason = "unconscious patient in the emergency room";
  Decision g = Decide(c, Action::kRead, glass);
  EXPECT_EQ(g.effect, Effect::kAllow);
  EXPECT_TRUE(g.break_glass);
  EXPECT_NE(g.reason.find("unconscious"), std::string::npos);
  EXPECT_EQ(Decide(c, Action::kSearch, {.type = "Observation", .compartment_type = true}).narrowing, Narrowing::kCareSet);
  EXPECT_EQ(Decide(c, Action::kWrite, Obs()).effect, Effect::kDeny);
  EXPECT_EQ(Decide(c, Action::kOperation, {.operation = "$export"}).effect, Effect::kDeny);
  EXPECT_EQ(Decide(c, Action::kOperation, {.operation = "$match"}).effect, Effect::kDeny);
}

TEST(Policy, SystemWritesOnlyItsOwnInstitutionsRecordsAndCannotBreakGlass) {
  const Principal s = Of(Role::kSystem, "47000001");
  TargetFacts mine{.type = "Encounter", .compartment_type = true, .owner_orgs = {"47000001"}};
  EXPECT_EQ(Decide(s, Action::kWrite, mine).effect, Effect::kAllow);
  TargetFacts theirs{.type = "Encounter", .compartment_type = true, .owner_orgs = {"47000002"}};
  EXPECT_EQ(Decide(s, Action::kWrite, theirs).effect, Effect::kDeny);
  TargetFacts mixed{.type = "Encounter", .compartment_type = true, .owner_orgs = {"47000001", "47000002"}};
  EXPECT_EQ(Decide(s, Action::kWrite, mixed).effect, Effect::kDeny);
  TargetFacts ownerless{.type = "Observation", .compartment_type = true};
  EXPECT_NE(Decide(s, Action::kWrite, ownerless).reason.find("cannot tell"), std::string::npos);
  // taking over another institution's record by rewriting its owner
  TargetFacts hijack = mine;
  hijack.replaces_existing = true;
  hijack.current_owner_orgs = {"47000002"};
  EXPECT_EQ(Decide(s, Action::kWrite, hijack).effect, Effect::kDeny);
  EXPECT_EQ(Decide(s, Action::kDelete, hijack).effect, Effect::kDeny);
  TargetFacts update = mine;
  update.replaces_existing = true;
  update.current_owner_orgs = {"47000001"};
  EXPECT_EQ(Decide(s, Action::kWrite, update).effect, Effect::kAllow);
  EXPECT_EQ(Decide(s, Action::kDelete, update).effect, Effect::kAllow);
  TargetFacts glass = Obs();
  glass.break_glass_reason = "systems cannot";
  EXPECT_EQ(Decide(s, Action::kRead, glass).effect, Effect::kDeny);
}

TEST(Policy, CdcAndCommissionSeeDeidentifiedDataOnly) {
  for (Role role : {Role::kCdc, Role::kCommission}) {
    const Principal p = Of(role);
    EXPECT_EQ(Decide(p, Action::kRead, Obs()).effect, Effect::kAllowRedacted);
    EXPECT_EQ(Decide(p, Action::kSearch, {.type = "Condition", .compartment_type = true}).effect, Effect::kAllowRedacted);
    EXPECT_EQ(Decide(p, Action::kSearch, {.type = "Patient", .compartment_type = true, .identifying_search = true}).effect,
              Effect::kDeny);
    EXPECT_EQ(Decide(p, Action::kEverything, Obs()).effect, Effect::kDeny);
    EXPECT_EQ(Decide(p, Action::kHistoryInstance, Obs()).effect, Effect::kDeny);
    EXPECT_EQ(Decide(p, Action::kWrite, Obs()).effect, Effect::kDeny);
    // Bulk export: always de-identified for them; never $import.
    EXPECT_EQ(Decide(p, Action::kOperation, {.operation = "$export"}).effect, Effect::kAllowRedacted);
    EXPECT_EQ(Decide(p, Action::kOperation, {.operation = "$export-poll-status"}).effect, Effect::kAllow);
    EXPECT_EQ(Decide(p, Action::kOperation, {.operation = "$export-file"}).effect, Effect::kAllow);
    EXPECT_EQ(Decide(p, Action::kOperation, {.operation = "$import"}).effect, Effect::kDeny);
    // In the export, patient data comes redacted and what cannot be de-identified stays out.
    TargetFacts in_export = Obs();
    in_export.deidentified = true;
    EXPECT_EQ(Decide(p, Action::kRead, in_export).effect, Effect::kAllowRedacted);
    EXPECT_EQ(Decide(p, Action::kRead, {.type = "Binary", .deidentified = true}).effect, Effect::kDeny);
  }
}

TEST(Policy, ExportJobsAreTheirStartersAndTheOperators) {
  EXPECT_EQ(Decide(Of(Role::kCdc), Action::kJob, {.own_job = true}).effect, Effect::kAllow);
  Decision other = Decide(Of(Role::kCdc), Action::kJob, {.own_job = false});
  EXPECT_EQ(other.effect, Effect::kDeny);
  EXPECT_NE(other.reason.find("someone else"), std::string::npos);
  EXPECT_EQ(Decide(Of(Role::kAdmin), Action::kJob, {.own_job = false}).effect, Effect::kAllow);
}

TEST(Policy, AdminExportsDeidentifiedWhenAsked) {
  const Principal a = Of(Role::kAdmin);
  EXPECT_EQ(Decide(a, Action::kOperation, {.operation = "$export", .deidentify_requested = true}).effect,
            Effect::kAllowRedacted);
  TargetFacts in_export = Obs();
  in_export.deidentified = true;
  EXPECT_EQ(Decide(a, Action::kRead, in_export).effect, Effect::kAllowRedacted);
  // A Binary cannot be de-identified: even the operator's de-identified export leaves it out.
  EXPECT_EQ(Decide(a, Action::kRead, {.type = "Binary", .deidentified = true}).effect, Effect::kDeny);
  EXPECT_EQ(Decide(a, Action::kRead, {.type = "Binary"}).effect, Effect::kAllow);
}

TEST(Policy, ClinicalRolesGetNoExportAtAll) {
  for (const Principal& p : {Of(Role::kClinician, "47000001"), Of(Role::kSystem, "47000001"), Of(Role::kResident, "", "P1"),
                             Of(Role::kSteward)}) {
    SCOPED_TRACE(RoleName(p.role));
    EXPECT_EQ(Decide(p, Action::kOperation, {.operation = "$export"}).effect, Effect::kDeny);
    EXPECT_EQ(Decide(p, Action::kOperation, {.operation = "$export", .deidentify_requested = true}).effect, Effect::kDeny);
    EXPECT_EQ(Decide(p, Action::kOperation, {.operation = "$export-file"}).effect, Effect::kDeny);
  }
}

TEST(Policy, StewardSeesIdentityRecordsAndTheReviewQueueNotClinicalData) {
  const Principal s = Of(Role::kSteward);
  EXPECT_EQ(Decide(s, Action::kRead, {.type = "Patient", .compartment_type = true, .patients = {"p1"}}).effect, Effect::kAllow);
  EXPECT_EQ(Decide(s, Action::kSearch, {.type = "Person", .compartment_type = true}).effect, Effect::kAllow);
  EXPECT_EQ(Decide(s, Action::kRead, Obs()).effect, Effect::kDeny);
  EXPECT_EQ(Decide(s, Action::kEverything, {.type = "Patient", .compartment_type = true, .patients = {"p1"}}).effect,
            Effect::kDeny);
  EXPECT_EQ(Decide(s, Action::kSearch, {.type = "Observation", .compartment_type = true}).effect, Effect::kDeny);
  EXPECT_EQ(Decide(s, Action::kOperation, {.operation = "$match"}).effect, Effect::kAllow);
  EXPECT_EQ(Decide(s, Action::kApi, {.api_path = "/api/mpi/review"}).effect, Effect::kAllow);
  EXPECT_EQ(Decide(s, Action::kApi, {.api_path = "/api/mpix"}).effect, Effect::kDeny);  // a prefix, not a path segment
  EXPECT_EQ(Decide(s, Action::kApi, {.api_path = "/api/hl7/status"}).effect, Effect::kDeny);
}

TEST(Policy, DirectoryDataIsReadableByEveryRoleButRecordSetsAreNot) {
  for (Role role : {Role::kSystem, Role::kClinician, Role::kResident, Role::kCdc, Role::kCommission, Role::kSteward}) {
    const Principal p = Of(role, "47000001", "P1");
    EXPECT_EQ(Decide(p, Action::kRead, {.type = "Organization"}).effect, Effect::kAllow) << RoleName(role);
    EXPECT_EQ(Decide(p, Action::kSearch, {.type = "Practitioner"}).effect, Effect::kAllow) << RoleName(role);
    EXPECT_EQ(Decide(p, Action::kHistoryType, {.type = "Organization"}).effect, Effect::kAllow) << RoleName(role);
    EXPECT_EQ(Decide(p, Action::kRead, {.type = "Binary"}).effect, Effect::kDeny) << RoleName(role);
    EXPECT_EQ(Decide(p, Action::kSearch, {.type = "Bundle"}).effect, Effect::kDeny) << RoleName(role);
    EXPECT_EQ(Decide(p, Action::kHistorySystem, {}).effect, Effect::kDeny) << RoleName(role);
    EXPECT_EQ(Decide(p, Action::kOperation, {.operation = "$import"}).effect, Effect::kDeny) << RoleName(role);
    EXPECT_EQ(Decide(p, Action::kApi, {.api_path = "/api/hl7/status"}).effect, Effect::kDeny) << RoleName(role);
  }
}

TEST(Policy, ScopesNarrowWhatTheRoleAllows) {
  Principal s = Of(Role::kSystem, "47000001");
  s.scopes = {"system/Observation.read"};
  TargetFacts mine{.type = "Observation", .compartment_type = true, .owner_orgs = {"47000001"}};
  EXPECT_NE(Decide(s, Action::kWrite, mine).reason.find("scopes"), std::string::npos);
  mine.care = CareRelation::kEncounter;
  mine.patients = {"p1"};
  EXPECT_EQ(Decide(s, Action::kRead, mine).effect, Effect::kAllow);
  EXPECT_EQ(Decide(s, Action::kRead, {.type = "Encounter", .compartment_type = true, .patients = {"p1"},
                                      .care = CareRelation::kEncounter}).effect,
            Effect::kDeny);
}

TEST(Policy, IdentifyingParameters) {
  for (const char* p : {"name", "family", "identifier", "telecom", "phone", "address", "address-city", "birthdate"})
    EXPECT_TRUE(IsIdentifyingParam(p)) << p;
  for (const char* p : {"code", "date", "subject", "gender", "_id", "status"}) EXPECT_FALSE(IsIdentifyingParam(p)) << p;
}

}  // namespace
}  // namespace rhip::security
