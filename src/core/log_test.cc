#include "rhip/core/log.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace rhip {
namespace {

TEST(MaskIdentifiers, MasksIdNumbersAndPhones) {
  EXPECT_EQ(MaskIdentifiers("id=330402199001011234 phone=13812345678"), "id=330402********1234 phone=138****5678");
  EXPECT_EQ(MaskIdentifiers("33040219900101123X"), "330402********123X");
  EXPECT_EQ(MaskIdentifiers("old 330402900101123"), "old 330402*****1123");
  EXPECT_EQ(MaskIdentifiers("identifier=urn:oid:2.16.156.10011.1.3|330402199001011234"),
            "identifier=urn:oid:2.16.156.10011.1.3|330402********1234");
}

TEST(MaskIdentifiers, MasksPercentEncodedQueryValues) {
  // What an access log line holds for GET /fhir/Patient?identifier=sys|ID&telecom=+86 mobile
  EXPECT_EQ(MaskIdentifiers("target=\"/fhir/Patient?identifier=urn%3Aoid%3A1.2%7C330402199001011234\""),
            "target=\"/fhir/Patient?identifier=urn%3Aoid%3A1.2%7C330402********1234\"");
  EXPECT_EQ(MaskIdentifiers("telecom=phone%7C13812345678&x=1"), "telecom=phone%7C138****5678&x=1");
}

TEST(MaskIdentifiers, LeavesOtherNumbersAlone) {
  EXPECT_EQ(MaskIdentifiers("status=200 bytes=1234 dur_us=12345678901"), "status=200 bytes=1234 dur_us=12345678901");
  EXPECT_EQ(MaskIdentifiers("23812345678"), "23812345678");  // not a mobile number
  EXPECT_EQ(MaskIdentifiers("x3304021990010112345"), "x3304021990010112345");
}

// Access lines wait in the buffer; any other line writes them out first, in order,
// and every line is masked.
TEST(Log, AccessLinesAreBufferedAndWrittenBeforeTheNextOtherLine) {
  ::testing::internal::CaptureStderr();
  log::Init("info");
  log::Access("id=1 target=\"/fhir/Patient?identifier=330402199001011234\"");
  log::Access("id=2");
  log::Warn("disk nearly full");
  log::Access("id=3");
  log::Shutdown();  // writes out the rest
  const std::string out = ::testing::internal::GetCapturedStderr();
  const size_t one = out.find("access id=1"), two = out.find("access id=2"), warn = out.find("disk nearly full"),
               three = out.find("access id=3");
  ASSERT_NE(one, std::string::npos) << out;
  ASSERT_NE(three, std::string::npos) << out;
  EXPECT_LT(one, two);
  EXPECT_LT(two, warn);
  EXPECT_LT(warn, three);
  EXPECT_NE(out.find("330402********1234"), std::string::npos) << out;
  EXPECT_EQ(out.find("199001011234"), std::string::npos);
}

TEST(Log, AnAccessLineWaitsForTheFlushAndAnotherLineGoesOutAtOnce) {
  ::testing::internal::CaptureStderr();
  log::Init("info");
  log::Access("id=7");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // well within the 1 s flush
  const std::string before = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(before.find("access id=7"), std::string::npos) << before;  // still buffered
  ::testing::internal::CaptureStderr();
  log::Info("started");  // writes the waiting access line, then itself
  const std::string after = ::testing::internal::GetCapturedStderr();
  log::Shutdown();
  EXPECT_NE(after.find("access id=7"), std::string::npos) << after;
  EXPECT_NE(after.find("started"), std::string::npos) << after;
}

}  // namespace
}  // namespace rhip
