#include "rhip/ingest/ndjson_import.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "rhip/fhir/json.h"

namespace rhip::ingest {
namespace {

namespace fs = std::filesystem;

class NdjsonImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("rhip-ndjson-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto s = store::OpenStore({.url = "sqlite::memory:", .read_connections = 2});
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::vector<std::string>& lines) {
    const std::string path = (dir_ / name).string();
    std::ofstream out(path);
    for (const auto& l : lines) out << l << "\n";
    return path;
  }
  static std::string Patient(const std::string& id, const std::string& family) {
    return R"({"resourceType":"Patient","id":")" + id + R"(","name":[{"family":")" + family + R"("}]})";
  }
  ImportSummary Import(const std::string& path, int batch = 2) {
    ImportOptions o;
    o.batch_size = batch;
    auto s = ImportNdjson(*store_, {path}, o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : ImportSummary{};
  }

  fs::path dir_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(NdjsonImportTest, ARerunSkipsWhatIsHeldAndStoresOnlyWhatChanged) {
  const std::string file = Write("Patient.ndjson", {Patient("a", "Li"), Patient("b", "Wang"), Patient("c", "Zhao")});
  ImportSummary first = Import(file);
  EXPECT_EQ(first.created, 3);
  EXPECT_EQ(first.per_type["Patient"], 3);

  // The same file again (an interrupted import run once more): nothing written twice.
  ImportSummary again = Import(file);
  EXPECT_EQ(again.created, 0);
  EXPECT_EQ(again.unchanged, 3);
  EXPECT_EQ(again.updated, 0);
  auto b = store_->Read("Patient", "b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->version, 1);

  // One line changed: only that resource gets a version 2, with the new content and meta.
  Write("Patient.ndjson", {Patient("a", "Li"), Patient("b", "Sun"), Patient("c", "Zhao")});
  ImportSummary changed = Import(file);
  EXPECT_EQ(changed.updated, 1);
  EXPECT_EQ(changed.unchanged, 2);
  b = store_->Read("Patient", "b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->version, 2);
  auto doc = fhir::ParseJson(b->json);
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(fhir::StringMember((*doc)["name"][0], "family"), "Sun");
  EXPECT_EQ(fhir::StringMember((*doc)["meta"], "versionId"), "2");
  auto a = store_->Read("Patient", "a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->version, 1);
}

TEST_F(NdjsonImportTest, BadLinesAreNamedByFileAndLineAndTheRestIsImported) {
  const std::string file = Write("mixed.ndjson", {Patient("a", "Li"), "{not json", R"({"resourceType":"Patient"})",
                                                  R"({"resourceType":"Patient","id":"d","birthDate":"1990-13-45"})",
                                                  Patient("e", "Wu")});
  ImportSummary s = Import(file, 10);
  EXPECT_EQ(s.created, 2);
  EXPECT_EQ(s.failed, 3);
  ASSERT_EQ(s.errors.size(), 3u);
  std::vector<int64_t> lines;
  for (const auto& e : s.errors) {
    EXPECT_EQ(e.file, file);
    lines.push_back(e.line);
  }
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<int64_t>{2, 3, 4}));
  for (const auto& e : s.errors)
    if (e.line == 3) EXPECT_NE(e.message.find("no id"), std::string::npos) << e.message;
  EXPECT_TRUE(store_->Read("Patient", "e").ok());
  EXPECT_FALSE(store_->Read("Patient", "d").ok());
}

}  // namespace
}  // namespace rhip::ingest

namespace rhip::ingest {
namespace {

// A line without meta is stored as written with its version meta appended (no
// second rendering); one with meta is rendered with its meta updated. Both read
// back as the resource with versionId 1 and the import's lastUpdated.
TEST_F(NdjsonImportTest, VersionOneIsTheLineWithItsMetaAndReadsLikeTheResource) {
  const std::string file = Write("Patient.ndjson", {
      R"({"resourceType": "Patient", "id":"a", "name":[{"text":"\u5f20\u4f1f"}], "birthDate":"1990-01-01"}  )",
      R"({"resourceType":"Patient","id":"b","meta":{"versionId":"7","profile":["http://example.org/p"]},"gender":"male"})",
      std::string(R"({"resourceType":"Patient","id":"c","gender":"female"})") + "\r"});
  ImportSummary s = Import(file);
  ASSERT_EQ(s.created, 3) << (s.errors.empty() ? "" : s.errors[0].message);
  for (const char* id : {"a", "b", "c"}) {
    auto v = store_->Read("Patient", id);
    ASSERT_TRUE(v.ok()) << id;
    auto doc = fhir::ParseJson(v->json);
    ASSERT_TRUE(doc.ok()) << id << ": " << v->json;
    const auto& meta = (*doc)["meta"];
    EXPECT_EQ(fhir::StringMember(meta, "versionId"), "1") << v->json;
    EXPECT_EQ(fhir::StringMember(meta, "lastUpdated"), FormatInstant(v->last_updated)) << v->json;
    EXPECT_EQ(fhir::StringMember(*doc, "id"), id);
  }
  auto a = fhir::ParseJson(store_->Read("Patient", "a")->json);
  EXPECT_EQ(fhir::StringMember((*a)["name"][0], "text"), "张伟");
  auto b = fhir::ParseJson(store_->Read("Patient", "b")->json);
  ASSERT_TRUE((*b)["meta"].HasMember("profile"));
  EXPECT_EQ(std::string((*b)["meta"]["profile"][0].GetString()), "http://example.org/p");
  // Searchable as any other import, and a re-run finds every line unchanged.
  auto page = store_->Search({.type = "Patient", .criteria = {{.param = "birthdate", .type = store::ParamType::kDate,
                                                                .values = {{.range = {0, INT64_MAX}}}}}});
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->resources.size(), 1u);
  EXPECT_EQ(page->resources[0].id, "a");
  ImportSummary again = Import(file);
  EXPECT_EQ(again.unchanged, 3);
  EXPECT_EQ(again.created + again.updated, 0);
}

}  // namespace
}  // namespace rhip::ingest

namespace rhip::ingest {
namespace {

// on_written (the server's $import tells the EMPI) gets every version written, in
// the order of the lines, batch by batch, with the JSON the store holds.
TEST_F(NdjsonImportTest, OnWrittenReportsEveryWrittenVersionInLineOrder) {
  const std::string file = Write("Patient.ndjson", {Patient("a", "Li"), Patient("b", "Wang"), Patient("c", "Zhao")});
  std::vector<store::ResourceVersion> seen;
  ImportOptions o;
  o.batch_size = 2;
  o.threads = 1;
  o.on_written = [&](const std::vector<store::ResourceVersion>& batch) {
    seen.insert(seen.end(), batch.begin(), batch.end());
  };
  ASSERT_TRUE(ImportNdjson(*store_, {file}, o).ok());
  ASSERT_EQ(seen.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(seen[i].id, std::string(1, static_cast<char>('a' + i)));
    EXPECT_EQ(seen[i].version, 1);
    EXPECT_EQ(seen[i].json, store_->Read("Patient", seen[i].id)->json);
  }
  // A re-run with b changed reports only b's version 2; unchanged lines are not reported.
  const std::string again = Write("Patient2.ndjson", {Patient("a", "Li"), Patient("b", "Qian"), Patient("c", "Zhao")});
  seen.clear();
  ASSERT_TRUE(ImportNdjson(*store_, {again}, o).ok());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].id, "b");
  EXPECT_EQ(seen[0].version, 2);
  EXPECT_EQ(seen[0].json, store_->Read("Patient", "b")->json);
  EXPECT_NE(seen[0].json.find("Qian"), std::string::npos);
}

}  // namespace
}  // namespace rhip::ingest
