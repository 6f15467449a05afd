#include <gtest/gtest.h>

#include <algorithm>
#include <unicode/ucnv.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "rhip/fhir/json.h"
#include "rhip/fhir/validator.h"
#include "rhip/gen/generator.h"
#include "rhip/hl7/message.h"
#include "rhip/hl7/to_fhir.h"

namespace rhip::hl7 {
namespace {

namespace fs = std::filesystem;

const char* kAdt =
    "MSH|^~\\&|HIS|330402-H01|RHIP|330400|20240105083000||ADT^A04^ADT_A01|A1|P|2.5|||||CHN|UNICODE UTF-8\r"
    "EVN|A04|20240105083000\r"
    "PID|1||MR001^^^330402-H01^MR~330402198001011234^^^^NNCHN||张^伟||19800101|M|||浙江省嘉兴市南湖区新丰镇1号^^^^^^^^330402||13812345678\r"
    "PV1|1|O|内科||||||||||||||||V20240105-7|||||||||||||||||||||||||20240105083000\r";

std::optional<Message> MustParse(std::string_view text) {
  Hl7Error err;
  auto m = Parse(text, &err);
  EXPECT_TRUE(m.has_value()) << err.Describe();
  return m;
}

Hl7Error ParseError(std::string_view text) {
  Hl7Error err;
  EXPECT_FALSE(Parse(text, &err).has_value()) << text;
  return err;
}

TEST(Hl7Parse, FieldsRepetitionsComponentsAndMshNumbering) {
  auto m = MustParse(kAdt);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type, "ADT^A04");
  EXPECT_EQ(m->control_id, "A1");
  EXPECT_EQ(m->sender, "330402-H01");
  EXPECT_EQ(m->version, "2.5");
  EXPECT_EQ(m->Get("MSH", 1), "|");
  EXPECT_EQ(m->Get("MSH", 2), "^~\\&");
  EXPECT_EQ(m->Get("MSH", 9, 3), "ADT_A01");
  const Segment* pid = m->Find("PID");
  ASSERT_NE(pid, nullptr);
  EXPECT_EQ(m->Repetitions(*pid, 3), 2);
  EXPECT_EQ(m->Get(*pid, 3, 1, 1, 1), "330402198001011234");
  EXPECT_EQ(m->Get(*pid, 3, 5, 1, 1), "NNCHN");
  EXPECT_EQ(m->Get(*pid, 5, 1), "张");
  EXPECT_EQ(m->Get(*pid, 5, 2), "伟");
  EXPECT_EQ(m->Get(*pid, 11, 9), "330402");
  EXPECT_EQ(m->Get(*pid, 11, 10), "");  // past the end: empty, not an error
  EXPECT_EQ(m->Get(*pid, 40), "");
  EXPECT_EQ(m->Find("PID", 1), nullptr);
}

TEST(Hl7Parse, CustomDelimitersAndEveryEscape) {
  // Field #, component $, repetition *, escape !, subcomponent %.
  auto m = MustParse(
      "MSH#$*!%#APP#ORG1#RHIP#330400#20240101##ADT$A08#C9#P#2.4\r"
      "PID#1##M1$$$ORG1$MR*M2$$$ORG2$MR##A!F!B!S!C!T!D!R!E!E!!X4142!!.br!Z$name##20000101#F\r"
      "NTE#1##x%y$z\n");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type, "ADT^A08");
  const Segment* pid = m->Find("PID");
  EXPECT_EQ(m->Get(*pid, 3, 1, 1, 1), "M2");
  EXPECT_EQ(m->Get(*pid, 3, 4, 1, 1), "ORG2");
  EXPECT_EQ(m->Get(*pid, 5, 1), "A#B$C%D*E!AB\nZ");
  EXPECT_EQ(m->Get(*pid, 5, 2), "name");
  EXPECT_EQ(m->Get("NTE", 3, 1, 2), "y");  // LF between segments is tolerated
  EXPECT_EQ(m->Get("NTE", 3, 2, 1), "z");
  // An unknown escape sequence and a lone escape stay as sent.
  auto raw = MustParse("MSH|^~\\&|A|B|C|D|20240101||ADT^A08|C1|P|2.5\rPID|1||X^^^B^MR||\\Q\\^a\\b\r");
  EXPECT_EQ(raw->Get("PID", 5, 1), "\\Q\\");
  EXPECT_EQ(raw->Get("PID", 5, 2), "a\\b");
}

std::string ToGb18030(const std::string& utf8) {
  UErrorCode err = U_ZERO_ERROR;
  int32_t n = ucnv_convert("GB18030", "UTF-8", nullptr, 0, utf8.data(), static_cast<int32_t>(utf8.size()), &err);
  std::string out(static_cast<size_t>(n), '\0');
  err = U_ZERO_ERROR;
  ucnv_convert("GB18030", "UTF-8", out.data(), n, utf8.data(), static_cast<int32_t>(utf8.size()), &err);
  EXPECT_TRUE(U_SUCCESS(err));
  return out;
}

TEST(Hl7Parse, Gb18030IsConvertedWhenMsh18SaysSoAndRefusedWhenItDoesNot) {
  std::string msg = kAdt;
  msg.replace(msg.find("UNICODE UTF-8"), 13, "GB 18030-2000");
  const std::string gb = ToGb18030(msg);
  ASSERT_NE(gb, msg);
  auto m = MustParse(gb);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->Get("PID", 5, 1), "张");
  EXPECT_EQ(m->charset, "GB 18030-2000");
  for (const char* name : {"GBK", "GB2312", "gb18030"}) {
    std::string other = msg;
    other.replace(other.find("GB 18030-2000"), 13, name);
    auto o = MustParse(ToGb18030(other));
    ASSERT_TRUE(o) << name;
    EXPECT_EQ(o->Get("PID", 5, 2), "伟") << name;
  }
  // The same GB18030 bytes claiming (by default) to be UTF-8.
  std::string unlabeled = msg;
  unlabeled.replace(unlabeled.find("GB 18030-2000"), 13, "");
  Hl7Error e = ParseError(ToGb18030(unlabeled));
  EXPECT_EQ(e.segment, "MSH");
  EXPECT_EQ(e.field, 18);
  EXPECT_TRUE(e.reject);
  EXPECT_NE(e.text.find("GB 18030-2000"), std::string::npos) << e.text;
  std::string klingon = kAdt;
  klingon.replace(klingon.find("UNICODE UTF-8"), 13, "KLINGON");
  e = ParseError(klingon);
  EXPECT_EQ(e.code, ErrorCode::kTableValueNotFound);
  EXPECT_EQ(e.field, 18);
}

TEST(Hl7Parse, BadInputNamesTheProblem) {
  EXPECT_EQ(ParseError("").text, "the message is empty");
  Hl7Error e = ParseError("PID|1||X\r");
  EXPECT_EQ(e.segment, "MSH");
  EXPECT_TRUE(e.reject);
  e = ParseError("MSH|^~\\&|A|B|C|D\r");
  EXPECT_EQ(e.code, ErrorCode::kRequiredFieldMissing);
  EXPECT_NE(e.text.find("at least 12"), std::string::npos);
  e = ParseError("MSHA^~\\&AAABBB\r");  // alphanumeric field separator
  EXPECT_EQ(e.field, 2);
  e = ParseError("MSH|^^\\&|A|B|C|D|20240101||ADT^A04|1|P|2.5\r");  // repeated encoding character
  EXPECT_EQ(e.field, 2);
  // Found by fuzz/hl7_fuzz.cc: a delimiter outside printable ASCII (here Latin-1 '\xA6')
  // changed in the conversion to UTF-8, and values were cut inside characters.
  e = ParseError("MSH|\xa6~\\&|A|B|C|D|20240101||ADT^A04|1|P|2.4|||||CHN|8859/1\r");
  EXPECT_TRUE(e.reject);
  EXPECT_EQ(e.field, 2);
  e = ParseError("MSH|^~\\\xa6|A|B|C|D|20240101||ADT^A04|1|P|2.4|||||CHN|8859/1\r");  // the subcomponent separator too
  EXPECT_TRUE(e.reject);
  EXPECT_EQ(e.field, 2);
  std::string control_sep = "MSH|^~\\&|A|B|C|D|20240101||ADT^A04|1|P|2.5\r";
  std::replace(control_sep.begin(), control_sep.end(), '|', '\x01');
  e = ParseError(control_sep);
  EXPECT_TRUE(e.reject);
  EXPECT_EQ(e.field, 2);
  e = ParseError("MSH|^~\\&|A|B|C|D|20240101||ADT^A04|1|P|2.2\r");
  EXPECT_EQ(e.code, ErrorCode::kUnsupportedVersion);
  EXPECT_EQ(e.field, 12);
  e = ParseError("MSH|^~\\&|A|B|C|D|20240101||ADT^A04||P|2.5\r");
  EXPECT_EQ(e.field, 10);
  e = ParseError("MSH|^~\\&|A||C|D|20240101||ADT^A04|1|P|2.5\r");
  EXPECT_EQ(e.field, 4);
  e = ParseError("MSH|^~\\&|A|B|C|D|20240101||ADT^A04|1|P|2.5\rpid|1\r");
  EXPECT_EQ(e.code, ErrorCode::kSegmentSequence);
  EXPECT_NE(e.text.find("segment 2"), std::string::npos);
  e = ParseError("MSH|^~\\&|A|B|C|D|20240101||ADT^A04|1|P|2.5\rMSH|^~\\&|A|B|C|D|20240101||ADT^A04|2|P|2.5\r");
  EXPECT_NE(e.text.find("one message per"), std::string::npos);
}

TEST(Hl7Dates, HL7TimestampsBecomeFhirDatesInTheRegionsZone) {
  EXPECT_EQ(ToFhirDateTime("20240105083000"), "2024-01-05T08:30:00+08:00");
  EXPECT_EQ(ToFhirDateTime("202401050830"), "2024-01-05T08:30:00+08:00");
  EXPECT_EQ(ToFhirDateTime("2024010508"), "2024-01-05T08:00:00+08:00");
  EXPECT_EQ(ToFhirDateTime("20240105083000.123+0000"), "2024-01-05T08:30:00.123+00:00");
  EXPECT_EQ(ToFhirDateTime("20240105"), "2024-01-05");
  EXPECT_EQ(ToFhirDateTime("202401"), "2024-01");
  EXPECT_EQ(ToFhirDate("20240229"), "2024-02-29");
  for (const char* bad : {"20230229", "20241301", "2024010", "20240105256000", "2024-01-05", "abc", "20240105083000+08"})
    EXPECT_FALSE(ToFhirDateTime(bad).has_value()) << bad;
}

TEST(Hl7Ack, AcceptErrorAndRejectCarryTheLocationAndCode) {
  Header in = Identify(kAdt);
  ASSERT_TRUE(in.ok);
  EXPECT_EQ(in.sending_facility, "330402-H01");
  EXPECT_EQ(in.control_id, "A1");
  EXPECT_EQ(in.trigger, "A04");
  std::string aa = BuildAck(in, AckCode::kAccept, nullptr, "ACK1", "20240105083001");
  EXPECT_EQ(aa,
            "MSH|^~\\&|RHIP|330400|HIS|330402-H01|20240105083001||ACK^A04^ACK|ACK1|P|2.5|||||CHN|UNICODE UTF-8\r"
            "MSA|AA|A1|message accepted\r");
  Hl7Error e;
  e.code = ErrorCode::kDataType;
  e.segment = "PID";
  e.field = 7;
  e.text = "birth date '19801340' is not a valid date (YYYYMMDD)";
  std::string ae = BuildAck(in, AckCode::kError, &e, "ACK2", "20240105083001");
  EXPECT_NE(ae.find("\rMSA|AE|A1|PID-7: birth date '19801340' is not a valid date (YYYYMMDD)\r"), std::string::npos) << ae;
  EXPECT_NE(ae.find("\rERR||PID^1^7^1^0|102^Data type error^HL70357|E||||birth date"), std::string::npos) << ae;
  // An ACK is itself a parseable message.
  auto parsed = MustParse(ae);
  EXPECT_EQ(parsed->Get("MSA", 1), "AE");
  EXPECT_EQ(parsed->Get("ERR", 3, 1), "102");
  // v2.3 receivers also get ERR-1.
  std::string old = kAdt;
  old.replace(old.find("|2.5|"), 5, "|2.3|");
  std::string ar = BuildAck(Identify(old), AckCode::kReject, &e, "ACK3", "20240105083001");
  EXPECT_NE(ar.find("\rERR|PID^1^7^102&Data type error&HL70357|"), std::string::npos) << ar;
  // A frame without an MSH still identifies as not ok (the listener answers without echoing).
  EXPECT_FALSE(Identify("garbage").ok);
}

fhir::Json MapAndParse(std::string_view text, std::vector<std::string>* types = nullptr) {
  auto m = MustParse(text);
  Hl7Error err;
  auto mapped = MapToFhir(*m, &err);
  EXPECT_TRUE(mapped.has_value()) << err.Describe();
  if (!mapped) return fhir::Json();
  if (types) *types = mapped->types;
  auto doc = fhir::ParseJson(mapped->bundle);
  EXPECT_TRUE(doc.ok());
  // Every resource passes the platform's structural validation.
  for (auto& e : (*doc)["entry"].GetArray()) {
    auto issues = fhir::ValidateResource(e["resource"]);
    EXPECT_FALSE(fhir::HasErrors(issues)) << (issues.empty() ? "" : issues[0].diagnostics + " at " + issues[0].expression);
  }
  return std::move(*doc);
}

std::string S(const fhir::JsonValue& v) { return v.GetString(); }

// Found by fuzz/hl7_fuzz.cc: "\XZZ\" made Unescape throw std::invalid_argument
// (std::stoi), which ended the process on the MLLP listener's thread.
TEST(Hl7Parse, MalformedHexEscapesAreKeptAsSent) {
  auto m = MustParse("MSH|^~\\&|A|B|C|D|20240101||ADT^A08|C1|P|2.5\rPID|1||\\XZZ\\^\\X4\\^\\X\\^\\X41\\^\\XE5BCA0\\\r");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->Get("PID", 3, 1), "\\XZZ\\");
  EXPECT_EQ(m->Get("PID", 3, 2), "\\X4\\");
  EXPECT_EQ(m->Get("PID", 3, 3), "\\X\\");
  EXPECT_EQ(m->Get("PID", 3, 4), "A");
  EXPECT_EQ(m->Get("PID", 3, 5), "张");
  // Hex bytes that are not UTF-8 text (a lone continuation byte) are kept as sent too:
  // they would make the FHIR value invalid JSON.
  auto bytes = MustParse("MSH|^~\\&|A|B|C|D|20240101||ADT^A08|C1|P|2.5\rPID|1||\\X0092\\^\\X00\\\r");
  ASSERT_TRUE(bytes);
  EXPECT_EQ(bytes->Get("PID", 3, 1), "\\X0092\\");
  EXPECT_EQ(bytes->Get("PID", 3, 2), std::string(1, '\0'));
}

// Found by fuzz/hl7_fuzz.cc: the ACK copied raw header bytes (GB 18030 in MSH-3,
// control characters, a character cut in two by an error text) and was then not
// valid UTF-8 — and could even hold MLLP's frame-end byte.
TEST(Hl7Ack, IsValidUtf8AndOneFrameWhateverTheInboundHeaderHeld) {
  const std::string in = "MSH|^~\\&|\xd5\xc5\xc8\xfd|330402-H01|RHIP|330400|20240105083000||ADT^A04|C\x1c"
                         "1|P|2.5|||||CHN|GB 18030-2000\r";
  Hl7Error e;
  e.text = "bad value '\xe5\xbc";  // the first two bytes of 张
  const std::string ack = BuildAck(Identify(in), AckCode::kError, &e, "ACK1", "20240105083001");
  EXPECT_EQ(ack.find('\x1c'), std::string::npos) << ack;
  EXPECT_EQ(ack.find('\x0b'), std::string::npos) << ack;
  Hl7Error err;
  auto m = Parse(ack, &err);
  ASSERT_TRUE(m) << err.Describe() << "\n" << ack;
  // Hex escapes give the sender's HL7 decoder back exactly the bytes it sent; rhip's
  // own parser keeps hex escapes that are not UTF-8 text as written.
  EXPECT_NE(ack.find("|\\XD5\\\\XC5\\\\XC8\\\\XFD\\|"), std::string::npos) << ack;
  EXPECT_EQ(m->Get("MSH", 5), "\\XD5\\\\XC5\\\\XC8\\\\XFD\\");
  EXPECT_EQ(m->Get("MSA", 2), "C\x1c" "1");
  EXPECT_EQ(m->Get("MSA", 1), "AE");
  EXPECT_EQ(m->Get("MSA", 3), "bad value '\\XE5\\\\XBC\\");
}

TEST(Hl7ToFhir, AdtRegistrationBecomesPatientAndEncounter) {
  std::vector<std::string> types;
  fhir::Json b = MapAndParse(kAdt, &types);
  EXPECT_EQ(S(b["type"]), "transaction");
  ASSERT_EQ(types, (std::vector<std::string>{"Patient", "Encounter"}));
  const auto& pe = b["entry"][0];
  EXPECT_EQ(S(pe["request"]["method"]), "PUT");
  EXPECT_EQ(S(pe["request"]["url"]), "Patient?identifier=http://rhip.health/id/mrn/330402-H01%7CMR001");
  const auto& p = pe["resource"];
  EXPECT_EQ(S(p["identifier"][0]["system"]), "http://rhip.health/id/mrn/330402-H01");
  EXPECT_EQ(S(p["identifier"][0]["value"]), "MR001");
  EXPECT_EQ(S(p["identifier"][1]["system"]), "urn:oid:2.16.156.10011.1.3");
  EXPECT_EQ(S(p["identifier"][1]["value"]), "330402198001011234");
  EXPECT_EQ(S(p["name"][0]["text"]), "张伟");
  EXPECT_EQ(S(p["name"][0]["family"]), "张");
  EXPECT_EQ(S(p["name"][0]["given"][0]), "伟");
  EXPECT_EQ(S(p["gender"]), "male");
  EXPECT_EQ(S(p["birthDate"]), "1980-01-01");
  EXPECT_EQ(S(p["telecom"][0]["value"]), "13812345678");
  EXPECT_EQ(S(p["address"][0]["district"]), "330402");
  EXPECT_EQ(S(p["address"][0]["text"]), "浙江省嘉兴市南湖区新丰镇1号");
  const auto& e = b["entry"][1]["resource"];
  EXPECT_EQ(S(b["entry"][1]["request"]["url"]), "Encounter?identifier=http://rhip.health/id/visit/330402-H01%7CV20240105-7");
  EXPECT_EQ(S(e["class"]["code"]), "AMB");
  EXPECT_EQ(S(e["status"]), "in-progress");
  EXPECT_EQ(S(e["subject"]["reference"]), S(pe["fullUrl"]));
  EXPECT_EQ(S(e["period"]["start"]), "2024-01-05T08:30:00+08:00");
  EXPECT_EQ(S(e["serviceProvider"]["reference"]), "Organization/330402-H01");
  // Discharge: the same visit, finished.
  std::string a03 = kAdt;
  a03.replace(a03.find("ADT^A04"), 7, "ADT^A03");
  a03.replace(a03.find("20240105083000\r", a03.find("PV1")), 14, "20240105083000|20240109100000");
  fhir::Json d = MapAndParse(a03);
  EXPECT_EQ(S(d["entry"][1]["resource"]["status"]), "finished");
  EXPECT_EQ(S(d["entry"][1]["resource"]["period"]["end"]), "2024-01-09T10:00:00+08:00");
}

Hl7Error MapError(const std::string& text) {
  auto m = MustParse(text);
  Hl7Error err;
  EXPECT_FALSE(MapToFhir(*m, &err).has_value()) << text;
  return err;
}

TEST(Hl7ToFhir, BadContentIsRefusedWithSegmentAndField) {
  std::string msg = kAdt;
  msg.replace(msg.find("||19800101|"), 11, "||19801340|");
  Hl7Error e = MapError(msg);
  EXPECT_EQ(e.code, ErrorCode::kDataType);
  EXPECT_EQ(e.Describe().substr(0, 5), "PID-7");
  EXPECT_FALSE(e.reject);
  msg = kAdt;
  msg.replace(msg.find("|M|||"), 5, "|Q|||");
  EXPECT_EQ(MapError(msg).field, 8);
  msg = kAdt;
  msg.replace(msg.find("MR001^^^330402-H01^MR~"), 22, "");
  e = MapError(msg);
  EXPECT_EQ(e.code, ErrorCode::kRequiredFieldMissing);
  EXPECT_EQ(e.field, 3);
  msg = kAdt;
  msg.replace(msg.find("ADT^A04"), 7, "ADT^A02");
  e = MapError(msg);
  EXPECT_EQ(e.code, ErrorCode::kUnsupportedEventCode);
  EXPECT_TRUE(e.reject);
  msg = kAdt;
  msg.replace(msg.find("ADT^A04"), 7, "MFN^M02");
  e = MapError(msg);
  EXPECT_EQ(e.code, ErrorCode::kUnsupportedMessageType);
  EXPECT_TRUE(e.reject);
  msg = kAdt;
  msg.replace(msg.find("PV1|1|O"), 7, "PV1|1|Z");
  EXPECT_EQ(MapError(msg).segment, "PV1");
}

const char* kOru =
    "MSH|^~\\&|LIS|330402-H01|RHIP|330400|20240105110000||ORU^R01^ORU_R01|R1|P|2.5|||||CHN|UNICODE UTF-8\r"
    "PID|1||MR001^^^330402-H01^MR||张^伟||19800101|M\r"
    "OBR|1|P77|F77|58410-2^血常规^LN|||20240105090000|||||||||||||||20240105100000||LAB|F\r"
    "OBX|1|NM|6690-2^白细胞计数^LN||11.20|10*9/L|3.5-9.5|H|||F|||20240105090000\r"
    "OBX|2|ST|NOTE^备注^L||标本轻度溶血||||||F\r"
    "OBX|3|CE|883-9^ABO血型^LN||A^A型^LN||||||F\r"
    "OBR|2|P78|F78|CT-CHEST^胸部CT平扫^RHIPEXAM|||20240105093000|||||||||||||||20240105103000||CT|F\r"
    "OBX|1|TX|CT-CHEST^胸部CT平扫^RHIPEXAM||右肺下叶斑片影，考虑感染性病变。||||||F\r";

TEST(Hl7ToFhir, OruResultsBecomeReportsAndObservations) {
  {
    Hl7Error err;
    auto m = Parse(kOru, &err);
    auto mapped = MapToFhir(*m, &err);
    ASSERT_TRUE(mapped);
    EXPECT_NE(mapped->bundle.find("\"value\":11.20,"), std::string::npos) << "a result keeps the precision it was sent with";
  }
  std::vector<std::string> types;
  fhir::Json b = MapAndParse(kOru, &types);
  ASSERT_EQ(types, (std::vector<std::string>{"Patient", "Observation", "Observation", "Observation", "DiagnosticReport",
                                             "DiagnosticReport"}));
  // The lab system's PID never overwrites the registration: conditional create.
  EXPECT_EQ(S(b["entry"][0]["request"]["method"]), "POST");
  EXPECT_EQ(S(b["entry"][0]["request"]["ifNoneExist"]), "identifier=http://rhip.health/id/mrn/330402-H01%7CMR001");
  const auto& wbc = b["entry"][1]["resource"];
  EXPECT_EQ(S(wbc["code"]["coding"][0]["system"]), "http://loinc.org");
  EXPECT_EQ(S(wbc["code"]["coding"][0]["code"]), "6690-2");
  EXPECT_DOUBLE_EQ(wbc["valueQuantity"]["value"].GetDouble(), 11.2);
  EXPECT_EQ(S(wbc["valueQuantity"]["unit"]), "10*9/L");
  EXPECT_DOUBLE_EQ(wbc["referenceRange"][0]["low"]["value"].GetDouble(), 3.5);
  EXPECT_DOUBLE_EQ(wbc["referenceRange"][0]["high"]["value"].GetDouble(), 9.5);
  EXPECT_EQ(S(wbc["interpretation"][0]["coding"][0]["code"]), "H");
  EXPECT_EQ(S(wbc["status"]), "final");
  EXPECT_EQ(S(wbc["effectiveDateTime"]), "2024-01-05T09:00:00+08:00");
  EXPECT_EQ(S(wbc["issued"]), "2024-01-05T10:00:00+08:00");
  EXPECT_EQ(S(wbc["subject"]["reference"]), S(b["entry"][0]["fullUrl"]));
  EXPECT_EQ(S(b["entry"][2]["resource"]["valueString"]), "标本轻度溶血");
  EXPECT_EQ(S(b["entry"][3]["resource"]["valueCodeableConcept"]["coding"][0]["code"]), "A");
  const auto& lab = b["entry"][4]["resource"];
  EXPECT_EQ(S(lab["identifier"][0]["value"]), "F77");
  EXPECT_EQ(S(lab["category"][0]["coding"][0]["code"]), "LAB");
  ASSERT_EQ(lab["result"].Size(), 3u);
  EXPECT_EQ(S(lab["result"][0]["reference"]), S(b["entry"][1]["fullUrl"]));
  const auto& ct = b["entry"][5]["resource"];
  EXPECT_FALSE(ct.HasMember("result")) << "an imaging report's text is its conclusion";
  EXPECT_EQ(S(ct["category"][0]["coding"][0]["code"]), "RAD");
  EXPECT_EQ(S(ct["code"]["coding"][0]["system"]), "http://rhip.health/CodeSystem/exam-item");
  EXPECT_EQ(S(ct["conclusion"]), "右肺下叶斑片影，考虑感染性病变。");
  // A number that is not one.
  std::string bad = kOru;
  bad.replace(bad.find("11.20"), 5, "11,2");
  Hl7Error e = MapError(bad);
  EXPECT_EQ(e.segment, "OBX");
  EXPECT_EQ(e.field, 5);
  bad = kOru;
  bad.replace(bad.find("20240105093000"), 14, "20241305093000");
  e = MapError(bad);
  EXPECT_EQ(e.segment, "OBR");
  EXPECT_EQ(e.sequence, 2);
  EXPECT_EQ(e.field, 7);
}

TEST(Hl7ToFhir, VxuBecomesImmunizationAndA40MarksTheMergedRecord) {
  fhir::Json v = MapAndParse(
      "MSH|^~\\&|EPI|330402-T1|RHIP|330400|20240301100000||VXU^V04^VXU_V04|V1|P|2.5|||||CHN|UNICODE UTF-8\r"
      "PID|1||MR9^^^330402-T1^MR||李^小明||20231201|M\r"
      "ORC|RE\r"
      "RXA|0|2|20240301100000|20240301100000|hepb^乙肝疫苗^RHIPVAX|999||||||||||||||CP\r"
      "RXA|0|1|20240301101000|20240301101000|bcg^卡介苗^RHIPVAX|999||||||||||||||NA\r");
  const auto& imm = v["entry"][1]["resource"];
  EXPECT_EQ(S(imm["vaccineCode"]["coding"][0]["system"]), "http://rhip.health/CodeSystem/vaccine");
  EXPECT_EQ(S(imm["vaccineCode"]["coding"][0]["code"]), "hepb");
  EXPECT_EQ(S(imm["occurrenceDateTime"]), "2024-03-01T10:00:00+08:00");
  EXPECT_EQ(imm["protocolApplied"][0]["doseNumberPositiveInt"].GetInt(), 2);
  EXPECT_EQ(S(imm["status"]), "completed");
  EXPECT_EQ(S(imm["performer"][0]["actor"]["reference"]), "Organization/330402-T1");
  EXPECT_EQ(S(v["entry"][2]["resource"]["status"]), "not-done");
  fhir::Json a40 = MapAndParse(
      "MSH|^~\\&|HIS|330402-H01|RHIP|330400|20240301100000||ADT^A40^ADT_A39|M1|P|2.5\r"
      "PID|1||MR001^^^330402-H01^MR||张^伟||19800101|M\r"
      "MRG|MR002^^^330402-H01^MR\r");
  const auto& merged = a40["entry"][1];
  EXPECT_EQ(S(merged["request"]["url"]), "Patient?identifier=http://rhip.health/id/mrn/330402-H01%7CMR002");
  EXPECT_FALSE(merged["resource"]["active"].GetBool());
  EXPECT_EQ(S(merged["resource"]["link"][0]["type"]), "replaced-by");
  EXPECT_EQ(S(merged["resource"]["link"][0]["other"]["reference"]), S(a40["entry"][0]["fullUrl"]));
  EXPECT_EQ(MapError("MSH|^~\\&|HIS|330402-H01|RHIP|330400|20240301100000||ADT^A40|M2|P|2.5\r"
                     "PID|1||MR001^^^330402-H01^MR||张^伟\r")
                .segment,
            "MRG");
}

// Every message the generator writes (ADT in UTF-8 and GB18030, ORU, VXU) parses and maps.
// Found by fuzz/hl7_fuzz.cc: a name holding \X1C\ (an escaped control character)
// was written into the Bundle raw (RapidJSON's SSE4.2 writer), and the Bundle was
// not JSON any more.
TEST(Hl7ToFhir, ControlCharactersInValuesStayValidJson) {
  fhir::Json v = MapAndParse(
      "MSH|^~\\&|HIS|330402-H01|RHIP|330400|20240301100000||ADT^A08^ADT_A01|C1|P|2.5\r"
      "PID|1||MR1^^^330402-H01^MR||O\\X1C\\Brien^A\\X1F\\B||19800101|M\r");
  EXPECT_EQ(S(v["entry"][0]["resource"]["name"][0]["family"]), "O\x1c" "Brien");
  EXPECT_EQ(S(v["entry"][0]["resource"]["name"][0]["given"][0]), "A\x1f" "B");
}

// Found by fuzz/hl7_fuzz.cc: an NM value with an embedded NUL (\X00\) passed as a
// number and was written raw into the Bundle; "0x10" (which strtod reads) too.
TEST(Hl7ToFhir, NumericValuesAreJsonNumbersOrRefused) {
  auto with = [](std::string value, std::string range) {
    std::string msg = kOru;
    msg.replace(msg.find("11.20"), 5, value);
    msg.replace(msg.find("3.5-9.5"), 7, range);
    return msg;
  };
  EXPECT_EQ(MapError(with("1\\X00\\2", "3.5-9.5")).field, 5);
  fhir::Json v = MapAndParse(with("0x10", "+.5-007"));
  const auto& obs = v["entry"][1]["resource"];
  ASSERT_TRUE(obs["valueQuantity"]["value"].IsNumber());
  EXPECT_EQ(obs["valueQuantity"]["value"].GetDouble(), 16.0);
  EXPECT_EQ(obs["referenceRange"][0]["low"]["value"].GetDouble(), 0.5);
  EXPECT_EQ(obs["referenceRange"][0]["high"]["value"].GetDouble(), 7.0);
}

TEST(Hl7ToFhir, EveryGeneratedMessageMaps) {
  const fs::path dir = fs::temp_directory_path() / ("rhip-hl7-gen-" + std::to_string(::getpid()));
  gen::GenOptions o;
  o.residents = 150;
  o.years = 1;
  o.seed = 3;
  o.out = dir.string();
  o.force = true;
  ASSERT_TRUE(gen::GenerateRegion(o, nullptr).ok());
  std::map<std::string, int> mapped;
  for (const char* file : {"adt.hl7", "adt-gb18030.hl7", "oru.hl7", "vxu.hl7"}) {
    std::ifstream in(dir / "hl7v2" / file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string all = ss.str();
    size_t start = 0;
    while (start < all.size()) {
      size_t end = all.find("\r\n", start);
      if (end == std::string::npos) end = all.size();
      const std::string_view one(all.data() + start, end - start);
      start = end + 2;
      Hl7Error err;
      auto m = Parse(one, &err);
      ASSERT_TRUE(m) << file << ": " << err.Describe();
      auto f = MapToFhir(*m, &err);
      ASSERT_TRUE(f) << file << ": " << err.Describe() << "\n" << one;
      auto doc = fhir::ParseJson(f->bundle);
      ASSERT_TRUE(doc.ok());
      // The document built while mapping is the text, parsed (the receiver validates it).
      ASSERT_TRUE(f->doc == *doc) << file << ": the built document differs from the text\n" << f->bundle;
      for (auto& e : f->doc["entry"].GetArray()) {
        auto issues = fhir::ValidateResource(e["resource"]);
        ASSERT_FALSE(fhir::HasErrors(issues)) << file << ": " << issues[0].diagnostics << " at " << issues[0].expression;
      }
      ++mapped[file];
    }
  }
  EXPECT_GT(mapped["adt.hl7"], 100);
  EXPECT_GT(mapped["adt-gb18030.hl7"], 10);
  EXPECT_GT(mapped["oru.hl7"], 50);
  EXPECT_GT(mapped["vxu.hl7"], 0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rhip::hl7
