#include "rhip/core/log.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace rhip
