#include "rhip/fhir/search.h"

#include <gtest/gtest.h>

namespace rhip::fhir {
namespace {

using store::Modifier;
using store::ParamType;
using store::Prefix;

StatusOr<ParsedSearch> P(const char* type, std::vector<std::pair<std::string, std::string>> q,
                         Handling h = Handling::kLenient) {
  return ParseSearch(type, q, h);
}

TEST(Search, TokenForms) {
  auto s = P("Patient", {{"identifier", "urn:oid:2.16.156.10011.1.3|330402199001011234"}});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const auto& v = s->query.criteria[0].values[0];
  EXPECT_EQ(s->query.criteria[0].type, ParamType::kToken);
  EXPECT_TRUE(v.has_system);
  EXPECT_EQ(v.system, "urn:oid:2.16.156.10011.1.3");
  EXPECT_EQ(v.code, "330402199001011234");
  auto nosys = P("Patient", {{"gender", "|male"}});
  EXPECT_TRUE(nosys->query.criteria[0].values[0].has_system);
  EXPECT_TRUE(nosys->query.criteria[0].values[0].system.empty());
  auto any = P("Patient", {{"gender:not", "male,female"}});
  EXPECT_EQ(any->query.criteria[0].modifier, Modifier::kNot);
  EXPECT_EQ(any->query.criteria[0].values.size(), 2u);
  EXPECT_FALSE(any->query.criteria[0].values[0].has_system);
}

TEST(Search, EscapedCommaAndPipeStayInValues) {
  auto s = P("Patient", {{"identifier", "sys|a\\,b"}, {"name", "x\\,y"}});
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->query.criteria[0].values.size(), 1u);
  EXPECT_EQ(s->query.criteria[0].values[0].code, "a,b");
  EXPECT_EQ(s->query.criteria[1].values[0].text, "x,y");
  auto pipe = P("Patient", {{"identifier", "s\\|t|c"}});
  EXPECT_EQ(pipe->query.criteria[0].values[0].system, "s|t");
}

TEST(Search, DatesWithPrefixesAndPartialPrecision) {
  auto s = P("Observation", {{"date", "ge2024-01"}, {"date", "lt2024-02-15"}});
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->query.criteria.size(), 2u);
  EXPECT_EQ(s->query.criteria[0].values[0].prefix, Prefix::kGe);
  EXPECT_EQ(s->query.criteria[1].values[0].prefix, Prefix::kLt);
  auto bad = P("Patient", {{"birthdate", "2024-13"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("birthdate"), std::string::npos);
  EXPECT_EQ(bad.status().location(), "birthdate");
}

TEST(Search, ReferencesBareTypedAndChained) {
  auto s = P("Observation", {{"subject", "Patient/p1"}, {"specimen", "s1"}});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->query.criteria[0].values[0].target_type, "Patient");
  EXPECT_EQ(s->query.criteria[0].values[0].target_id, "p1");
  EXPECT_EQ(s->query.criteria[1].values[0].target_type, "Specimen");  // its only target type
  auto typed = P("Observation", {{"subject:Patient", "p1"}});
  ASSERT_TRUE(typed.ok());
  EXPECT_EQ(typed->query.criteria[0].values[0].target_type, "Patient");
  auto chain = P("Observation", {{"subject:Patient.identifier", "sys|v"}});
  ASSERT_TRUE(chain.ok()) << chain.status().ToString();
  ASSERT_TRUE(chain->query.criteria[0].chain.has_value());
  EXPECT_EQ(chain->query.criteria[0].chain->target_type, "Patient");
  EXPECT_EQ(chain->query.criteria[0].chain->inner->values[0].code, "v");
  auto ambiguous = P("Observation", {{"subject.name", "x"}});
  ASSERT_FALSE(ambiguous.ok());
  EXPECT_NE(ambiguous.status().message().find("name one"), std::string::npos);
}

TEST(Search, NumbersAndQuantitiesCarryImplicitPrecision) {
  auto s = P("Observation", {{"value-quantity", "gt5.4|http://unitsofmeasure.org|mg"}});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const auto& v = s->query.criteria[0].values[0];
  EXPECT_EQ(v.prefix, Prefix::kGt);
  EXPECT_DOUBLE_EQ(v.number, 5.4);
  EXPECT_EQ(v.code, "mg");
  auto eq = P("Observation", {{"value-quantity", "100"}});
  EXPECT_DOUBLE_EQ(eq->query.criteria[0].values[0].number_low, 99.5);
  EXPECT_DOUBLE_EQ(eq->query.criteria[0].values[0].number_high, 100.5);
  EXPECT_FALSE(P("Observation", {{"value-quantity", "abc"}}).ok());
}

TEST(Search, StringsAreNormalizedExceptExact) {
  auto s = P("Patient", {{"name", "ZHANG"}, {"name:exact", "ZHANG"}, {"family:contains", "Wei"}});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->query.criteria[0].values[0].text, "zhang");
  EXPECT_EQ(s->query.criteria[1].values[0].text, "ZHANG");
  EXPECT_EQ(s->query.criteria[2].modifier, Modifier::kContains);
}

TEST(Search, ResultParameters) {
  auto s = P("Patient", {{"_count", "5"}, {"_sort", "-birthdate,_id"}, {"_total", "accurate"},
                         {"_include", "Patient:organization"}, {"_revinclude", "Observation:subject"},
                         {"_elements", "name,gender"}, {"_offset", "10"}, {"_snapshot", "99"}});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->query.count, 5);
  ASSERT_EQ(s->query.sort.size(), 2u);
  EXPECT_TRUE(s->query.sort[0].descending);
  EXPECT_EQ(s->query.sort[0].type, ParamType::kDate);
  EXPECT_EQ(s->query.total, store::TotalMode::kAccurate);
  EXPECT_EQ(s->includes[0].param, "organization");
  EXPECT_EQ(s->revincludes[0].source_type, "Observation");
  EXPECT_EQ(s->elements, (std::vector<std::string>{"name", "gender"}));
  EXPECT_EQ(s->query.offset, 10);
  EXPECT_EQ(s->query.snapshot_seq, 99);
  auto count = P("Patient", {{"_summary", "count"}});
  EXPECT_EQ(count->query.count, 0);
  EXPECT_FALSE(P("Patient", {{"_count", "-1"}}).ok());
  EXPECT_FALSE(P("Patient", {{"_count", "100000"}}).ok());
  EXPECT_FALSE(P("Patient", {{"_sort", "nosuch"}}).ok());
  EXPECT_FALSE(P("Patient", {{"_include", "Patient:gender"}}).ok());
}

TEST(Search, UnknownParametersLenientVersusStrict) {
  auto lenient = P("Patient", {{"foo", "bar"}, {"gender", "male"}});
  ASSERT_TRUE(lenient.ok());
  ASSERT_EQ(lenient->ignored.size(), 1u);
  EXPECT_EQ(lenient->ignored[0].first, "foo");
  EXPECT_EQ(lenient->query.criteria.size(), 1u);
  auto strict = P("Patient", {{"foo", "bar"}}, Handling::kStrict);
  ASSERT_FALSE(strict.ok());
  EXPECT_EQ(strict.status().location(), "foo");
  EXPECT_EQ(P("Nope", {}).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(P("Patient", {{"gender:exact", "male"}}).ok());
  EXPECT_FALSE(P("Patient", {{"gender:missing", "maybe"}}).ok());
}

}  // namespace
}  // namespace rhip::fhir
