#include "rhip/mpi/empi_service.h"

#include <gtest/gtest.h>

#include "rhip/fhir/json.h"

namespace rhip::mpi {
namespace {

std::string Id18(const std::string& first17) { return first17 + IdCardCheckChar(first17); }

std::string PatientJson(const std::string& id, const std::string& name, const std::string& birth, const std::string& gender,
                        const std::string& id_number, const std::string& phone, const std::string& mrn_org = "330402-H01") {
  std::string j = R"({"resourceType":"Patient",)" + (id.empty() ? std::string() : "\"id\":\"" + id + "\",") +
                  R"("identifier":[{"system":"http://rhip.health/id/mrn/)" + mrn_org + R"(","value":"M-)" + id + "\"}";
  if (!id_number.empty()) j += R"(,{"system":"urn:oid:2.16.156.10011.1.3","value":")" + id_number + "\"}";
  j += R"(],"name":[{"text":")" + name + R"("}],"gender":")" + gender + R"(","birthDate":")" + birth + "\"";
  if (!phone.empty()) j += R"(,"telecom":[{"system":"phone","value":")" + phone + "\"}]";
  return j + R"(,"address":[{"district":"330402"}]})";
}

class EmpiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::OpenStore({.url = "sqlite::memory:", .read_connections = 2});
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
    empi_ = std::make_unique<EmpiService>(store_.get());
    // Some Patients exist before the service starts (an import, say): Load finds them.
    Put("old1", PatientJson("old1", "王秀英", "1950-03-02", "female", Id18("33040219500302002"), "13700000001"));
    ASSERT_TRUE(empi_->Load().ok());
    fhir::FhirServiceOptions o;
    o.operations.push_back(empi_->MatchOperation());
    o.on_written = [this](const store::ResourceVersion& v) { empi_->OnWritten(v); };
    svc_ = fhir::NewFhirService(store_.get(), o);
  }
  void Put(const std::string& id, const std::string& json) {
    // Straight into the store, bypassing the service (as `rhip import` does).
    auto doc = fhir::ParseJson(json);
    ASSERT_TRUE(doc.ok());
    fhir::SetVersionMeta(*doc, 1, 1);
    ASSERT_TRUE(store_->Write([&](store::WriteTransaction& tx) {
                        return tx.Put({.type = "Patient", .id = id, .version = 1, .last_updated = 1, .method = "PUT",
                                       .json = fhir::WriteJson(*doc), .index = {}});
                      }).ok());
  }
  fhir::RestResponse Call(const std::string& method, const std::string& path, const std::string& body) {
    fhir::RestRequest r;
    r.method = method;
    r.path = path;
    r.body = body;
    r.base_url = "http://x/fhir";
    r.headers = {{"content-type", "application/fhir+json"}};
    return svc_->Handle(r);
  }
  fhir::Json Match(const std::string& patient, const std::string& extra = "") {
    auto r = Call("POST", "Patient/$match",
                  R"({"resourceType":"Parameters","parameter":[{"name":"resource","resource":)" + patient + "}" + extra + "]}");
    EXPECT_EQ(r.status, 200) << r.body;
    auto d = fhir::ParseJson(r.body);
    return std::move(*d);
  }
  static std::string Grade(const fhir::JsonValue& entry) {
    return entry["search"]["extension"][0]["valueCode"].GetString();
  }
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<EmpiService> empi_;
  std::unique_ptr<fhir::FhirService> svc_;
};

TEST_F(EmpiTest, MatchGradesCandidatesAndTheIndexFollowsEveryWrite) {
  const std::string id = Id18("33040219900101123");
  ASSERT_EQ(Call("PUT", "Patient/a1", PatientJson("a1", "张伟", "1990-01-01", "male", id, "13812345678")).status, 201);
  ASSERT_EQ(Call("PUT", "Patient/b1", PatientJson("b1", "张玮", "1990-01-01", "male", "", "13812345678", "330402-T1")).status, 201);
  ASSERT_EQ(Call("PUT", "Patient/x1", PatientJson("x1", "李娜", "1985-05-05", "female", "", "13999999999")).status, 201);
  EXPECT_EQ(empi_->index().size(), 4u);
  // Another institution's registration of the same man, with the same ID number and a homophone.
  fhir::Json b = Match(PatientJson("", "张玮", "1990-01-01", "male", id, ""));
  ASSERT_GE(b["entry"].Size(), 2u);
  EXPECT_EQ(std::string(b["entry"][0]["resource"]["id"].GetString()), "a1");
  EXPECT_EQ(Grade(b["entry"][0]), "certain");
  EXPECT_GT(b["entry"][0]["search"]["score"].GetDouble(), 0.99);
  EXPECT_EQ(std::string(b["entry"][0]["search"]["mode"].GetString()), "match");
  EXPECT_EQ(std::string(b["entry"][1]["resource"]["id"].GetString()), "b1");
  for (const auto& e : b["entry"].GetArray()) EXPECT_NE(std::string(e["resource"]["id"].GetString()), "x1");
  // onlyCertainMatches and count.
  b = Match(PatientJson("", "张玮", "1990-01-01", "male", id, ""), R"(,{"name":"onlyCertainMatches","valueBoolean":true})");
  for (const auto& e : b["entry"].GetArray()) EXPECT_EQ(Grade(e), "certain");
  b = Match(PatientJson("", "张玮", "1990-01-01", "male", id, ""), R"(,{"name":"count","valueInteger":1})");
  EXPECT_EQ(b["entry"].Size(), 1u);
  // A record loaded before the service started is found too.
  b = Match(PatientJson("", "王秀英", "1950-03-02", "female", Id18("33040219500302002"), ""));
  ASSERT_GE(b["entry"].Size(), 1u);
  EXPECT_EQ(std::string(b["entry"][0]["resource"]["id"].GetString()), "old1");
  // A different valid ID number: never a match, however alike the rest.
  b = Match(PatientJson("", "张伟", "1990-01-01", "male", Id18("33040219900101145"), "13812345678"));
  for (const auto& e : b["entry"].GetArray()) EXPECT_NE(std::string(e["resource"]["id"].GetString()), "a1");
  // Deleted: gone from the index.
  ASSERT_EQ(Call("DELETE", "Patient/a1", "").status, 204);
  b = Match(PatientJson("", "张伟", "1990-01-01", "male", id, ""));
  for (const auto& e : b["entry"].GetArray()) EXPECT_NE(std::string(e["resource"]["id"].GetString()), "a1");
  EXPECT_EQ(empi_->index().size(), 3u);
}

TEST_F(EmpiTest, CapabilityStatementListsPatientMatch) {
  auto r = Call("GET", "metadata", "");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("http://hl7.org/fhir/OperationDefinition/Patient-match"), std::string::npos);
}

TEST_F(EmpiTest, BadParametersAreRefusedWithTheReason) {
  EXPECT_EQ(Call("POST", "Patient/$match", R"({"resourceType":"Parameters"})").status, 400);
  EXPECT_EQ(Call("POST", "Patient/$match", R"({"resourceType":"Patient"})").status, 400);
  auto r = Call("POST", "Patient/$match",
                R"({"resourceType":"Parameters","parameter":[{"name":"resource","resource":{"resourceType":"Observation"}}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("Patient"), std::string::npos);
  r = Call("POST", "Patient/$match",
           R"({"resourceType":"Parameters","parameter":[{"name":"resource","resource":{"resourceType":"Patient"}},{"name":"count","valueInteger":0}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Call("GET", "Patient/$match", "").status, 405);
  EXPECT_EQ(Call("POST", "Patient/$match", "{not json").status, 400);
  // A Patient with nothing to match on: an empty result, not an error.
  auto empty = Match(R"({"resourceType":"Patient"})");
  EXPECT_EQ(empty["total"].GetInt(), 0);
}

}  // namespace
}  // namespace rhip::mpi
