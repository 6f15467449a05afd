// Fuzz target: a request body as FhirService sees it — ParseJson (strict
// UTF-8, nesting limit) then structural validation against the R4
// StructureDefinitions and, for a resource without errors, search-index
// extraction (the FHIRPath subset over every SearchParameter of its type).
// Invariants: what parses re-writes to JSON that parses to the same text (a
// fixpoint); validation is deterministic.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "rhip/fhir/index.h"
#include "rhip/fhir/json.h"
#include "rhip/fhir/validator.h"

using namespace rhip::fhir;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = ParseJson(text);
  if (!doc.ok()) return 0;
  const std::string written = WriteJson(*doc);
  auto again = ParseJson(written);
  FUZZ_CHECK(again.ok(), "WriteJson output parses again");
  FUZZ_CHECK(WriteJson(*again) == written, "JSON write/parse is a fixpoint");
  if (!doc->IsObject()) return 0;
  const auto issues = ValidateResource(*doc);
  const auto issues_again = ValidateResource(*again);
  FUZZ_CHECK(issues.size() == issues_again.size(), "validation is deterministic across a round trip");
  for (const Issue& i : issues) FUZZ_CHECK(!i.diagnostics.empty(), "every issue says what is wrong");
  if (HasErrors(issues)) return 0;
  const std::string_view type = StringMember(*doc, "resourceType");
  FUZZ_CHECK(!type.empty(), "a resource without errors has a resourceType");
  (void)ExtractIndex(*doc, type);
  (void)PatientCompartmentOf(*doc, type);
  return 0;
}
