#include "rhip/core/id_card.h"

#include <gtest/gtest.h>

namespace rhip {
namespace {

TEST(IdCard, CheckCharacterFollowsGb11643) {
  // The standard's worked example: 11010519491231002X.
  EXPECT_EQ(IdCardCheckChar("11010519491231002"), 'X');
  EXPECT_EQ(IdCardCheckChar("44052418800101001"), '4');
  EXPECT_EQ(IdCardCheckChar("1101051949123100"), '\0');
  EXPECT_EQ(IdCardCheckChar("1101051949123100a"), '\0');
}

TEST(IdCard, ParsesRegionBirthAndSex) {
  auto info = ParseIdCard("11010519491231002x");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->number, "11010519491231002X");
  EXPECT_EQ(info->region, "110105");
  EXPECT_EQ(info->birth, "1949-12-31");
  EXPECT_EQ(info->sex, Sex::kFemale);  // sequence 002 is even
}

TEST(IdCard, UpgradesFifteenDigitNumbers) {
  auto info = ParseIdCard("440524800101001");
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->upgraded);
  EXPECT_EQ(info->number, "440524198001010013");  // check character computed independently
  EXPECT_EQ(info->sex, Sex::kMale);
  EXPECT_EQ(UpgradeIdCard15("44052480010100"), "");
}

TEST(IdCard, ReportsEachBrokenRule) {
  EXPECT_NE(ParseIdCard("1234").status().message().find("18 characters"), std::string::npos);
  EXPECT_NE(ParseIdCard("11010519491231002Y").status().message().find("digit or X"), std::string::npos);
  EXPECT_NE(ParseIdCard("11010519491331002X").status().message().find("birth date"), std::string::npos);
  auto typo = ParseIdCard("110105194912310021");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("expected 'X'"), std::string::npos);
}

}  // namespace
}  // namespace rhip
