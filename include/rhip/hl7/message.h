// HL7 v2 messages (v2.3-2.5): parsing, and the acknowledgements rhip sends back.
//
// A message is segments separated by CR; fields, repetitions, components and
// subcomponents are separated by the characters MSH-1 and MSH-2 declare (any
// characters, not only |^~\&). MSH-18 names the character set: UTF-8 (default)
// or GB 18030 / GBK / GB2312, converted to UTF-8 with ICU before parsing.
// Field numbers follow the standard, MSH included: MSH-1 is the field separator
// itself, MSH-9 the message type, MSH-10 the control id.
//
// Errors carry what an ACK needs (DOMAIN A, HL7 v2 conventions): the segment,
// field and component, an HL7 table 0357 code and a sentence for the sender.
//
// Thread-safety: Message is a value; the functions are re-entrant.
//
// Example:
//   Hl7Error err;
//   std::optional<Message> m = Parse(bytes, &err);
//   if (!m) return BuildAck(Identify(bytes), AckCode::kReject, err, "RHIP1");
//   std::string family = m->Get("PID", 5, 1);  // PID-5.1
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rhip::hl7 {

// HL7 table 0357 (message error condition codes).
enum class ErrorCode : int {
  kSegmentSequence = 100,
  kRequiredFieldMissing = 101,
  kDataType = 102,
  kTableValueNotFound = 103,
  kUnsupportedMessageType = 200,
  kUnsupportedEventCode = 201,
  kUnsupportedProcessingId = 202,
  kUnsupportedVersion = 203,
  kUnknownKey = 204,
  kDuplicateKey = 205,
  kApplicationInternal = 207,
};

// Why a message was not accepted, and where.
struct Hl7Error {
  ErrorCode code = ErrorCode::kApplicationInternal;
  std::string segment;   // "PID"; empty when the message as a whole is wrong
  int sequence = 1;      // which occurrence of the segment (1-based)
  int field = 0;         // 0 = the segment as a whole
  int component = 0;
  std::string text;      // for the sender's staff: what is wrong and what to do
  bool reject = false;   // AR (the message cannot be taken at all) rather than AE

  // "PID-7: birth date '19801340' is not a valid HL7 date" style summary.
  std::string Describe() const;
};

struct Delimiters {
  char field = '|';
  char component = '^';
  char repetition = '~';
  char escape = '\\';
  char subcomponent = '&';
};

struct Segment {
  std::string_view id;                  // "PID"
  std::vector<std::string_view> fields;  // fields[n] = field n (escaped text); fields[0] = id
};

class Message {
 public:
  Message() = default;
  Message(const Message&) = delete;  // segments point into text_
  Message& operator=(const Message&) = delete;
  Message(Message&&) = default;
  Message& operator=(Message&&) = default;

  const std::vector<Segment>& segments() const { return segments_; }
  const Delimiters& delimiters() const { return delims_; }
  // The occurrence-th (0-based) segment with this id, or nullptr.
  const Segment* Find(std::string_view id, int occurrence = 0) const;
  // Unescaped value of field[repetition].component.subcomponent (1-based except
  // repetition, which is 0-based); empty when absent.
  std::string Get(const Segment& s, int field, int component = 1, int subcomponent = 1, int repetition = 0) const;
  // Same, on the first segment with this id.
  std::string Get(std::string_view segment, int field, int component = 1, int subcomponent = 1) const;
  int Repetitions(const Segment& s, int field) const;
  // The raw (escaped) text of a field; empty when absent.
  std::string_view Raw(const Segment& s, int field) const;
  // Decodes escape sequences (\F\ \S\ \T\ \R\ \E\ \Xhh..\ \.br\).
  std::string Unescape(std::string_view text) const;

  std::string type;        // MSH-9.1 + "^" + MSH-9.2, e.g. "ADT^A04"
  std::string version;     // MSH-12
  std::string sender;      // MSH-4.1 sending facility (the institution code)
  std::string control_id;  // MSH-10
  std::string charset;     // MSH-18 as sent

 private:
  friend std::optional<Message> Parse(std::string_view bytes, Hl7Error* error);
  std::string text_;  // UTF-8
  Delimiters delims_;
  std::vector<Segment> segments_;
};

// Parses one message (the bytes between MLLP's start and end characters).
std::optional<Message> Parse(std::string_view bytes, Hl7Error* error);

// What can be read of MSH even when the rest does not parse: enough to
// acknowledge and to recognise a re-sent message.
struct Header {
  std::string sending_application, sending_facility;      // MSH-3, MSH-4 (first components)
  std::string receiving_application, receiving_facility;  // MSH-5, MSH-6
  std::string type;        // MSH-9 as "ADT^A04"
  std::string trigger;     // MSH-9.2
  std::string control_id;  // MSH-10
  std::string processing_id = "P";
  std::string version = "2.5";
  Delimiters delims;
  bool ok = false;  // an MSH segment was found
};
Header Identify(std::string_view bytes);

enum class AckCode { kAccept, kError, kReject };  // AA, AE, AR

// The ACK for `inbound` (MSH with sender and receiver swapped, MSA with the
// inbound control id, ERR when not AA), segments ending in CR, in UTF-8.
std::string BuildAck(const Header& inbound, AckCode code, const Hl7Error* error, std::string_view control_id,
                     std::string_view timestamp);

// The messages of a file or stream in "batch" form: each starts on a line
// beginning with MSH (segments separated by CR; messages by LF or CR LF).
std::vector<std::string_view> SplitMessages(std::string_view text);

// HL7 DTM/TS "YYYY[MM[DD[HHMM[SS[.S+]]]]][+/-ZZZZ]" → FHIR date or dateTime
// (times without a zone are UTC+8). nullopt when malformed or impossible.
std::optional<std::string> ToFhirDateTime(std::string_view ts);
std::optional<std::string> ToFhirDate(std::string_view ts);  // date part only, YYYY[-MM[-DD]]

}  // namespace rhip::hl7
