#include "rhip/security/pseudonym.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace rhip::security {
namespace {

namespace fs = std::filesystem;

fhir::Json Parse(const std::string& json) {
  auto doc = fhir::ParseJson(json);
  EXPECT_TRUE(doc.ok()) << json;
  return std::move(*doc);
}

std::string Deidentified(const Pseudonymizer& p, const std::string& json) {
  fhir::Json doc = Parse(json);
  p.Deidentify(doc);
  return fhir::WriteJson(doc);
}

const char kPatient[] =
    R"({"resourceType":"Patient","id":"pa1","meta":{"versionId":"2"},)"
    R"("text":{"status":"generated","div":"<div>张伟 330402199005171234</div>"},)"
    R"("identifier":[{"system":"http://rhip.health/id/mrn/47000001","value":"MRN-77"},)"
    R"({"system":"urn:oid:2.16.156.10011.1.3","value":"330402199005171234"},{"system":"urn:oid:2.16.156.10011.1.19","value":"H3304021234"}],)"
    R"("name":[{"text":"张伟","family":"张","given":["伟"]}],"telecom":[{"system":"phone","value":"13812345678"}],)"
    R"("gender":"male","birthDate":"1990-05-17",)"
    R"("address":[{"text":"南湖区某路1号","line":["某路1号"],"district":"330402","city":"嘉兴市","state":"浙江省","postalCode":"314000"}],)"
    R"("contact":[{"name":{"text":"李娜"}}],"managingOrganization":{"reference":"Organization/ORG-A","display":"某医院"},)"
    R"("link":[{"other":{"reference":"Patient/pb1"},"type":"seealso"}]})";

TEST(Pseudonymizer, PseudonymIsAKeyedDeterministicFhirId) {
  const Pseudonymizer a("key-one"), b("key-two");
  const std::string p = a.Pseudonym("Patient", "pa1");
  EXPECT_EQ(p.size(), 32u);
  EXPECT_EQ(p.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(p, a.Pseudonym("Patient", "pa1"));  // joinable across exports
  EXPECT_NE(p, b.Pseudonym("Patient", "pa1"));  // another deployment's key: another pseudonym
  EXPECT_NE(p, a.Pseudonym("Person", "pa1"));   // types do not collide
  EXPECT_NE(p, a.Pseudonym("Patient", "pa2"));
}

TEST(Pseudonymizer, OpenCreatesOneSecretKeyAndKeepsIt) {
  const fs::path dir = fs::temp_directory_path() / ("rhip-pseudonym-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  auto first = Pseudonymizer::Open((dir / "keys").string());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  struct stat st {};
  ASSERT_EQ(::stat((dir / "keys" / "pseudonym.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto again = Pseudonymizer::Open((dir / "keys").string());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(first->Pseudonym("Patient", "x"), again->Pseudonym("Patient", "x"));
  // A damaged key file is an error, never silently a new key (that would break every join).
  std::ofstream((dir / "keys" / "pseudonym.key").string(), std::ios::trunc) << "not a key\n";
  auto bad = Pseudonymizer::Open((dir / "keys").string());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(bad.status().message().find("64 hex"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Pseudonymizer, PatientLosesDirectIdentifiersAndKeepsRegionAndMonth) {
  const Pseudonymizer p("k");
  const std::string out = Deidentified(p, kPatient);
  for (const char* gone :
       {"张伟", "330402199005171234", "H3304021234", "MRN-77", "13812345678", "南湖区", "某路",
        "314000", "李娜", "\"div\"", "某医院", "\"pa1\"", "\"pb1\"", "1990-05-17"})
    EXPECT_EQ(out.find(gone), std::string::npos) << gone << " in " << out;
  const std::string pseudonym = p.Pseudonym("Patient", "pa1");
  EXPECT_NE(out.find(R"("id":")" + pseudonym + "\""), std::string::npos) << out;
  EXPECT_NE(out.find(R"("identifier":[{"system":"http://rhip.health/id/pseudonym","value":")" +
                     pseudonym + "\"}]"),
            std::string::npos)
      << out;
  for (const char* kept :
       {R"("district":"330402")", R"("city":"嘉兴市")", R"("state":"浙江省")",
        R"("birthDate":"1990-05")", R"("gender":"male")", R"("reference":"Organization/ORG-A")"})
    EXPECT_NE(out.find(kept), std::string::npos) << kept << " missing in " << out;
  EXPECT_NE(out.find("Patient/" + p.Pseudonym("Patient", "pb1")), std::string::npos) << out;
}

TEST(Pseudonymizer, ReferencesToPatientsAndPersonsCarryTheSamePseudonymAsTheRecord) {
  const Pseudonymizer p("k");
  const std::string out = Deidentified(
      p,
      R"({"resourceType":"Observation","id":"o1","status":"final","code":{"text":"血红蛋白"},)"
      R"("subject":{"reference":"Patient/pa1","display":"张伟","identifier":{"value":"330402199005171234"}},)"
      R"("performer":[{"reference":"http://rhip.example/fhir/Patient/pa1/_history/3"},{"reference":"Organization/ORG-A"}],)"
      R"("note":[{"text":"患者电话13812345678"}],"valueString":"复查 330402199005171234 13812345678",)"
      R"("encounter":{"reference":"Encounter/e-00000006-1"},"effectiveDateTime":"2024-03-05T08:00:00+08:00"})");
  const std::string ref = "Patient/" + p.Pseudonym("Patient", "pa1");
  EXPECT_NE(out.find(R"("subject":{"reference":")" + ref + "\"}"), std::string::npos) << out;
  EXPECT_NE(out.find("http://rhip.example/fhir/" + ref + "/_history/3"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("reference":"Organization/ORG-A")"), std::string::npos) << out;
  for (const char* gone : {"张伟", "\"note\"", "330402199005171234", "13812345678", "Patient/pa1"})
    EXPECT_EQ(out.find(gone), std::string::npos) << gone << " in " << out;
  // What is not an identifier stays: the clinical content, exact clinical dates, masked numbers.
  for (const char* kept :
       {"血红蛋白", "2024-03-05T08:00:00+08:00", "330402********1234", "138****5678"})
    EXPECT_NE(out.find(kept), std::string::npos) << kept << " missing in " << out;
  // Ids of personal records of other types are pseudonymised too (they often carry a patient
  // number), consistently with the references to them.
  EXPECT_NE(out.find(R"("id":")" + p.Pseudonym("Observation", "o1") + "\""), std::string::npos)
      << out;
  EXPECT_NE(
      out.find(R"("reference":"Encounter/)" + p.Pseudonym("Encounter", "e-00000006-1") + "\""),
      std::string::npos)
      << out;
  EXPECT_EQ(out.find("00000006"), std::string::npos) << out;
}

TEST(Pseudonymizer, PersonLinksStayJoinable) {
  const Pseudonymizer p("k");
  const std::string out = Deidentified(
      p,
      R"({"resourceType":"Person","id":"PER-1","name":[{"text":"张伟"}],"link":[{"target":{"reference":"Patient/pa1"}}]})");
  EXPECT_NE(out.find(R"("id":")" + p.Pseudonym("Person", "PER-1") + "\""), std::string::npos)
      << out;
  EXPECT_NE(out.find("Patient/" + p.Pseudonym("Patient", "pa1")), std::string::npos) << out;
  EXPECT_EQ(out.find("张伟"), std::string::npos) << out;
}

TEST(Pseudonymizer, DirectoryDataKeepsItsNamesAndCodes) {
  const Pseudonymizer p("k");
  const std::string org =
      R"({"resourceType":"Organization","id":"ORG-A","identifier":[{"system":"http://rhip.health/id/org","value":"47000001"}],"name":"南湖区人民医院"})";
  EXPECT_EQ(Deidentified(p, org), org);
}

}  // namespace
}  // namespace rhip::security
