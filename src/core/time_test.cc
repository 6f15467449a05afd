#include "rhip/core/time.h"

#include <gtest/gtest.h>

namespace rhip {
namespace {

TEST(FhirDate, YearCoversWholeYearInRegionTime) {
  auto r = ParseFhirDate("2024");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(FormatInstant(r->low), "2023-12-31T16:00:00.000Z");
  EXPECT_EQ(r->high - r->low + 1, 366 * kMicrosPerDay);  // leap year
}

TEST(FhirDate, MonthAndDayRanges) {
  auto m = ParseFhirDate("2023-02");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->high - m->low + 1, 28 * kMicrosPerDay);
  auto d = ParseFhirDate("2024-03-05");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->high - d->low + 1, kMicrosPerDay);
}

TEST(FhirDate, ExplicitZoneIsHonoured) {
  auto r = ParseFhirDate("2024-03-05T10:20:30Z");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(FormatInstant(r->low), "2024-03-05T10:20:30.000Z");
  auto r8 = ParseFhirDate("2024-03-05T18:20:30+08:00");
  ASSERT_TRUE(r8.ok());
  EXPECT_EQ(r8->low, r->low);
}

TEST(FhirDate, RejectsImpossibleDates) {
  EXPECT_FALSE(ParseFhirDate("2023-02-29").ok());
  EXPECT_FALSE(ParseFhirDate("2024-13").ok());
  EXPECT_FALSE(ParseFhirDate("24-01-01").ok());
  EXPECT_FALSE(ParseFhirDate("2024-01-01T25:00").ok());
  EXPECT_FALSE(ParseFhirDate("2024-01-01x").ok());
  EXPECT_EQ(ParseFhirDate("2023-02-29").status().code(), StatusCode::kInvalidArgument);
}

TEST(FhirDate, PrimitiveFormsAreStrict) {
  EXPECT_TRUE(IsValidFhirDate("2024-03-05"));
  EXPECT_FALSE(IsValidFhirDate("2024-03-05T10:00:00Z"));
  EXPECT_TRUE(IsValidFhirDateTime("2024-03-05T10:00:00+08:00"));
  EXPECT_FALSE(IsValidFhirDateTime("2024-03-05T10:00"));  // seconds and zone are required
  EXPECT_TRUE(IsValidFhirInstant("2024-03-05T10:00:00.5Z"));
  EXPECT_FALSE(IsValidFhirInstant("2024-03-05"));
  EXPECT_TRUE(IsValidFhirTime("10:20:30"));
  EXPECT_FALSE(IsValidFhirTime("10:20"));
}

TEST(Civil, RoundTripsDays) {
  for (int64_t z = -800000; z < 800000; z += 997) {
    int y;
    unsigned m, d;
    CivilFromDays(z, &y, &m, &d);
    EXPECT_EQ(DaysFromCivil(y, m, d), z);
  }
}

}  // namespace
}  // namespace rhip
