// Structural validation of a FHIR R4 resource against the official
// StructureDefinitions (definitions.h): resourceType known, no unknown
// elements (including choice types `value[x]` → valueQuantity ...), cardinality
// (min/max, arrays vs single values), primitive formats (id, date, dateTime,
// instant, time, code, decimal, integer, positiveInt, unsignedInt, boolean,
// uri, base64Binary ...), `_element` primitive extensions, contained resources
// and Bundle entries' resources recursively.
//
// Thread-safety: pure function.
//
// Example:
//   std::vector<Issue> issues = ValidateResource(doc);
//   if (HasErrors(issues)) ...  // each Issue has diagnostics and a FHIRPath expression
#pragma once

#include <vector>

#include "rhip/fhir/json.h"
#include "rhip/fhir/operation_outcome.h"

namespace rhip::fhir {

struct ValidationOptions {
  size_t max_issues = 50;  // stop collecting after this many
};

std::vector<Issue> ValidateResource(const JsonValue& resource, const ValidationOptions& options = {});

bool HasErrors(const std::vector<Issue>& issues);

}  // namespace rhip::fhir
