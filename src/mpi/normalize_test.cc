#include "rhip/mpi/normalize.h"

#include <gtest/gtest.h>

#include <thread>

namespace rhip::mpi {
namespace {

TEST(NormalizeName, TraditionalFullWidthAndSpacesBecomeOneSimplifiedForm) {
  NormalizedName n = NormalizeName("陳 偉");
  EXPECT_EQ(n.simplified, "陈伟");
  EXPECT_EQ(n.surname, "陈");
  EXPECT_EQ(n.given, "伟");
  EXPECT_EQ(n.pinyin, "chen wei");
  EXPECT_EQ(n.initials, "cw");
  EXPECT_EQ(n.fuzzy, "cen wei");
  EXPECT_EQ(NormalizeName("張　偉").simplified, "张伟");  // full-width space
  EXPECT_EQ(NormalizeName("劉德華").simplified, "刘德华");
  EXPECT_EQ(NormalizeName("买买提·艾力").simplified, "买买提艾力");
  EXPECT_TRUE(NormalizeName("  ").empty());
  EXPECT_TRUE(NormalizeName("").empty());
}

TEST(NormalizeName, HomophonesShareThePinyinAndNearHomophonesTheFuzzyKey) {
  EXPECT_EQ(NormalizeName("张伟").pinyin, NormalizeName("张玮").pinyin);
  EXPECT_NE(NormalizeName("张伟").simplified, NormalizeName("张玮").simplified);
  // zh/z, ch/c, sh/s, n/l, an/ang, en/eng, in/ing (DOMAIN B.2)
  EXPECT_EQ(NormalizeName("张兵").fuzzy, NormalizeName("臧斌").fuzzy);
  EXPECT_EQ(NormalizeName("陈琴").fuzzy, NormalizeName("程晴").fuzzy);
  EXPECT_EQ(NormalizeName("沈宁").fuzzy, NormalizeName("盛玲").fuzzy);
  EXPECT_NE(NormalizeName("王伟").fuzzy, NormalizeName("李伟").fuzzy);
  EXPECT_EQ(FuzzySyllable("zhang"), "zan");
  EXPECT_EQ(FuzzySyllable("ning"), "lin");
  EXPECT_EQ(FuzzySyllable("shen"), "sen");
  EXPECT_EQ(FuzzySyllable("li"), "li");
}

TEST(NormalizeName, SurnameReadingsAndCompoundSurnames) {
  EXPECT_EQ(NormalizeName("单丽").syllables[0], "shan");
  EXPECT_EQ(NormalizeName("曾小贤").syllables[0], "zeng");
  EXPECT_EQ(NormalizeName("解放").syllables[0], "xie");
  EXPECT_NE(NormalizeName("王单").syllables[1], "shan") << "only the surname takes the surname reading";
  NormalizedName oy = NormalizeName("欧阳娜娜");
  EXPECT_EQ(oy.surname, "欧阳");
  EXPECT_EQ(oy.given, "娜娜");
  EXPECT_EQ(oy.pinyin, "ou yang na na");
  EXPECT_EQ(NormalizeName("欧阳").surname, "欧") << "two characters alone are surname + given name";
}

TEST(NormalizeName, LatinNamesAndTheSameAnswerOnEveryThread) {
  NormalizedName n = NormalizeName("ＺＨＡＮＧ Wei");
  EXPECT_EQ(n.simplified, "zhangwei");
  EXPECT_EQ(n.pinyin, "zhang wei");
  EXPECT_EQ(n.initials, "zw");
  std::string a, b;
  std::thread t1([&] { a = NormalizeName("諸葛亮").pinyin; });
  std::thread t2([&] { b = NormalizeName("诸葛亮").pinyin; });
  t1.join();
  t2.join();
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, "zhu ge liang");
}

TEST(NormalizeId, ChecksUpgradesAndCrossChecksTheRecord) {
  // 1990-01-01, sequence 123 (odd = male), with its GB 11643 check character.
  const std::string first17 = "33040219900101123";
  const std::string valid = first17 + IdCardCheckChar(first17);
  EXPECT_EQ(NormalizeIdNumber(valid, "1990-01-01", Sex::kMale).status, IdStatus::kValid);
  EXPECT_EQ(NormalizeIdNumber(" " + valid.substr(0, 6) + " " + valid.substr(6), "", Sex::kUnknown).number, valid);
  if (valid.back() == 'X') {
    std::string lower = valid;
    lower.back() = 'x';
    EXPECT_EQ(NormalizeIdNumber(lower).status, IdStatus::kValid);
  }
  // One mistyped digit: the check character catches it.
  std::string typo = valid;
  typo[10] = typo[10] == '9' ? '8' : static_cast<char>(typo[10] + 1);
  NormalizedId bad = NormalizeIdNumber(typo);
  EXPECT_EQ(bad.status, IdStatus::kBadCheck);
  EXPECT_EQ(bad.number, typo);
  EXPECT_FALSE(bad.reason.empty());
  // The record disagrees: birth date, sex.
  NormalizedId other_birth = NormalizeIdNumber(valid, "1990-02-01", Sex::kMale);
  EXPECT_EQ(other_birth.status, IdStatus::kConflicting);
  EXPECT_NE(other_birth.reason.find("1990-02-01"), std::string::npos);
  EXPECT_EQ(NormalizeIdNumber(valid, "1990-01-01", Sex::kFemale).status, IdStatus::kConflicting);
  // 15 digits: upgraded to the 18-digit form.
  const std::string old15 = valid.substr(0, 6) + valid.substr(8, 9);
  NormalizedId up = NormalizeIdNumber(old15, "1990-01-01", Sex::kMale);
  EXPECT_EQ(up.status, IdStatus::kValid);
  EXPECT_TRUE(up.upgraded);
  EXPECT_EQ(up.number, valid);
  EXPECT_EQ(NormalizeIdNumber("").status, IdStatus::kMissing);
  EXPECT_EQ(NormalizeIdNumber("12345").status, IdStatus::kMalformed);
  EXPECT_EQ(NormalizeIdNumber("330402199013011234").status, IdStatus::kMalformed) << "month 13";
}

TEST(NormalizeContact, PhonesAndAddresses) {
  EXPECT_EQ(NormalizePhone("+86 138-1234-5678"), "13812345678");
  EXPECT_EQ(NormalizePhone("0086 13812345678"), "13812345678");
  EXPECT_EQ(NormalizePhone("１３８１２３４５６７８"), "13812345678");
  EXPECT_EQ(NormalizePhone("0573-82123456"), "057382123456");
  EXPECT_EQ(NormalizePhone("12"), "");
  EXPECT_TRUE(IsMobile("13812345678"));
  EXPECT_FALSE(IsMobile("057382123456"));
  EXPECT_EQ(NormalizeAddress("浙江省嘉兴市南湖区新丰镇 1 号"), "南湖区新丰镇1号");
  EXPECT_EQ(NormalizeAddress("南湖区新丰镇１号"), "南湖区新丰镇1号");
  EXPECT_EQ(NormalizeAddress("浙江省海宁市硖石街道2号"), "海宁市硖石街道2号") << "a county-level city is kept";
}

}  // namespace
}  // namespace rhip::mpi
