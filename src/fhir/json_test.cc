#include "rhip/fhir/json.h"

#include <gtest/gtest.h>

namespace rhip::fhir {
namespace {

std::string Nested(int depth) {
  return std::string(static_cast<size_t>(depth), '[') + std::string(static_cast<size_t>(depth), ']');
}

TEST(Json, RoundTripsAResource) {
  auto d = ParseJson(R"({"resourceType":"Patient","name":[{"text":"张伟"}],"multipleBirthInteger":2})");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(StringMember(*d, "resourceType"), "Patient");
  EXPECT_EQ(WriteJson(*d), R"({"resourceType":"Patient","name":[{"text":"张伟"}],"multipleBirthInteger":2})");
}

TEST(Json, MalformedInputNamesLineAndColumn) {
  auto d = ParseJson("{\n  \"a\": 1,\n  \"b\": }");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(d.status().message().find("line 3, column 8"), std::string::npos) << d.status().message();
}

TEST(Json, RejectsTrailingGarbageAndInvalidUtf8) {
  EXPECT_FALSE(ParseJson(R"({"a":1} x)").ok());
  EXPECT_TRUE(ParseJson("{\"a\":1}  \n").ok());
  EXPECT_FALSE(ParseJson("{\"a\":\"\xff\xfe\"}").ok());
  EXPECT_FALSE(ParseJson("").ok());
}

TEST(Json, BoundsNestingDepth) {
  EXPECT_TRUE(ParseJson(Nested(64)).ok());
  auto deep = ParseJson(Nested(65));
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(deep.status().message().find("deeper than 64"), std::string::npos);
  EXPECT_FALSE(ParseJson(Nested(100000)).ok());  // no stack exhaustion
  EXPECT_TRUE(ParseJson(Nested(3), 3).ok());
  EXPECT_FALSE(ParseJson(Nested(4), 3).ok());
}

}  // namespace
}  // namespace rhip::fhir
