#include "rhip/fhir/validator.h"

#include <gtest/gtest.h>

namespace rhip::fhir {
namespace {

std::vector<Issue> V(const std::string& json) {
  auto d = ParseJson(json);
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return ValidateResource(*d);
}

bool Has(const std::vector<Issue>& issues, const std::string& expression, const std::string& code = "") {
  for (const auto& i : issues)
    if (i.expression == expression && (code.empty() || i.code == code)) return true;
  return false;
}

std::string Dump(const std::vector<Issue>& issues) {
  std::string s;
  for (const auto& i : issues) s += i.code + " " + i.expression + ": " + i.diagnostics + "\n";
  return s;
}

const char* kPatient = R"({"resourceType":"Patient","id":"p-1",
  "meta":{"versionId":"1","lastUpdated":"2024-01-01T00:00:00.000Z"},
  "identifier":[{"system":"urn:oid:2.16.156.10011.1.3","value":"330402199001011234"},
                {"system":"http://rhip.health/id/mrn/47000001","value":"M001"}],
  "name":[{"text":"张伟","family":"张","given":["伟"]}],
  "telecom":[{"system":"phone","value":"13800000000"}],
  "gender":"male","birthDate":"1990-01-01",
  "address":[{"district":"330402","text":"浙江省嘉兴市南湖区"}],
  "extension":[{"url":"http://rhip.health/x","valueString":"y"}]})";

TEST(Validator, AcceptsRealisticRegionalResources) {
  EXPECT_TRUE(V(kPatient).empty()) << Dump(V(kPatient));
  const char* enc = R"({"resourceType":"Encounter","id":"e1","status":"finished",
    "class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},
    "type":[{"coding":[{"system":"http://rhip.health/CodeSystem/encounter-type","code":"day-surgery"}]}],
    "subject":{"reference":"Patient/p-1"},"serviceProvider":{"reference":"Organization/o1"},
    "period":{"start":"2024-01-02T08:00:00+08:00","end":"2024-01-05T10:00:00+08:00"},
    "diagnosis":[{"condition":{"reference":"Condition/c1"},"rank":1}],
    "hospitalization":{"dischargeDisposition":{"coding":[{"code":"home"}]}}})";
  EXPECT_TRUE(V(enc).empty()) << Dump(V(enc));
  const char* obs = R"({"resourceType":"Observation","status":"final",
    "code":{"coding":[{"system":"http://loinc.org","code":"718-7"}]},"subject":{"reference":"Patient/p-1"},
    "effectiveDateTime":"2024-03-05T09:10:00+08:00",
    "valueQuantity":{"value":135.5,"unit":"g/L","system":"http://unitsofmeasure.org","code":"g/L"}})";
  EXPECT_TRUE(V(obs).empty()) << Dump(V(obs));
  const char* claim = R"({"resourceType":"Claim","status":"active","use":"claim",
    "type":{"coding":[{"code":"institutional"}]},"patient":{"reference":"Patient/p-1"},
    "created":"2024-01-05","provider":{"reference":"Organization/o1"},"priority":{"coding":[{"code":"normal"}]},
    "insurance":[{"sequence":1,"focal":true,"coverage":{"display":"医保"}}],
    "item":[{"sequence":1,"category":{"coding":[{"system":"http://rhip.health/CodeSystem/charge-category","code":"drug"}]},
      "productOrService":{"text":"药品"},"encounter":[{"reference":"Encounter/e1"}],"net":{"value":120.5,"currency":"CNY"}}],
    "total":{"value":120.5,"currency":"CNY"}})";
  EXPECT_TRUE(V(claim).empty()) << Dump(V(claim));
  const char* imm = R"({"resourceType":"Immunization","status":"completed",
    "vaccineCode":{"coding":[{"system":"http://rhip.health/CodeSystem/vaccine","code":"hepb"}]},
    "patient":{"reference":"Patient/p-1"},"occurrenceDateTime":"2024-01-01T10:00:00+08:00",
    "performer":[{"actor":{"reference":"Organization/o1"}}],"protocolApplied":[{"doseNumberPositiveInt":1}]})";
  EXPECT_TRUE(V(imm).empty()) << Dump(V(imm));
  const char* bundle = R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient","gender":"female"},"request":{"method":"POST","url":"Patient"}}]})";
  EXPECT_TRUE(V(bundle).empty()) << Dump(V(bundle));
}

TEST(Validator, UnknownElementsAreNamedWithASuggestion) {
  auto issues = V(R"({"resourceType":"Patient","nmae":[{"text":"x"}]})");
  ASSERT_TRUE(Has(issues, "Patient.nmae", "structure")) << Dump(issues);
  EXPECT_NE(issues[0].diagnostics.find("did you mean 'name'"), std::string::npos);
  EXPECT_TRUE(Has(V(R"({"resourceType":"Patient","name":[{"txet":"x"}]})"), "Patient.name[0].txet"));
  EXPECT_TRUE(Has(V(R"({"resourceType":"Patient","contact":[{"foo":1}]})"), "Patient.contact[0].foo"));
}

TEST(Validator, ChoiceTypesAcceptOnlyListedSuffixes) {
  EXPECT_TRUE(V(R"({"resourceType":"Patient","deceasedDateTime":"2020-01-01"})").empty());
  EXPECT_TRUE(Has(V(R"({"resourceType":"Patient","deceasedString":"yes"})"), "Patient.deceasedString", "structure"));
}

TEST(Validator, CardinalityAndJsonShape) {
  EXPECT_TRUE(Has(V(R"({"resourceType":"Patient","gender":["male"]})"), "Patient.gender", "structure"));
  EXPECT_TRUE(Has(V(R"({"resourceType":"Patient","name":{"text":"x"}})"), "Patient.name", "structure"));
  EXPECT_TRUE(Has(V(R"({"resourceType":"Patient","name":[]})"), "Patient.name", "structure"));
  auto obs = V(R"({"resourceType":"Observation","subject":{"reference":"Patient/1"}})");
  EXPECT_TRUE(Has(obs, "Observation.status", "required")) << Dump(obs);
  EXPECT_TRUE(Has(obs, "Observation.code", "required"));
}

TEST(Validator, PrimitiveFormats) {
  auto issues = V(R"({"resourceType":"Patient","id":"bad id!","birthDate":"1990-13-01","active":"yes",
    "multipleBirthInteger":1.5,"gender":" male"})");
  EXPECT_TRUE(Has(issues, "Patient.id", "value")) << Dump(issues);
  ASSERT_TRUE(Has(issues, "Patient.birthDate", "value"));
  EXPECT_TRUE(Has(issues, "Patient.active", "value"));
  EXPECT_TRUE(Has(issues, "Patient.multipleBirthInteger", "value"));
  EXPECT_TRUE(Has(issues, "Patient.gender", "value"));
  for (const auto& i : issues) {
    if (i.expression == "Patient.birthDate") {
      EXPECT_NE(i.diagnostics.find("month must be 01-12"), std::string::npos);
    }
  }
  EXPECT_TRUE(Has(V(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"issued":"2024-01-01"})"),
                  "Observation.issued", "value"));
  EXPECT_TRUE(Has(V(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":"5"}})"),
                  "Observation.valueQuantity.value", "value"));
  EXPECT_TRUE(Has(V(R"({"resourceType":"Patient","name":[{"text":""}]})"), "Patient.name[0].text", "value"));
}

TEST(Validator, PrimitiveExtensionsContainedAndBundleEntries) {
  EXPECT_TRUE(V(R"({"resourceType":"Patient","_birthDate":{"extension":[{"url":"u","valueString":"x"}]}})").empty());
  EXPECT_TRUE(Has(V(R"({"resourceType":"Patient","_name":{"id":"x"}})"), "Patient._name", "structure"));
  EXPECT_TRUE(Has(V(R"({"resourceType":"Patient","contained":[{"resourceType":"Organization","nam":"x"}]})"),
                  "Patient.contained[0].nam"));
  auto b = V(R"({"resourceType":"Bundle","type":"transaction","entry":[{},{"resource":{"resourceType":"Patient","birthDate":"x"}}]})");
  EXPECT_TRUE(Has(b, "Bundle.entry[1].resource.birthDate", "value")) << Dump(b);
}

TEST(Validator, RootErrors) {
  EXPECT_TRUE(Has(V(R"({"resourceType":"Nope"})"), "resourceType"));
  EXPECT_TRUE(Has(V(R"({"id":"x"})"), "resourceType", "required"));
  EXPECT_TRUE(Has(V(R"([1,2])"), "Resource", "structure"));
}

TEST(Validator, StopsAfterMaxIssues) {
  std::string json = R"({"resourceType":"Patient")";
  for (int i = 0; i < 100; ++i) json += ",\"bad" + std::to_string(i) + "\":1";
  json += "}";
  auto d = ParseJson(json);
  EXPECT_EQ(ValidateResource(*d, {.max_issues = 10}).size(), 10u);
}

}  // namespace
}  // namespace rhip::fhir
