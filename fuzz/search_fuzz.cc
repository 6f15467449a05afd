// Fuzz target: the FHIR search query parser. Input: "Type?query-string" (the
// part of a URL after /fhir/), e.g. "Observation?subject=Patient/1&date=ge2024".
// Invariants: a search that parses gives a canonical query which parses again
// to the same canonical query (self/next links reproduce the search); a
// search strict handling accepts is accepted by lenient handling, ignoring
// nothing.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "rhip/core/url.h"
#include "rhip/fhir/search.h"

using namespace rhip;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t q = input.find('?');
  const std::string type(input.substr(0, q));
  const auto params = ParseQueryString(q == std::string_view::npos ? std::string_view() : input.substr(q + 1));
  auto strict = fhir::ParseSearch(type, params, fhir::Handling::kStrict);
  auto lenient = fhir::ParseSearch(type, params, fhir::Handling::kLenient);
  if (strict.ok()) {
    FUZZ_CHECK(lenient.ok(), "what strict handling accepts, lenient accepts");
    FUZZ_CHECK(lenient->ignored.empty(), "lenient ignores nothing strict accepted");
  }
  if (!lenient.ok()) return 0;
  const auto canonical = ParseQueryString(BuildQueryString(lenient->canonical));
  auto again = fhir::ParseSearch(type, canonical, fhir::Handling::kStrict);
  FUZZ_CHECK(again.ok(), "the canonical query of a search parses (strictly)");
  FUZZ_CHECK(again->canonical == lenient->canonical, "the canonical query is a fixpoint");
  FUZZ_CHECK(again->includes.size() == lenient->includes.size() && again->revincludes.size() == lenient->revincludes.size(),
             "the canonical query keeps _include/_revinclude");
  return 0;
}
