// Search-index extraction: evaluates every SearchParameter expression of a
// resource type (FHIRPath subset, fhirpath.h) over one resource and returns
// the normalized IndexRows the store writes beside it, including Patient
// compartment membership.
//
// Expressions are compiled once per type and cached; extraction allocates
// only for the rows it returns. Thread-safety: safe from many threads.
//
// Example:
//   store::IndexRows rows = ExtractIndex(doc, "Patient");
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "rhip/fhir/json.h"
#include "rhip/store/index_rows.h"

namespace rhip::fhir {

// `resource` must be a JSON object with resourceType == `type` (not checked).
store::IndexRows ExtractIndex(const JsonValue& resource, std::string_view type);

// ExtractIndex evaluating every parameter's expression, also those whose
// elements the resource lacks (ExtractIndex skips them: FhirPath::RootElements).
// Slower; for tests that check the skipping changes nothing.
store::IndexRows ExtractIndexEvaluatingAll(const JsonValue& resource, std::string_view type);

// Only the rows of the named parameters (and compartment membership when a
// named parameter puts the resource in a Patient compartment): cheaper than
// ExtractIndex when a caller needs a few references, e.g. authorization.
store::IndexRows ExtractIndexOf(const JsonValue& resource, std::string_view type,
                                const std::vector<std::string>& params);

// The Patient ids whose compartment the resource is in (a Patient: its own id),
// evaluating only the compartment's parameters.
std::vector<std::string> PatientCompartmentOf(const JsonValue& resource, std::string_view type);

// The normalization applied to string index values and to string search
// values: Unicode NFKC, case-folded, accents removed (ICU), so that "ZHANG",
// "zhang" and "Zhāng" match, and full-width forms equal half-width ones.
std::string NormalizeSearchString(std::string_view text);

}  // namespace rhip::fhir
