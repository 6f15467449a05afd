#include "rhip/security/audit.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>

namespace rhip::security {
namespace {

namespace fs = std::filesystem;

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("rhip-audit-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(int n, int first = 0) {
    auto log = AuditLog::Open({.dir = dir_.string()});
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    for (int i = 0; i < n; ++i)
      (*log)->Record({.subtype = "read", .who = "dr-" + std::to_string(first + i), .role = "clinician",
                      .what = "GET /fhir/Patient/p" + std::to_string(i), .patients = {"p" + std::to_string(i % 3)}});
    ASSERT_TRUE((*log)->Flush().ok());
  }
  // Tampering through the store interface, as someone with the file would:
  // `edit` rewrites the JSON of the page holding `needle` (nullopt deletes the page).
  void Tamper(const std::string& needle, const std::function<std::optional<std::string>(std::string)>& edit) {
    auto s = store::OpenStore({.url = "sqlite:" + (dir_ / "audit.db").string()});
    ASSERT_TRUE(s.ok());
    store::ResourceVersion found;
    ASSERT_TRUE((*s)->Scan("Bundle", [&](const store::ResourceVersion& v) {
      if (v.json.find(needle) != std::string::npos) found = v;
      return Status::Ok();
    }).ok());
    ASSERT_FALSE(found.id.empty()) << needle;
    std::optional<std::string> json = edit(found.json);
    ASSERT_TRUE((*s)->Write([&](store::WriteTransaction& tx) -> Status {
      if (!json) return tx.Delete({"Bundle", found.id, 2, 0});
      store::PutRequest put;
      put.type = "Bundle";
      put.id = found.id;
      put.version = 2;
      put.last_updated = found.last_updated;
      put.method = "PUT";
      put.json = *json;
      return tx.Put(put);
    }).ok());
    ASSERT_TRUE((*s)->Close().ok());
  }
  static std::string Replace(std::string s, const std::string& from, const std::string& to) {
    s.replace(s.find(from), from.size(), to);
    return s;
  }
  fs::path dir_;
};

TEST_F(AuditTest, AChainOfRecordsVerifiesAndContinuesAfterARestart) {
  Write(25);
  auto v = VerifyAuditLog(dir_.string());
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->ok) << v->problem;
  EXPECT_EQ(v->records, 25);
  Write(10, 100);  // a restart: the chain goes on from record 25
  v = VerifyAuditLog(dir_.string());
  EXPECT_TRUE(v->ok) << v->problem;
  EXPECT_EQ(v->records, 35);
}

TEST_F(AuditTest, ChangingOneRecordIsDetectedAndNamed) {
  Write(10);
  Tamper("\"dr-3\"", [](std::string json) { return Replace(json, "\"dr-3\"", "\"dr-X\""); });  // someone hides who read
  auto v = VerifyAuditLog(dir_.string());
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->ok);
  EXPECT_EQ(v->first_broken, 4);
  EXPECT_NE(v->problem.find("record 4 was changed"), std::string::npos) << v->problem;
}

TEST_F(AuditTest, ChangingTheLastRecordIsDetectedThroughTheHead) {
  Write(5);
  Tamper("\"dr-4\"", [](std::string json) { return Replace(json, "\"dr-4\"", "\"dr-Y\""); });
  auto v = VerifyAuditLog(dir_.string());
  EXPECT_FALSE(v->ok);
  EXPECT_EQ(v->first_broken, 5);
}

TEST_F(AuditTest, RemovingRecordsInTheMiddleOrAtTheEndIsDetected) {
  // three batches, three pages: records 1-3, 4-6, 7-9
  Write(3, 0);
  Write(3, 10);
  Write(3, 20);
  Tamper("\"dr-10\"", [](std::string) { return std::nullopt; });  // the middle page
  auto v = VerifyAuditLog(dir_.string());
  EXPECT_FALSE(v->ok);
  EXPECT_EQ(v->first_broken, 4);
  EXPECT_NE(v->problem.find("missing"), std::string::npos) << v->problem;

  fs::remove_all(dir_);
  fs::create_directories(dir_);
  Write(3, 0);
  Write(3, 10);
  Tamper("\"dr-10\"", [](std::string) { return std::nullopt; });  // the last page
  v = VerifyAuditLog(dir_.string());
  EXPECT_FALSE(v->ok);
  EXPECT_NE(v->problem.find("cut off"), std::string::npos) << v->problem;
}

TEST_F(AuditTest, EventsAreFhirAuditEventsFoundByPatient) {
  auto log = AuditLog::Open({.dir = dir_.string()});
  (*log)->Record({.subtype = "read", .outcome = 0, .who = "dr-li", .role = "clinician", .org = "47000001",
                  .what = "GET /fhir/Patient/p1?identifier=330402199001011234", .patients = {"p1"},
                  .break_glass_reason = "unconscious"});
  (*log)->Record({.subtype = "read", .who = "dr-wang", .role = "clinician", .patients = {"p2"}});
  ASSERT_TRUE((*log)->Flush().ok());
  auto mine = (*log)->ForPatients({"p1"}, 10);
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->size(), 1u);
  const std::string& ev = (*mine)[0];
  EXPECT_NE(ev.find("\"resourceType\":\"AuditEvent\""), std::string::npos);
  EXPECT_NE(ev.find("\"code\":\"BTG\""), std::string::npos);
  EXPECT_NE(ev.find("\"code\":\"review\""), std::string::npos);
  EXPECT_NE(ev.find("Patient/p1"), std::string::npos);
  EXPECT_NE(ev.find("47000001"), std::string::npos);
  EXPECT_EQ(ev.find("330402199001011234"), std::string::npos);  // masked
  EXPECT_TRUE((*log)->ForPatients({}, 10)->empty());
}

// The record numbers of events (their AuditEvent ids), in the order given.
std::vector<int> Seqs(const std::vector<std::string>& events) {
  std::vector<int> out;
  for (const auto& e : events) {
    const size_t at = e.find(R"("id":")");
    out.push_back(at == std::string::npos ? -1 : std::atoi(e.c_str() + at + 6));
  }
  return out;
}

// 200 records in pages of 3, with buckets of 1 record (a page spans 3 buckets, the
// search goes through 4 groups of 64 buckets) and of 4: ForPatients finds exactly the
// events naming the patients, newest first, up to the count asked for.
TEST_F(AuditTest, PatientsEventsAreFoundAcrossBucketsNewestFirstAndUpToCount) {
  for (int64_t bucket : {1, 4}) {
    SCOPED_TRACE("bucket of " + std::to_string(bucket));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto log = AuditLog::Open({.dir = dir_.string(), .index_bucket_events = bucket});
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    std::vector<int> p1, p1_or_p3, p9;
    for (int seq = 1; seq <= 200; ++seq) {
      std::vector<std::string> patients = {"p" + std::to_string(seq % 3 + 1)};  // p2 p3 p1 p2 …
      if (seq % 50 == 0) patients.push_back("p9");
      (*log)->Record({.subtype = "read", .who = "dr-" + std::to_string(seq), .role = "clinician", .patients = patients});
      if (patients[0] == "p1") p1.insert(p1.begin(), seq);
      if (patients[0] == "p1" || patients[0] == "p3") p1_or_p3.insert(p1_or_p3.begin(), seq);
      if (patients.size() > 1) p9.insert(p9.begin(), seq);
      if (seq % 3 == 0) ASSERT_TRUE((*log)->Flush().ok());  // a page per 3 records
    }
    ASSERT_TRUE((*log)->Flush().ok());
    auto all = (*log)->ForPatients({"p1"}, 1000);
    ASSERT_TRUE(all.ok()) << all.status().ToString();
    EXPECT_EQ(Seqs(*all), p1);
    auto two = (*log)->ForPatients({"p1", "p3"}, 5);
    ASSERT_TRUE(two.ok());
    EXPECT_EQ(Seqs(*two), std::vector<int>(p1_or_p3.begin(), p1_or_p3.begin() + 5));
    EXPECT_EQ(Seqs(*(*log)->ForPatients({"p9"}, 100)), p9);
    EXPECT_TRUE((*log)->ForPatients({"p7"}, 100)->empty());
    std::vector<int> every(200);
    for (int i = 0; i < 200; ++i) every[i] = 200 - i;
    EXPECT_EQ(Seqs(*(*log)->ForPatients({"p1", "p2", "p3"}, 1000)), every);  // pages across groups: once
    // After a restart the index still finds them, and new records join the same buckets.
    log->reset();
    log = AuditLog::Open({.dir = dir_.string(), .index_bucket_events = bucket});
    ASSERT_TRUE(log.ok());
    (*log)->Record({.subtype = "read", .who = "dr-201", .role = "clinician", .patients = {"p9"}});
    ASSERT_TRUE((*log)->Flush().ok());
    EXPECT_EQ(Seqs(*(*log)->ForPatients({"p9"}, 3)), (std::vector<int>{201, 200, 150}));
  }
  EXPECT_EQ(AuditLog::Open({.dir = dir_.string(), .index_bucket_events = 0}).status().code(),
            StatusCode::kInvalidArgument);
}

// A log written by a build that indexed pages by patient (the reference "patient"): its
// events are still found, after the new ones, and the chain continues from them.
TEST_F(AuditTest, PagesIndexedByAnOlderBuildAreStillFoundAfterTheNewOnes) {
  {
    auto s = store::OpenStore({.url = "sqlite:" + (dir_ / "audit.db").string()});
    ASSERT_TRUE(s.ok());
    store::PutRequest page;
    page.type = "Bundle";
    page.id = "000000000001";
    page.version = 1;
    page.method = "POST";
    page.json = R"({"resourceType":"Bundle","id":"000000000001","type":"collection","entry":[)"
                R"({"resource":{"resourceType":"AuditEvent","id":"000000000001","entity":[{"what":{"reference":"Patient/p1"}}]}},)"
                R"({"resource":{"resourceType":"AuditEvent","id":"000000000002","entity":[{"what":{"reference":"Patient/p2"}}]}}]})";
    page.index.references.push_back({"patient", "Patient", "p1"});
    page.index.references.push_back({"patient", "Patient", "p2"});
    ASSERT_TRUE((*s)->Write([&](store::WriteTransaction& tx) { return tx.Put(page); }).ok());
    ASSERT_TRUE((*s)->Close().ok());
  }
  auto log = AuditLog::Open({.dir = dir_.string()});
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  (*log)->Record({.subtype = "read", .who = "dr-3", .role = "clinician", .patients = {"p1"}});
  (*log)->Record({.subtype = "read", .who = "dr-4", .role = "clinician", .patients = {"p2"}});
  ASSERT_TRUE((*log)->Flush().ok());
  EXPECT_EQ(Seqs(*(*log)->ForPatients({"p1"}, 10)), (std::vector<int>{3, 1}));
  EXPECT_EQ(Seqs(*(*log)->ForPatients({"p1", "p2"}, 10)), (std::vector<int>{4, 3, 2, 1}));
  EXPECT_EQ(Seqs(*(*log)->ForPatients({"p1", "p2"}, 1)), (std::vector<int>{4}));
}

// Someone cuts the last page off and rewrites audit.head to match: only an
// anchor kept elsewhere still shows that records are missing.
TEST_F(AuditTest, AnAnchorDetectsRecordsCutOffEvenWhenTheHeadFileWasRewritten) {
  const std::string anchors = (dir_ / "elsewhere.anchors").string();
  auto write = [&](int n, int first) {
    auto log = AuditLog::Open({.dir = dir_.string(), .anchor_path = anchors, .anchor_interval = std::chrono::milliseconds(0)});
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < n; ++i) (*log)->Record({.subtype = "read", .who = "dr-" + std::to_string(first + i), .role = "clinician"});
    ASSERT_TRUE((*log)->Flush().ok());
  };
  write(3, 0);
  write(3, 10);  // records 4-6: the page that will be cut off
  auto all = ParseAuditAnchors(anchors);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_FALSE(all->empty());
  EXPECT_EQ(all->back().seq, 6);  // the head after the last batch (and the stop)
  auto intact = VerifyAuditLog(dir_.string(), *all);
  ASSERT_TRUE(intact.ok());
  EXPECT_TRUE(intact->ok) << intact->problem;
  EXPECT_GE(intact->anchors_checked, 2);
  EXPECT_EQ(intact->head_seq, 6);
  const std::string head6 = "6:" + intact->head_hash;

  Tamper("\"dr-10\"", [](std::string) { return std::nullopt; });
  auto cut = VerifyAuditLog(dir_.string());
  ASSERT_TRUE(cut.ok());
  ASSERT_FALSE(cut->ok);  // audit.head still says 6
  ASSERT_EQ(cut->head_seq, 3);
  {
    std::ofstream head((dir_ / "audit.head").string(), std::ios::trunc);
    head << cut->head_seq << " " << cut->head_hash << "\n";  // the attacker makes the head file agree
  }
  auto fooled = VerifyAuditLog(dir_.string());
  EXPECT_TRUE(fooled->ok) << "without an anchor the cut is invisible: " << fooled->problem;
  auto caught = VerifyAuditLog(dir_.string(), *all);
  EXPECT_FALSE(caught->ok);
  EXPECT_NE(caught->problem.find("cut off"), std::string::npos) << caught->problem;
  auto typed = ParseAuditAnchors(head6);  // the head an operator wrote down
  ASSERT_TRUE(typed.ok());
  EXPECT_FALSE(VerifyAuditLog(dir_.string(), *typed)->ok);
}

TEST_F(AuditTest, AnAnchorThatDisagreesNamesTheRewrittenRecordAndTamperingIsStillFound) {
  Write(5);
  auto v = VerifyAuditLog(dir_.string());
  const std::string good = "5:" + v->head_hash;
  auto wrong = ParseAuditAnchors("3:" + std::string(64, 'a'));
  ASSERT_TRUE(wrong.ok());
  auto bad = VerifyAuditLog(dir_.string(), *wrong);
  EXPECT_FALSE(bad->ok);
  EXPECT_EQ(bad->first_broken, 3);
  EXPECT_NE(bad->problem.find("rewritten"), std::string::npos) << bad->problem;
  Tamper("\"dr-1\"", [](std::string json) { return Replace(json, "\"dr-1\"", "\"dr-Z\""); });
  auto tampered = VerifyAuditLog(dir_.string(), *ParseAuditAnchors(good));
  EXPECT_FALSE(tampered->ok);
  EXPECT_EQ(tampered->first_broken, 2);
}

TEST_F(AuditTest, BadAnchorsAreRefusedWithTheFormatExpected) {
  EXPECT_EQ(ParseAuditAnchors("12:nothex").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseAuditAnchors((dir_ / "missing.anchors").string()).status().code(), StatusCode::kNotFound);
  { std::ofstream((dir_ / "bad.anchors").string()) << "7 deadbeef\n"; }
  auto bad = ParseAuditAnchors((dir_ / "bad.anchors").string());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("line 1"), std::string::npos) << bad.status().message();
}

TEST_F(AuditTest, VerifyingAFolderWithoutALogIsAnError) {
  EXPECT_FALSE(VerifyAuditLog((dir_ / "nothing-here").string()).ok());
}

}  // namespace
}  // namespace rhip::security
