#include "rhip/hl7/to_fhir.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace rhip::hl7 {
namespace {

// Writes the Bundle's JSON text and builds the same document from the same calls, so
// that the receiver validates what was mapped without parsing the text it has just
// written (that parse was ~12 % of the receive path's CPU for ORU^R01). The subset of
// rapidjson::Writer the mapping uses.
class Writer {
 public:
  Writer(rapidjson::StringBuffer& buf, rapidjson::Document& doc) : text_(buf), doc_(doc) {}
  bool StartObject() {
    text_.StartObject();
    open_.push_back(Add(rapidjson::Value(rapidjson::kObjectType)));
    return true;
  }
  bool EndObject(rapidjson::SizeType = 0) {
    text_.EndObject();
    open_.pop_back();
    return true;
  }
  bool StartArray() {
    text_.StartArray();
    open_.push_back(Add(rapidjson::Value(rapidjson::kArrayType)));
    return true;
  }
  bool EndArray(rapidjson::SizeType = 0) {
    text_.EndArray();
    open_.pop_back();
    return true;
  }
  bool Key(const char* k) { return Key(k, static_cast<rapidjson::SizeType>(std::strlen(k))); }
  bool Key(const char* k, rapidjson::SizeType n) {
    text_.Key(k, n);
    key_.SetString(k, n, doc_.GetAllocator());
    return true;
  }
  bool String(const char* v) { return String(v, static_cast<rapidjson::SizeType>(std::strlen(v))); }
  bool String(const char* v, rapidjson::SizeType n) {
    text_.String(v, n);
    Add(rapidjson::Value(v, n, doc_.GetAllocator()));
    return true;
  }
  bool Bool(bool b) {
    text_.Bool(b);
    Add(rapidjson::Value(b));
    return true;
  }
  bool Int(int i) {
    text_.Int(i);
    Add(rapidjson::Value(i));
    return true;
  }
  // A number written as given (decimals keep their digits in the text); the document
  // holds it as the parser would have: an integer when it is one, else a double.
  bool RawValue(const char* v, size_t n, rapidjson::Type type) {
    text_.RawValue(v, n, type);
    const std::string number(v, n);
    char* end = nullptr;
    errno = 0;
    const long long i = std::strtoll(number.c_str(), &end, 10);
    if (errno == 0 && end == number.c_str() + number.size()) Add(rapidjson::Value(static_cast<int64_t>(i)));
    else Add(rapidjson::Value(std::strtod(number.c_str(), nullptr)));
    return true;
  }

 private:
  // Adds a value to the innermost open container (after its key, in an object). Pointers
  // to the open containers stay valid: only the innermost one grows.
  rapidjson::Value* Add(rapidjson::Value v) {
    if (open_.empty()) {
      static_cast<rapidjson::Value&>(doc_) = std::move(v);
      return &doc_;
    }
    rapidjson::Value* top = open_.back();
    if (top->IsArray()) {
      top->PushBack(std::move(v), doc_.GetAllocator());
      return &(*top)[top->Size() - 1];
    }
    top->AddMember(std::move(key_), std::move(v), doc_.GetAllocator());
    return &(top->MemberEnd() - 1)->value;
  }
  rapidjson::Writer<rapidjson::StringBuffer> text_;
  rapidjson::Document& doc_;
  std::vector<rapidjson::Value*> open_;
  rapidjson::Value key_;
};

constexpr std::string_view kIdCardSystem = "urn:oid:2.16.156.10011.1.3";
constexpr std::string_view kHealthCardSystem = "urn:oid:2.16.156.10011.1.19";

uint64_t Fnv1a(std::string_view s, uint64_t h = 0xcbf29ce484222325ULL) {
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

// A stable urn:uuid for entry `n` of the message (the same on a replay).
std::string EntryUrn(const Message& m, int n) {
  const uint64_t a = Fnv1a(m.sender + "|" + m.control_id + "|" + std::to_string(n));
  const uint64_t b = Fnv1a(std::to_string(n), a);
  char buf[64];
  std::snprintf(buf, sizeof buf, "urn:uuid:%08x-%04x-4%03x-8%03x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xfff),
                static_cast<unsigned>((b >> 48) & 0xfff), static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

// A FHIR id from an institution's key: readable when it can be, hashed when not.
std::string StableId(std::string_view prefix, std::string_view org, std::string_view key) {
  std::string id = std::string(prefix) + std::string(org) + "-" + std::string(key);
  const bool ok = id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
                  });
  if (ok) return id;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(Fnv1a(std::string(org) + "|" + std::string(key))));
  return std::string(prefix) + buf;
}

std::string Query(std::string_view v) {  // percent-encodes what a search value cannot carry as-is
  std::string out;
  for (unsigned char c : v) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == ':' || c == '/') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

void Str(Writer& w, const char* k, std::string_view v) {
  w.Key(k);
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}

void Coding(Writer& w, std::string_view system, std::string_view code, std::string_view display) {
  w.StartObject();
  if (!system.empty()) Str(w, "system", system);
  Str(w, "code", code);
  if (!display.empty()) Str(w, "display", display);
  w.EndObject();
}

void Concept(Writer& w, const char* k, std::string_view system, std::string_view code, std::string_view display) {
  w.Key(k);
  w.StartObject();
  w.Key("coding");
  w.StartArray();
  Coding(w, system, code, display);
  w.EndArray();
  if (!display.empty()) Str(w, "text", display);
  w.EndObject();
}

void ConceptList(Writer& w, const char* k, std::string_view system, std::string_view code, std::string_view display = {}) {
  w.Key(k);
  w.StartArray();
  w.StartObject();
  w.Key("coding");
  w.StartArray();
  Coding(w, system, code, display);
  w.EndArray();
  w.EndObject();
  w.EndArray();
}

void Ref(Writer& w, const char* k, std::string_view ref) {
  w.Key(k);
  w.StartObject();
  Str(w, "reference", ref);
  w.EndObject();
}

void RefList(Writer& w, const char* k, std::string_view ref, const char* inner = nullptr) {
  w.Key(k);
  w.StartArray();
  w.StartObject();
  if (inner) {
    Ref(w, inner, ref);
  } else {
    Str(w, "reference", ref);
  }
  w.EndObject();
  w.EndArray();
}

Hl7Error Err(ErrorCode code, const char* segment, int sequence, int field, std::string text, int component = 0) {
  Hl7Error e;
  e.code = code;
  e.segment = segment;
  e.sequence = sequence;
  e.field = field;
  e.component = component;
  e.text = std::move(text);
  e.reject = code == ErrorCode::kUnsupportedMessageType || code == ErrorCode::kUnsupportedEventCode;
  return e;
}

// Builds the transaction Bundle entry by entry.
class BundleBuilder {
 public:
  explicit BundleBuilder(const Message& m) : m_(m), w_(buf_, doc_) {
    w_.StartObject();
    Str(w_, "resourceType", "Bundle");
    Str(w_, "type", "transaction");
    w_.Key("entry");
    w_.StartArray();
  }
  // Starts an entry and its resource; returns the writer positioned inside the resource.
  Writer& Begin(const std::string& urn, const char* type) {
    types_.emplace_back(type);
    w_.StartObject();
    Str(w_, "fullUrl", urn);
    w_.Key("resource");
    w_.StartObject();
    Str(w_, "resourceType", type);
    return w_;
  }
  // Ends the resource with its request: PUT Type?query (conditional update), or
  // POST with ifNoneExist (conditional create) when `create_only`.
  void End(const char* type, const std::string& query, bool create_only = false) {
    w_.EndObject();
    w_.Key("request");
    w_.StartObject();
    if (create_only) {
      Str(w_, "method", "POST");
      Str(w_, "url", type);
      Str(w_, "ifNoneExist", query);
    } else {
      Str(w_, "method", "PUT");
      Str(w_, "url", std::string(type) + "?" + query);
    }
    w_.EndObject();
    w_.EndObject();
  }
  Mapped Finish() {
    w_.EndArray();
    w_.EndObject();
    return {std::string(buf_.GetString(), buf_.GetSize()), std::move(types_), std::move(doc_)};
  }
  std::string Urn() { return EntryUrn(m_, next_++); }

 private:
  const Message& m_;
  rapidjson::StringBuffer buf_;
  rapidjson::Document doc_;
  Writer w_;
  std::vector<std::string> types_;
  int next_ = 0;
};

struct PatientKey {
  std::string system, value;  // the MRN identifier the institution files it under
};

// PID-3: MRN^^^ORG^MR and IDNUMBER^^^^NNCHN (DOMAIN A).
std::optional<PatientKey> PatientIdentity(const Message& m, const Segment& pid, Hl7Error* error) {
  for (int r = 0; r < m.Repetitions(pid, 3); ++r) {
    const std::string value = m.Get(pid, 3, 1, 1, r), type = m.Get(pid, 3, 5, 1, r);
    std::string authority = m.Get(pid, 3, 4, 1, r);
    if (authority.empty()) authority = m.sender;
    if (!value.empty() && (type == "MR" || type.empty())) return PatientKey{"http://rhip.health/id/mrn/" + authority, value};
  }
  *error = Err(ErrorCode::kRequiredFieldMissing, "PID", 1, 3,
               "PID-3 has no medical record number (MRN^^^ORGCODE^MR): the institution's own patient id is required");
  return std::nullopt;
}

bool AllAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// Writes the Patient fields of PID (inside an open resource object).
bool WritePatientBody(Writer& w, const Message& m, const Segment& pid, Hl7Error* error) {
  w.Key("identifier");
  w.StartArray();
  for (int r = 0; r < m.Repetitions(pid, 3); ++r) {
    const std::string value = m.Get(pid, 3, 1, 1, r), type = m.Get(pid, 3, 5, 1, r);
    if (value.empty()) continue;
    std::string authority = m.Get(pid, 3, 4, 1, r);
    std::string system;
    if (type == "MR" || type.empty()) system = "http://rhip.health/id/mrn/" + (authority.empty() ? m.sender : authority);
    else if (type == "NNCHN" || type == "NI" || type == "CZ") system = std::string(kIdCardSystem);
    else if (type == "HC") system = std::string(kHealthCardSystem);
    else system = "http://rhip.health/id/hl7/" + type;
    w.StartObject();
    Str(w, "system", system);
    Str(w, "value", value);
    w.EndObject();
  }
  w.EndArray();
  const std::string family = m.Get(pid, 5, 1), given = m.Get(pid, 5, 2);
  if (!family.empty() || !given.empty()) {
    w.Key("name");
    w.StartArray();
    w.StartObject();
    const bool latin = AllAscii(family) && AllAscii(given);
    Str(w, "text", latin && !given.empty() && !family.empty() ? given + " " + family : family + given);
    if (!family.empty()) Str(w, "family", family);
    if (!given.empty()) {
      w.Key("given");
      w.StartArray();
      w.String(given.c_str(), static_cast<rapidjson::SizeType>(given.size()));
      w.EndArray();
    }
    w.EndObject();
    w.EndArray();
  }
  std::string phone = m.Get(pid, 13, 1);
  if (phone.empty()) phone = m.Get(pid, 13, 12);
  if (!phone.empty()) {
    w.Key("telecom");
    w.StartArray();
    w.StartObject();
    Str(w, "system", "phone");
    Str(w, "value", phone);
    w.EndObject();
    w.EndArray();
  }
  const std::string sex = m.Get(pid, 8);
  if (!sex.empty()) {
    const char* gender = sex == "M" ? "male" : sex == "F" ? "female" : sex == "U" ? "unknown" : sex == "O" || sex == "A" ? "other" : nullptr;
    if (!gender) {
      *error = Err(ErrorCode::kTableValueNotFound, "PID", 1, 8, "sex '" + sex + "' is not one of M, F, O, U");
      return false;
    }
    Str(w, "gender", gender);
  }
  const std::string birth = m.Get(pid, 7);
  if (!birth.empty()) {
    auto d = ToFhirDate(birth);
    if (!d || (birth.size() > 8 && !ToFhirDateTime(birth))) {
      *error = Err(ErrorCode::kDataType, "PID", 1, 7, "birth date '" + birth + "' is not a valid date (YYYYMMDD)");
      return false;
    }
    Str(w, "birthDate", *d);
  }
  const std::string street = m.Get(pid, 11, 1);
  std::string county = m.Get(pid, 11, 9);
  if (county.empty()) county = m.Get(pid, 11, 8);
  if (!street.empty() || !county.empty()) {
    w.Key("address");
    w.StartArray();
    w.StartObject();
    if (!street.empty()) Str(w, "text", street);
    if (const std::string city = m.Get(pid, 11, 3); !city.empty()) Str(w, "city", city);
    if (const std::string state = m.Get(pid, 11, 4); !state.empty()) Str(w, "state", state);
    if (!county.empty()) Str(w, "district", county);
    w.EndObject();
    w.EndArray();
  }
  Ref(w, "managingOrganization", "Organization/" + m.sender);
  return true;
}

// The Patient entry; returns its urn for references.
std::optional<std::string> PatientEntry(BundleBuilder& b, const Message& m, bool create_only, Hl7Error* error,
                                        const Segment** pid_out = nullptr) {
  const Segment* pid = m.Find("PID");
  if (!pid) {
    *error = Err(ErrorCode::kSegmentSequence, "PID", 1, 0, "the message has no PID segment");
    return std::nullopt;
  }
  if (pid_out) *pid_out = pid;
  auto key = PatientIdentity(m, *pid, error);
  if (!key) return std::nullopt;
  const std::string urn = b.Urn();
  Writer& w = b.Begin(urn, "Patient");
  Str(w, "id", StableId("", m.sender, key->value));
  if (!WritePatientBody(w, m, *pid, error)) return std::nullopt;
  b.End("Patient", "identifier=" + Query(key->system) + "%7C" + Query(key->value), create_only);
  return urn;
}

bool EncounterEntry(BundleBuilder& b, const Message& m, const std::string& patient, std::string_view trigger,
                    Hl7Error* error) {
  const Segment* pv1 = m.Find("PV1");
  if (!pv1) return true;
  const std::string visit = m.Get(*pv1, 19, 1);
  if (visit.empty()) return true;  // a registration without a visit
  const std::string cls = m.Get(*pv1, 2);
  const char* code = cls == "O" ? "AMB" : cls == "E" ? "EMER" : cls == "I" ? "IMP" : cls == "P" ? "PRENC" : nullptr;
  if (!code) {
    *error = Err(ErrorCode::kTableValueNotFound, "PV1", 1, 2, "patient class '" + cls + "' is not one of O, E, I, P");
    return false;
  }
  std::optional<std::string> start, end;
  for (auto [field, out] : {std::pair{44, &start}, std::pair{45, &end}}) {
    const std::string v = m.Get(*pv1, field);
    if (v.empty()) continue;
    *out = ToFhirDateTime(v);
    if (!*out) {
      *error = Err(ErrorCode::kDataType, "PV1", 1, field, "'" + v + "' is not a valid HL7 date/time (YYYYMMDDHHMM[SS])");
      return false;
    }
  }
  const std::string system = "http://rhip.health/id/visit/" + m.sender;
  Writer& w = b.Begin(b.Urn(), "Encounter");
  Str(w, "id", StableId("v-", m.sender, visit));
  w.Key("identifier");
  w.StartArray();
  w.StartObject();
  Str(w, "system", system);
  Str(w, "value", visit);
  w.EndObject();
  w.EndArray();
  const bool finished = trigger == "A03" || end.has_value();
  Str(w, "status", finished ? "finished" : "in-progress");
  w.Key("class");
  Coding(w, "http://terminology.hl7.org/CodeSystem/v3-ActCode", code, "");
  Ref(w, "subject", patient);
  if (start || end) {
    w.Key("period");
    w.StartObject();
    if (start) Str(w, "start", *start);
    if (end) Str(w, "end", *end);
    w.EndObject();
  }
  Ref(w, "serviceProvider", "Organization/" + m.sender);
  b.End("Encounter", "identifier=" + Query(system) + "%7C" + Query(visit));
  return true;
}

std::optional<Mapped> MapAdt(const Message& m, std::string_view trigger, Hl7Error* error) {
  static const char* kEvents[] = {"A01", "A03", "A04", "A08", "A28", "A31", "A40"};
  if (std::find(std::begin(kEvents), std::end(kEvents), trigger) == std::end(kEvents)) {
    *error = Err(ErrorCode::kUnsupportedEventCode, "MSH", 1, 9,
                 "ADT event '" + std::string(trigger) + "' is not supported (A01, A03, A04, A08, A28, A31, A40)", 2);
    return std::nullopt;
  }
  BundleBuilder b(m);
  const Segment* pid = nullptr;
  auto patient = PatientEntry(b, m, false, error, &pid);
  if (!patient) return std::nullopt;
  if (trigger == "A40") {
    const Segment* mrg = m.Find("MRG");
    const std::string prior = mrg ? m.Get(*mrg, 1, 1) : std::string();
    if (prior.empty()) {
      *error = Err(ErrorCode::kRequiredFieldMissing, "MRG", 1, 1, "ADT^A40 needs MRG-1, the identifier of the record being merged");
      return std::nullopt;
    }
    std::string authority = m.Get(*mrg, 1, 4);
    if (authority.empty()) authority = m.sender;
    const std::string system = "http://rhip.health/id/mrn/" + authority;
    // The merged record stays, inactive, pointing at the survivor (FHIR Patient.link replaced-by).
    Writer& w = b.Begin(b.Urn(), "Patient");
    Str(w, "id", StableId("", authority, prior));
    w.Key("identifier");
    w.StartArray();
    w.StartObject();
    Str(w, "system", system);
    Str(w, "value", prior);
    w.EndObject();
    w.EndArray();
    w.Key("active");
    w.Bool(false);
    w.Key("link");
    w.StartArray();
    w.StartObject();
    Ref(w, "other", *patient);
    Str(w, "type", "replaced-by");
    w.EndObject();
    w.EndArray();
    b.End("Patient", "identifier=" + Query(system) + "%7C" + Query(prior));
    return b.Finish();
  }
  if (trigger == "A01" || trigger == "A03" || trigger == "A04" || trigger == "A08") {
    if (!EncounterEntry(b, m, *patient, trigger, error)) return std::nullopt;
  }
  return b.Finish();
}

// Where a segment sits among its kind (1-based), for error locations.
int SequenceOf(const Message& m, const Segment* s) {
  int n = 0;
  for (const Segment& x : m.segments()) {
    if (x.id == s->id) ++n;
    if (&x == s) return n;
  }
  return 1;
}

const char* ObservationStatus(std::string_view s) {
  return s == "P" ? "preliminary" : s == "C" ? "corrected" : s == "X" ? "cancelled" : s == "W" ? "entered-in-error" : "final";
}

bool IsImaging(std::string_view section) {
  static const char* kRad[] = {"RAD", "RX", "CT", "MR", "MRI", "US", "DX", "XR", "CR", "NM", "PET", "MG", "RF", "XA"};
  return std::find(std::begin(kRad), std::end(kRad), section) != std::end(kRad);
}

std::string CodeSystem(std::string_view hl7_system, bool imaging) {
  if (hl7_system == "LN" || hl7_system == "LOINC") return "http://loinc.org";
  if (hl7_system == "SCT" || hl7_system == "SNM") return "http://snomed.info/sct";
  return imaging ? "http://rhip.health/CodeSystem/exam-item" : "http://rhip.health/CodeSystem/lab-item";
}

// The whole value must be the number: strtod stops at an embedded NUL (from a
// \X00\ escape), which used to pass "1<NUL>2" as 1 (found by fuzz/hl7_fuzz.cc).
bool ParseNumber(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(*out);
}

// RFC 8259 number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
bool IsJsonNumber(std::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    const size_t from = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    return i > from;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') ++i;
  else if (!digits()) return false;
  if (i < s.size() && s[i] == '.' && (++i, !digits())) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

// `number` is JSON number text (as sent, so it keeps its precision: 4.50 stays 4.50).
void QuantityValue(Writer& w, const char* key, const std::string& number, const std::string& unit) {
  w.Key(key);
  w.StartObject();
  w.Key("value");
  w.RawValue(number.c_str(), number.size(), rapidjson::kNumberType);
  if (!unit.empty()) {
    Str(w, "unit", unit);
    Str(w, "system", "http://unitsofmeasure.org");
    Str(w, "code", unit);
  }
  w.EndObject();
}

// A number as JSON text: HL7 allows "+5", ".5", "5." and "007", strtod also
// "0x10"; JSON allows none of them. The text as sent when it is a JSON number
// (it keeps its precision), else the value. It goes into the Bundle raw, so
// anything else would make the Bundle invalid JSON (found by fuzz/hl7_fuzz.cc).
std::string JsonNumber(double v, const std::string& sent) {
  std::string s = sent;
  if (!s.empty() && s[0] == '+') s.erase(0, 1);
  if (IsJsonNumber(s)) return s;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

std::optional<Mapped> MapOru(const Message& m, Hl7Error* error) {
  BundleBuilder b(m);
  auto patient = PatientEntry(b, m, true, error);
  if (!patient) return std::nullopt;
  const auto& segs = m.segments();
  int reports = 0;
  for (size_t i = 0; i < segs.size(); ++i) {
    if (segs[i].id != "OBR") continue;
    const Segment& obr = segs[i];
    const int obr_seq = SequenceOf(m, &obr);
    ++reports;
    std::string filler = m.Get(obr, 3, 1);
    if (filler.empty()) filler = m.Get(obr, 2, 1);
    if (filler.empty()) {
      *error = Err(ErrorCode::kRequiredFieldMissing, "OBR", obr_seq, 3, "OBR-3 (filler order number) or OBR-2 (placer) is required to identify the report");
      return std::nullopt;
    }
    const std::string code = m.Get(obr, 4, 1), text = m.Get(obr, 4, 2), system = m.Get(obr, 4, 3);
    if (code.empty()) {
      *error = Err(ErrorCode::kRequiredFieldMissing, "OBR", obr_seq, 4, "OBR-4 (universal service identifier) is required");
      return std::nullopt;
    }
    const bool imaging = IsImaging(m.Get(obr, 24));
    std::optional<std::string> effective, issued;
    for (auto [field, out] : {std::pair{7, &effective}, std::pair{22, &issued}}) {
      const std::string v = m.Get(obr, field);
      if (v.empty()) continue;
      *out = ToFhirDateTime(v);
      if (!*out) {
        *error = Err(ErrorCode::kDataType, "OBR", obr_seq, field, "'" + v + "' is not a valid HL7 date/time (YYYYMMDDHHMM[SS])");
        return std::nullopt;
      }
    }
    if (issued && issued->size() < 20) issued.reset();  // FHIR instant needs a time and a zone
    // Its OBX segments, up to the next OBR.
    std::vector<std::string> results;
    std::string conclusion;
    int obx_count = 0;
    for (size_t j = i + 1; j < segs.size() && segs[j].id != "OBR"; ++j) {
      if (segs[j].id != "OBX") continue;
      const Segment& obx = segs[j];
      const int seq = SequenceOf(m, &obx);
      ++obx_count;
      const std::string type = m.Get(obx, 2);
      const std::string item = m.Get(obx, 3, 1), item_text = m.Get(obx, 3, 2), item_system = m.Get(obx, 3, 3);
      if (item.empty()) {
        *error = Err(ErrorCode::kRequiredFieldMissing, "OBX", seq, 3, "OBX-3 (observation identifier) is required");
        return std::nullopt;
      }
      const std::string value = m.Get(obx, 5);
      std::optional<std::string> when;
      if (const std::string v = m.Get(obx, 14); !v.empty()) {
        when = ToFhirDateTime(v);
        if (!when) {
          *error = Err(ErrorCode::kDataType, "OBX", seq, 14, "'" + v + "' is not a valid HL7 date/time");
          return std::nullopt;
        }
      }
      // An imaging report's text findings are its conclusion (DOMAIN A: exam results
      // are recognised by the report's exam item), not separate Observations.
      if (imaging && (type == "TX" || type == "ST" || type == "FT")) {
        if (!value.empty()) conclusion += (conclusion.empty() ? "" : "\n") + value;
        continue;
      }
      double number = 0;
      if (type == "NM" && !value.empty() && !ParseNumber(value, &number)) {
        *error = Err(ErrorCode::kDataType, "OBX", seq, 5, "value '" + value + "' is not a number but OBX-2 says NM");
        return std::nullopt;
      }
      if (!type.empty() && type != "NM" && type != "ST" && type != "TX" && type != "FT" && type != "CE" && type != "CWE") {
        *error = Err(ErrorCode::kTableValueNotFound, "OBX", seq, 2, "value type '" + type + "' is not supported (NM, ST, TX, FT, CE, CWE)");
        return std::nullopt;
      }
      const std::string urn = b.Urn();
      results.push_back(urn);
      const std::string id_value = filler + "-" + (m.Get(obx, 1).empty() ? std::to_string(obx_count) : m.Get(obx, 1));
      const std::string id_system = "http://rhip.health/id/result/" + m.sender;
      Writer& w = b.Begin(urn, "Observation");
      Str(w, "id", StableId("obs-", m.sender, id_value));
      w.Key("identifier");
      w.StartArray();
      w.StartObject();
      Str(w, "system", id_system);
      Str(w, "value", id_value);
      w.EndObject();
      w.EndArray();
      Str(w, "status", ObservationStatus(m.Get(obx, 11)));
      ConceptList(w, "category", "http://terminology.hl7.org/CodeSystem/observation-category", imaging ? "imaging" : "laboratory");
      Concept(w, "code", CodeSystem(item_system, imaging), item, item_text);
      Ref(w, "subject", *patient);
      if (when || effective) Str(w, "effectiveDateTime", when ? *when : *effective);
      if (issued) Str(w, "issued", *issued);
      RefList(w, "performer", "Organization/" + m.sender);
      const std::string unit = m.Get(obx, 6, 1);
      if (!value.empty()) {
        if (type == "NM") {
          QuantityValue(w, "valueQuantity", JsonNumber(number, value), unit);
        } else if (type == "CE" || type == "CWE") {
          Concept(w, "valueCodeableConcept", CodeSystem(m.Get(obx, 5, 3), imaging), m.Get(obx, 5, 1), m.Get(obx, 5, 2));
        } else {
          Str(w, "valueString", value);
        }
      }
      if (const std::string flag = m.Get(obx, 8); !flag.empty()) {
        static const char* kFlags[] = {"H", "L", "N", "A", "HH", "LL", "AA", "<", ">", "S", "R", "I"};
        if (std::find(std::begin(kFlags), std::end(kFlags), flag) == std::end(kFlags)) {
          *error = Err(ErrorCode::kTableValueNotFound, "OBX", seq, 8, "abnormal flag '" + flag + "' is not in HL7 table 0078");
          return std::nullopt;
        }
        ConceptList(w, "interpretation", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", flag);
      }
      if (const std::string range = m.Get(obx, 7); !range.empty()) {
        const size_t dash = range.find('-', 1);
        double lo = 0, hi = 0;
        const std::string l = dash == std::string::npos ? "" : range.substr(0, dash);
        const std::string h = dash == std::string::npos ? "" : range.substr(dash + 1);
        w.Key("referenceRange");
        w.StartArray();
        w.StartObject();
        if (ParseNumber(l, &lo) && ParseNumber(h, &hi)) {
          QuantityValue(w, "low", JsonNumber(lo, l), unit);
          QuantityValue(w, "high", JsonNumber(hi, h), unit);
        } else {
          Str(w, "text", range);
        }
        w.EndObject();
        w.EndArray();
      }
      b.End("Observation", "identifier=" + Query(id_system) + "%7C" + Query(id_value));
    }
    const std::string system_uri = "http://rhip.health/id/report/" + m.sender;
    Writer& w = b.Begin(b.Urn(), "DiagnosticReport");
    Str(w, "id", StableId("dr-", m.sender, filler));
    w.Key("identifier");
    w.StartArray();
    w.StartObject();
    Str(w, "system", system_uri);
    Str(w, "value", filler);
    w.EndObject();
    w.EndArray();
    Str(w, "status", ObservationStatus(m.Get(obr, 25)));
    ConceptList(w, "category", "http://terminology.hl7.org/CodeSystem/v2-0074", imaging ? "RAD" : "LAB");
    Concept(w, "code", CodeSystem(system, imaging), code, text);
    Ref(w, "subject", *patient);
    if (effective) Str(w, "effectiveDateTime", *effective);
    if (issued) Str(w, "issued", *issued);
    RefList(w, "performer", "Organization/" + m.sender);
    if (!results.empty()) {
      w.Key("result");
      w.StartArray();
      for (const auto& r : results) {
        w.StartObject();
        Str(w, "reference", r);
        w.EndObject();
      }
      w.EndArray();
    }
    if (!conclusion.empty()) Str(w, "conclusion", conclusion);
    b.End("DiagnosticReport", "identifier=" + Query(system_uri) + "%7C" + Query(filler));
  }
  if (reports == 0) {
    *error = Err(ErrorCode::kSegmentSequence, "OBR", 1, 0, "ORU^R01 without an OBR segment carries no result");
    return std::nullopt;
  }
  return b.Finish();
}

std::optional<Mapped> MapVxu(const Message& m, Hl7Error* error) {
  BundleBuilder b(m);
  auto patient = PatientEntry(b, m, true, error);
  if (!patient) return std::nullopt;
  int n = 0;
  for (const Segment& rxa : m.segments()) {
    if (rxa.id != "RXA") continue;
    ++n;
    const std::string when = m.Get(rxa, 3);
    if (when.empty()) {
      *error = Err(ErrorCode::kRequiredFieldMissing, "RXA", n, 3, "RXA-3 (date/time the vaccine was given) is required");
      return std::nullopt;
    }
    const auto occurrence = ToFhirDateTime(when);
    if (!occurrence) {
      *error = Err(ErrorCode::kDataType, "RXA", n, 3, "'" + when + "' is not a valid HL7 date/time (YYYYMMDDHHMM[SS])");
      return std::nullopt;
    }
    const std::string vaccine = m.Get(rxa, 5, 1), vaccine_text = m.Get(rxa, 5, 2), vaccine_system = m.Get(rxa, 5, 3);
    if (vaccine.empty()) {
      *error = Err(ErrorCode::kRequiredFieldMissing, "RXA", n, 5, "RXA-5 (administered vaccine code) is required");
      return std::nullopt;
    }
    const std::string completion = m.Get(rxa, 20);
    const bool not_done = completion == "NA" || completion == "RE";
    const std::string dose = m.Get(rxa, 2);
    const std::string id_value = m.control_id + "-" + std::to_string(n);
    const std::string id_system = "http://rhip.health/id/immunization/" + m.sender;
    Writer& w = b.Begin(b.Urn(), "Immunization");
    Str(w, "id", StableId("imm-", m.sender, id_value));
    w.Key("identifier");
    w.StartArray();
    w.StartObject();
    Str(w, "system", id_system);
    Str(w, "value", id_value);
    w.EndObject();
    w.EndArray();
    Str(w, "status", not_done ? "not-done" : "completed");
    Concept(w, "vaccineCode",
            vaccine_system == "CVX" ? "http://hl7.org/fhir/sid/cvx" : "http://rhip.health/CodeSystem/vaccine", vaccine,
            vaccine_text);
    Ref(w, "patient", *patient);
    Str(w, "occurrenceDateTime", *occurrence);
    w.Key("performer");
    w.StartArray();
    w.StartObject();
    Ref(w, "actor", "Organization/" + m.sender);
    w.EndObject();
    w.EndArray();
    char* end = nullptr;
    const long dose_number = std::strtol(dose.c_str(), &end, 10);
    if (!dose.empty() && end && *end == '\0' && dose_number > 0 && dose_number < 20) {
      w.Key("protocolApplied");
      w.StartArray();
      w.StartObject();
      w.Key("doseNumberPositiveInt");
      w.Int(static_cast<int>(dose_number));
      w.EndObject();
      w.EndArray();
    }
    b.End("Immunization", "identifier=" + Query(id_system) + "%7C" + Query(id_value));
  }
  if (n == 0) {
    *error = Err(ErrorCode::kSegmentSequence, "RXA", 1, 0, "VXU^V04 without an RXA segment records no vaccination");
    return std::nullopt;
  }
  return b.Finish();
}

}  // namespace

std::optional<Mapped> MapToFhir(const Message& m, Hl7Error* error) {
  const size_t caret = m.type.find('^');
  const std::string kind = m.type.substr(0, caret);
  const std::string trigger = caret == std::string::npos ? "" : m.type.substr(caret + 1);
  if (kind == "ADT") return MapAdt(m, trigger, error);
  if (kind == "ORU" && trigger == "R01") return MapOru(m, error);
  if (kind == "VXU" && trigger == "V04") return MapVxu(m, error);
  *error = Err(ErrorCode::kUnsupportedMessageType, "MSH", 1, 9,
               "message type '" + m.type + "' is not supported (ADT^A01/A03/A04/A08/A28/A31/A40, ORU^R01, VXU^V04)");
  return std::nullopt;
}

}  // namespace rhip::hl7
