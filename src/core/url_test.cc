#include "rhip/core/url.h"

#include <gtest/gtest.h>

namespace rhip {
namespace {

TEST(SplitPath, KeepsOnlyNonEmptySegments) {
  EXPECT_EQ(SplitPath("Patient/1/_history/2"), (std::vector<std::string>{"Patient", "1", "_history", "2"}));
  EXPECT_EQ(SplitPath("/Patient//1/"), (std::vector<std::string>{"Patient", "1"}));
  EXPECT_EQ(SplitPath("review"), std::vector<std::string>{"review"});
  EXPECT_TRUE(SplitPath("").empty());
  EXPECT_TRUE(SplitPath("///").empty());
}

TEST(QueryString, DecodesRepeatsAndEscapesAndRoundTrips) {
  auto q = ParseQueryString("date=ge2024&date=lt2025&name=%E5%BC%A0+wei&flag");
  ASSERT_EQ(q.size(), 4u);
  EXPECT_EQ(q[0], (std::pair<std::string, std::string>{"date", "ge2024"}));
  EXPECT_EQ(q[1].second, "lt2025");
  EXPECT_EQ(q[2].second, "张 wei");
  EXPECT_EQ(q[3].first, "flag");
  EXPECT_EQ(PercentDecode("a%2"), "a%2");  // malformed escapes are kept
  EXPECT_EQ(ParseQueryString(BuildQueryString({{"identifier", "urn:oid:1|2 3"}})),
            (std::vector<std::pair<std::string, std::string>>{{"identifier", "urn:oid:1|2 3"}}));
}

}  // namespace
}  // namespace rhip
