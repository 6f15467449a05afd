#include "rhip/hl7/message.h"

#include <unicode/ucnv.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace rhip::hl7 {
namespace {

constexpr int kRegionUtcOffsetHours = 8;

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t p = s.find(sep, start);
    if (p == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, p - start));
    start = p + 1;
  }
}

// The n-th (0-based) piece of s split by sep, or empty.
std::string_view Piece(std::string_view s, char sep, int n) {
  size_t start = 0;
  for (int i = 0; i < n; ++i) {
    size_t p = s.find(sep, start);
    if (p == std::string_view::npos) return {};
    start = p + 1;
  }
  size_t end = s.find(sep, start);
  return s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}

// Length of the UTF-8 sequence at the start of s (1-4), or 0 when it is not one.
size_t Utf8SequenceLength(std::string_view s) {
  if (s.empty()) return 0;
  const auto c = static_cast<unsigned char>(s[0]);
  if (c < 0x80) return 1;
  size_t n;
  if (c >= 0xC2 && c <= 0xDF) n = 1;
  else if (c >= 0xE0 && c <= 0xEF) n = 2;
  else if (c >= 0xF0 && c <= 0xF4) n = 3;
  else return 0;
  if (n >= s.size()) return 0;
  for (size_t k = 1; k <= n; ++k)
    if ((static_cast<unsigned char>(s[k]) & 0xC0) != 0x80) return 0;
  // RFC 3629: no overlong forms, no surrogates (U+D800-DFFF), nothing above U+10FFFF.
  const auto c1 = static_cast<unsigned char>(s[1]);
  if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F)) return 0;
  return n + 1;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// \Xhh…\ with an even number of hex digits. Anything else after X (\XZZ\) is an
// unknown sequence, kept as sent (it used to throw from std::stoi: found by fuzz/hl7_fuzz.cc).
bool IsHexEscape(std::string_view seq) {
  if (seq.size() < 3 || seq[0] != 'X' || seq.size() % 2 == 0) return false;
  return std::all_of(seq.begin() + 1, seq.end(), [](char c) { return HexDigit(c) >= 0; });
}

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const size_t n = Utf8SequenceLength(s.substr(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string Normalized(std::string_view charset) {
  std::string out;
  for (char c : charset)
    if (c != ' ' && c != '-' && c != '_') out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// ICU converter name for an MSH-18 value; empty = UTF-8; nullopt = unsupported.
std::optional<std::string> IcuCharset(std::string_view msh18) {
  const std::string n = Normalized(msh18);
  if (n.empty() || n == "UNICODEUTF8" || n == "UTF8" || n == "UNICODE") return std::string();
  if (n == "GB180302000" || n == "GB18030" || n == "GBK" || n == "GB2312" || n == "GB23121980") return "GB18030";
  if (n == "8859/1" || n == "ISO88591" || n == "ISOIR100") return "ISO-8859-1";
  if (n == "ASCII" || n == "USASCII") return std::string();
  return std::nullopt;
}

bool Convert(const std::string& from, std::string_view in, std::string* out) {
  UErrorCode err = U_ZERO_ERROR;
  const int32_t n = ucnv_convert("UTF-8", from.c_str(), nullptr, 0, in.data(), static_cast<int32_t>(in.size()), &err);
  if (err != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(err)) return false;
  out->assign(static_cast<size_t>(n), '\0');
  err = U_ZERO_ERROR;
  ucnv_convert("UTF-8", from.c_str(), out->data(), n, in.data(), static_cast<int32_t>(in.size()), &err);
  return U_SUCCESS(err);
}

Hl7Error Error(ErrorCode code, std::string segment, int field, std::string text, bool reject = false) {
  Hl7Error e;
  e.code = code;
  e.segment = std::move(segment);
  e.field = field;
  e.text = std::move(text);
  e.reject = reject;
  return e;
}

bool ParseDelimiters(std::string_view bytes, Delimiters* d, Hl7Error* error) {
  if (bytes.size() < 8 || bytes.substr(0, 3) != "MSH") {
    *error = Error(ErrorCode::kSegmentSequence, "MSH", 0,
                   "the message must begin with an MSH segment (it begins with '" +
                       std::string(bytes.substr(0, std::min<size_t>(bytes.size(), 10))) + "')",
                   true);
    return false;
  }
  d->field = bytes[3];
  const std::string_view enc = bytes.substr(4, bytes.find(d->field, 4) - 4);
  // Delimiters are printable ASCII: a byte >= 0x80 changes when MSH-18's character
  // set is converted to UTF-8, and splitting on it cut characters in two (found by
  // fuzz/hl7_fuzz.cc: an ISO-8859-1 message with '\xA6' as component separator).
  auto bad = [&](char c) {
    const auto u = static_cast<unsigned char>(c);
    return std::isalnum(u) || u <= 0x20 || u >= 0x7F;
  };
  if (bad(d->field) || enc.size() < 3 || enc.size() > 5) {
    *error = Error(ErrorCode::kDataType, "MSH", 2,
                   "MSH-1/MSH-2 must give the field separator and 3-4 encoding characters (usually |^~\\&); got '" +
                       std::string(bytes.substr(3, std::min<size_t>(bytes.size() - 3, 6))) + "'",
                   true);
    return false;
  }
  d->component = enc[0];
  d->repetition = enc[1];
  d->escape = enc[2];
  d->subcomponent = enc.size() >= 4 ? enc[3] : '&';
  const char all[5] = {d->field, d->component, d->repetition, d->escape, d->subcomponent};
  for (int i = 0; i < 5; ++i) {
    // j from i: bad() is checked for every delimiter, the subcomponent separator
    // (the last) included, which it was not (found by fuzz/hl7_fuzz.cc).
    for (int j = i; j < 5; ++j) {
      if ((j > i && all[i] == all[j]) || bad(all[i])) {
        *error = Error(ErrorCode::kDataType, "MSH", 2,
                       "MSH-2 encoding characters must differ from each other and from the field separator; got '" +
                           std::string(enc) + "'",
                       true);
        return false;
      }
    }
  }
  return true;
}

bool SupportedVersion(std::string_view v) {
  return v == "2.3" || v == "2.3.1" || v == "2.4" || v == "2.5" || v == "2.5.1";
}

}  // namespace

std::string Hl7Error::Describe() const {
  std::string where = segment;
  if (!segment.empty() && field > 0) {
    where += "-" + std::to_string(field);
    if (component > 0) where += "." + std::to_string(component);
  }
  return where.empty() ? text : where + ": " + text;
}

const Segment* Message::Find(std::string_view id, int occurrence) const {
  for (const Segment& s : segments_) {
    if (s.id == id && occurrence-- == 0) return &s;
  }
  return nullptr;
}

std::string_view Message::Raw(const Segment& s, int field) const {
  if (field < 0 || static_cast<size_t>(field) >= s.fields.size()) return {};
  return s.fields[static_cast<size_t>(field)];
}

int Message::Repetitions(const Segment& s, int field) const {
  std::string_view raw = Raw(s, field);
  if (raw.empty()) return 0;
  if (s.id == "MSH" && field <= 2) return 1;
  return static_cast<int>(std::count(raw.begin(), raw.end(), delims_.repetition)) + 1;
}

std::string Message::Get(const Segment& s, int field, int component, int subcomponent, int repetition) const {
  std::string_view raw = Raw(s, field);
  if (raw.empty()) return {};
  if (s.id == "MSH" && field <= 2) return std::string(raw);  // the delimiters themselves
  std::string_view rep = Piece(raw, delims_.repetition, repetition);
  std::string_view comp = Piece(rep, delims_.component, component - 1);
  std::string_view sub = Piece(comp, delims_.subcomponent, subcomponent - 1);
  return Unescape(sub);
}

std::string Message::Get(std::string_view segment, int field, int component, int subcomponent) const {
  const Segment* s = Find(segment);
  return s ? Get(*s, field, component, subcomponent) : std::string();
}

std::string Message::Unescape(std::string_view text) const {
  if (text.find(delims_.escape) == std::string_view::npos) return std::string(text);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != delims_.escape) {
      out += text[i];
      continue;
    }
    const size_t end = text.find(delims_.escape, i + 1);
    if (end == std::string_view::npos) {  // a lone escape character: keep it
      out += text.substr(i);
      break;
    }
    const std::string_view seq = text.substr(i + 1, end - i - 1);
    if (seq == "F") out += delims_.field;
    else if (seq == "S") out += delims_.component;
    else if (seq == "T") out += delims_.subcomponent;
    else if (seq == "R") out += delims_.repetition;
    else if (seq == "E") out += delims_.escape;
    else if (seq == ".br") out += '\n';
    else if (seq == "H" || seq == "N") {
      // highlighting on/off: no plain-text equivalent
    } else if (IsHexEscape(seq)) {
      // The bytes must be UTF-8 text (the message is UTF-8 by now); others, kept as
      // sent, would make every FHIR value holding them invalid JSON (found by fuzz/hl7_fuzz.cc).
      std::string bytes;
      for (size_t k = 1; k + 1 < seq.size(); k += 2) bytes += static_cast<char>(HexDigit(seq[k]) * 16 + HexDigit(seq[k + 1]));
      out += ValidUtf8(bytes) ? bytes : std::string(text.substr(i, end - i + 1));
    } else {
      out += text.substr(i, end - i + 1);  // unknown sequence: keep as sent
    }
    i = end;
  }
  return out;
}

Header Identify(std::string_view bytes) {
  Header h;
  while (!bytes.empty() && (bytes.front() == '\r' || bytes.front() == '\n' || bytes.front() == ' ')) bytes.remove_prefix(1);
  Hl7Error ignored;
  if (!ParseDelimiters(bytes, &h.delims, &ignored)) return h;
  std::string_view msh = bytes.substr(0, bytes.find_first_of("\r\n"));
  const auto f = Split(msh, h.delims.field);  // f[n-1] = MSH-n for n >= 2
  auto field = [&](int n) { return static_cast<size_t>(n - 1) < f.size() ? f[static_cast<size_t>(n - 1)] : std::string_view(); };
  auto first = [&](int n) { return std::string(Piece(field(n), h.delims.component, 0)); };
  h.sending_application = first(3);
  h.sending_facility = first(4);
  h.receiving_application = first(5);
  h.receiving_facility = first(6);
  h.type = first(9);
  h.trigger = std::string(Piece(field(9), h.delims.component, 1));
  if (!h.trigger.empty()) h.type += "^" + h.trigger;
  h.control_id = std::string(field(10));
  if (!field(11).empty()) h.processing_id = first(11);
  if (!field(12).empty()) h.version = first(12);
  h.ok = true;
  return h;
}

std::optional<Message> Parse(std::string_view bytes, Hl7Error* error) {
  while (!bytes.empty() && (bytes.front() == '\r' || bytes.front() == '\n' || bytes.front() == ' ')) bytes.remove_prefix(1);
  while (!bytes.empty() && (bytes.back() == '\r' || bytes.back() == '\n')) bytes.remove_suffix(1);
  if (bytes.empty()) {
    *error = Error(ErrorCode::kSegmentSequence, "", 0, "the message is empty", true);
    return std::nullopt;
  }
  Message m;
  if (!ParseDelimiters(bytes, &m.delims_, error)) return std::nullopt;
  // MSH is read before conversion: its fields are ASCII in every character set we take.
  const std::string_view msh = bytes.substr(0, bytes.find_first_of("\r\n"));
  const auto f = Split(msh, m.delims_.field);
  if (f.size() < 12) {
    *error = Error(ErrorCode::kRequiredFieldMissing, "MSH", static_cast<int>(f.size()) + 1,
                   "MSH has " + std::to_string(f.size() + 1) + " fields; at least 12 are required (up to MSH-12 version)",
                   true);
    return std::nullopt;
  }
  m.charset = f.size() >= 18 ? std::string(Piece(f[17], m.delims_.component, 0)) : std::string();
  const auto icu = IcuCharset(m.charset);
  if (!icu) {
    *error = Error(ErrorCode::kTableValueNotFound, "MSH", 18,
                   "character set '" + m.charset + "' is not supported; send UNICODE UTF-8 or GB 18030-2000", true);
    return std::nullopt;
  }
  if (icu->empty()) {
    if (!ValidUtf8(bytes)) {
      *error = Error(ErrorCode::kDataType, "MSH", 18,
                     "the message is not valid UTF-8 and MSH-18 names no other character set; if the sending system "
                     "uses GB18030/GBK, set MSH-18 to 'GB 18030-2000'",
                     true);
      return std::nullopt;
    }
    m.text_.assign(bytes);
  } else if (!Convert(*icu, bytes, &m.text_)) {
    *error = Error(ErrorCode::kDataType, "MSH", 18, "the message is not valid " + m.charset, true);
    return std::nullopt;
  }
  // Segments (CR, tolerating LF and CRLF).
  const std::string_view text = m.text_;
  size_t start = 0;
  int n = 0;
  while (start < text.size()) {
    size_t end = text.find_first_of("\r\n", start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    ++n;
    Segment s;
    s.fields = Split(line, m.delims_.field);
    s.id = s.fields[0];
    const bool id_ok = s.id.size() == 3 && std::all_of(s.id.begin(), s.id.end(), [](char c) {
                         return std::isupper(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c));
                       });
    if (!id_ok) {
      *error = Error(ErrorCode::kSegmentSequence, std::string(s.id.substr(0, 8)), 0,
                     "segment " + std::to_string(n) + " does not start with a 3-character segment id ('" +
                         std::string(line.substr(0, 12)) + "'); are the segments separated by CR?");
      return std::nullopt;
    }
    if (n == 1) {
      // MSH-1 is the field separator itself: make fields[n] = MSH-n.
      s.fields.insert(s.fields.begin() + 1, line.substr(3, 1));
    } else if (s.id == "MSH") {
      *error = Error(ErrorCode::kSegmentSequence, "MSH", 0, "a second MSH segment: send one message per MLLP frame");
      return std::nullopt;
    }
    m.segments_.push_back(std::move(s));
  }
  const Segment& h = m.segments_.front();
  m.sender = m.Get(h, 4, 1);
  m.control_id = m.Get(h, 10);
  m.version = m.Get(h, 12, 1);
  m.type = m.Get(h, 9, 1);
  const std::string trigger = m.Get(h, 9, 2);
  if (!trigger.empty()) m.type += "^" + trigger;
  if (m.sender.empty()) {
    *error = Error(ErrorCode::kRequiredFieldMissing, "MSH", 4,
                   "MSH-4 sending facility is empty: it must hold the institution code", true);
    return std::nullopt;
  }
  if (m.control_id.empty()) {
    *error = Error(ErrorCode::kRequiredFieldMissing, "MSH", 10, "MSH-10 message control id is empty", true);
    return std::nullopt;
  }
  if (m.Get(h, 9, 1).empty()) {
    *error = Error(ErrorCode::kRequiredFieldMissing, "MSH", 9, "MSH-9 message type is empty", true);
    return std::nullopt;
  }
  if (!SupportedVersion(m.version)) {
    *error = Error(ErrorCode::kUnsupportedVersion, "MSH", 12,
                   "version '" + m.version + "' is not supported (2.3, 2.3.1, 2.4, 2.5, 2.5.1)", true);
    return std::nullopt;
  }
  return m;
}

namespace {

// Text for an ACK field: delimiters escaped, and whatever is not printable
// UTF-8 — control characters (MLLP's framing bytes among them), bytes of
// another character set that reached MSH raw, a multi-byte character cut in
// two by an error message — as HL7 hex escapes \Xhh\, so the ACK is always
// valid UTF-8 and always one frame (found by fuzz/hl7_fuzz.cc).
std::string Escape(std::string_view v) {
  std::string out;
  auto hex = [&](unsigned char b) {
    static const char kHex[] = "0123456789ABCDEF";
    out += "\\X";
    out += kHex[b >> 4];
    out += kHex[b & 0xF];
    out += '\\';
  };
  for (size_t i = 0; i < v.size(); ++i) {
    const char c = v[i];
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      const size_t n = Utf8SequenceLength(v.substr(i));
      if (n == 0) {
        hex(u);
      } else {
        out += v.substr(i, n);
        i += n - 1;
      }
      continue;
    }
    switch (c) {
      case '|': out += "\\F\\"; break;
      case '^': out += "\\S\\"; break;
      case '~': out += "\\R\\"; break;
      case '&': out += "\\T\\"; break;
      case '\\': out += "\\E\\"; break;
      case '\r':
      case '\n': out += "\\.br\\"; break;
      default:
        if (u < 0x20 || u == 0x7F) hex(u);
        else out += c;
    }
  }
  return out;
}

const char* CodeText(ErrorCode c) {
  switch (c) {
    case ErrorCode::kSegmentSequence: return "Segment sequence error";
    case ErrorCode::kRequiredFieldMissing: return "Required field missing";
    case ErrorCode::kDataType: return "Data type error";
    case ErrorCode::kTableValueNotFound: return "Table value not found";
    case ErrorCode::kUnsupportedMessageType: return "Unsupported message type";
    case ErrorCode::kUnsupportedEventCode: return "Unsupported event code";
    case ErrorCode::kUnsupportedProcessingId: return "Unsupported processing id";
    case ErrorCode::kUnsupportedVersion: return "Unsupported version id";
    case ErrorCode::kUnknownKey: return "Unknown key identifier";
    case ErrorCode::kDuplicateKey: return "Duplicate key identifier";
    case ErrorCode::kApplicationInternal: return "Application internal error";
  }
  return "Error";
}

}  // namespace

std::string BuildAck(const Header& in, AckCode code, const Hl7Error* error, std::string_view control_id,
                     std::string_view timestamp) {
  const char* msa = code == AckCode::kAccept ? "AA" : code == AckCode::kError ? "AE" : "AR";
  const std::string version = SupportedVersion(in.version) ? in.version : "2.5";
  std::string out = "MSH|^~\\&|RHIP|" + Escape(in.receiving_facility.empty() ? "RHIP" : in.receiving_facility) + "|" +
                    Escape(in.sending_application) + "|" + Escape(in.sending_facility) + "|" + std::string(timestamp) +
                    "||ACK^" + Escape(in.trigger) + "^ACK|" + std::string(control_id) + "|" +
                    Escape(in.processing_id.empty() ? "P" : in.processing_id) + "|" + version +
                    "|||||CHN|UNICODE UTF-8\r";
  const std::string text = code == AckCode::kAccept ? "message accepted" : error ? error->Describe() : "error";
  out += "MSA|" + std::string(msa) + "|" + Escape(in.control_id) + "|" + Escape(text) + "\r";
  if (code != AckCode::kAccept && error) {
    const std::string location = error->segment.empty() ? std::string()
                                                        : Escape(error->segment) + "^" + std::to_string(error->sequence) +
                                                              "^" + std::to_string(error->field) + "^1^" +
                                                              std::to_string(error->component);
    const std::string code_text = std::to_string(static_cast<int>(error->code)) + "^" + CodeText(error->code) + "^HL70357";
    // ERR-1 (v2.3/2.4 style) for older receivers, ERR-2/3/4/8 (v2.5).
    const std::string err1 = (version < "2.5" && !error->segment.empty())
                                 ? Escape(error->segment) + "^" + std::to_string(error->sequence) + "^" +
                                       std::to_string(error->field) + "^" + std::to_string(static_cast<int>(error->code)) +
                                       "&" + CodeText(error->code) + "&HL70357"
                                 : std::string();
    out += "ERR|" + err1 + "|" + location + "|" + code_text + "|E||||" + Escape(error->text) + "\r";
  }
  return out;
}

namespace {

bool Digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}
int Num(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}
int DaysIn(int y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

}  // namespace

std::vector<std::string_view> SplitMessages(std::string_view text) {
  std::vector<std::string_view> out;
  size_t start = text.find("MSH");
  while (start != std::string_view::npos) {
    size_t next = start;
    while (true) {
      next = text.find("MSH", next + 1);
      if (next == std::string_view::npos || text[next - 1] == '\n' || text[next - 1] == '\r') break;
    }
    // MSH only ever opens a message, so every segment that is an MSH starts the next one.
    std::string_view one = text.substr(start, next == std::string_view::npos ? std::string_view::npos : next - start);
    while (!one.empty() && (one.back() == '\n' || one.back() == '\r')) one.remove_suffix(1);
    if (!one.empty()) out.push_back(one);
    start = next;
  }
  return out;
}

std::optional<std::string> ToFhirDate(std::string_view ts) {
  std::string_view d = ts.substr(0, std::min<size_t>(ts.size(), 8));
  if (!Digits(d) || (d.size() != 4 && d.size() != 6 && d.size() != 8)) return std::nullopt;
  const int y = Num(d.substr(0, 4));
  if (y < 1850) return std::nullopt;
  std::string out(d.substr(0, 4));
  if (d.size() >= 6) {
    const int m = Num(d.substr(4, 2));
    if (m < 1 || m > 12) return std::nullopt;
    out += "-" + std::string(d.substr(4, 2));
    if (d.size() == 8) {
      const int day = Num(d.substr(6, 2));
      if (day < 1 || day > DaysIn(y, m)) return std::nullopt;
      out += "-" + std::string(d.substr(6, 2));
    }
  }
  return out;
}

std::optional<std::string> ToFhirDateTime(std::string_view ts) {
  // Split off a zone.
  std::string zone;
  size_t z = ts.find_first_of("+-");
  std::string_view main = ts;
  if (z != std::string_view::npos) {
    const std::string_view zz = ts.substr(z + 1);
    if (zz.size() != 4 || !Digits(zz) || Num(zz.substr(0, 2)) > 14 || Num(zz.substr(2, 2)) > 59) return std::nullopt;
    zone = std::string(1, ts[z]) + std::string(zz.substr(0, 2)) + ":" + std::string(zz.substr(2, 2));
    main = ts.substr(0, z);
  }
  std::string_view frac;
  if (size_t dot = main.find('.'); dot != std::string_view::npos) {
    frac = main.substr(dot + 1);
    main = main.substr(0, dot);
    if (!Digits(frac) || main.size() != 14) return std::nullopt;
  }
  if (main.size() <= 8) {
    if (!zone.empty()) return std::nullopt;
    return ToFhirDate(main);
  }
  if (!Digits(main) || (main.size() != 10 && main.size() != 12 && main.size() != 14)) return std::nullopt;
  auto date = ToFhirDate(main.substr(0, 8));
  if (!date) return std::nullopt;
  const int hh = Num(main.substr(8, 2));
  const int mm = main.size() >= 12 ? Num(main.substr(10, 2)) : 0;
  const int ss = main.size() >= 14 ? Num(main.substr(12, 2)) : 0;
  if (hh > 23 || mm > 59 || ss > 59) return std::nullopt;
  char buf[48];
  std::snprintf(buf, sizeof buf, "T%02d:%02d:%02d", hh % 100, mm % 100, ss % 100);
  std::string out = *date + buf;
  if (!frac.empty()) out += "." + std::string(frac);
  if (zone.empty()) {
    std::snprintf(buf, sizeof buf, "+%02d:00", kRegionUtcOffsetHours);
    zone = buf;
  }
  return out + zone;
}

}  // namespace rhip::hl7
