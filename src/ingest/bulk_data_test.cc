#include "rhip/ingest/bulk_data.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "rhip/fhir/json.h"

namespace rhip::ingest {
namespace {

namespace fs = std::filesystem;
constexpr const char* kBase = "http://x/fhir";

class BulkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("rhip-bulk-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "import");
    auto s = store::OpenStore({.url = "sqlite::memory:", .read_connections = 2});
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
    bulk_ = std::make_unique<BulkData>(store_.get(), BulkDataOptions{.dir = (dir_ / "bulk").string(),
                                                                      .import_root = (dir_ / "import").string()});
    fhir::FhirServiceOptions o;
    o.operations = bulk_->Operations();
    svc_ = fhir::NewFhirService(store_.get(), o);
  }
  void TearDown() override {
    bulk_.reset();
    fs::remove_all(dir_);
  }
  fhir::RestResponse Call(const std::string& method, const std::string& path,
                          std::vector<std::pair<std::string, std::string>> query = {}, std::string body = "",
                          std::vector<std::pair<std::string, std::string>> headers = {{"prefer", "respond-async"}}) {
    fhir::RestRequest r;
    r.method = method;
    r.path = path;
    r.query = std::move(query);
    r.body = std::move(body);
    r.headers = std::move(headers);
    r.base_url = kBase;
    return svc_->Handle(r);
  }
  static std::string Header(const fhir::RestResponse& r, const std::string& name) {
    for (const auto& [k, v] : r.headers)
      if (k == name) return v;
    return "";
  }
  void Put(const std::string& type, const std::string& id, const std::string& json) {
    auto r = Call("PUT", type + "/" + id, {}, json, {});
    ASSERT_LT(r.status, 300) << r.body;
  }
  void Seed() {
    for (const char* p : {"p1", "p2", "p3"})
      Put("Patient", p, std::string(R"({"resourceType":"Patient","id":")") + p + R"(","gender":"female"})");
    for (int i = 1; i <= 5; ++i) {
      const std::string patient = i <= 3 ? "p1" : "p2";
      Put("Observation", "o" + std::to_string(i),
          R"({"resourceType":"Observation","id":"o)" + std::to_string(i) +
              R"(","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/)" + patient + R"("}})");
    }
    Put("Organization", "org1", R"({"resourceType":"Organization","id":"org1","name":"卫生院"})");
    Put("Group", "g1", R"({"resourceType":"Group","id":"g1","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/p2"}}]})");
  }
  // Polls until the job is done; returns the manifest.
  fhir::Json Wait(const std::string& poll_url, int* polls = nullptr) {
    const std::string path = poll_url.substr(std::string(kBase).size() + 1);
    const std::string name = path.substr(0, path.find('?'));
    const std::string id = path.substr(path.find("_jobId=") + 7);
    for (int i = 0; i < 500; ++i) {
      auto r = Call("GET", name, {{"_jobId", id}});
      if (r.status == 200) {
        auto doc = fhir::ParseJson(r.body);
        EXPECT_TRUE(doc.ok());
        return std::move(*doc);
      }
      EXPECT_EQ(r.status, 202) << r.body;
      if (r.status != 202) break;
      EXPECT_FALSE(Header(r, "X-Progress").empty());
      if (polls) ++*polls;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "job did not finish";
    return fhir::Json();
  }
  std::map<std::string, std::vector<std::string>> Files(const fhir::Json& manifest) {
    std::map<std::string, std::vector<std::string>> out;
    for (const auto& o : manifest["output"].GetArray()) {
      const std::string url = o["url"].GetString();
      auto r = Call("GET", url.substr(std::string(kBase).size() + 1), {}, "", {});
      EXPECT_EQ(r.status, 200);
      EXPECT_EQ(r.content_type, "application/fhir+ndjson");
      std::stringstream ss(r.body);
      std::string line;
      while (std::getline(ss, line)) {
        auto doc = fhir::ParseJson(line);
        EXPECT_TRUE(doc.ok());
        out[o["type"].GetString()].push_back(std::string(fhir::StringMember(*doc, "id")));
      }
      EXPECT_EQ(static_cast<int64_t>(out[o["type"].GetString()].size()), o["count"].GetInt64());
    }
    return out;
  }
  fs::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<BulkData> bulk_;
  std::unique_ptr<fhir::FhirService> svc_;
};

TEST_F(BulkTest, SystemExportWritesOneNdjsonFilePerTypeAndHonoursTypeAndSince) {
  Seed();
  auto kick = Call("GET", "$export");
  ASSERT_EQ(kick.status, 202) << kick.body;
  const std::string poll = Header(kick, "Content-Location");
  ASSERT_EQ(poll.rfind(std::string(kBase) + "/$export-poll-status?_jobId=", 0), 0u) << poll;
  fhir::Json manifest = Wait(poll);
  EXPECT_EQ(std::string(manifest["request"].GetString()), std::string(kBase) + "/$export");
  EXPECT_FALSE(manifest["requiresAccessToken"].GetBool());
  auto files = Files(manifest);
  EXPECT_EQ(files["Patient"].size(), 3u);
  EXPECT_EQ(files["Observation"].size(), 5u);
  EXPECT_EQ(files["Organization"].size(), 1u);
  EXPECT_EQ(files["Group"].size(), 1u);
  // _type narrows it.
  manifest = Wait(Header(Call("GET", "$export", {{"_type", "Observation"}}), "Content-Location"));
  files = Files(manifest);
  EXPECT_EQ(files.size(), 1u);
  EXPECT_EQ(files["Observation"].size(), 5u);
  // _since: only what changed after it.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const std::string since = FormatInstant(NowMicros());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  Put("Patient", "p3", R"({"resourceType":"Patient","id":"p3","gender":"male"})");
  files = Files(Wait(Header(Call("GET", "$export", {{"_since", since}}), "Content-Location")));
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files["Patient"], std::vector<std::string>{"p3"});
}

TEST_F(BulkTest, PatientAndGroupExportsStayInsideTheCompartments) {
  Seed();
  auto files = Files(Wait(Header(Call("GET", "Patient/$export"), "Content-Location")));
  EXPECT_EQ(files["Patient"].size(), 3u);
  EXPECT_EQ(files["Observation"].size(), 5u);
  EXPECT_EQ(files.count("Organization"), 0u) << "not in any patient's compartment";
  files = Files(Wait(Header(Call("GET", "Group/g1/$export"), "Content-Location")));
  EXPECT_EQ(files["Patient"], std::vector<std::string>{"p2"});
  EXPECT_EQ(files["Observation"], (std::vector<std::string>{"o4", "o5"}));
  EXPECT_EQ(Call("GET", "Group/nope/$export").status, 404);
}

TEST_F(BulkTest, BadKickOffsAndUnknownJobsGetClearErrors) {
  auto r = Call("GET", "$export", {}, "", {});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("respond-async"), std::string::npos);
  EXPECT_EQ(Call("GET", "$export", {{"_type", "Patient,Nonsense"}}).status, 400);
  EXPECT_EQ(Call("GET", "$export", {{"_since", "yesterday"}}).status, 400);
  EXPECT_EQ(Call("GET", "$export", {{"_outputFormat", "text/csv"}}).status, 400);
  EXPECT_EQ(Call("GET", "$export-poll-status", {{"_jobId", "nope"}}).status, 404);
  EXPECT_EQ(Call("GET", "$export-file/nope/Patient.ndjson", {}, "", {}).status, 404);
  // A finished job serves only the files of its manifest.
  Seed();
  const std::string poll = Header(Call("GET", "$export", {{"_type", "Patient"}}), "Content-Location");
  Wait(poll);
  const std::string id = poll.substr(poll.find("_jobId=") + 7);
  EXPECT_EQ(Call("GET", "$export-file/" + id + "/../../etc/passwd", {}, "", {}).status, 404);
  // DELETE cancels and removes it.
  EXPECT_EQ(Call("DELETE", "$export-poll-status", {{"_jobId", id}}).status, 202);
  EXPECT_EQ(Call("GET", "$export-poll-status", {{"_jobId", id}}).status, 404);
  EXPECT_FALSE(fs::exists(dir_ / "bulk" / id));
}

TEST_F(BulkTest, ImportTakesABodyOrFilesUnderTheImportFolderOnly) {
  const std::string ndjson =
      R"({"resourceType":"Patient","id":"i1","gender":"male"})"
      "\n"
      R"({"resourceType":"Patient","id":"i2","birthDate":"1990-13-45"})"
      "\n";
  auto kick = Call("POST", "$import", {}, ndjson, {{"prefer", "respond-async"}, {"content-type", "application/fhir+ndjson"}});
  ASSERT_EQ(kick.status, 202) << kick.body;
  fhir::Json result = Wait(Header(kick, "Content-Location"));
  EXPECT_EQ(result["summary"]["created"].GetInt64(), 1);
  EXPECT_EQ(result["summary"]["failed"].GetInt64(), 1);
  EXPECT_EQ(result["error"][0]["line"].GetInt64(), 2);
  EXPECT_TRUE(store_->Read("Patient", "i1").ok());
  // From a server-side file under the import folder.
  std::ofstream(dir_ / "import" / "more.ndjson") << R"({"resourceType":"Patient","id":"i3"})" << "\n";
  const std::string params = R"({"resourceType":"Parameters","parameter":[{"name":"input","part":[{"name":"type","valueCode":"Patient"},{"name":"url","valueUri":"file://)" +
                             (dir_ / "import" / "more.ndjson").string() + R"("}]}]})";
  kick = Call("POST", "$import", {}, params, {{"prefer", "respond-async"}, {"content-type", "application/fhir+json"}});
  ASSERT_EQ(kick.status, 202) << kick.body;
  Wait(Header(kick, "Content-Location"));
  EXPECT_TRUE(store_->Read("Patient", "i3").ok());
  // Anywhere else: refused.
  std::string outside = params;
  outside.replace(outside.find((dir_ / "import").string()), (dir_ / "import").string().size(), (dir_ / "import" / "..").string());
  EXPECT_EQ(Call("POST", "$import", {}, outside, {{"prefer", "respond-async"}, {"content-type", "application/fhir+json"}}).status, 403);
  std::string etc = R"({"resourceType":"Parameters","parameter":[{"name":"input","part":[{"name":"url","valueUri":"file:///etc/passwd"}]}]})";
  EXPECT_EQ(Call("POST", "$import", {}, etc, {{"prefer", "respond-async"}, {"content-type", "application/fhir+json"}}).status, 403);
}

TEST_F(BulkTest, CapabilityStatementListsTheBulkOperations) {
  auto r = Call("GET", "metadata", {}, "", {});
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"), std::string::npos);
  EXPECT_NE(r.body.find("http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"), std::string::npos);
  EXPECT_NE(r.body.find("\"name\":\"import\""), std::string::npos);
}

}  // namespace
}  // namespace rhip::ingest
