#include "rhip/fhir/json.h"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <cstring>

namespace rhip::fhir {
namespace {

// Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF), eight
// ASCII bytes at a time. RapidJSON's own check (kParseValidateEncodingFlag) runs
// per character and was 11 % of an import worker's instructions; text that
// passes here is parsed without it, text that fails is parsed with it, for its
// error and position.
bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    if (end - p >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      if ((w & 0x8080808080808080ULL) == 0) {
        p += 8;
        continue;
      }
    }
    const unsigned c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return false;
    }
    if (end - p <= n) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (int k = 2; k <= n; ++k)
      if ((p[k] & 0xC0) != 0x80) return false;
    p += n + 1;
  }
  return true;
}

// Forwards SAX events to the document being built while bounding the nesting
// depth (a defence against stack exhaustion by hostile input), so that one
// pass both checks the depth and builds the DOM.
class DepthLimitedBuilder {
 public:
  DepthLimitedBuilder(Json& doc, int max_depth) : doc_(doc), max_depth_(max_depth) {}
  bool Null() { return doc_.Null(); }
  bool Bool(bool b) { return doc_.Bool(b); }
  bool Int(int i) { return doc_.Int(i); }
  bool Uint(unsigned u) { return doc_.Uint(u); }
  bool Int64(int64_t i) { return doc_.Int64(i); }
  bool Uint64(uint64_t u) { return doc_.Uint64(u); }
  bool Double(double d) { return doc_.Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) { return doc_.RawNumber(s, n, copy); }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return NoSurrogate(s, n) && doc_.String(s, n, copy); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return NoSurrogate(s, n) && doc_.Key(s, n, copy); }
  bool StartObject() { return ++depth_ <= max_depth_ && doc_.StartObject(); }
  bool EndObject(rapidjson::SizeType n) { --depth_; return doc_.EndObject(n); }
  bool StartArray() { return ++depth_ <= max_depth_ && doc_.StartArray(); }
  bool EndArray(rapidjson::SizeType n) { --depth_; return doc_.EndArray(n); }
  bool too_deep() const { return depth_ > max_depth_; }
  bool surrogate() const { return surrogate_; }

 private:
  // RapidJSON 1.1.0 decodes an unpaired low surrogate escape ("\ude00") into
  // the bytes ED B8 80, which are not UTF-8: the resource was stored and then
  // failed to parse when read back (found by fuzz/fhir_json_fuzz.cc). Raw
  // input bytes are validated by the reader; only escapes can produce this.
  bool NoSurrogate(const char* s, rapidjson::SizeType n) {
    for (const void* p = std::memchr(s, 0xED, n); p != nullptr;) {
      const size_t i = static_cast<size_t>(static_cast<const char*>(p) - s);
      if (i + 1 < n && static_cast<unsigned char>(s[i + 1]) >= 0xA0) {
        surrogate_ = true;
        return false;
      }
      p = i + 1 < n ? std::memchr(s + i + 1, 0xED, n - i - 1) : nullptr;
    }
    return true;
  }
  bool surrogate_ = false;
  Json& doc_;
  int max_depth_;
  int depth_ = 0;
};

void LineColumn(std::string_view text, size_t offset, int* line, int* col) {
  *line = 1;
  *col = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++*line;
      *col = 1;
    } else {
      ++*col;
    }
  }
}

}  // namespace

StatusOr<Json> ParseJson(std::string_view text, int max_depth) {
  // Full precision: RapidJSON's fast path rounds long mantissas wrongly, so a
  // decimal read and written back changed value, and changed again on the next
  // round trip (found by fuzz/fhir_json_fuzz.cc).
  constexpr unsigned kFlags = rapidjson::kParseFullPrecisionFlag;
  const bool valid_utf8 = IsValidUtf8(text);
  Json doc;
  rapidjson::ParseResult result;
  bool too_deep = false, surrogate = false;
  auto generate = [&](Json& handler) {
    DepthLimitedBuilder builder(handler, max_depth);
    rapidjson::Reader reader;
    rapidjson::MemoryStream ms(text.data(), text.size());
    result = valid_utf8 ? reader.Parse<kFlags>(ms, builder)
                        : reader.Parse<kFlags | rapidjson::kParseValidateEncodingFlag>(ms, builder);
    too_deep = builder.too_deep();
    surrogate = builder.surrogate();
    return !result.IsError();
  };
  doc.Populate(generate);
  if (too_deep) return InvalidArgument("JSON nested deeper than " + std::to_string(max_depth) + " levels");
  if (surrogate) {
    int line, col;
    LineColumn(text, result.Offset(), &line, &col);
    return InvalidArgument("malformed JSON at line " + std::to_string(line) + ", column " + std::to_string(col) +
                           ": a string holds an unpaired UTF-16 surrogate escape (\\uD800-\\uDFFF)");
  }
  if (result.IsError()) {
    int line, col;
    LineColumn(text, result.Offset(), &line, &col);
    return InvalidArgument(std::string("malformed JSON at line ") + std::to_string(line) + ", column " +
                           std::to_string(col) + ": " + rapidjson::GetParseError_En(result.Code()));
  }
  return doc;
}

std::string WriteJson(const JsonValue& value) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  value.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

std::string WriteJsonPretty(const JsonValue& value) {
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.SetIndent(' ', 2);
  value.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

const JsonValue* Member(const JsonValue& obj, std::string_view name) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(rapidjson::StringRef(name.data(), name.size()));
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

std::string_view StringMember(const JsonValue& obj, std::string_view name) {
  const JsonValue* v = Member(obj, name);
  if (!v || !v->IsString()) return {};
  return std::string_view(v->GetString(), v->GetStringLength());
}

void SetString(JsonValue& obj, std::string_view name, std::string_view value, JsonAlloc& a) {
  JsonValue v(value.data(), static_cast<rapidjson::SizeType>(value.size()), a);
  auto it = obj.FindMember(rapidjson::StringRef(name.data(), name.size()));
  if (it != obj.MemberEnd()) {
    it->value = std::move(v);
  } else {
    obj.AddMember(JsonValue(name.data(), static_cast<rapidjson::SizeType>(name.size()), a), v, a);
  }
}

void SetVersionMeta(Json& doc, int64_t version, Micros last_updated) {
  auto& a = doc.GetAllocator();
  auto meta = doc.FindMember("meta");
  if (meta == doc.MemberEnd() || !meta->value.IsObject()) {
    doc.RemoveMember("meta");
    doc.AddMember("meta", JsonValue(rapidjson::kObjectType), a);
  }
  JsonValue& m = doc["meta"];
  SetString(m, "versionId", std::to_string(version), a);
  SetString(m, "lastUpdated", FormatInstant(last_updated), a);
}

void StripVersionMeta(JsonValue& doc) {
  auto meta = doc.FindMember("meta");
  if (meta == doc.MemberEnd() || !meta->value.IsObject()) return;
  meta->value.RemoveMember("versionId");
  meta->value.RemoveMember("lastUpdated");
  if (meta->value.MemberCount() == 0) doc.RemoveMember("meta");
}

}  // namespace rhip::fhir
