// JSON for FHIR resources: RapidJSON documents, parsed strictly and written compactly.
// Thread-safety: free functions; a Document is not shared between threads.
//
// Example:
//   ASSIGN_OR_RETURN(Json doc, ParseJson(body));   // kInvalidArgument with line:column
//   std::string out = WriteJson(doc);
#pragma once

#include <rapidjson/document.h>

#include <string>
#include <string_view>

#include "rhip/core/status.h"
#include "rhip/core/time.h"

namespace rhip::fhir {

using Json = rapidjson::Document;
using JsonValue = rapidjson::Value;
using JsonAlloc = rapidjson::Document::AllocatorType;

// Parses UTF-8 JSON; rejects invalid UTF-8, trailing garbage and nesting deeper
// than `max_depth`. The error says what is wrong and where (line:column).
StatusOr<Json> ParseJson(std::string_view text, int max_depth = 64);

std::string WriteJson(const JsonValue& value);
std::string WriteJsonPretty(const JsonValue& value);

// Small accessors that return empty/nullptr instead of asserting on absent or mistyped members.
const JsonValue* Member(const JsonValue& obj, std::string_view name);
std::string_view StringMember(const JsonValue& obj, std::string_view name);
void SetString(JsonValue& obj, std::string_view name, std::string_view value, JsonAlloc& a);

// Sets meta.versionId and meta.lastUpdated (creating meta when absent): the
// store's version of a resource, written into its JSON.
void SetVersionMeta(Json& doc, int64_t version, Micros last_updated);
// Removes meta.versionId and meta.lastUpdated (and meta, when that empties it),
// leaving the content a client sent: used to compare versions for idempotence.
void StripVersionMeta(JsonValue& doc);

}  // namespace rhip::fhir
