#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>

#include <filesystem>
#include <thread>

#include "rhip/store/store.h"
#include "store/sqlite/sqlite_store.h"
#include "store/sqlite/temp_db_for_test.h"

namespace rhip::store {
namespace {

std::string TempDb(const std::string& name) { return sqlite::TempStoreFile("rhip-store-test-", name); }

PutRequest Patient(const std::string& id, int64_t version, const std::string& mrn, const std::string& name,
                   Micros birth_low = 0) {
  PutRequest p;
  p.type = "Patient";
  p.id = id;
  p.version = version;
  p.last_updated = 1000 + version;
  p.method = "PUT";
  p.json = R"({"resourceType":"Patient","id":")" + id + R"(","meta":{"versionId":")" + std::to_string(version) + R"("}})";
  p.index.tokens.push_back({"identifier", "http://rhip.health/id/mrn/1", mrn});
  p.index.strings.push_back({"name", name, name});
  p.index.dates.push_back({"birthdate", birth_low, birth_low + kMicrosPerDay - 1});
  p.index.compartment_patients.push_back(id);
  return p;
}

PutRequest Observation(const std::string& id, const std::string& patient, Micros when, double value) {
  PutRequest p;
  p.type = "Observation";
  p.id = id;
  p.version = 1;
  p.last_updated = when;
  p.method = "POST";
  p.json = R"({"resourceType":"Observation","id":")" + id + R"("})";
  p.index.references.push_back({"subject", "Patient", patient});
  p.index.dates.push_back({"date", when, when});
  p.index.quantities.push_back({"value-quantity", value, "http://unitsofmeasure.org", "g/L"});
  p.index.compartment_patients.push_back(patient);
  return p;
}

// A fixed key for the encrypted runs (tests only; real keys come from RHIP_STORE_KEY or a key file).
std::optional<StoreKey> TestKey(bool encrypted = true) {
  if (!encrypted) return std::nullopt;
  return *StoreKey::Parse("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
}

// Every StoreTest runs twice: on a plain store and on an encrypted one (GetParam()).
class StoreTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    auto s = OpenStore({.url = "sqlite::memory:", .read_connections = 4, .key = TestKey(GetParam())});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  Status Put(const PutRequest& p) {
    return store_->Write([&](WriteTransaction& tx) { return tx.Put(p); });
  }
  std::vector<std::string> Ids(const SearchQuery& q) {
    auto page = store_->Search(q);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    std::vector<std::string> ids;
    if (page.ok())
      for (auto& r : page->resources) ids.push_back(r.id);
    return ids;
  }
  std::unique_ptr<Store> store_;
};

Criterion Token(const std::string& param, const std::string& code, const std::string& system = "",
                bool has_system = false) {
  Criterion c;
  c.param = param;
  c.type = store::ParamType::kToken;
  SearchValue v;
  v.code = code;
  v.system = system;
  v.has_system = has_system;
  c.values.push_back(v);
  return c;
}

Criterion Date(const std::string& param, Prefix prefix, Micros low, Micros high) {
  Criterion c;
  c.param = param;
  c.type = store::ParamType::kDate;
  SearchValue v;
  v.prefix = prefix;
  v.range = {low, high};
  c.values.push_back(v);
  return c;
}

TEST_P(StoreTest, PutThenReadReturnsTheStoredJson) {
  ASSERT_TRUE(Put(Patient("p1", 1, "M1", "zhang wei")).ok());
  auto r = store_->Read("Patient", "p1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->version, 1);
  EXPECT_NE(r->json.find("\"p1\""), std::string::npos);
  EXPECT_EQ(store_->Read("Patient", "nope").status().code(), StatusCode::kNotFound);
}

TEST_P(StoreTest, ReadCarriesTheCompartmentFromTheIndexAndAVersionReadDoesNot) {
  PutRequest shared = Observation("oc", "pa", 100, 5);
  shared.index.compartment_patients.push_back("pb");  // e.g. subject and performer
  ASSERT_TRUE(Put(shared).ok());
  auto v = store_->Read("Observation", "oc");
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(v->compartment.has_value());
  std::vector<std::string> got = *v->compartment;
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"pa", "pb"}));
  // Not in any compartment: known, and empty.
  PutRequest alone = Observation("on", "px", 100, 5);
  alone.index.compartment_patients.clear();
  ASSERT_TRUE(Put(alone).ok());
  auto none = store_->Read("Observation", "on");
  ASSERT_TRUE(none->compartment.has_value());
  EXPECT_TRUE(none->compartment->empty());
  // An update moves it: the compartment of the current version.
  PutRequest moved = Observation("oc", "pc", 200, 6);
  moved.version = 2;
  ASSERT_TRUE(Put(moved).ok());
  EXPECT_EQ(*store_->Read("Observation", "oc")->compartment, (std::vector<std::string>{"pc"}));
  // An older version: the store does not know its compartment (the index is the current one's).
  auto old = store_->ReadVersion("Observation", "oc", 1);
  ASSERT_TRUE(old.ok());
  EXPECT_FALSE(old->compartment.has_value());
}

TEST_P(StoreTest, WrongVersionIsAConflictAndWritesNothing) {
  ASSERT_TRUE(Put(Patient("p1", 1, "M1", "a")).ok());
  EXPECT_EQ(Put(Patient("p1", 1, "M1", "a")).code(), StatusCode::kConflict);
  EXPECT_EQ(Put(Patient("p2", 2, "M2", "b")).code(), StatusCode::kConflict);
  EXPECT_EQ(store_->Read("Patient", "p2").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(Put(Patient("p1", 2, "M9", "a")).ok());
  EXPECT_EQ(Ids({.type = "Patient", .criteria = {Token("identifier", "M1")}}).size(), 0u);
  EXPECT_EQ(Ids({.type = "Patient", .criteria = {Token("identifier", "M9")}}).size(), 1u);
  // A create of a held id names the version held, also when that version is a delete.
  Status held = Put(Patient("p1", 1, "M5", "a"));
  EXPECT_EQ(held.code(), StatusCode::kConflict);
  EXPECT_NE(held.message().find("is at version 2"), std::string::npos) << held.ToString();
  ASSERT_TRUE(store_->Write([](WriteTransaction& tx) {
    return tx.Delete({.type = "Patient", .id = "p1", .version = 3, .last_updated = 3000});
  }).ok());
  held = Put(Patient("p1", 1, "M5", "a"));
  EXPECT_NE(held.message().find("is at version 3"), std::string::npos) << held.ToString();
  EXPECT_TRUE(Ids({.type = "Patient", .criteria = {Token("identifier", "M5")}}).empty());
  auto p1 = store_->History({.type = "Patient", .id = "p1"});
  ASSERT_TRUE(p1.ok()) << p1.status().ToString();
  EXPECT_EQ(p1->versions.size(), 3u);  // the refused creates left no version behind
}

TEST_P(StoreTest, DeleteMakesReadGoneAndKeepsHistory) {
  ASSERT_TRUE(Put(Patient("p1", 1, "M1", "a")).ok());
  ASSERT_TRUE(store_->Write([](WriteTransaction& tx) { return tx.Delete({"Patient", "p1", 2, 5000}); }).ok());
  EXPECT_EQ(store_->Read("Patient", "p1").status().code(), StatusCode::kGone);
  EXPECT_TRUE(Ids({.type = "Patient", .criteria = {Token("identifier", "M1")}}).empty());
  auto v1 = store_->ReadVersion("Patient", "p1", 1);
  ASSERT_TRUE(v1.ok());
  EXPECT_FALSE(v1->deleted);
  auto v2 = store_->ReadVersion("Patient", "p1", 2);
  ASSERT_TRUE(v2.ok());
  EXPECT_TRUE(v2->deleted);
  EXPECT_EQ(store_->ReadVersion("Patient", "p1", 3).status().code(), StatusCode::kNotFound);
  auto h = store_->History({.type = "Patient", .id = "p1"});
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->versions.size(), 2u);
  EXPECT_EQ(h->versions[0].version, 2);
  EXPECT_EQ(h->versions[0].method, "DELETE");
  // Re-creating after a delete continues the version sequence.
  ASSERT_TRUE(Put(Patient("p1", 3, "M1", "a")).ok());
  EXPECT_TRUE(store_->Read("Patient", "p1").ok());
}

TEST_P(StoreTest, HistoryPagesNewestFirst) {
  for (int v = 1; v <= 5; ++v) ASSERT_TRUE(Put(Patient("p1", v, "M1", "a")).ok());
  auto h = store_->History({.type = "Patient", .id = "p1", .count = 2});
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->versions.size(), 2u);
  EXPECT_TRUE(h->has_more);
  EXPECT_EQ(*h->total, 5);
  EXPECT_EQ(h->versions[0].version, 5);
  auto h2 = store_->History({.type = "Patient", .id = "p1", .count = 2, .offset = 4, .snapshot_seq = h->snapshot_seq});
  ASSERT_TRUE(h2.ok());
  ASSERT_EQ(h2->versions.size(), 1u);
  EXPECT_EQ(h2->versions[0].version, 1);
  EXPECT_FALSE(h2->has_more);
}

TEST_P(StoreTest, TokenSearchHonoursSystem) {
  ASSERT_TRUE(Put(Patient("p1", 1, "M1", "a")).ok());
  EXPECT_EQ(Ids({.type = "Patient", .criteria = {Token("identifier", "M1", "http://rhip.health/id/mrn/1", true)}}).size(), 1u);
  EXPECT_EQ(Ids({.type = "Patient", .criteria = {Token("identifier", "M1", "other", true)}}).size(), 0u);
  EXPECT_EQ(Ids({.type = "Patient", .criteria = {Token("identifier", "M1", "", true)}}).size(), 0u);
  EXPECT_EQ(Ids({.type = "Patient", .criteria = {Token("identifier", "", "http://rhip.health/id/mrn/1", true)}}).size(), 1u);
  Criterion n = Token("identifier", "M1");
  n.modifier = Modifier::kNot;
  ASSERT_TRUE(Put(Patient("p2", 1, "M2", "b")).ok());
  EXPECT_EQ(Ids({.type = "Patient", .criteria = {n}}), std::vector<std::string>{"p2"});
}

TEST_P(StoreTest, StringSearchPrefixExactContains) {
  ASSERT_TRUE(Put(Patient("p1", 1, "M1", "zhang wei")).ok());
  ASSERT_TRUE(Put(Patient("p2", 1, "M2", "wang fang")).ok());
  Criterion c;
  c.param = "name";
  c.type = store::ParamType::kString;
  c.values.push_back({.text = "zhang"});
  EXPECT_EQ(Ids({.type = "Patient", .criteria = {c}}), std::vector<std::string>{"p1"});
  c.values[0].text = "wei";
  EXPECT_TRUE(Ids({.type = "Patient", .criteria = {c}}).empty());
  c.modifier = Modifier::kContains;
  EXPECT_EQ(Ids({.type = "Patient", .criteria = {c}}), std::vector<std::string>{"p1"});
  c.modifier = Modifier::kExact;
  c.values[0].text = "wang fang";
  EXPECT_EQ(Ids({.type = "Patient", .criteria = {c}}), std::vector<std::string>{"p2"});
  // OR of two values
  c.modifier = Modifier::kNone;
  c.values = {{.text = "zh"}, {.text = "wa"}};
  EXPECT_EQ(Ids({.type = "Patient", .criteria = {c}}).size(), 2u);
}

TEST_P(StoreTest, DatePrefixesFollowFhirRangeSemantics) {
  const Micros day = kMicrosPerDay;
  ASSERT_TRUE(Put(Patient("p1", 1, "M1", "a", 10 * day)).ok());
  ASSERT_TRUE(Put(Patient("p2", 1, "M2", "b", 20 * day)).ok());
  auto q = [&](Prefix pre, Micros lo, Micros hi) {
    return Ids({.type = "Patient", .criteria = {Date("birthdate", pre, lo, hi)}});
  };
  EXPECT_EQ(q(Prefix::kEq, 10 * day, 11 * day - 1), std::vector<std::string>{"p1"});
  EXPECT_EQ(q(Prefix::kEq, 0, 30 * day), (std::vector<std::string>{"p1", "p2"}));  // month contains both
  EXPECT_EQ(q(Prefix::kNe, 10 * day, 11 * day - 1), std::vector<std::string>{"p2"});
  EXPECT_EQ(q(Prefix::kGe, 15 * day, 16 * day - 1), std::vector<std::string>{"p2"});
  EXPECT_EQ(q(Prefix::kGt, 10 * day, 11 * day - 1), std::vector<std::string>{"p2"});
  EXPECT_EQ(q(Prefix::kLt, 20 * day, 21 * day - 1), std::vector<std::string>{"p1"});
  EXPECT_EQ(q(Prefix::kLe, 10 * day, 11 * day - 1), std::vector<std::string>{"p1"});
  EXPECT_EQ(q(Prefix::kSa, 11 * day, 12 * day - 1), std::vector<std::string>{"p2"});
  EXPECT_EQ(q(Prefix::kEb, 11 * day, 12 * day - 1), std::vector<std::string>{"p1"});
}

TEST_P(StoreTest, ReferenceAndDateTogetherAndChained) {
  ASSERT_TRUE(Put(Patient("p1", 1, "M1", "a")).ok());
  ASSERT_TRUE(Put(Patient("p2", 1, "M2", "b")).ok());
  ASSERT_TRUE(Put(Observation("o1", "p1", 100, 5)).ok());
  ASSERT_TRUE(Put(Observation("o2", "p1", 200, 7)).ok());
  ASSERT_TRUE(Put(Observation("o3", "p2", 300, 9)).ok());
  Criterion ref;
  ref.param = "subject";
  ref.type = store::ParamType::kReference;
  ref.values.push_back({.target_type = "Patient", .target_id = "p1"});
  EXPECT_EQ(Ids({.type = "Observation", .criteria = {ref, Date("date", Prefix::kGe, 150, 150)}}),
            std::vector<std::string>{"o2"});
  Criterion chain;
  chain.param = "subject";
  chain.type = store::ParamType::kReference;
  chain.chain = Chain{"Patient", std::make_shared<const Criterion>(Token("identifier", "M2"))};
  EXPECT_EQ(Ids({.type = "Observation", .criteria = {std::move(chain)}}), std::vector<std::string>{"o3"});
  Criterion qty;
  qty.param = "value-quantity";
  qty.type = store::ParamType::kQuantity;
  qty.values.push_back({.prefix = Prefix::kGt, .code = "g/L", .number = 6});
  EXPECT_EQ(Ids({.type = "Observation", .criteria = {qty}}), (std::vector<std::string>{"o2", "o3"}));
  Criterion missing;
  missing.param = "subject";
  missing.type = store::ParamType::kReference;
  missing.missing = true;
  EXPECT_TRUE(Ids({.type = "Observation", .criteria = {missing}}).empty());
}

TEST_P(StoreTest, NumberAndUriSearch) {
  PutRequest a = Observation("n1", "p1", 100, 5);
  a.index.numbers.push_back({"rank", 3});
  a.index.uris.push_back({"url", "http://rhip.health/x"});
  PutRequest b = Observation("n2", "p1", 100, 5);
  b.index.numbers.push_back({"rank", 10});
  ASSERT_TRUE(Put(a).ok());
  ASSERT_TRUE(Put(b).ok());
  Criterion num;
  num.param = "rank";
  num.type = store::ParamType::kNumber;
  num.values.push_back({.prefix = Prefix::kEq, .number = 3, .number_low = 2.5, .number_high = 3.5});
  EXPECT_EQ(Ids({.type = "Observation", .criteria = {num}}), std::vector<std::string>{"n1"});
  num.values[0].prefix = Prefix::kGe;
  EXPECT_EQ(Ids({.type = "Observation", .criteria = {num}}), (std::vector<std::string>{"n1", "n2"}));
  num.values[0].prefix = Prefix::kGt;
  num.values[0].number = 5;
  EXPECT_EQ(Ids({.type = "Observation", .criteria = {num}}), std::vector<std::string>{"n2"});
  Criterion uri;
  uri.param = "url";
  uri.type = store::ParamType::kUri;
  uri.values.push_back({.text = "http://rhip.health/x"});
  EXPECT_EQ(Ids({.type = "Observation", .criteria = {uri}}), std::vector<std::string>{"n1"});
  Criterion bad;
  bad.param = "code";
  bad.type = store::ParamType::kToken;
  bad.modifier = Modifier::kText;
  bad.values.push_back({.code = "x"});
  EXPECT_EQ(store_->Search({.type = "Observation", .criteria = {bad}}).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(StoreTest, SortsByParameterDescendingWithStableTieBreak) {
  const Micros day = kMicrosPerDay;
  ASSERT_TRUE(Put(Patient("a", 1, "M1", "x", 30 * day)).ok());
  ASSERT_TRUE(Put(Patient("b", 1, "M2", "y", 10 * day)).ok());
  ASSERT_TRUE(Put(Patient("c", 1, "M3", "x", 20 * day)).ok());
  SearchQuery q{.type = "Patient", .sort = {{"birthdate", store::ParamType::kDate, true}}};
  EXPECT_EQ(Ids(q), (std::vector<std::string>{"a", "c", "b"}));
  q.sort = {{"name", store::ParamType::kString, false}, {"birthdate", store::ParamType::kDate, false}};
  EXPECT_EQ(Ids(q), (std::vector<std::string>{"c", "a", "b"}));
  q.sort = {{"_id", store::ParamType::kToken, true}};
  EXPECT_EQ(Ids(q), (std::vector<std::string>{"c", "b", "a"}));
}

TEST_P(StoreTest, PagingIsStableAcrossConcurrentCreates) {
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(Put(Patient("p" + std::to_string(i), 1, "M", "n")).ok());
  SearchQuery q{.type = "Patient", .count = 4, .total = TotalMode::kAccurate};
  auto page1 = store_->Search(q);
  ASSERT_TRUE(page1.ok());
  EXPECT_EQ(*page1->total, 10);
  EXPECT_TRUE(page1->has_more);
  for (int i = 10; i < 15; ++i) ASSERT_TRUE(Put(Patient("p" + std::to_string(i), 1, "M", "n")).ok());
  std::vector<std::string> seen;
  for (auto& r : page1->resources) seen.push_back(r.id);
  for (int64_t off = 4;; off += 4) {
    SearchQuery next = q;
    next.offset = off;
    next.snapshot_seq = page1->snapshot_seq;
    auto page = store_->Search(next);
    ASSERT_TRUE(page.ok());
    for (auto& r : page->resources) seen.push_back(r.id);
    if (!page->has_more) break;
  }
  ASSERT_EQ(seen.size(), 10u);
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(std::unique(seen.begin(), seen.end()), seen.end());
}

TEST_P(StoreTest, GroupCommitIsolatesAFailingWriter) {
  std::vector<std::thread> threads;
  std::vector<Status> results(16);
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      results[static_cast<size_t>(i)] = store_->Write([&](WriteTransaction& tx) -> Status {
        RETURN_IF_ERROR(tx.Put(Patient("g" + std::to_string(i), 1, "G", "g")));
        if (i == 7) return Unprocessable("writer 7 fails after its put");
        return Status::Ok();
      });
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 16; ++i) EXPECT_EQ(results[static_cast<size_t>(i)].ok(), i != 7) << i;
  EXPECT_EQ(results[7].code(), StatusCode::kUnprocessable);
  EXPECT_EQ(store_->Read("Patient", "g7").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*store_->Count("Patient"), 15);
}

TEST_P(StoreTest, CompartmentHoldsThePatientAndItsResources) {
  ASSERT_TRUE(Put(Patient("p1", 1, "M1", "a")).ok());
  ASSERT_TRUE(Put(Observation("o1", "p1", 100, 5)).ok());
  ASSERT_TRUE(Put(Observation("o2", "p2", 100, 5)).ok());
  auto page = store_->Compartment("p1", {}, 10, 0);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->resources.size(), 2u);
  EXPECT_EQ(page->resources[0].type, "Patient");
  EXPECT_EQ(page->resources[1].id, "o1");
}

INSTANTIATE_TEST_SUITE_P(Plain, StoreTest, ::testing::Values(false));
INSTANTIATE_TEST_SUITE_P(Encrypted, StoreTest, ::testing::Values(true));

TEST(StoreOpen, RejectsUnknownSchemesAndFutureSchemas) {
  EXPECT_EQ(OpenStore({.url = "mysql://x"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenStore({.url = "postgresql://localhost/rhip"}).status().code(), StatusCode::kUnimplemented);
  std::string path = TempDb("future");
  sqlite3* db;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "PRAGMA user_version=999", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  auto s = OpenStore({.url = "sqlite:" + path});
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("newer"), std::string::npos);
}

int PageSizeOf(const std::string& path) {
  sqlite3* db = nullptr;
  int size = -1;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
      size = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return size;
}

TEST(StoreOpen, NewPlainStoreHasLargePagesAndAnOldStoreKeepsItsOwn) {
  auto write_one = [](const std::string& file) {
    auto s = OpenStore({.url = "sqlite:" + file});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ASSERT_TRUE((*s)->Write([](WriteTransaction& tx) { return tx.Put(Patient("p1", 1, "M1", "a")); }).ok());
    ASSERT_TRUE((*s)->Close().ok());
  };
  std::string path = TempDb("pages");
  write_one(path);
  EXPECT_EQ(PageSizeOf(path), sqlite::kPlainPageSize);

  // A store made with 4 KiB pages (before this build) stays readable and writable as it is.
  std::string old = TempDb("pages-old");
  sqlite3* db;
  ASSERT_EQ(sqlite3_open(old.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA page_size=4096; CREATE TABLE x(a); DROP TABLE x;", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  ASSERT_EQ(PageSizeOf(old), 4096);
  write_one(old);
  EXPECT_EQ(PageSizeOf(old), 4096);
  auto s = OpenStore({.url = "sqlite:" + old});
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE((*s)->Read("Patient", "p1").ok());
}

// What SQLite holds in the json column of the current row of `id`: its type and size.
std::pair<std::string, int64_t> StoredJson(const std::string& path, const std::string& id) {
  sqlite3* db = nullptr;
  std::pair<std::string, int64_t> out{"", -1};
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT typeof(json), length(CAST(json AS BLOB)) FROM resource WHERE id = ?", -1, &st,
                           nullptr) == SQLITE_OK) {
      sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(st) == SQLITE_ROW)
        out = {reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), sqlite3_column_int64(st, 1)};
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

// A Patient whose JSON is ~`bytes` long and compresses well (like an audit page).
PutRequest BigPatient(const std::string& id, int64_t version, size_t bytes) {
  PutRequest p = Patient(id, version, "B" + id, "big");
  std::string notes;
  for (int i = 0; notes.size() < bytes; ++i) notes += R"({"text":"note )" + std::to_string(i) + R"("},)";
  notes.pop_back();
  p.json = R"({"resourceType":"Patient","id":")" + id + R"(","meta":{"versionId":")" + std::to_string(version) +
           R"("},"extension":[)" + notes + "]}";
  return p;
}

class StoreCompressionTest : public ::testing::TestWithParam<bool> {};

TEST_P(StoreCompressionTest, LargeJsonIsStoredCompressedAndEveryReadReturnsItByteForByte) {
  const std::string path = TempDb(GetParam() ? "compress-enc" : "compress");
  const PutRequest small = Patient("small", 1, "S", "s");
  const PutRequest big1 = BigPatient("big", 1, 20000), big2 = BigPatient("big", 2, 30000);
  {
    auto s = OpenStore({.url = "sqlite:" + path, .key = TestKey(GetParam()), .compress_from_bytes = 1000});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    Store& st = **s;
    ASSERT_TRUE(st.Write([&](WriteTransaction& tx) { return tx.Put(small); }).ok());
    ASSERT_TRUE(st.Write([&](WriteTransaction& tx) { return tx.Put(big1); }).ok());
    ASSERT_TRUE(st.Write([&](WriteTransaction& tx) { return tx.Put(big2); }).ok());  // archives version 1
    // Every kind of read gives back the JSON as written.
    auto cur = st.Read("Patient", "big");
    ASSERT_TRUE(cur.ok()) << cur.status().ToString();
    EXPECT_EQ(cur->json, big2.json);
    auto v1 = st.ReadVersion("Patient", "big", 1);
    ASSERT_TRUE(v1.ok()) << v1.status().ToString();
    EXPECT_EQ(v1->json, big1.json);
    HistoryQuery hq;
    hq.type = "Patient";
    hq.id = "big";
    auto hist = st.History(hq);
    ASSERT_TRUE(hist.ok());
    ASSERT_EQ(hist->versions.size(), 2u);
    EXPECT_EQ(hist->versions[0].json, big2.json);
    EXPECT_EQ(hist->versions[1].json, big1.json);
    SearchQuery q;
    q.type = "Patient";
    q.criteria.push_back(Token("identifier", "Bbig"));
    auto page = st.Search(q);
    ASSERT_TRUE(page.ok());
    ASSERT_EQ(page->resources.size(), 1u);
    EXPECT_EQ(page->resources[0].json, big2.json);
    auto everything = st.Compartment("big", {}, 10, 0);
    ASSERT_TRUE(everything.ok());
    ASSERT_EQ(everything->resources.size(), 1u);
    EXPECT_EQ(everything->resources[0].json, big2.json);
    std::vector<std::string> scanned;
    ASSERT_TRUE(st.Scan("Patient", [&](const ResourceVersion& v) {
                    scanned.push_back(v.json);
                    return Status::Ok();
                  }).ok());
    EXPECT_EQ(scanned, (std::vector<std::string>{big2.json, small.json}));
    // The writer's own read (an update's base) decompresses too.
    std::string in_tx;
    ASSERT_TRUE(st.Write([&](WriteTransaction& tx) {
                    ASSIGN_OR_RETURN(ResourceVersion v, tx.Read("Patient", "big"));
                    in_tx = v.json;
                    return Status::Ok();
                  }).ok());
    EXPECT_EQ(in_tx, big2.json);
    ASSERT_TRUE(st.Close().ok());
  }
  if (!GetParam()) {  // the encrypted file cannot be opened without the VFS
    auto [type, size] = StoredJson(path, "big");
    EXPECT_EQ(type, "blob");
    EXPECT_LT(size, static_cast<int64_t>(big2.json.size()) / 5);  // repetitive JSON: far smaller
    EXPECT_EQ(StoredJson(path, "small").first, "text");           // under the threshold: as it was
  }
  // Opened without compression, the store still reads its compressed rows and writes plain ones.
  auto s = OpenStore({.url = "sqlite:" + path, .key = TestKey(GetParam())});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->Read("Patient", "big")->json, big2.json);
  const PutRequest big3 = BigPatient("big", 3, 20000);
  ASSERT_TRUE((*s)->Write([&](WriteTransaction& tx) { return tx.Put(big3); }).ok());
  EXPECT_EQ((*s)->Read("Patient", "big")->json, big3.json);
  EXPECT_EQ((*s)->ReadVersion("Patient", "big", 2)->json, big2.json);
  ASSERT_TRUE((*s)->Close().ok());
  if (!GetParam()) EXPECT_EQ(StoredJson(path, "big").first, "text");
}

INSTANTIATE_TEST_SUITE_P(PlainAndEncrypted, StoreCompressionTest, ::testing::Bool());

TEST(StoreCompression, ADamagedCompressedRowIsDataLossNamingTheResourceNotGarbage) {
  const std::string path = TempDb("compress-damaged");
  {
    auto s = OpenStore({.url = "sqlite:" + path, .compress_from_bytes = 1000});
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->Write([&](WriteTransaction& tx) { return tx.Put(BigPatient("big", 1, 20000)); }).ok());
    ASSERT_TRUE((*s)->Write([&](WriteTransaction& tx) { return tx.Put(Patient("ok", 1, "Bbig", "o")); }).ok());
    ASSERT_TRUE((*s)->Close().ok());
  }
  // Flip a byte in the middle of the compressed frame (its checksum no longer matches).
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  std::string blob;
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT json FROM resource WHERE id = 'big'", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  blob.assign(static_cast<const char*>(sqlite3_column_blob(st, 0)), sqlite3_column_bytes(st, 0));
  sqlite3_finalize(st);
  ASSERT_GT(blob.size(), 100u);
  blob[blob.size() / 2] ^= 0x5a;
  ASSERT_EQ(sqlite3_prepare_v2(db, "UPDATE resource SET json = ? WHERE id = 'big'", -1, &st, nullptr), SQLITE_OK);
  sqlite3_bind_blob(st, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
  ASSERT_EQ(sqlite3_step(st), SQLITE_DONE);
  sqlite3_finalize(st);
  sqlite3_close(db);
  ASSERT_EQ(StoredJson(path, "big").first, "blob");
  auto s = OpenStore({.url = "sqlite:" + path});
  ASSERT_TRUE(s.ok());
  auto r = (*s)->Read("Patient", "big");
  ASSERT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
  EXPECT_NE(r.status().message().find("Patient/big"), std::string::npos) << r.status().message();
  SearchQuery q;
  q.type = "Patient";
  q.criteria.push_back(Token("identifier", "Bbig"));
  EXPECT_EQ((*s)->Search(q).status().code(), StatusCode::kDataLoss);
  // The connection is usable afterwards: the undamaged resource still reads.
  for (int i = 0; i < 8; ++i) EXPECT_TRUE((*s)->Read("Patient", "ok").ok());
}

TEST(StoreOpen, AStoreIsOpenedByOneProcessAtATime) {
  const std::string path = TempDb("exclusive");
  auto first = OpenStore({.url = "sqlite:" + path});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE((*first)->Write([](WriteTransaction& tx) { return tx.Put(Patient("p1", 1, "M1", "a")); }).ok());
  // Another process (a second `rhip serve` on the same folder) is refused, naming the file.
  pid_t pid = fork();
  if (pid == 0) {
    auto second = OpenStore({.url = "sqlite:" + path});
    if (second.ok()) _exit(1);
    if (second.status().code() != StatusCode::kFailedPrecondition) _exit(2);
    if (second.status().message().find(path) == std::string::npos) _exit(3);
    if (second.status().message().find("in use by another rhip process") == std::string::npos) _exit(4);
    _exit(0);
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0) << "1: opened twice, 2: wrong code, 3/4: the message names neither file nor cause";
  // So is a second open in this process, and the first store keeps working afterwards;
  // a read-only check (exclusive = false) is not refused.
  EXPECT_EQ(OpenStore({.url = "sqlite:" + path}).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE((*first)->Write([](WriteTransaction& tx) { return tx.Put(Patient("p2", 1, "M2", "b")); }).ok());
  EXPECT_TRUE((*first)->Read("Patient", "p2").ok());
  auto reader = OpenStore({.url = "sqlite:" + path, .read_connections = 1, .create_if_missing = false, .exclusive = false});
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_TRUE((*reader)->Read("Patient", "p2").ok());
  ASSERT_TRUE((*reader)->Close().ok());
  EXPECT_TRUE((*first)->Read("Patient", "p1").ok());  // the reader's close left the owner alone
  // Closed, the store can be opened again.
  ASSERT_TRUE((*first)->Close().ok());
  auto again = OpenStore({.url = "sqlite:" + path});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE((*again)->Read("Patient", "p1").ok());
  // A missing store opened without create_if_missing is still "not there", and not created.
  const std::string missing = TempDb("exclusive-missing");
  EXPECT_FALSE(OpenStore({.url = "sqlite:" + missing, .create_if_missing = false}).ok());
  EXPECT_FALSE(std::filesystem::exists(missing));
}

TEST(StoreOpen, ReopenKeepsDataAndSchemaVersion) {
  std::string path = TempDb("reopen");
  {
    auto s = OpenStore({.url = "sqlite:" + path});
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->Write([](WriteTransaction& tx) { return tx.Put(Patient("p1", 1, "M1", "a")); }).ok());
    ASSERT_TRUE((*s)->Close().ok());
  }
  auto s = OpenStore({.url = "sqlite:" + path});
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE((*s)->Read("Patient", "p1").ok());
  EXPECT_EQ((*s)->Write([](WriteTransaction& tx) { return tx.Put(Patient("p1", 1, "M1", "a")); }).code(),
            StatusCode::kConflict);
}

void AcknowledgedWritesSurviveSigkill(const std::optional<StoreKey>& key) {
  std::string path = TempDb(key ? "crash-enc" : "crash");
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]);
    auto s = OpenStore({.url = "sqlite:" + path, .key = key});
    if (!s.ok()) _exit(3);
    for (int i = 0; i < 200; ++i) {
      if (!(*s)->Write([&](WriteTransaction& tx) { return tx.Put(Patient("c" + std::to_string(i), 1, "C", "c")); }).ok())
        _exit(4);
      int32_t n = i + 1;
      if (write(pipefd[1], &n, sizeof n) != sizeof n) _exit(5);  // acknowledged
    }
    for (;;) pause();
  }
  close(pipefd[1]);
  int32_t acked = 0, n;
  while (acked < 120 && read(pipefd[0], &n, sizeof n) == sizeof n) acked = n;
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  while (read(pipefd[0], &n, sizeof n) == sizeof n) acked = n;
  close(pipefd[0]);
  ASSERT_GT(acked, 0);
  auto s = OpenStore({.url = "sqlite:" + path, .key = key});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  for (int i = 0; i < acked; ++i) EXPECT_TRUE((*s)->Read("Patient", "c" + std::to_string(i)).ok()) << i;
}

TEST(StoreDurability, AcknowledgedWritesSurviveSigkill) { AcknowledgedWritesSurviveSigkill(std::nullopt); }
TEST(StoreDurability, EncryptedAcknowledgedWritesSurviveSigkill) { AcknowledgedWritesSurviveSigkill(TestKey()); }

}  // namespace
}  // namespace rhip::store

namespace rhip::store {
namespace {

TEST(StoreMessages, InboundMessagesAreKeptByteForByteReplacedByKeyAndListedByStatus) {
  auto s = OpenStore({.url = "sqlite::memory:"});
  ASSERT_TRUE(s.ok());
  Store& store = **s;
  const std::string raw("MSH|^~\\&|\xd5\xc5\x00\xff|\r", 12);  // GB18030 bytes and a NUL survive
  InboundMessage m{.sender = "330402-H01", .control_id = "C1", .type = "ADT^A04", .received = 100, .raw = raw,
                   .status = "failed", .ack = "MSH|...AE", .error = "PID-7: bad date", .attempts = 1};
  ASSERT_TRUE(store.Write([&](WriteTransaction& tx) { return tx.PutMessage(m); }).ok());
  InboundMessage later = m;
  later.control_id = "C2";
  later.received = 200;
  ASSERT_TRUE(store.Write([&](WriteTransaction& tx) { return tx.PutMessage(later); }).ok());
  auto got = store.ReadMessage("330402-H01", "C1");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->raw, raw);
  EXPECT_EQ((*got)->error, "PID-7: bad date");
  EXPECT_FALSE(store.ReadMessage("330402-H01", "C9")->has_value());
  EXPECT_FALSE(store.ReadMessage("other", "C1")->has_value());
  auto failed = store.Messages("failed", 10);
  ASSERT_TRUE(failed.ok());
  ASSERT_EQ(failed->size(), 2u);
  EXPECT_EQ((*failed)[0].control_id, "C1");  // oldest first
  // Reprocessed: the same key is replaced, not duplicated.
  m.status = "processed";
  m.attempts = 2;
  m.error.clear();
  ASSERT_TRUE(store.Write([&](WriteTransaction& tx) { return tx.PutMessage(m); }).ok());
  EXPECT_EQ(store.Messages("failed", 10)->size(), 1u);
  EXPECT_EQ((*store.ReadMessage("330402-H01", "C1"))->attempts, 2);
  // A write that fails leaves no message behind.
  InboundMessage third = m;
  third.control_id = "C3";
  EXPECT_FALSE(store.Write([&](WriteTransaction& tx) -> Status {
                      RETURN_IF_ERROR(tx.PutMessage(third));
                      return InvalidArgument("entry 2 failed");
                    }).ok());
  EXPECT_FALSE(store.ReadMessage("330402-H01", "C3")->has_value());
}

TEST(StoreWriteEach, EachFunctionIsAtomicOnItsOwnAndSeesTheOnesBefore) {
  auto s = OpenStore({.url = "sqlite::memory:"});
  ASSERT_TRUE(s.ok());
  Store& store = **s;
  auto message = [](const std::string& id) {
    return InboundMessage{.sender = "S", .control_id = id, .type = "ADT^A04", .received = 1, .raw = "MSH",
                          .status = "queued", .ack = "A", .error = {}, .attempts = 1};
  };
  std::vector<WriteFn> fns;
  fns.push_back([&](WriteTransaction& tx) { return tx.PutMessage(message("1")); });
  fns.push_back([&](WriteTransaction& tx) -> Status {  // writes, then fails: its write is undone
    RETURN_IF_ERROR(tx.PutMessage(message("2")));
    return InvalidArgument("the second one fails");
  });
  fns.push_back([&](WriteTransaction& tx) -> Status {  // sees the first one's write, not the second's
    ASSIGN_OR_RETURN(auto first, tx.AddMessage(message("1")));
    ASSIGN_OR_RETURN(auto second, tx.AddMessage(message("2x")));
    if (!first || second) return Internal("the third one saw the wrong writes");
    return Status::Ok();
  });
  std::vector<Status> results = store.WriteEach(std::move(fns));
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0].ok()) << results[0].ToString();
  EXPECT_EQ(results[1].code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(results[1].message(), "the second one fails");
  EXPECT_TRUE(results[2].ok()) << results[2].ToString();
  EXPECT_TRUE(store.ReadMessage("S", "1")->has_value());
  EXPECT_FALSE(store.ReadMessage("S", "2")->has_value());
  EXPECT_TRUE(store.ReadMessage("S", "2x")->has_value());
  EXPECT_TRUE(store.WriteEach({}).empty());
}

TEST(StoreMessages, AddMessageRecordsOnlyTheFirstCopyAndReturnsItsAck) {
  auto s = OpenStore({.url = "sqlite::memory:"});
  ASSERT_TRUE(s.ok());
  Store& store = **s;
  // AddMessage in a write of its own: nullopt when recorded, else the ACK held.
  auto add = [&](const InboundMessage& m) {
    std::optional<std::string> earlier = "not set";
    EXPECT_TRUE(store.Write([&](WriteTransaction& tx) -> Status {
                       ASSIGN_OR_RETURN(earlier, tx.AddMessage(m));
                       return Status::Ok();
                     }).ok());
    return earlier;
  };
  InboundMessage first{.sender = "330402-H01", .control_id = "C1", .type = "ADT^A04", .received = 100,
                       .raw = "MSH|first", .status = "queued", .ack = "ACK-1", .error = {}, .attempts = 1};
  EXPECT_FALSE(add(first).has_value()) << "new: recorded";
  InboundMessage copy = first;
  copy.raw = "MSH|second";
  copy.ack = "ACK-2";
  copy.status = "failed";
  EXPECT_EQ(add(copy), std::optional<std::string>("ACK-1"));
  auto held = store.ReadMessage("330402-H01", "C1");
  EXPECT_EQ((*held)->raw, "MSH|first") << "the copy changed nothing";
  EXPECT_EQ((*held)->status, "queued");
  // Another sender's message with the same control id is a different message.
  copy.sender = "330402-H02";
  EXPECT_FALSE(add(copy).has_value());
  EXPECT_EQ((*store.ReadMessage("330402-H02", "C1"))->ack, "ACK-2");
  // Added in a transaction that fails: nothing stays.
  copy.control_id = "C2";
  EXPECT_FALSE(store.Write([&](WriteTransaction& tx) -> Status {
                      RETURN_IF_ERROR(tx.AddMessage(copy).status());
                      return InvalidArgument("later step failed");
                    }).ok());
  EXPECT_FALSE(store.ReadMessage("330402-H02", "C2")->has_value());
  // An outcome without the raw bytes: only status, error and attempts change.
  InboundMessage outcome{.sender = "330402-H01", .control_id = "C1", .type = {}, .received = 0, .raw = {},
                         .status = "failed", .ack = {}, .error = "refused when applied", .attempts = 3};
  ASSERT_TRUE(store.Write([&](WriteTransaction& tx) { return tx.SetMessageStatus(outcome); }).ok());
  auto after = store.ReadMessage("330402-H01", "C1");
  EXPECT_EQ((*after)->status, "failed");
  EXPECT_EQ((*after)->error, "refused when applied");
  EXPECT_EQ((*after)->attempts, 3);
  EXPECT_EQ((*after)->raw, "MSH|first");
  EXPECT_EQ((*after)->ack, "ACK-1");
  EXPECT_EQ((*after)->type, "ADT^A04");
  outcome.control_id = "never";
  EXPECT_EQ(store.Write([&](WriteTransaction& tx) { return tx.SetMessageStatus(outcome); }).code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace rhip::store

namespace rhip::store {
namespace {

// ---- re-indexing through the index manifest ----

TEST_P(StoreTest, UpdateReplacesExactlyTheChangedIndexRows) {
  ASSERT_TRUE(Put(Patient("p1", 1, "M1", "zhang wei")).ok());
  ASSERT_TRUE(Put(Patient("p2", 1, "M2", "zhang wei")).ok());
  ASSERT_TRUE(Put(Patient("p1", 2, "M9", "zhang wei")).ok());  // identifier changes, name stays
  EXPECT_TRUE(Ids({.type = "Patient", .criteria = {Token("identifier", "M1")}}).empty());
  EXPECT_EQ(Ids({.type = "Patient", .criteria = {Token("identifier", "M9")}}), std::vector<std::string>{"p1"});
  Criterion name{.param = "name", .type = store::ParamType::kString, .values = {{.text = "zhang"}}};
  EXPECT_EQ(Ids({.type = "Patient", .criteria = {name}}), (std::vector<std::string>{"p1", "p2"}));
  // A non-driving token check (point look-up) after a driving string criterion.
  EXPECT_EQ(Ids({.type = "Patient", .criteria = {name, Token("identifier", "M9")}}), std::vector<std::string>{"p1"});
  EXPECT_TRUE(Ids({.type = "Patient", .criteria = {name, Token("identifier", "M1")}}).empty());
}

TEST_P(StoreTest, DeleteThenRecreateInOneWriteLeavesOnlyTheNewRows) {
  ASSERT_TRUE(Put(Patient("p1", 1, "M1", "li na")).ok());
  Status st = store_->Write([&](WriteTransaction& tx) -> Status {
    RETURN_IF_ERROR(tx.Put(Patient("p1", 2, "M2", "li na")));
    RETURN_IF_ERROR(tx.Put(Patient("p1", 3, "M1", "li na")));  // back to M1: the same row inserted, deleted, inserted
    RETURN_IF_ERROR(tx.Delete({.type = "Patient", .id = "p1", .version = 4, .last_updated = 2000}));
    return tx.Put(Patient("p1", 5, "M3", "wang fang"));
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(Ids({.type = "Patient", .criteria = {Token("identifier", "M1")}}).empty());
  EXPECT_TRUE(Ids({.type = "Patient", .criteria = {Token("identifier", "M2")}}).empty());
  EXPECT_EQ(Ids({.type = "Patient", .criteria = {Token("identifier", "M3")}}), std::vector<std::string>{"p1"});
  Criterion old_name{.param = "name", .type = store::ParamType::kString, .values = {{.text = "li"}}};
  EXPECT_TRUE(Ids({.type = "Patient", .criteria = {old_name}}).empty());
}

TEST_P(StoreTest, ConditionalSearchInsideAWriteSeesItsOwnEarlierPuts) {
  Status st = store_->Write([&](WriteTransaction& tx) -> Status {
    RETURN_IF_ERROR(tx.Put(Patient("p1", 1, "M1", "a")));
    ASSIGN_OR_RETURN(auto ids, tx.SearchIds({.type = "Patient", .criteria = {Token("identifier", "M1")}}, 10));
    if (ids != std::vector<std::string>{"p1"}) return Internal("own write not visible");
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST_P(StoreTest, FailedWriteLeavesNoIndexRowsBehind) {
  Status st = store_->Write([&](WriteTransaction& tx) -> Status {
    RETURN_IF_ERROR(tx.Put(Patient("p1", 1, "M1", "a")));
    return InvalidArgument("entry 2 is bad");
  });
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Ids({.type = "Patient", .criteria = {Token("identifier", "M1")}}).empty());
  ASSERT_TRUE(Put(Patient("p1", 1, "M1", "a")).ok());  // version 1 is free again
  EXPECT_EQ(Ids({.type = "Patient", .criteria = {Token("identifier", "M1")}}), std::vector<std::string>{"p1"});
}

TEST_P(StoreTest, MissingAndSortByTokenAndReferenceUseTheManifest) {
  ASSERT_TRUE(Put(Observation("o1", "pb", 3 * kMicrosPerDay, 1)).ok());
  ASSERT_TRUE(Put(Observation("o2", "pa", 1 * kMicrosPerDay, 2)).ok());
  PutRequest no_subject = Observation("o3", "pc", 2 * kMicrosPerDay, 3);
  no_subject.index.references.clear();
  ASSERT_TRUE(Put(no_subject).ok());
  Criterion missing{.param = "subject", .type = store::ParamType::kReference, .missing = true};
  EXPECT_EQ(Ids({.type = "Observation", .criteria = {missing}}), std::vector<std::string>{"o3"});
  missing.missing = false;
  EXPECT_EQ(Ids({.type = "Observation", .criteria = {missing}}), (std::vector<std::string>{"o1", "o2"}));
  // Resources without a value sort last in both directions.
  EXPECT_EQ(Ids({.type = "Observation", .sort = {{"subject", store::ParamType::kReference, false}}}),
            (std::vector<std::string>{"o2", "o1", "o3"}));
  EXPECT_EQ(Ids({.type = "Observation", .sort = {{"subject", store::ParamType::kReference, true}}}),
            (std::vector<std::string>{"o1", "o2", "o3"}));
  EXPECT_EQ(Ids({.type = "Observation", .sort = {{"value-quantity", store::ParamType::kQuantity, true}}}),
            (std::vector<std::string>{"o3", "o2", "o1"}));
}

TEST_P(StoreTest, SupersededVersionsKeepTheirOwnJson) {
  ASSERT_TRUE(Put(Patient("p1", 1, "M1", "a")).ok());
  ASSERT_TRUE(Put(Patient("p1", 2, "M2", "b")).ok());
  ASSERT_TRUE(store_->Write([&](WriteTransaction& tx) {
    return tx.Delete({.type = "Patient", .id = "p1", .version = 3, .last_updated = 5000});
  }).ok());
  ASSERT_TRUE(Put(Patient("p1", 4, "M4", "d")).ok());
  for (int64_t v : {1, 2, 4}) {
    auto r = store_->ReadVersion("Patient", "p1", v);
    ASSERT_TRUE(r.ok()) << v;
    EXPECT_NE(r->json.find("\"versionId\":\"" + std::to_string(v) + "\""), std::string::npos) << r->json;
  }
  auto deleted = store_->ReadVersion("Patient", "p1", 3);
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(deleted->deleted);
  EXPECT_TRUE(deleted->json.empty());
  auto h = store_->History({.type = "Patient", .id = "p1"});
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->versions.size(), 4u);
  EXPECT_EQ(*h->total, 4);
  EXPECT_EQ(h->versions[0].version, 4);
  EXPECT_NE(h->versions[0].json.find("\"versionId\":\"4\""), std::string::npos);
  EXPECT_NE(h->versions[3].json.find("\"versionId\":\"1\""), std::string::npos);
  auto type_history = store_->History({.type = "Patient"});
  ASSERT_TRUE(type_history.ok());
  EXPECT_EQ(*type_history->total, 4);
}

// One commit far larger than the WAL write buffer and than one write() (the WAL
// writes are combined, then written in pieces): all of it is there after reopening.
void HugeCommitsAreWrittenWhole(const std::optional<StoreKey>& key) {
  const std::string path = TempDb(key ? "huge-enc" : "huge");
  pid_t pid = fork();
  if (pid == 0) {
    auto s = OpenStore({.url = "sqlite:" + path, .key = key});
    if (!s.ok()) _exit(3);
    const std::string filler(3000, 'x');
    Status st = (*s)->Write([&](WriteTransaction& tx) -> Status {
      for (int i = 0; i < 5000; ++i) {  // ~20 MB of WAL in one commit
        PutRequest p = Patient("h" + std::to_string(i), 1, "H" + std::to_string(i), "n" + std::to_string(i));
        p.json.insert(p.json.size() - 1, R"(,"text":")" + filler + "\"");
        RETURN_IF_ERROR(tx.Put(p));
      }
      return Status::Ok();
    });
    if (!st.ok()) _exit(4);
    if (!(*s)->Write([&](WriteTransaction& tx) { return tx.Put(Patient("after", 1, "A", "a")); }).ok()) _exit(5);
    _exit(0);  // no close, no checkpoint: the next open recovers everything from the WAL
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  auto s = OpenStore({.url = "sqlite:" + path, .key = key});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto n = (*s)->Count("Patient");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 5001);
  auto last = (*s)->Read("Patient", "h4999");
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->json.size(), Patient("h4999", 1, "", "").json.size() + 3010);
  EXPECT_TRUE((*s)->Read("Patient", "after").ok());
  // Their index rows went in 32 to a statement: each is found, and only its own.
  for (int i : {0, 31, 32, 4321, 4999}) {
    auto page = (*s)->Search({.type = "Patient", .criteria = {Token("identifier", "H" + std::to_string(i))}});
    ASSERT_TRUE(page.ok());
    ASSERT_EQ(page->resources.size(), 1u) << i;
    EXPECT_EQ(page->resources[0].id, "h" + std::to_string(i));
  }
  auto dated = (*s)->Search({.type = "Patient", .criteria = {Date("birthdate", Prefix::kEq, 0, kMicrosPerDay - 1)},
                             .total = TotalMode::kAccurate});
  ASSERT_TRUE(dated.ok());
  EXPECT_EQ(*dated->total, 5001);
}

TEST(StoreDurability, HugeCommitsAreWrittenWhole) { HugeCommitsAreWrittenWhole(std::nullopt); }
TEST(StoreDurability, EncryptedHugeCommitsAreWrittenWhole) { HugeCommitsAreWrittenWhole(TestKey()); }

// ---- schema 2 → 3 ----

TEST(StoreMigration, Schema2StoresKeepTheirDataIndexAndHistory) {
  const std::string path = TempDb("migrate");
  ASSERT_TRUE(sqlite::MigrateForTest(path, 2).ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const char* v2 = R"sql(
INSERT INTO resource (pk, type, id, version, last_updated, deleted, json, first_seq) VALUES
  (1, 'Patient', 'p1', 2, 20, 0, '{"resourceType":"Patient","id":"p1","meta":{"versionId":"2"}}', 1),
  (2, 'Observation', 'o1', 1, 30, 0, '{"resourceType":"Observation","id":"o1","meta":{"versionId":"1"}}', 3),
  (3, 'Patient', 'p2', 2, 40, 1, NULL, 4);
INSERT INTO resource_version (seq, type, id, version, last_updated, deleted, method, json) VALUES
  (1, 'Patient', 'p1', 1, 10, 0, 'POST', '{"resourceType":"Patient","id":"p1","meta":{"versionId":"1"}}'),
  (2, 'Patient', 'p1', 2, 20, 0, 'PUT', '{"resourceType":"Patient","id":"p1","meta":{"versionId":"2"}}'),
  (3, 'Observation', 'o1', 1, 30, 0, 'POST', '{"resourceType":"Observation","id":"o1","meta":{"versionId":"1"}}'),
  (4, 'Patient', 'p2', 1, 35, 0, 'POST', '{"resourceType":"Patient","id":"p2"}'),
  (5, 'Patient', 'p2', 2, 40, 1, 'DELETE', NULL);
INSERT INTO idx_token VALUES ('Patient.identifier', 'M1', 'http://rhip.health/id/mrn/1', 1);
INSERT INTO idx_string VALUES ('Patient.name', 'zhang wei', 'Zhang Wei', 1);
INSERT INTO idx_date VALUES ('Observation.date', 100, 200, 2);
INSERT INTO idx_reference VALUES ('Observation.subject', 'p1', 'Patient', 2);
INSERT INTO compartment VALUES ('p1', 1), ('p1', 2);
)sql";
  ASSERT_EQ(sqlite3_exec(db, v2, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);

  auto opened = OpenStore({.url = "sqlite:" + path});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Store& s = **opened;
  auto p1 = s.Read("Patient", "p1");
  ASSERT_TRUE(p1.ok());
  EXPECT_EQ(p1->version, 2);
  auto v1 = s.ReadVersion("Patient", "p1", 1);
  ASSERT_TRUE(v1.ok());
  EXPECT_NE(v1->json.find("\"versionId\":\"1\""), std::string::npos);
  auto v2_read = s.ReadVersion("Patient", "p1", 2);
  ASSERT_TRUE(v2_read.ok());
  EXPECT_NE(v2_read->json.find("\"versionId\":\"2\""), std::string::npos);
  EXPECT_EQ(s.Read("Patient", "p2").status().code(), StatusCode::kGone);
  auto search = [&](SearchQuery q) {
    auto page = s.Search(q);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    std::vector<std::string> ids;
    if (page.ok())
      for (auto& r : page->resources) ids.push_back(r.id);
    return ids;
  };
  EXPECT_EQ(search({.type = "Patient", .criteria = {Token("identifier", "M1")}}), std::vector<std::string>{"p1"});
  Criterion subject{.param = "subject", .type = store::ParamType::kReference, .values = {{.target_type = "Patient", .target_id = "p1"}}};
  EXPECT_EQ(search({.type = "Observation", .criteria = {subject, Date("date", Prefix::kGe, 150, 150)}}),
            std::vector<std::string>{"o1"});
  auto everything = s.Compartment("p1", {}, 10, 0);
  ASSERT_TRUE(everything.ok());
  EXPECT_EQ(everything->resources.size(), 2u);
  auto h = s.History({.type = "Patient", .id = "p1"});
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->versions.size(), 2u);
  // Re-indexing a migrated resource uses its migrated manifest: the old row goes.
  PutRequest next = Patient("p1", 3, "M7", "li si");
  ASSERT_TRUE(s.Write([&](WriteTransaction& tx) { return tx.Put(next); }).ok());
  EXPECT_TRUE(search({.type = "Patient", .criteria = {Token("identifier", "M1")}}).empty());
  Criterion old_name{.param = "name", .type = store::ParamType::kString, .values = {{.text = "zhang"}}};
  EXPECT_TRUE(search({.type = "Patient", .criteria = {old_name}}).empty());
  EXPECT_EQ(search({.type = "Patient", .criteria = {Token("identifier", "M7")}}), std::vector<std::string>{"p1"});
  ASSERT_TRUE(s.Close().ok());
}

TEST_P(StoreTest, EmpiTrailAndReviewsAreKeptAndListed) {
  ASSERT_TRUE(store_->Write([](WriteTransaction& tx) -> Status {
                      RETURN_IF_ERROR(tx.AppendPersonChange({.person_id = "P1", .person_version = 1, .at = 5, .action = "new",
                                                             .actor = "rhip-empi", .reason = "r", .before = "[]", .after = "[1]"}));
                      return tx.AppendPersonChange({.person_id = "P2", .person_version = 1, .at = 6, .action = "new",
                                                    .actor = "rhip-empi", .reason = "r", .before = "[]", .after = "[2]"});
                    }).ok());
  auto p1 = store_->PersonChanges("P1", 10, 0);
  ASSERT_TRUE(p1.ok());
  ASSERT_EQ(p1->size(), 1u);
  EXPECT_EQ((*p1)[0].after, "[1]");
  EXPECT_EQ(store_->PersonChanges("", 10, 0)->size(), 2u);
  EXPECT_EQ(store_->PersonChanges("", 10, 1)->size(), 1u);

  int64_t id = 0;
  ASSERT_TRUE(store_->Write([&](WriteTransaction& tx) -> Status {
                      ASSIGN_OR_RETURN(id, tx.PutReview({.created = 1, .record_a = "a", .record_b = "b", .weight = 5.5,
                                                         .detail = "{}", .status = "open"}));
                      return Status::Ok();
                    }).ok());
  EXPECT_GT(id, 0);
  EXPECT_EQ(*store_->CountReviews("open"), 1);
  auto r = store_->ReadReview(id);
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->record_b, "b");
  EXPECT_DOUBLE_EQ((*r)->weight, 5.5);
  MatchReview decided = **r;
  decided.status = "no-link";
  decided.steward = "s1";
  ASSERT_TRUE(store_->Write([&](WriteTransaction& tx) { return tx.PutReview(decided).status(); }).ok());
  EXPECT_EQ(*store_->CountReviews("open"), 0);
  EXPECT_EQ(*store_->CountReviews(""), 1);
  ASSERT_EQ(store_->Reviews("no-link", 10, 0)->size(), 1u);
  EXPECT_EQ((*store_->Reviews("no-link", 10, 0))[0].steward, "s1");
  EXPECT_FALSE(store_->ReadReview(id + 100)->has_value());
}

TEST_P(StoreTest, CompartmentRestrictionNarrowsMatchesAndTotals) {
  ASSERT_TRUE(Put(Patient("p1", 1, "m1", "zhang")).ok());
  ASSERT_TRUE(Put(Patient("p2", 1, "m2", "zhang")).ok());
  ASSERT_TRUE(Put(Observation("o1", "p1", 10, 1)).ok());
  ASSERT_TRUE(Put(Observation("o2", "p2", 20, 2)).ok());
  ASSERT_TRUE(Put(Observation("o3", "p1", 30, 3)).ok());
  SearchQuery q;
  q.type = "Observation";
  q.total = TotalMode::kAccurate;
  q.compartment = std::vector<std::string>{"p1"};
  EXPECT_EQ(Ids(q), (std::vector<std::string>{"o1", "o3"}));
  EXPECT_EQ(*store_->Search(q)->total, 2);
  // with a driving criterion the restriction still holds
  Criterion subject;
  subject.param = "subject";
  subject.type = store::ParamType::kReference;
  SearchValue v;
  v.target_type = "Patient";
  v.target_id = "p2";
  subject.values.push_back(v);
  q.criteria.push_back(subject);
  EXPECT_TRUE(Ids(q).empty());
  q.criteria.clear();
  // a Patient is in its own compartment; several patients; none
  SearchQuery pq;
  pq.type = "Patient";
  pq.compartment = std::vector<std::string>{"p2", "nobody", "with\"quote"};
  EXPECT_EQ(Ids(pq), (std::vector<std::string>{"p2"}));
  pq.compartment = std::vector<std::string>{};
  EXPECT_TRUE(Ids(pq).empty());
  pq.compartment.reset();
  EXPECT_EQ(Ids(pq).size(), 2u);
}

}  // namespace
}  // namespace rhip::store

namespace rhip::store::sqlite {
namespace {

// The writer's checkpoint rule (OnWalCommit): what counts is the frames a checkpoint
// has not copied yet, not the WAL's whole length.
TEST(UncopiedWalFramesTest, CountsOnlyWhatTheLastCheckpointDidNotCopy) {
  std::atomic<int> copied{0};
  EXPECT_EQ(UncopiedWalFrames(3900, copied), 3900);
  copied = 4000;  // a checkpoint copied the first 4,000 frames
  // A commit just beyond the length that asked for that checkpoint does not ask again.
  EXPECT_EQ(UncopiedWalFrames(4100, copied), 100);
  EXPECT_EQ(UncopiedWalFrames(8100, copied), 4100);
  EXPECT_EQ(copied.load(), 4000);
}

TEST(UncopiedWalFramesTest, AWalThatStartedOverForgetsTheOldCount) {
  std::atomic<int> copied{4000};
  EXPECT_EQ(UncopiedWalFrames(60, copied), 60);  // rewound after a complete checkpoint
  EXPECT_EQ(copied.load(), 0);
  // The next checkpoint comes after 4,000 new frames, not after 4,000 beyond the old count.
  EXPECT_EQ(UncopiedWalFrames(4050, copied), 4050);
}

}  // namespace
}  // namespace rhip::store::sqlite

namespace rhip::store {
namespace {

TEST_P(StoreTest, IndexEncodedBeforeTheWriteIsStoredAsIfTheStoreHadEncodedIt) {
  PutRequest a = Patient("p1", 1, "M1", "zhang wei");
  a.encoded_index = store_->EncodeIndex(a.type, a.index);
  ASSERT_FALSE(a.encoded_index.empty());
  ASSERT_TRUE(Put(a).ok());
  ASSERT_TRUE(Put(Patient("p2", 1, "M2", "zhang wei")).ok());  // encoded by the store
  EXPECT_EQ(Ids({.type = "Patient", .criteria = {Token("identifier", "M1")}}), std::vector<std::string>{"p1"});
  Criterion name{.param = "name", .type = store::ParamType::kString, .values = {{.text = "zhang"}}};
  EXPECT_EQ(Ids({.type = "Patient", .criteria = {name}}), (std::vector<std::string>{"p1", "p2"}));
  // The next version's rows replace the pre-encoded ones exactly.
  ASSERT_TRUE(Put(Patient("p1", 2, "M9", "zhang wei")).ok());
  EXPECT_TRUE(Ids({.type = "Patient", .criteria = {Token("identifier", "M1")}}).empty());
  EXPECT_EQ(Ids({.type = "Patient", .criteria = {Token("identifier", "M9")}}), std::vector<std::string>{"p1"});
  // A damaged encoding is refused and writes nothing.
  PutRequest bad = Patient("p3", 1, "M3", "li na");
  bad.encoded_index = std::string("\x7f\x01garbage", 9);
  Status st = Put(bad);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss) << st.ToString();
  EXPECT_EQ(store_->Read("Patient", "p3").status().code(), StatusCode::kNotFound);
}

TEST_P(StoreTest, ManyEqualIndexEntriesInOneWriteAreAllFound) {
  // 3,000 resources sharing most of their values (one write): Flush groups equal entries.
  Status st = store_->Write([&](WriteTransaction& tx) -> Status {
    for (int i = 0; i < 3000; ++i)
      RETURN_IF_ERROR(tx.Put(Observation("o" + std::to_string(i), i % 2 ? "pa" : "pb", (i % 7) * kMicrosPerDay, 1)));
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  Criterion subject{.param = "subject", .type = store::ParamType::kReference, .values = {{.target_type = "Patient", .target_id = "pa"}}};
  SearchQuery q{.type = "Observation", .criteria = {subject}, .count = 5000};
  auto page = store_->Search(q);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->resources.size(), 1500u);
  q.criteria.push_back(Date("date", Prefix::kEq, 3 * kMicrosPerDay, 3 * kMicrosPerDay));
  page = store_->Search(q);
  ASSERT_TRUE(page.ok());
  int expected = 0;
  for (int i = 1; i < 3000; i += 2) expected += i % 7 == 3;
  EXPECT_EQ(static_cast<int>(page->resources.size()), expected);
}

}  // namespace
}  // namespace rhip::store
