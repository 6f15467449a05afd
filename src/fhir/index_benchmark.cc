// Micro-benchmarks of the per-resource work on the write path: parse, validate,
// extract the search index, serialize.
#include <benchmark/benchmark.h>

#include "rhip/fhir/index.h"
#include "rhip/fhir/json.h"
#include "rhip/fhir/validator.h"

namespace rhip::fhir {
namespace {

const char* kPatient = R"({"resourceType":"Patient","id":"p1","meta":{"versionId":"1","lastUpdated":"2024-01-01T00:00:00.000Z"},
  "identifier":[{"system":"urn:oid:2.16.156.10011.1.3","value":"330402199001011234"},
                {"system":"http://rhip.health/id/mrn/47000001","value":"M001"}],
  "name":[{"text":"张伟","family":"张","given":["伟"]}],"telecom":[{"system":"phone","value":"13800000000"}],
  "gender":"male","birthDate":"1990-01-01","address":[{"district":"330402","text":"浙江省嘉兴市南湖区"}],
  "managingOrganization":{"reference":"Organization/47000001"}})";

const char* kObservation = R"({"resourceType":"Observation","id":"o1","status":"final",
  "code":{"coding":[{"system":"http://loinc.org","code":"718-7"}]},
  "subject":{"reference":"Patient/p1"},"encounter":{"reference":"Encounter/e1"},
  "effectiveDateTime":"2024-03-05T09:10:00+08:00",
  "valueQuantity":{"value":135,"unit":"g/L","system":"http://unitsofmeasure.org","code":"g/L"}})";

void BM_Parse(benchmark::State& state, const char* json) {
  for (auto _ : state) benchmark::DoNotOptimize(ParseJson(json));
}
void BM_Validate(benchmark::State& state, const char* json) {
  auto doc = ParseJson(json);
  for (auto _ : state) benchmark::DoNotOptimize(ValidateResource(*doc));
}
void BM_Extract(benchmark::State& state, const char* json, const char* type) {
  auto doc = ParseJson(json);
  for (auto _ : state) benchmark::DoNotOptimize(ExtractIndex(*doc, type));
}
void BM_Normalize(benchmark::State& state, const char* text) {
  for (auto _ : state) benchmark::DoNotOptimize(NormalizeSearchString(text));
}

BENCHMARK_CAPTURE(BM_Parse, Patient, kPatient);
BENCHMARK_CAPTURE(BM_Validate, Patient, kPatient);
BENCHMARK_CAPTURE(BM_Validate, Observation, kObservation);
BENCHMARK_CAPTURE(BM_Extract, Patient, kPatient, "Patient");
BENCHMARK_CAPTURE(BM_Extract, Observation, kObservation, "Observation");
BENCHMARK_CAPTURE(BM_Normalize, Chinese, "浙江省嘉兴市南湖区");
BENCHMARK_CAPTURE(BM_Normalize, Ascii, "Zhang Wei");

}  // namespace
}  // namespace rhip::fhir

BENCHMARK_MAIN();
