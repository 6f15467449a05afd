#include "rhip/fhir/json.h"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace rhip::fhir {
namespace {

// Wraps the document's SAX handler to bound nesting depth (a defence against
// stack exhaustion by hostile input) before building the DOM.
struct DepthLimiter : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, DepthLimiter> {
  explicit DepthLimiter(int max) : max_depth(max) {}
  bool StartObject() { return ++depth <= max_depth; }
  bool EndObject(rapidjson::SizeType) { --depth; return true; }
  bool StartArray() { return ++depth <= max_depth; }
  bool EndArray(rapidjson::SizeType) { --depth; return true; }
  bool Default() { return true; }
  int max_depth;
  int depth = 0;
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
  constexpr unsigned kFlags = rapidjson::kParseValidateEncodingFlag;
  {
    DepthLimiter limiter(max_depth);
    rapidjson::Reader reader;
    rapidjson::MemoryStream ms(text.data(), text.size());
    rapidjson::ParseResult r = reader.Parse<kFlags>(ms, limiter);
    if (!r && limiter.depth > max_depth) {
      return InvalidArgument("JSON nested deeper than " + std::to_string(max_depth) + " levels");
    }
  }
  Json doc;
  doc.Parse<kFlags>(text.data(), text.size());
  if (doc.HasParseError()) {
    int line, col;
    LineColumn(text, doc.GetErrorOffset(), &line, &col);
    return InvalidArgument(std::string("malformed JSON at line ") + std::to_string(line) +
                           ", column " + std::to_string(col) + ": " +
                           rapidjson::GetParseError_En(doc.GetParseError()));
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

}  // namespace rhip::fhir
