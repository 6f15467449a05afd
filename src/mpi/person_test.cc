#include "rhip/mpi/person.h"

#include <gtest/gtest.h>

#include "rhip/fhir/json.h"
#include "rhip/fhir/operation_outcome.h"
#include "rhip/fhir/validator.h"
#include "rhip/mpi/index.h"

namespace rhip::mpi {
namespace {

TEST(PersonId, RegionSequenceAndCheckCharacter) {
  const std::string id = PersonIdFor("330400", 1);
  EXPECT_EQ(id.size(), 17u);
  EXPECT_EQ(id.substr(0, 16), "3304000000000001");
  EXPECT_EQ(PersonSequence(id), 1);
  EXPECT_EQ(PersonSequence(PersonIdFor("330400", 9876543210)), 9876543210);
  // Every single-character typo is caught by the check character.
  for (size_t i = 0; i < 16; ++i) {
    std::string typo = id;
    typo[i] = typo[i] == '9' ? '0' : static_cast<char>(typo[i] + 1);
    EXPECT_FALSE(PersonSequence(typo).has_value()) << typo;
  }
  EXPECT_FALSE(PersonSequence("p-330402-000123").has_value());
  EXPECT_FALSE(PersonSequence("").has_value());
}

TEST(PersonResource, IsValidFhirAndReadsBack) {
  PersonState p;
  p.id = PersonIdFor("330400", 42);
  p.links = {{"a1", Assurance::kLevel3, LinkMethod::kAuto, 0},
             {"b2", Assurance::kLevel1, LinkMethod::kManual, kFlagNoName | kFlagBirthInvalid}};
  p.version = 3;
  const std::string json = PersonJson(p);
  auto doc = fhir::ParseJson(json);
  ASSERT_TRUE(doc.ok());
  const auto issues = fhir::ValidateResource(*doc);
  EXPECT_FALSE(fhir::HasErrors(issues)) << fhir::OperationOutcomeJson(issues);
  fhir::SetVersionMeta(*doc, 3, 1);
  auto back = ParsePersonJson(fhir::WriteJson(*doc));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, p);
  EXPECT_NE(json.find("data-quality"), std::string::npos);
  // Merged: inactive, pointing at the survivor, no records.
  PersonState merged;
  merged.id = PersonIdFor("330400", 43);
  merged.active = false;
  merged.merged_into = p.id;
  doc = fhir::ParseJson(PersonJson(merged));
  ASSERT_TRUE(doc.ok());
  EXPECT_FALSE(fhir::HasErrors(fhir::ValidateResource(*doc)));
  EXPECT_EQ(*ParsePersonJson(PersonJson(merged)), merged);
  EXPECT_FALSE(ParsePersonJson(R"({"resourceType":"Patient"})").ok());
  // The trail's links round-trip too.
  auto links = ParseLinksJson(LinksJson(p.links));
  ASSERT_TRUE(links.ok());
  EXPECT_EQ(*links, p.links);
}

PatientRecord Rec(int i) {
  PatientRecord r;
  r.id = "r" + std::to_string(i);
  r.name = NormalizeName(i % 2 ? "张伟" : "李娜");
  char birth[16];
  std::snprintf(birth, sizeof birth, "19%02d-%02d-%02d", 30 + i % 70, 1 + i % 12, 1 + i % 28);
  r.birth = birth;
  r.sex = i % 2 ? Sex::kMale : Sex::kFemale;
  r.phone = "139" + std::to_string(10000000 + i);
  r.county = "330402";
  return r;
}

// The compact index grows its key table, reuses freed records, and answers like a fresh one.
TEST(PatientIndex, GrowsRemovesAndReusesWithoutLosingMatches) {
  PatientIndex index(DefaultModel());
  for (int i = 0; i < 50000; ++i) index.Upsert(Rec(i));
  EXPECT_EQ(index.size(), 50000u);
  for (int i = 0; i < 50000; i += 2) index.Remove("r" + std::to_string(i));
  EXPECT_EQ(index.size(), 25000u);
  PatientRecord q = Rec(7);
  q.id = "query";
  auto found = index.Match(q, 5);
  ASSERT_FALSE(found.empty());
  EXPECT_EQ(found[0].id, "r7");
  EXPECT_EQ(found[0].grade, Grade::kCertain);
  q = Rec(8);  // removed
  q.id = "query";
  for (const auto& c : index.Match(q, 5)) EXPECT_NE(c.id, "r8");
  // Re-added under another phone: found by it, not by the old one.
  PatientRecord again = Rec(8);
  again.phone = "13700000008";
  index.Upsert(again);
  q.phone = "13700000008";
  found = index.Match(q, 5);
  ASSERT_FALSE(found.empty());
  EXPECT_EQ(found[0].id, "r8");
  auto stored = index.Find("r8");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->phone, "13700000008");
  EXPECT_EQ(stored->birth, Rec(8).birth);
  EXPECT_EQ(stored->name.simplified, "李娜");
  EXPECT_FALSE(index.Find("r10").has_value());
  // An update replaces the record's keys.
  again.birth = "2001-01-01";
  index.Upsert(again);
  EXPECT_EQ(index.size(), 25001u);
  EXPECT_EQ(index.Score(q, "r8")->levels[kFieldBirth], 4);
  // ID numbers.
  PatientRecord with_id = Rec(9);
  with_id.id_number = NormalizeIdNumber("330402199001011234", "", Sex::kUnknown);
  index.Upsert(with_id);
  ASSERT_EQ(with_id.id_number.number.size(), 18u);
  EXPECT_EQ(index.WithIdNumber(with_id.id_number.number), (std::vector<std::string>{"r9"}));
  EXPECT_TRUE(index.WithIdNumber("330402199001019999").empty());
  EXPECT_GT(index.MemoryBytes(), 0u);
}

}  // namespace
}  // namespace rhip::mpi
