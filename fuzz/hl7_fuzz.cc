// Fuzz target: the HL7 v2 parser (delimiters from MSH, escapes, repetitions,
// components, MSH-18 character sets), the HL7 → FHIR mapping, and the ACK rhip
// sends back for whatever arrived.
// Invariants:
//   - a parsed message written back from its segments' raw fields parses to the
//     same segments, header fields and values (UTF-8 messages);
//   - a mapped message is a JSON transaction Bundle with one entry per type;
//   - the ACK for any input — accepted or not — is itself a valid HL7 message
//     that names our control id and never contains MLLP framing bytes.
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "rhip/fhir/json.h"
#include "rhip/hl7/message.h"
#include "rhip/hl7/to_fhir.h"

using namespace rhip;

namespace {

std::string Rebuild(const hl7::Message& m) {
  const char sep = m.delimiters().field;
  std::string out;
  for (const hl7::Segment& s : m.segments()) {
    out += s.id;
    // MSH: fields[1] is the field separator itself, written once.
    for (size_t f = s.id == "MSH" && &s == &m.segments().front() ? 2 : 1; f < s.fields.size(); ++f) {
      out += sep;
      out += s.fields[f];
    }
    out += '\r';
  }
  return out;
}

void CheckAck(std::string_view inbound, const hl7::Hl7Error* error, hl7::AckCode code) {
  const std::string ack = hl7::BuildAck(hl7::Identify(inbound), code, error, "ACK1", "20261202120000");
  FUZZ_CHECK(ack.find('\x0b') == std::string::npos && ack.find('\x1c') == std::string::npos,
             "an ACK holds no MLLP framing byte");
  hl7::Hl7Error ack_error;
  auto parsed = hl7::Parse(ack, &ack_error);
  if (!parsed) std::fprintf(stderr, "ACK does not parse: %s\n", ack_error.Describe().c_str());
  FUZZ_CHECK(parsed.has_value(), "the ACK is a valid HL7 message");
  FUZZ_CHECK(parsed->control_id == "ACK1", "the ACK carries our control id");
  FUZZ_CHECK(parsed->Find("MSA") != nullptr, "the ACK has an MSA segment");
  const std::string msa1 = parsed->Get("MSA", 1);
  FUZZ_CHECK(msa1 == (code == hl7::AckCode::kAccept ? "AA" : code == hl7::AckCode::kError ? "AE" : "AR"),
             "MSA-1 is the acknowledgement code");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)hl7::SplitMessages(bytes);
  hl7::Hl7Error error;
  auto m = hl7::Parse(bytes, &error);
  if (!m) {
    FUZZ_CHECK(!error.text.empty(), "a refused message says why");
    CheckAck(bytes, &error, error.reject ? hl7::AckCode::kReject : hl7::AckCode::kError);
    return 0;
  }
  FUZZ_CHECK(!m->segments().empty() && m->segments().front().id == "MSH", "a message starts with MSH");
  // Every value of every field can be read.
  for (const hl7::Segment& s : m->segments()) {
    for (int f = 1; f < static_cast<int>(s.fields.size()) && f < 40; ++f) {
      const int reps = m->Repetitions(s, f);
      FUZZ_CHECK(reps >= 0, "repetitions are counted");
      for (int r = 0; r < reps && r < 4; ++r)
        for (int c = 1; c <= 3; ++c) (void)m->Get(s, f, c, 1, r);
    }
  }
  const std::string cs = m->charset;
  if (cs.empty() || cs == "UNICODE UTF-8" || cs == "UTF-8" || cs == "ASCII") {
    const std::string rebuilt = Rebuild(*m);
    hl7::Hl7Error e2;
    auto again = hl7::Parse(rebuilt, &e2);
    FUZZ_CHECK(again.has_value(), "a parsed message written back parses again");
    FUZZ_CHECK(again->segments().size() == m->segments().size(), "same segments");
    FUZZ_CHECK(again->type == m->type && again->control_id == m->control_id && again->sender == m->sender &&
                   again->version == m->version,
               "same header");
    for (size_t i = 0; i < m->segments().size(); ++i) {
      const auto& a = m->segments()[i];
      const auto& b = again->segments()[i];
      FUZZ_CHECK(a.fields.size() == b.fields.size(), "same number of fields");
      for (size_t f = 0; f < a.fields.size(); ++f) FUZZ_CHECK(a.fields[f] == b.fields[f], "same field text");
    }
  }
  hl7::Hl7Error map_error;
  auto mapped = hl7::MapToFhir(*m, &map_error);
  if (!mapped) {
    FUZZ_CHECK(!map_error.text.empty(), "a message that cannot be mapped says why");
    CheckAck(bytes, &map_error, map_error.reject ? hl7::AckCode::kReject : hl7::AckCode::kError);
    return 0;
  }
  auto bundle = fhir::ParseJson(mapped->bundle);
  FUZZ_CHECK(bundle.ok(), "the mapped Bundle is JSON");
  FUZZ_CHECK(fhir::StringMember(*bundle, "resourceType") == "Bundle" && fhir::StringMember(*bundle, "type") == "transaction",
             "the mapping makes a transaction Bundle");
  const fhir::JsonValue* entries = fhir::Member(*bundle, "entry");
  FUZZ_CHECK(entries && entries->IsArray() && entries->Size() == mapped->types.size(), "one entry per mapped type");
  CheckAck(bytes, nullptr, hl7::AckCode::kAccept);
  return 0;
}
