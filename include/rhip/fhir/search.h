// FHIR search: parsing a URL query into a store::SearchQuery.
//
// Parameters are looked up in the official R4 SearchParameter definitions
// (definitions.h); values are parsed by the parameter's type (string, token,
// date with prefixes, reference incl. one level of chaining, number, quantity,
// uri) and by the result parameters (_count, _sort, _total, _summary,
// _elements, _include, _revinclude, and rhip's own paging parameters
// _offset and _snapshot). Unknown or unsupported parameters are an error under
// Handling::kStrict and are ignored, but reported, under kLenient (default).
//
// Thread-safety: pure functions.
//
// Example:
//   ASSIGN_OR_RETURN(ParsedSearch s,
//       ParseSearch("Observation", {{"subject", "Patient/1"}, {"date", "ge2024-01"}}));
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rhip/core/status.h"
#include "rhip/store/search_query.h"

namespace rhip::fhir {

enum class Handling { kLenient, kStrict };

// `_include=Observation:subject:Patient` / `_revinclude=Observation:subject`.
struct IncludeSpec {
  std::string source_type;  // the resource type holding the reference
  std::string param;        // its reference search parameter ("*" = all)
  std::string target_type;  // optional restriction of the target type
  bool iterate = false;     // :iterate (one extra level at most)
};

struct ParsedSearch {
  store::SearchQuery query;
  std::vector<IncludeSpec> includes;
  std::vector<IncludeSpec> revincludes;
  std::vector<std::string> elements;  // _elements (top-level element names)
  std::string summary;                // "", "true", "count", "data", "text", "false"
  // Parameters ignored under lenient handling, each with the reason.
  std::vector<std::pair<std::string, std::string>> ignored;
  // The query parameters that define the search (no paging parameters), in
  // canonical form, for building self/next links.
  std::vector<std::pair<std::string, std::string>> canonical;
};

// Errors: kNotFound for an unknown resource type; kInvalidArgument naming the
// parameter and what is wrong with its value (location = the parameter name).
StatusOr<ParsedSearch> ParseSearch(std::string_view resource_type,
                                   const std::vector<std::pair<std::string, std::string>>& params,
                                   Handling handling = Handling::kLenient, int default_count = 20,
                                   int max_count = 1000);

}  // namespace rhip::fhir
