#include "rhip/fhir/index.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "rhip/fhir/definitions.h"
#include "rhip/fhir/fhirpath.h"

namespace rhip::fhir {
namespace {

Json Parse(const char* s) {
  auto d = ParseJson(s);
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return std::move(*d);
}

const char* kPatient = R"({"resourceType":"Patient","id":"p1",
  "identifier":[{"system":"urn:oid:2.16.156.10011.1.3","value":"330402199001011234"},
                {"system":"http://rhip.health/id/mrn/47000001","value":"M001"}],
  "name":[{"text":"张伟","family":"张","given":["伟"]}],
  "telecom":[{"system":"phone","value":"13800000000"},{"system":"email","value":"zw@example.cn"}],
  "gender":"male","birthDate":"1990-01-01","deceasedBoolean":false,
  "address":[{"district":"330402","text":"浙江省嘉兴市南湖区"}],
  "managingOrganization":{"reference":"Organization/47000001"}})";

const char* kObservation = R"({"resourceType":"Observation","id":"o1","status":"final",
  "code":{"coding":[{"system":"http://loinc.org","code":"718-7"}]},
  "subject":{"reference":"Patient/p1"},"encounter":{"reference":"Encounter/e1"},
  "effectiveDateTime":"2024-03-05T09:10:00+08:00",
  "valueQuantity":{"value":135,"unit":"g/L","system":"http://unitsofmeasure.org","code":"g/L"},
  "performer":[{"reference":"Organization/47000001"}]})";

bool HasToken(const store::IndexRows& r, const std::string& p, const std::string& sys, const std::string& code) {
  return std::any_of(r.tokens.begin(), r.tokens.end(),
                     [&](const auto& t) { return t.param == p && t.system == sys && t.code == code; });
}

TEST(FhirPath, CompilesEveryExpressionOfTheCoreResourceTypes) {
  const char* types[] = {"Patient", "Person", "Organization", "Practitioner", "PractitionerRole", "Encounter",
                         "Condition", "Observation", "DiagnosticReport", "Procedure", "MedicationRequest",
                         "Immunization", "Claim", "ServiceRequest", "Task", "Schedule", "Slot", "Appointment",
                         "EpisodeOfCare", "CareTeam", "AuditEvent", "Flag", "Group", "Bundle", "Resource"};
  Json empty = Parse(R"({"resourceType":"Patient","id":"x"})");
  int n = 0;
  for (const char* t : types) {
    for (const auto& p : Definitions::R4().SearchParams(t)) {
      auto f = FhirPath::Compile(p.expression);
      EXPECT_TRUE(f.ok()) << t << "." << p.code << ": " << f.status().ToString();
      if (f.ok()) f->Evaluate(empty, t);
      ++n;
    }
  }
  EXPECT_GT(n, 350);
}

TEST(FhirPath, CompilesEverySearchExpressionOfR4) {
  int n = 0;
  for (const auto& type : Definitions::R4().ResourceTypes())
    for (const auto& p : Definitions::R4().SearchParams(type)) {
      if (p.type == store::ParamType::kSpecial) continue;
      auto f = FhirPath::Compile(p.expression);
      EXPECT_TRUE(f.ok()) << type << "." << p.code << ": " << f.status().ToString();
      ++n;
    }
  EXPECT_GT(n, 1500);
}

TEST(FhirPath, RejectsUnsupportedFunctionsByName) {
  auto f = FhirPath::Compile("Patient.name.select(given)");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("select"), std::string::npos);
  EXPECT_FALSE(FhirPath::Compile("Patient.name.where(").ok());
}

TEST(FhirPath, NavigatesChoiceTypesAndWhere) {
  Json p = Parse(kPatient);
  auto phone = FhirPath::Compile("Patient.telecom.where(system='phone')");
  ASSERT_TRUE(phone.ok());
  auto nodes = phone->Evaluate(p, "Patient");
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0].type, "ContactPoint");
  auto deceased = FhirPath::Compile("Patient.deceased.exists() and Patient.deceased != false");
  ASSERT_TRUE(deceased.ok());
  auto d = deceased->Evaluate(p, "Patient");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].boolean, 0);
  Json o = Parse(kObservation);
  auto q = FhirPath::Compile("(Observation.value.ofType(Quantity)) | (Observation.value.ofType(SampledData))");
  ASSERT_TRUE(q.ok());
  auto qn = q->Evaluate(o, "Observation");
  ASSERT_EQ(qn.size(), 1u);
  EXPECT_EQ(qn[0].type, "Quantity");
  auto pat = FhirPath::Compile("Observation.subject.where(resolve() is Patient)");
  ASSERT_TRUE(pat.ok());
  EXPECT_EQ(pat->Evaluate(o, "Observation").size(), 1u);
  auto prac = FhirPath::Compile("Observation.subject.where(resolve() is Practitioner)");
  EXPECT_EQ(prac->Evaluate(o, "Observation").size(), 0u);
}

TEST(Index, ExtractsPatientTokensStringsDatesAndReferences) {
  Json p = Parse(kPatient);
  store::IndexRows r = ExtractIndex(p, "Patient");
  EXPECT_TRUE(HasToken(r, "identifier", "urn:oid:2.16.156.10011.1.3", "330402199001011234"));
  EXPECT_TRUE(HasToken(r, "gender", "", "male"));
  EXPECT_TRUE(HasToken(r, "phone", "phone", "13800000000"));
  EXPECT_FALSE(HasToken(r, "phone", "email", "zw@example.cn"));
  EXPECT_TRUE(HasToken(r, "deceased", "", "false"));
  EXPECT_TRUE(std::any_of(r.strings.begin(), r.strings.end(),
                          [](const auto& s) { return s.param == "name" && s.exact == "张伟"; }));
  EXPECT_TRUE(std::any_of(r.strings.begin(), r.strings.end(),
                          [](const auto& s) { return s.param == "address" && s.exact == "330402"; }));
  auto birth = std::find_if(r.dates.begin(), r.dates.end(), [](const auto& d) { return d.param == "birthdate"; });
  ASSERT_NE(birth, r.dates.end());
  EXPECT_EQ(birth->high - birth->low + 1, kMicrosPerDay);
  EXPECT_TRUE(std::any_of(r.references.begin(), r.references.end(), [](const auto& x) {
    return x.param == "organization" && x.target_type == "Organization" && x.target_id == "47000001";
  }));
  EXPECT_EQ(r.compartment_patients, std::vector<std::string>{"p1"});
}

TEST(Index, ExtractsObservationQuantityAndCompartment) {
  Json o = Parse(kObservation);
  store::IndexRows r = ExtractIndex(o, "Observation");
  EXPECT_TRUE(HasToken(r, "code", "http://loinc.org", "718-7"));
  EXPECT_TRUE(std::any_of(r.quantities.begin(), r.quantities.end(), [](const auto& q) {
    return q.param == "value-quantity" && q.value == 135 && q.code == "g/L";
  }));
  EXPECT_TRUE(std::any_of(r.references.begin(), r.references.end(), [](const auto& x) {
    return x.param == "subject" && x.target_type == "Patient" && x.target_id == "p1";
  }));
  EXPECT_TRUE(std::any_of(r.references.begin(), r.references.end(),
                          [](const auto& x) { return x.param == "patient" && x.target_id == "p1"; }));
  EXPECT_TRUE(std::any_of(r.dates.begin(), r.dates.end(), [](const auto& d) { return d.param == "date"; }));
  EXPECT_EQ(r.compartment_patients, std::vector<std::string>{"p1"});
}

TEST(Index, PeriodWithoutEndIsOpen) {
  Json e = Parse(R"({"resourceType":"Encounter","id":"e1","status":"in-progress",
    "class":{"code":"IMP"},"subject":{"reference":"Patient/p1"},"period":{"start":"2024-01-02T08:00:00+08:00"}})");
  store::IndexRows r = ExtractIndex(e, "Encounter");
  auto d = std::find_if(r.dates.begin(), r.dates.end(), [](const auto& x) { return x.param == "date"; });
  ASSERT_NE(d, r.dates.end());
  EXPECT_EQ(d->high, std::numeric_limits<Micros>::max());
}

TEST(Index, NormalizeFoldsCaseWidthAndAccents) {
  EXPECT_EQ(NormalizeSearchString("ZHANG Wei"), "zhang wei");
  EXPECT_EQ(NormalizeSearchString("ＡＢＣ"), "abc");
  EXPECT_EQ(NormalizeSearchString("Zhāng"), "zhang");
  EXPECT_EQ(NormalizeSearchString("张伟"), "张伟");
  // Chinese with ASCII takes the fast path (no ICU); what ICU would change still goes through it.
  EXPECT_EQ(NormalizeSearchString("浙江省嘉兴市 ZHONGSHAN路12号"), "浙江省嘉兴市 zhongshan路12号");
  EXPECT_EQ(NormalizeSearchString("㐀丂"), "㐀丂");                  // CJK extension A and unified: unchanged
  EXPECT_EQ(NormalizeSearchString("\uF900"), "\u8C48");           // a compatibility ideograph: NFKC maps it
  EXPECT_EQ(NormalizeSearchString("张\u3000伟"), "张 伟");          // ideographic space: NFKC makes it a space
  EXPECT_EQ(NormalizeSearchString("王Ａ"), "王a");                   // full-width letter after a Chinese one
}

}  // namespace
}  // namespace rhip::fhir

namespace rhip::fhir {
namespace {

TEST(FhirPathRoots, NameTheTopLevelElementsAResultComesFrom) {
  auto roots = [](const char* expr, const char* type) {
    auto p = FhirPath::Compile(expr);
    EXPECT_TRUE(p.ok()) << expr;
    return p->RootElements(type);
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(roots("Observation.subject", "Observation"), V{"subject"});
  EXPECT_EQ(roots("Observation.subject.where(resolve() is Patient)", "Observation"), V{"subject"});
  EXPECT_EQ(roots("Observation.code | Observation.component.code", "Observation"), (V{"code", "component"}));
  EXPECT_EQ(roots("(Observation.value as Quantity)", "Observation"), V{"value"});
  EXPECT_EQ(roots("Patient.telecom.where(system='phone')", "Patient"), V{"telecom"});
  EXPECT_EQ(roots("Resource.meta.tag", "Patient"), V{"meta"});
  // Results that exist without the element, or whose roots cannot be told: always evaluated.
  EXPECT_TRUE(roots("Patient.deceased.exists() and Patient.deceased != false", "Patient").empty());
  EXPECT_TRUE(roots("Patient.name.exists()", "Patient").empty());
  EXPECT_TRUE(roots("Observation.code | Observation.code.exists()", "Observation").empty());
  EXPECT_TRUE(roots("$this", "Observation").empty());
}

TEST(Index, SkippingParametersWhoseElementsAreAbsentChangesNoRow) {
  // A resource without the element a parameter reads yields no row either way;
  // one whose choice element is present under its typed name is not skipped.
  Json obs = Parse(R"({"resourceType":"Observation","id":"o","status":"final",
    "code":{"coding":[{"system":"http://loinc.org","code":"718-7"}]},
    "effectivePeriod":{"start":"2024-01-01"},"valueQuantity":{"value":5,"unit":"g"}})");
  store::IndexRows fast = ExtractIndex(obs, "Observation");
  store::IndexRows all = ExtractIndexEvaluatingAll(obs, "Observation");
  EXPECT_EQ(fast.dates.size(), all.dates.size());
  EXPECT_EQ(fast.quantities.size(), all.quantities.size());
  EXPECT_EQ(fast.tokens.size(), all.tokens.size());
  EXPECT_FALSE(fast.dates.empty());
  EXPECT_FALSE(fast.quantities.empty());
}

}  // namespace
}  // namespace rhip::fhir
