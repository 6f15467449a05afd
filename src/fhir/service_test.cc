#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "rhip/fhir/json.h"
#include "rhip/fhir/rest.h"
#include "rhip/store/store.h"

namespace rhip::fhir {
namespace {

const char* kBase = "http://test/fhir";

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::OpenStore({.url = "sqlite::memory:", .read_connections = 2});
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
    svc_ = NewFhirService(store_.get(), {.default_page_size = 20, .max_page_size = 1000, .operations = {}});
  }
  RestResponse Call(const std::string& method, const std::string& path, const std::string& body = "",
                    std::vector<std::pair<std::string, std::string>> query = {},
                    std::vector<std::pair<std::string, std::string>> headers = {}) {
    RestRequest r;
    r.method = method;
    r.path = path;
    r.body = body;
    r.query = std::move(query);
    r.headers = std::move(headers);
    r.base_url = kBase;
    return svc_->Handle(r);
  }
  static Json Body(const RestResponse& r) {
    auto d = ParseJson(r.body);
    EXPECT_TRUE(d.ok()) << r.body;
    return d.ok() ? std::move(*d) : Json();
  }
  static std::string Header(const RestResponse& r, const std::string& name) {
    for (const auto& [k, v] : r.headers)
      if (k == name) return v;
    return "";
  }
  std::string CreatePatient(const std::string& mrn, const std::string& name = "张伟") {
    auto r = Call("POST", "Patient", Patient(mrn, name));
    EXPECT_EQ(r.status, 201) << r.body;
    return std::string(StringMember(Body(r), "id"));
  }
  static std::string Patient(const std::string& mrn, const std::string& name = "张伟", const std::string& id = "") {
    return std::string(R"({"resourceType":"Patient",)") + (id.empty() ? "" : "\"id\":\"" + id + "\",") +
           R"("identifier":[{"system":"http://rhip.health/id/mrn/1","value":")" + mrn +
           R"("}],"name":[{"text":")" + name + R"("}],"gender":"male","birthDate":"1990-01-01"})";
  }
  static std::string Obs(const std::string& patient, const std::string& when) {
    return R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"718-7"}]},"subject":{"reference":"Patient/)" +
           patient + R"("},"effectiveDateTime":")" + when + R"("})";
  }
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<FhirService> svc_;
};

TEST_F(ServiceTest, CreateReadVreadAndHeaders) {
  auto c = Call("POST", "Patient", Patient("M1"));
  ASSERT_EQ(c.status, 201) << c.body;
  std::string id(StringMember(Body(c), "id"));
  EXPECT_EQ(Header(c, "ETag"), "W/\"1\"");
  EXPECT_EQ(Header(c, "Location"), std::string(kBase) + "/Patient/" + id + "/_history/1");
  EXPECT_NE(Header(c, "Last-Modified").find("GMT"), std::string::npos);
  auto r = Call("GET", "Patient/" + id);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(StringMember(Body(r)["meta"], "versionId"), "1");
  EXPECT_EQ(Call("GET", "Patient/" + id + "/_history/1").status, 200);
  EXPECT_EQ(Call("GET", "Patient/" + id + "/_history/2").status, 404);
  EXPECT_EQ(Call("GET", "Patient/nope").status, 404);
  EXPECT_EQ(Call("GET", "Nope/1").status, 404);
  EXPECT_EQ(Call("GET", "Patient/bad$id").status, 400);
}

TEST_F(ServiceTest, CreateRejectsBadInputWithOperationOutcome) {
  auto malformed = Call("POST", "Patient", R"({"resourceType":"Patient",)");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_NE(malformed.body.find("line 1"), std::string::npos) << malformed.body;
  auto wrong = Call("POST", "Patient", R"({"resourceType":"Observation"})");
  EXPECT_EQ(wrong.status, 400);
  EXPECT_NE(wrong.body.find("does not match"), std::string::npos);
  auto invalid = Call("POST", "Patient", R"({"resourceType":"Patient","birthDate":"1990-02-30"})");
  EXPECT_EQ(invalid.status, 400);
  EXPECT_NE(invalid.body.find("Patient.birthDate"), std::string::npos);
  EXPECT_EQ(Call("POST", "Patient", "").status, 400);
  EXPECT_EQ(Call("POST", "Patient", Patient("M1"), {}, {{"content-type", "text/plain"}}).status, 415);
  EXPECT_EQ(Call("PATCH", "Patient/x", "{}").status, 405);
  EXPECT_EQ(*store_->Count("Patient"), 0);
}

TEST_F(ServiceTest, UpdateIfMatchDeleteAndGone) {
  std::string id = CreatePatient("M1");
  auto u = Call("PUT", "Patient/" + id, Patient("M1", "李娜", id), {}, {{"if-match", "W/\"1\""}});
  ASSERT_EQ(u.status, 200) << u.body;
  EXPECT_EQ(Header(u, "ETag"), "W/\"2\"");
  auto stale = Call("PUT", "Patient/" + id, Patient("M1", "王芳", id), {}, {{"if-match", "W/\"1\""}});
  EXPECT_EQ(stale.status, 412);
  auto mismatch = Call("PUT", "Patient/" + id, Patient("M1", "x", "other"));
  EXPECT_EQ(mismatch.status, 400);
  auto create_on_update = Call("PUT", "Patient/client-id", Patient("M9", "x", "client-id"));
  EXPECT_EQ(create_on_update.status, 201);
  EXPECT_EQ(Call("DELETE", "Patient/" + id).status, 204);
  EXPECT_EQ(Call("GET", "Patient/" + id).status, 410);
  EXPECT_EQ(Call("DELETE", "Patient/" + id).status, 204);
  EXPECT_EQ(Call("DELETE", "Patient/never").status, 404);
  auto h = Call("GET", "Patient/" + id + "/_history");
  ASSERT_EQ(h.status, 200);
  Json hb = Body(h);
  EXPECT_EQ(hb["total"].GetInt(), 3);
  EXPECT_EQ(StringMember(hb["entry"][0]["request"], "method"), "DELETE");
  EXPECT_EQ(Call("GET", "Patient/" + id + "/_history/1").status, 200);
}

TEST_F(ServiceTest, PreferReturnVariants) {
  auto minimal = Call("POST", "Patient", Patient("M1"), {}, {{"prefer", "return=minimal"}});
  EXPECT_EQ(minimal.status, 201);
  EXPECT_TRUE(minimal.body.empty());
  EXPECT_FALSE(Header(minimal, "Location").empty());
  auto oo = Call("POST", "Patient", Patient("M2"), {}, {{"prefer", "return=OperationOutcome"}});
  EXPECT_EQ(StringMember(Body(oo), "resourceType"), "OperationOutcome");
}

TEST_F(ServiceTest, ConditionalCreateAndUpdate) {
  auto first = Call("POST", "Patient", Patient("C1"), {}, {{"if-none-exist", "identifier=http://rhip.health/id/mrn/1|C1"}});
  EXPECT_EQ(first.status, 201);
  auto again = Call("POST", "Patient", Patient("C1"), {}, {{"if-none-exist", "identifier=http://rhip.health/id/mrn/1|C1"}});
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(*store_->Count("Patient"), 1);
  CreatePatient("C2");
  CreatePatient("C2");
  auto many = Call("POST", "Patient", Patient("C2"), {}, {{"if-none-exist", "identifier=C2"}});
  EXPECT_EQ(many.status, 412);
  auto cu = Call("PUT", "Patient", Patient("C1", "新名字"), {{"identifier", "http://rhip.health/id/mrn/1|C1"}});
  EXPECT_EQ(cu.status, 200) << cu.body;
  EXPECT_EQ(StringMember(Body(cu)["meta"], "versionId"), "2");
  auto cnew = Call("PUT", "Patient", Patient("C3"), {{"identifier", "C3"}});
  EXPECT_EQ(cnew.status, 201);
  EXPECT_EQ(Call("PUT", "Patient", Patient("C2"), {{"identifier", "C2"}}).status, 412);
}

TEST_F(ServiceTest, SearchWithIncludesElementsAndSummaryCount) {
  std::string p1 = CreatePatient("S1", "张伟");
  std::string p2 = CreatePatient("S2", "李娜");
  ASSERT_EQ(Call("POST", "Observation", Obs(p1, "2024-03-01T09:00:00+08:00")).status, 201);
  ASSERT_EQ(Call("POST", "Observation", Obs(p1, "2024-05-01T09:00:00+08:00")).status, 201);
  ASSERT_EQ(Call("POST", "Observation", Obs(p2, "2024-05-01T09:00:00+08:00")).status, 201);
  auto s = Call("GET", "Observation", "", {{"subject", "Patient/" + p1}, {"date", "ge2024-04"}, {"_include", "Observation:subject"}});
  ASSERT_EQ(s.status, 200) << s.body;
  Json b = Body(s);
  ASSERT_EQ(b["entry"].Size(), 2u);
  EXPECT_EQ(StringMember(b["entry"][0]["search"], "mode"), "match");
  EXPECT_EQ(StringMember(b["entry"][1]["search"], "mode"), "include");
  EXPECT_EQ(StringMember(b["entry"][1]["resource"], "id"), p1);
  auto rev = Call("GET", "Patient", "", {{"_id", p1}, {"_revinclude", "Observation:subject"}});
  EXPECT_EQ(Body(rev)["entry"].Size(), 3u);
  auto chain = Call("GET", "Observation", "", {{"subject:Patient.identifier", "S2"}, {"_total", "accurate"}});
  EXPECT_EQ(Body(chain)["total"].GetInt(), 1);
  auto count = Call("GET", "Observation", "", {{"_summary", "count"}});
  Json cb = Body(count);
  EXPECT_EQ(cb["total"].GetInt(), 3);
  EXPECT_FALSE(cb.HasMember("entry") && cb["entry"].Size() > 0);
  auto el = Call("GET", "Patient", "", {{"_elements", "gender"}});
  Json eb = Body(el);
  const JsonValue& res = eb["entry"][0]["resource"];
  EXPECT_TRUE(res.HasMember("gender"));
  EXPECT_FALSE(res.HasMember("name"));
  EXPECT_NE(WriteJson(res).find("SUBSETTED"), std::string::npos);
  auto name = Call("GET", "Patient", "", {{"name", "李"}});
  EXPECT_EQ(Body(name)["entry"].Size(), 1u);
}

TEST_F(ServiceTest, UnknownParametersLenientOutcomeStrictError) {
  CreatePatient("U1");
  auto lenient = Call("GET", "Patient", "", {{"foo", "bar"}});
  ASSERT_EQ(lenient.status, 200);
  EXPECT_NE(lenient.body.find("\"outcome\""), std::string::npos);
  auto strict = Call("GET", "Patient", "", {{"foo", "bar"}}, {{"prefer", "handling=strict"}});
  EXPECT_EQ(strict.status, 400);
  EXPECT_EQ(Call("GET", "Patient", "", {{"birthdate", "2024-13"}}).status, 400);
  auto post = Call("POST", "Patient/_search", "gender=male", {}, {{"content-type", "application/x-www-form-urlencoded"}});
  EXPECT_EQ(post.status, 200);
  EXPECT_EQ(Body(post)["entry"].Size(), 1u);
}

TEST_F(ServiceTest, PagingFollowsNextLinksAcrossConcurrentCreates) {
  for (int i = 0; i < 25; ++i) CreatePatient("P" + std::to_string(i));
  auto first = Call("GET", "Patient", "", {{"_count", "10"}});
  Json b = Body(first);
  std::vector<std::string> seen;
  for (auto& e : b["entry"].GetArray()) seen.emplace_back(StringMember(e["resource"], "id"));
  for (int i = 0; i < 5; ++i) CreatePatient("late" + std::to_string(i));  // must not shift pages
  for (;;) {
    std::string next;
    for (auto& l : b["link"].GetArray())
      if (StringMember(l, "relation") == "next") next = StringMember(l, "url");
    if (next.empty()) break;
    std::string q = next.substr(next.find('?') + 1);
    std::vector<std::pair<std::string, std::string>> params;
    size_t start = 0;
    while (start < q.size()) {
      size_t amp = q.find('&', start);
      if (amp == std::string::npos) amp = q.size();
      std::string kv = q.substr(start, amp - start);
      params.emplace_back(kv.substr(0, kv.find('=')), kv.substr(kv.find('=') + 1));
      start = amp + 1;
    }
    auto page = Call("GET", "Patient", "", params);
    ASSERT_EQ(page.status, 200) << page.body;
    b = Body(page);
    for (auto& e : b["entry"].GetArray()) seen.emplace_back(StringMember(e["resource"], "id"));
  }
  EXPECT_EQ(seen.size(), 25u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 25u);
}

std::string TxBundle(int n, int bad_index) {
  std::string s = R"({"resourceType":"Bundle","type":"transaction","entry":[)";
  for (int i = 0; i < n; ++i) {
    if (i) s += ",";
    std::string birth = i == bad_index ? "1990-02-30" : "1990-01-01";
    s += R"({"fullUrl":"urn:uuid:00000000-0000-4000-8000-)" + std::to_string(100000000000 + i) +
         R"(","resource":{"resourceType":"Patient","birthDate":")" + birth +
         R"("},"request":{"method":"POST","url":"Patient"}})";
  }
  return s + "]}";
}

TEST_F(ServiceTest, TransactionIsAllOrNothing) {
  auto bad = Call("POST", "", TxBundle(60, 49));
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("Bundle.entry[49]"), std::string::npos) << bad.body;
  EXPECT_EQ(*store_->Count("Patient"), 0);
  // A failure found only inside the store (If-Match conflict) also rolls everything back.
  std::string id = CreatePatient("T0");
  std::string tx = R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"resource":{"resourceType":"Patient","gender":"female"},"request":{"method":"POST","url":"Patient"}},
    {"resource":{"resourceType":"Patient","id":")" + id + R"(","gender":"female"},"request":{"method":"PUT","url":"Patient/)" + id + R"(","ifMatch":"W/\"7\""}}]})";
  auto conflict = Call("POST", "", tx);
  EXPECT_EQ(conflict.status, 412) << conflict.body;
  EXPECT_EQ(*store_->Count("Patient"), 1);
  auto ok = Call("POST", "", TxBundle(60, -1));
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(*store_->Count("Patient"), 61);
}

TEST_F(ServiceTest, TransactionRewritesUrnUuidReferences) {
  std::string tx = R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"fullUrl":"urn:uuid:11111111-1111-4111-8111-111111111111","resource":{"resourceType":"Patient","gender":"male"},"request":{"method":"POST","url":"Patient"}},
    {"resource":{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"subject":{"reference":"urn:uuid:11111111-1111-4111-8111-111111111111"}},"request":{"method":"POST","url":"Encounter"}}]})";
  auto r = Call("POST", "", tx);
  ASSERT_EQ(r.status, 200) << r.body;
  Json b = Body(r);
  EXPECT_EQ(StringMember(b, "type"), "transaction-response");
  std::string pid(StringMember(b["entry"][0]["resource"], "id"));
  EXPECT_EQ(StringMember(b["entry"][1]["resource"]["subject"], "reference"), "Patient/" + pid);
  EXPECT_EQ(StringMember(b["entry"][0]["response"], "status"), "201 Created");
  auto s = Call("GET", "Encounter", "", {{"subject", "Patient/" + pid}});
  EXPECT_EQ(Body(s)["entry"].Size(), 1u);
}

TEST_F(ServiceTest, TransactionResolvesConditionalReferencesAndRunsTheHookAtomically) {
  ASSERT_EQ(Call("PUT", "Organization/org-1", R"({"resourceType":"Organization","id":"org-1","identifier":[{"system":"http://rhip.health/id/org","value":"330402-H01"}]})").status, 201);
  const std::string pid = CreatePatient("M77");
  std::string tx = R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"resource":{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},
      "subject":{"reference":"Patient?identifier=http://rhip.health/id/mrn/1|M77"},
      "serviceProvider":{"reference":"Organization?identifier=http://rhip.health/id/org|330402-H01"}},
     "request":{"method":"POST","url":"Encounter"}}]})";
  RestRequest r;
  r.method = "POST";
  r.base_url = kBase;
  r.body = tx;
  int hook_calls = 0;
  r.in_transaction = [&](store::WriteTransaction& wtx) {
    ++hook_calls;
    return wtx.PutMessage({.sender = "330402-H01", .control_id = "X1", .type = "ADT^A04", .raw = "MSH", .status = "processed", .ack = "", .error = "", .attempts = 1});
  };
  auto ok = svc_->Handle(r);
  ASSERT_EQ(ok.status, 200) << ok.body;
  Json b = Body(ok);
  EXPECT_EQ(StringMember(b["entry"][0]["resource"]["subject"], "reference"), "Patient/" + pid);
  EXPECT_EQ(StringMember(b["entry"][0]["resource"]["serviceProvider"], "reference"), "Organization/org-1");
  EXPECT_EQ(hook_calls, 1);
  EXPECT_TRUE(store_->ReadMessage("330402-H01", "X1")->has_value());
  // A conditional reference that matches nothing fails the whole transaction, hook included.
  r.body = tx;
  r.body.replace(r.body.find("M77"), 3, "NOPE");
  r.in_transaction = [&](store::WriteTransaction& wtx) {
    return wtx.PutMessage({.sender = "330402-H01", .control_id = "X2", .type = "ADT^A04", .raw = "MSH", .status = "processed", .ack = "", .error = "", .attempts = 1});
  };
  auto bad = svc_->Handle(r);
  EXPECT_EQ(bad.status, 412) << bad.body;
  EXPECT_NE(bad.body.find("matches no resource"), std::string::npos) << bad.body;
  EXPECT_FALSE(store_->ReadMessage("330402-H01", "X2")->has_value());
  // A hook that fails rolls the entries back.
  r.body = tx;
  r.in_transaction = [](store::WriteTransaction&) { return Status(StatusCode::kUnavailable, "disk gone"); };
  EXPECT_EQ(svc_->Handle(r).status, 503);
  EXPECT_EQ(Body(Call("GET", "Encounter", "", {{"subject", "Patient/" + pid}}))["entry"].Size(), 1u);
}

TEST_F(ServiceTest, TransactionsSharingOneWriteEachStandOrFallAlone) {
  // What the HL7 appliers send: several transaction Bundles in one call. The second
  // updates the Patient the first created (conditional update on its MRN), so it must see
  // the first one's write; the third fails inside the store (a conditional reference that
  // matches nothing) and must leave nothing, hook included; the fourth is no transaction.
  auto tx = [](const std::string& name, const std::string& extra_entry = "") {
    return std::string(R"({"resourceType":"Bundle","type":"transaction","entry":[
      {"resource":{"resourceType":"Patient","identifier":[{"system":"http://rhip.health/id/mrn/1","value":"B1"}],
       "name":[{"text":")") + name + R"("}]},"request":{"method":"PUT","url":"Patient?identifier=http://rhip.health/id/mrn/1|B1"}})" +
           extra_entry + "]}";
  };
  std::vector<RestRequest> reqs(4);
  std::vector<int> hook_calls(4, 0);
  for (size_t i = 0; i < reqs.size(); ++i) {
    reqs[i].method = "POST";
    reqs[i].base_url = kBase;
    reqs[i].in_transaction = [&, i](store::WriteTransaction& wtx) {
      ++hook_calls[i];
      return wtx.PutMessage({.sender = "S", .control_id = "M" + std::to_string(i), .type = "ADT^A08", .raw = "MSH",
                             .status = "processed", .ack = "", .error = "", .attempts = 1});
    };
  }
  reqs[0].body = tx("first");
  reqs[1].body = tx("second");
  reqs[2].body = tx("third", R"(,{"resource":{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},
      "subject":{"reference":"Patient?identifier=http://rhip.health/id/mrn/1|NOPE"}},"request":{"method":"POST","url":"Encounter"}})");
  reqs[3].body = R"({"resourceType":"Bundle","type":"collection"})";
  auto resps = svc_->HandleTransactions(reqs);
  ASSERT_EQ(resps.size(), 4u);
  EXPECT_EQ(resps[0].status, 200) << resps[0].body;
  EXPECT_EQ(resps[1].status, 200) << resps[1].body;
  EXPECT_EQ(resps[2].status, 412) << resps[2].body;
  EXPECT_NE(resps[2].body.find("matches no resource"), std::string::npos) << resps[2].body;
  EXPECT_EQ(resps[3].status, 400) << "as Handle answers it: " << resps[3].body;
  EXPECT_EQ(StringMember(Body(resps[0])["entry"][0]["response"], "status"), "201 Created");
  EXPECT_EQ(StringMember(Body(resps[1])["entry"][0]["response"], "status"), "200 OK");
  auto found = Body(Call("GET", "Patient", "", {{"identifier", "http://rhip.health/id/mrn/1|B1"}}));
  ASSERT_EQ(found["entry"].Size(), 1u) << "one Patient: the second bundle saw the first";
  EXPECT_EQ(StringMember(found["entry"][0]["resource"]["name"][0], "text"), "second");
  EXPECT_EQ(StringMember(found["entry"][0]["resource"]["meta"], "versionId"), "2");
  EXPECT_EQ(*store_->Count("Encounter"), 0);
  EXPECT_TRUE(store_->ReadMessage("S", "M0")->has_value());
  EXPECT_TRUE(store_->ReadMessage("S", "M1")->has_value());
  EXPECT_FALSE(store_->ReadMessage("S", "M2")->has_value()) << "the failed bundle's hook is rolled back";
  EXPECT_EQ(hook_calls[3], 0);
}

TEST_F(ServiceTest, BatchEntriesSucceedOrFailIndependently) {
  std::string batch = R"({"resourceType":"Bundle","type":"batch","entry":[
    {"resource":{"resourceType":"Patient","gender":"male"},"request":{"method":"POST","url":"Patient"}},
    {"resource":{"resourceType":"Patient","birthDate":"bad"},"request":{"method":"POST","url":"Patient"}},
    {"request":{"method":"GET","url":"Patient/missing"}}]})";
  auto r = Call("POST", "", batch);
  ASSERT_EQ(r.status, 400) << r.body;  // the bundle itself is invalid (entry 1)
  std::string batch2 = R"({"resourceType":"Bundle","type":"batch","entry":[
    {"resource":{"resourceType":"Patient","gender":"male"},"request":{"method":"POST","url":"Patient"}},
    {"request":{"method":"GET","url":"Patient/missing"}}]})";
  auto r2 = Call("POST", "", batch2);
  ASSERT_EQ(r2.status, 200) << r2.body;
  Json b = Body(r2);
  EXPECT_EQ(StringMember(b["entry"][0]["response"], "status"), "201 Created");
  EXPECT_EQ(StringMember(b["entry"][1]["response"], "status"), "404 Not Found");
  EXPECT_EQ(*store_->Count("Patient"), 1);
  EXPECT_EQ(Call("POST", "", R"({"resourceType":"Bundle","type":"collection"})").status, 400);
}

TEST_F(ServiceTest, MetadataListsTypesParamsAndOperations) {
  auto r = Call("GET", "metadata");
  ASSERT_EQ(r.status, 200);
  Json b = Body(r);
  EXPECT_EQ(StringMember(b, "fhirVersion"), "4.0.1");
  bool patient_identifier = false, everything = false;
  for (auto& res : b["rest"][0]["resource"].GetArray()) {
    if (StringMember(res, "type") != "Patient") continue;
    for (auto& p : res["searchParam"].GetArray()) patient_identifier |= StringMember(p, "name") == "identifier";
    everything = res.HasMember("operation");
  }
  EXPECT_TRUE(patient_identifier);
  EXPECT_TRUE(everything);
}

TEST_F(ServiceTest, EverythingReturnsTheCompartment) {
  std::string p1 = CreatePatient("E1");
  std::string p2 = CreatePatient("E2");
  Call("POST", "Observation", Obs(p1, "2024-03-01T09:00:00+08:00"));
  Call("POST", "Observation", Obs(p2, "2024-03-01T09:00:00+08:00"));
  auto r = Call("GET", "Patient/" + p1 + "/$everything");
  ASSERT_EQ(r.status, 200) << r.body;
  Json b = Body(r);
  ASSERT_EQ(b["entry"].Size(), 2u);
  EXPECT_EQ(StringMember(b["entry"][0]["resource"], "resourceType"), "Patient");
  EXPECT_EQ(Call("GET", "Patient/nobody/$everything").status, 404);
  auto typed = Call("GET", "Patient/" + p1 + "/$everything", "", {{"_type", "Observation"}});
  EXPECT_EQ(Body(typed)["entry"].Size(), 1u);
}

TEST_F(ServiceTest, TypeAndSystemHistory) {
  std::string id = CreatePatient("H1");
  Call("POST", "Observation", Obs(id, "2024-03-01T09:00:00+08:00"));
  auto t = Call("GET", "Patient/_history");
  EXPECT_EQ(Body(t)["total"].GetInt(), 1);
  auto s = Call("GET", "_history", "", {{"_count", "1"}});
  Json b = Body(s);
  EXPECT_EQ(b["total"].GetInt(), 2);
  bool next = false;
  for (auto& l : b["link"].GetArray()) next |= StringMember(l, "relation") == "next";
  EXPECT_TRUE(next);
}

}  // namespace
}  // namespace rhip::fhir
