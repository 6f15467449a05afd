#include "store/sqlite/index_manifest.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace rhip::store::sqlite {
namespace {

IndexRows SampleRows() {
  IndexRows r;
  r.strings = {{"name", "zhang wei", "Zhang Wei"}, {"name", "zhang wei", "Zhang Wei"}};  // a duplicate
  r.tokens = {{"identifier", "urn:oid:2.16.156.10011.1.3", "330402199001011234"}, {"gender", "", "male"}};
  r.dates = {{"birthdate", -86400000000, -1}};
  r.references = {{"organization", "Organization", "o1"}};
  r.numbers = {{"probability", 0.25}};
  r.quantities = {{"value-quantity", 5.5, "http://unitsofmeasure.org", "mmol/L"}};
  r.uris = {{"url", "http://example.org/x"}};
  r.compartment_patients = {"p1"};
  return r;
}

TEST(IndexManifest, RoundTripsEveryRowKindOnceEach) {
  const std::string m = EncodeManifest("Patient", SampleRows());
  std::vector<IndexEntry> e;
  ASSERT_TRUE(DecodeManifest(m, &e));
  ASSERT_EQ(e.size(), 9u);  // 10 rows, one duplicate
  int strings = 0;
  for (const auto& x : e) {
    switch (x.table) {
      case IndexTable::kString:
        ++strings;
        EXPECT_EQ(x.param, ParamKey("Patient", "name"));
        EXPECT_EQ(x.s1, "zhang wei");
        EXPECT_EQ(x.s2, "Zhang Wei");
        break;
      case IndexTable::kDate:
        EXPECT_EQ(x.i1, -86400000000);  // negative instants (before 1970) survive zig-zag
        EXPECT_EQ(x.i2, -1);
        break;
      case IndexTable::kQuantity:
        EXPECT_EQ(x.d, 5.5);
        EXPECT_EQ(x.s1, "http://unitsofmeasure.org");
        EXPECT_EQ(x.s2, "mmol/L");
        break;
      case IndexTable::kCompartment:
        EXPECT_EQ(x.s1, "p1");
        break;
      default:
        break;
    }
  }
  EXPECT_EQ(strings, 1);
}

TEST(IndexManifest, SameRowsInAnyOrderGiveTheSameBytes) {
  IndexRows a = SampleRows(), b = SampleRows();
  std::reverse(b.tokens.begin(), b.tokens.end());
  std::reverse(b.strings.begin(), b.strings.end());
  EXPECT_EQ(EncodeManifest("Patient", a), EncodeManifest("Patient", b));
  EXPECT_NE(EncodeManifest("Patient", a), EncodeManifest("Practitioner", a));  // keys are per type
}

TEST(IndexManifest, DiffNamesOnlyTheRowsThatChanged) {
  IndexRows before = SampleRows(), after = SampleRows();
  after.tokens[1].code = "female";
  after.uris.clear();
  std::vector<IndexEntry> removed, added;
  ASSERT_TRUE(DiffManifests(EncodeManifest("Patient", before), EncodeManifest("Patient", after), &removed, &added));
  ASSERT_EQ(removed.size(), 2u);  // gender=male, url
  ASSERT_EQ(added.size(), 1u);    // gender=female
  EXPECT_EQ(added[0].table, IndexTable::kToken);
  EXPECT_EQ(added[0].s1, "female");
  removed.clear();
  added.clear();
  ASSERT_TRUE(DiffManifests("", EncodeManifest("Patient", after), &removed, &added));
  EXPECT_TRUE(removed.empty());
  EXPECT_EQ(added.size(), 8u);
  removed.clear();
  added.clear();
  ASSERT_TRUE(DiffManifests(EncodeManifest("Patient", after), EncodeManifest("Patient", after), &removed, &added));
  EXPECT_TRUE(removed.empty() && added.empty());
}

TEST(IndexManifest, DamagedBytesAreReportedNotTrusted) {
  std::string m = EncodeManifest("Patient", SampleRows());
  std::vector<IndexEntry> e;
  EXPECT_FALSE(DecodeManifest(m.substr(0, m.size() - 3), &e));  // truncated
  e.clear();
  std::string bad = m;
  bad[0] = static_cast<char>(0x7f);  // no such table
  EXPECT_FALSE(DecodeManifest(bad, &e));
  std::vector<IndexEntry> removed, added;
  EXPECT_FALSE(DiffManifests(bad, m, &removed, &added));
}

TEST(IndexManifest, ParamKeysAreStableDistinctAndFitSixBytes) {
  EXPECT_EQ(ParamKey("Patient", "name"), ParamKey("Patient", "name"));
  EXPECT_NE(ParamKey("Patient", "name"), ParamKey("Practitioner", "name"));
  EXPECT_NE(ParamKey("Patient", "name"), ParamKey("Patient", "family"));
  for (const char* c : {"name", "identifier", "birthdate", "x"}) {
    EXPECT_GE(ParamKey("Observation", c), 0);
    EXPECT_LT(ParamKey("Observation", c), int64_t{1} << 47);
  }
  // Pinned: the key is stored in every index row of every store, so it may never change.
  EXPECT_EQ(ParamKey("Patient", "identifier"), int64_t{10314415256793});
}

}  // namespace
}  // namespace rhip::store::sqlite
