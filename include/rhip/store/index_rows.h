// IndexRows: the search-index entries extracted from one resource version.
//
// The fhir layer evaluates each SearchParameter's FHIRPath expression over a
// resource and fills these rows; a store backend writes them beside the JSON so
// that SearchQuery criteria become index look-ups. Values are already
// normalized by the extractor (see each field). Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rhip/core/time.h"

namespace rhip::store {

struct StringRow {
  std::string param;
  std::string normalized;  // case- and accent-folded (NFKC + lower) for default/:contains search
  std::string exact;       // the value as written, for :exact
};

struct TokenRow {
  std::string param;
  std::string system;  // empty when the value has none
  std::string code;    // code / value / id / boolean "true"/"false"
};

struct DateRow {
  std::string param;
  Micros low = 0;   // first instant the value covers
  Micros high = 0;  // last instant (inclusive); open-ended Period.end = INT64_MAX
};

struct ReferenceRow {
  std::string param;
  std::string target_type;  // "Patient"; empty for absolute URLs we could not type
  std::string target_id;    // "123", or the full URL for external references
};

struct NumberRow {
  std::string param;
  double value = 0;
};

struct QuantityRow {
  std::string param;
  double value = 0;
  std::string system;
  std::string code;  // Quantity.code, else Quantity.unit
};

struct UriRow {
  std::string param;
  std::string uri;
};

struct IndexRows {
  std::vector<StringRow> strings;
  std::vector<TokenRow> tokens;
  std::vector<DateRow> dates;
  std::vector<ReferenceRow> references;
  std::vector<NumberRow> numbers;
  std::vector<QuantityRow> quantities;
  std::vector<UriRow> uris;
  // Patient compartment membership: the Patient ids this resource belongs to
  // (from the official CompartmentDefinition), for $everything and, later,
  // sharding by person.
  std::vector<std::string> compartment_patients;
};

}  // namespace rhip::store
