// ExtractIndex skips the parameters whose elements a resource lacks
// (FhirPath::RootElements). Over every resource of a generated region, the rows
// must be exactly those of evaluating every expression.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "rhip/fhir/index.h"
#include "rhip/fhir/json.h"
#include "rhip/gen/generator.h"

namespace rhip::fhir {
namespace {

namespace fs = std::filesystem;

std::string Describe(const store::IndexRows& r) {
  std::ostringstream o;
  for (const auto& x : r.strings) o << "s " << x.param << '|' << x.normalized << '|' << x.exact << '\n';
  for (const auto& x : r.tokens) o << "t " << x.param << '|' << x.system << '|' << x.code << '\n';
  for (const auto& x : r.dates) o << "d " << x.param << '|' << x.low << '|' << x.high << '\n';
  for (const auto& x : r.references) o << "r " << x.param << '|' << x.target_type << '|' << x.target_id << '\n';
  for (const auto& x : r.numbers) o << "n " << x.param << '|' << x.value << '\n';
  for (const auto& x : r.quantities) o << "q " << x.param << '|' << x.value << '|' << x.system << '|' << x.code << '\n';
  for (const auto& x : r.uris) o << "u " << x.param << '|' << x.uri << '\n';
  for (const auto& x : r.compartment_patients) o << "c " << x << '\n';
  return o.str();
}

TEST(IndexOfGeneratedRegion, SkippingAbsentElementsGivesTheRowsOfEvaluatingEveryExpression) {
  const fs::path dir = fs::temp_directory_path() / ("rhip-index-gen-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  gen::GenOptions o;
  o.residents = 150;
  o.years = 1;
  o.seed = 5;
  o.out = dir.string();
  auto s = gen::GenerateRegion(o, nullptr);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  int64_t resources = 0, rows = 0, types = 0;
  for (const auto& f : fs::directory_iterator(dir / "fhir")) {
    if (f.path().extension() != ".ndjson") continue;
    ++types;
    std::ifstream in(f.path());
    std::string line;
    while (std::getline(in, line)) {
      auto doc = ParseJson(line);
      ASSERT_TRUE(doc.ok()) << f.path() << ": " << doc.status().ToString();
      const std::string type(StringMember(*doc, "resourceType"));
      const std::string fast = Describe(ExtractIndex(*doc, type));
      ASSERT_EQ(fast, Describe(ExtractIndexEvaluatingAll(*doc, type))) << f.path() << ": " << line.substr(0, 300);
      ++resources;
      rows += std::count(fast.begin(), fast.end(), '\n');
    }
  }
  fs::remove_all(dir);
  EXPECT_GE(types, 15);
  EXPECT_GT(resources, 5000);
  EXPECT_GT(rows, resources * 5);
}

}  // namespace
}  // namespace rhip::fhir
