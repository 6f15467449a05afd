#include "rhip/security/care.h"

#include <gtest/gtest.h>

namespace rhip::security {
namespace {

store::ResourceVersion V(std::string type, std::string id, std::string json, bool deleted = false) {
  return {std::move(type), std::move(id), 1, 0, deleted, "PUT", std::move(json)};
}

Micros At(const char* date) { return ParseFhirDate(date)->low; }

TEST(CareRelationships, EncounterCountsForNinetyDaysAfterItEnded) {
  CareRelationships care;
  care.OnWritten(V("Encounter", "e1", R"({"resourceType":"Encounter","status":"finished","subject":{"reference":"Patient/p1"},
      "serviceProvider":{"reference":"Organization/o1"},"period":{"start":"2026-01-01","end":"2026-01-03"}})"));
  EXPECT_EQ(care.RelationOf("o1", {"p1"}, At("2026-02-01")), CareRelation::kEncounter);
  EXPECT_EQ(care.RelationOf("o1", {"p1"}, At("2026-04-03")), CareRelation::kEncounter);
  EXPECT_EQ(care.RelationOf("o1", {"p1"}, At("2026-04-05")), CareRelation::kNone);
  EXPECT_EQ(care.RelationOf("o2", {"p1"}, At("2026-02-01")), CareRelation::kNone);
  EXPECT_EQ(care.PatientsInCareOf("o1", At("2026-02-01")), std::vector<std::string>{"p1"});
  EXPECT_TRUE(care.PatientsInCareOf("o1", At("2026-05-01")).empty());
}

TEST(CareRelationships, UpdatesAndDeletesReplaceTheFacts) {
  CareRelationships care;
  const char* at_o2 = R"({"resourceType":"Encounter","status":"finished","subject":{"reference":"Patient/p1"},
      "serviceProvider":{"reference":"Organization/o2"},"period":{"start":"2026-01-01"}})";
  care.OnWritten(V("Encounter", "e1", R"({"resourceType":"Encounter","status":"finished","subject":{"reference":"Patient/p1"},
      "serviceProvider":{"reference":"Organization/o1"},"period":{"start":"2026-01-01"}})"));
  care.OnWritten(V("Encounter", "e1", at_o2));
  EXPECT_EQ(care.RelationOf("o1", {"p1"}, At("2026-01-10")), CareRelation::kNone);
  EXPECT_EQ(care.RelationOf("o2", {"p1"}, At("2026-01-10")), CareRelation::kEncounter);
  care.OnWritten(V("Encounter", "e1", "", true));
  EXPECT_EQ(care.RelationOf("o2", {"p1"}, At("2026-01-10")), CareRelation::kNone);
  EXPECT_TRUE(care.PatientsInCareOf("o2", At("2026-01-10")).empty());
  // entered in error counts for nothing
  care.OnWritten(V("Encounter", "e2", R"({"resourceType":"Encounter","status":"entered-in-error","subject":{"reference":"Patient/p1"},
      "serviceProvider":{"reference":"Organization/o2"},"period":{"start":"2026-01-01"}})"));
  EXPECT_EQ(care.RelationOf("o2", {"p1"}, At("2026-01-10")), CareRelation::kNone);
}

TEST(CareRelationships, ReferralsAndContractsAndInstitutionCodes) {
  CareRelationships care;
  care.OnWritten(V("Organization", "org-x", R"({"resourceType":"Organization","identifier":[{"system":"http://rhip.health/id/org","value":"47000009"}]})"));
  care.OnWritten(V("ServiceRequest", "r1", R"({"resourceType":"ServiceRequest","status":"completed","intent":"order",
      "category":[{"coding":[{"code":"referral"}]}],"subject":{"reference":"Patient/p1"},"performer":[{"reference":"Organization/org-x"}],
      "authoredOn":"2026-03-01"})"));
  care.OnWritten(V("ServiceRequest", "r2", R"({"resourceType":"ServiceRequest","status":"active","intent":"order",
      "category":[{"coding":[{"code":"lab"}]}],"subject":{"reference":"Patient/p2"},"performer":[{"reference":"Organization/org-x"}]})"));
  care.OnWritten(V("EpisodeOfCare", "c1", R"({"resourceType":"EpisodeOfCare","status":"active",
      "type":[{"coding":[{"code":"family-doctor-contract"}]}],"patient":{"reference":"Patient/p3"},
      "managingOrganization":{"reference":"Organization/org-x"},"period":{"start":"2026-01-01","end":"2026-12-31"}})"));
  EXPECT_EQ(care.OrgCodeOf("org-x"), "47000009");
  EXPECT_EQ(care.OrgCodeOf("unknown"), "unknown");
  EXPECT_EQ(care.RelationOf("47000009", {"p1"}, At("2026-04-01")), CareRelation::kReferral);
  EXPECT_EQ(care.RelationOf("47000009", {"p1"}, At("2026-07-01")), CareRelation::kNone);  // closed referral, 90 days on
  EXPECT_EQ(care.RelationOf("47000009", {"p2"}, At("2026-04-01")), CareRelation::kNone);  // not a referral
  EXPECT_EQ(care.RelationOf("47000009", {"p3"}, At("2026-06-01")), CareRelation::kContract);
  EXPECT_EQ(care.RelationOf("47000009", {"p3"}, At("2027-01-02")), CareRelation::kNone);
  EXPECT_EQ(care.PatientsInCareOf("47000009", At("2026-04-01")), (std::vector<std::string>{"p1", "p3"}));
}

}  // namespace
}  // namespace rhip::security
