#include "rhip/fhir/json.h"

#include <gtest/gtest.h>

#include <cstdlib>

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

// Found by fuzz/hl7_fuzz.cc: with RAPIDJSON_SSE42 the writer left 0x1A-0x1F raw,
// and the stored JSON no longer parsed.
TEST(Json, EveryControlCharacterIsEscapedSoWhatIsWrittenParsesBack) {
  for (int c = 1; c < 0x20; ++c) {
    for (size_t pad = 0; pad < 20; ++pad) {  // the control character at every offset of a SIMD block
      std::string value = std::string(pad, 'x') + static_cast<char>(c) + std::string(20, 'y');
      Json doc;
      doc.SetObject();
      SetString(doc, "text", value, doc.GetAllocator());
      const std::string written = WriteJson(doc);
      EXPECT_EQ(written.find(static_cast<char>(c)), std::string::npos) << "0x" << std::hex << c << " at " << pad;
      auto back = ParseJson(written);
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      EXPECT_EQ(StringMember(*back, "text"), value);
    }
  }
}

// Found by fuzz/fhir_json_fuzz.cc: a 41-digit number parsed to a double off by
// one unit in the last place, written as 2.7777777777777779e37, and read back as
// yet another double: every save changed the value.
TEST(Json, NumbersParseToTheNearestDoubleSoWritingIsAFixpoint) {
  for (const char* text : {"[27777777777777777777777777777777777777777]", "[0.12345678901234567890123]",
                           "[1.7976931348623157e308]", "[4.9e-324]", "[123456789012345678901234567890.5]"}) {
    auto d = ParseJson(text);
    ASSERT_TRUE(d.ok()) << text;
    const std::string once = WriteJson(*d);
    auto again = ParseJson(once);
    ASSERT_TRUE(again.ok()) << once;
    EXPECT_EQ(WriteJson(*again), once) << text;
    EXPECT_EQ((*again)[0].GetDouble(), std::strtod(text + 1, nullptr)) << text;  // the correctly rounded value
  }
}

// Found by fuzz/fhir_json_fuzz.cc: "\ude00" alone was accepted and stored as bytes
// that are not UTF-8, so the stored resource no longer parsed.
TEST(Json, UnpairedSurrogateEscapesAreRefusedAndPairsAccepted) {
  for (const char* bad : {R"({"a":"x\ude00"})", R"({"a":"\udbff"})", R"({"\udc00":1})", R"({"a":"\ud83d\u0041"})"}) {
    auto d = ParseJson(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  }
  auto d = ParseJson(R"({"a":"x\ude00"})");
  EXPECT_NE(d.status().message().find("surrogate"), std::string::npos) << d.status().message();
  auto pair = ParseJson(R"({"a":"\u5f20\ud83d\ude00\ud7ff\ue000"})");
  ASSERT_TRUE(pair.ok()) << pair.status().ToString();
  EXPECT_EQ(StringMember(*pair, "a"), "张\xf0\x9f\x98\x80\xed\x9f\xbf\xee\x80\x80");
  EXPECT_TRUE(ParseJson(WriteJson(*pair)).ok());
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

namespace rhip::fhir {
namespace {

// ParseJson checks UTF-8 itself before RapidJSON parses (json.cc, IsValidUtf8):
// every valid boundary passes and every malformed form fails, wherever it sits.
TEST(Json, Utf8IsCheckedStrictlyAtEveryBoundaryAndPosition) {
  const char* valid[] = {"\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbf",
                         "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf", "\xe5\xbc\xa0"};
  const char* invalid[] = {"\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xe0\x9f\xbf", "\xed\xa0\x80", "\xed\xbf\xbf",
                           "\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
                           "\xff", "\x80", "\xe5\xbc", "\xe5\x41\xa0", "\xf0\x90\x80"};
  for (const std::string pad : {"", "abcdefghijklmnop"}) {
    for (const char* v : valid) {
      const std::string text = "{\"a\":\"" + pad + v + pad + "\"}";
      auto d = ParseJson(text);
      ASSERT_TRUE(d.ok()) << "valid sequence refused: " << d.status().ToString();
      EXPECT_EQ(StringMember(*d, "a"), pad + v + pad);
    }
    for (const char* v : invalid) {
      const std::string text = "{\"a\":\"" + pad + v + pad + "\"}";
      auto d = ParseJson(text);
      ASSERT_FALSE(d.ok()) << "malformed sequence accepted after " << pad.size() << " bytes";
      EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
      EXPECT_NE(d.status().message().find("malformed JSON"), std::string::npos) << d.status().message();
    }
  }
  // Malformed bytes outside strings, and a sequence cut off by the end of the text.
  EXPECT_FALSE(ParseJson("{\"a\":1}\xe5").ok());
  EXPECT_FALSE(ParseJson("{\"a\xe5\":1}").ok());
}

}  // namespace
}  // namespace rhip::fhir
