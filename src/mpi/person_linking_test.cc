// Online linking of Patient records to FHIR Persons, stewardship, $ihe-pix and
// the person-wide identifier search, through the FHIR service as a client sees them.
#include <gtest/gtest.h>

#include <filesystem>

#include "rhip/fhir/json.h"
#include "rhip/mpi/empi_service.h"

namespace rhip::mpi {
namespace {

std::string Id18(const std::string& first17) { return first17 + IdCardCheckChar(first17); }

struct P {
  std::string id, name, birth, gender = "male", id_number, phone, org = "330402-H01", county = "330402", card;
  std::string extra;  // raw JSON members appended
};

std::string PatientJson(const P& p) {
  std::string j = R"({"resourceType":"Patient","id":")" + p.id + R"(","identifier":[{"system":"http://rhip.health/id/mrn/)" +
                  p.org + R"(","value":"M-)" + p.id + "\"}";
  if (!p.id_number.empty()) j += R"(,{"system":"urn:oid:2.16.156.10011.1.3","value":")" + p.id_number + "\"}";
  if (!p.card.empty()) j += R"(,{"system":"urn:oid:2.16.156.10011.1.19","value":")" + p.card + "\"}";
  j += "]";
  if (!p.name.empty()) j += R"(,"name":[{"text":")" + p.name + "\"}]";
  j += R"(,"gender":")" + p.gender + "\"";
  if (!p.birth.empty()) j += R"(,"birthDate":")" + p.birth + "\"";
  if (!p.phone.empty()) j += R"(,"telecom":[{"system":"phone","value":")" + p.phone + "\"}]";
  j += R"(,"address":[{"district":")" + p.county + "\"}]";
  return j + p.extra + "}";
}

// Thresholds chosen so that each grade is easy to reach with a handful of records:
// same ID number → certain; same name, birth date, sex and county → probable;
// the same without the county → the gray zone.
MatchModel TestModel() {
  MatchModel m = DefaultModel();
  m.certain = 22;
  m.probable = 16;
  m.possible = 3;
  return m;
}

class PersonLinkingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() / ("rhip-empi-" + std::to_string(::getpid()) + "-" +
                                                        ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db"))
                .string();
    for (const char* s : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + s);
    Open();
  }
  void TearDown() override {
    Close();
    for (const char* s : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + s);
  }
  void Open(bool wait_for_person_write = true) {
    auto s = store::OpenStore({.url = "sqlite:" + path_, .read_connections = 2});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    empi_ = std::make_unique<EmpiService>(store_.get(),
                                          EmpiOptions{.model = TestModel(), .wait_for_person_write = wait_for_person_write});
    ASSERT_TRUE(empi_->Load().ok());
    fhir::FhirServiceOptions o;
    o.operations.push_back(empi_->MatchOperation());
    o.operations.push_back(empi_->PixOperation());
    o.on_written = [this](const store::ResourceVersion& v) { empi_->OnWritten(v); };
    o.expand_search = [this](store::SearchQuery& q) { return empi_->ExpandSearch(q); };
    o.managed_types = {{"Person", "the EMPI keeps them"}};
    svc_ = fhir::NewFhirService(store_.get(), o);
  }
  void Close() {
    svc_.reset();
    if (empi_) empi_->Stop();
    empi_.reset();
    if (store_) ASSERT_TRUE(store_->Close().ok());
    store_.reset();
  }
  void Restart() {
    Close();
    Open();
  }
  // Straight into the store, as `rhip import` does: no EMPI involved.
  void PutDirect(const P& p) {
    auto doc = fhir::ParseJson(PatientJson(p));
    ASSERT_TRUE(doc.ok());
    fhir::SetVersionMeta(*doc, 1, 1);
    ASSERT_TRUE(store_->Write([&](store::WriteTransaction& tx) {
                        return tx.Put({.type = "Patient", .id = p.id, .version = 1, .last_updated = 1, .method = "PUT",
                                       .json = fhir::WriteJson(*doc), .index = {}});
                      }).ok());
  }
  fhir::RestResponse Call(const std::string& method, const std::string& path, const std::string& body = "",
                          std::vector<std::pair<std::string, std::string>> query = {}) {
    fhir::RestRequest r;
    r.method = method;
    r.path = path;
    r.body = body;
    r.query = std::move(query);
    r.base_url = "http://x/fhir";
    r.headers = {{"content-type", "application/fhir+json"}};
    return svc_->Handle(r);
  }
  void Put(const P& p) {
    auto r = Call("PUT", "Patient/" + p.id, PatientJson(p));
    ASSERT_TRUE(r.status == 200 || r.status == 201) << r.body;
  }
  fhir::RestResponse Api(const std::string& method, const std::string& path, const std::string& body = "",
                         std::vector<std::pair<std::string, std::string>> query = {}) {
    fhir::RestRequest r;
    r.method = method;
    r.path = path;
    r.body = body;
    r.query = std::move(query);
    return empi_->HandleApi(r);
  }
  std::string PersonOf(const std::string& patient) { return empi_->directory().PersonOf(patient).value_or(""); }
  fhir::Json Parse(const std::string& body) {
    auto d = fhir::ParseJson(body);
    EXPECT_TRUE(d.ok()) << body;
    return d.ok() ? std::move(*d) : fhir::Json();
  }
  std::vector<std::string> SearchIds(std::vector<std::pair<std::string, std::string>> query, const std::string& type = "Patient") {
    auto r = Call("GET", type, "", std::move(query));
    EXPECT_EQ(r.status, 200) << r.body;
    fhir::Json b = Parse(r.body);
    std::vector<std::string> ids;
    if (b.HasMember("entry"))
      for (const auto& e : b["entry"].GetArray()) ids.push_back(e["resource"]["id"].GetString());
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  std::string path_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<EmpiService> empi_;
  std::unique_ptr<fhir::FhirService> svc_;
};

const std::string kIdA = Id18("33040219900101123");
const std::string kIdC = Id18("33040219900101135");

TEST_F(PersonLinkingTest, EachPatientGetsOnePersonStoredAsFhirPersonAndIdsSurviveRestart) {
  Put({.id = "a1", .name = "张伟", .birth = "1990-01-01", .id_number = kIdA, .phone = "13812345678"});
  Put({.id = "a2", .name = "张玮", .birth = "1990-01-01", .id_number = kIdA, .org = "330402-T1"});
  Put({.id = "x1", .name = "李娜", .birth = "1985-05-05", .gender = "female"});
  const std::string pa = PersonOf("a1");
  ASSERT_FALSE(pa.empty());
  EXPECT_EQ(PersonOf("a2"), pa) << "the same ID number at another institution: the same person";
  EXPECT_NE(PersonOf("x1"), pa);
  EXPECT_TRUE(PersonSequence(pa).has_value()) << pa << " is a health-record number with its check character";
  EXPECT_EQ(pa.substr(0, 6), "330400");
  EXPECT_EQ(empi_->directory().PatientsOf(pa), (std::vector<std::string>{"a1", "a2"}));
  EXPECT_TRUE(empi_->directory().PatientsOf("33040000000009999").empty());
  EXPECT_FALSE(empi_->directory().PersonOf("nobody").has_value());

  // The FHIR Person: identifier, links with assurance, history.
  auto r = Call("GET", "Person/" + pa);
  ASSERT_EQ(r.status, 200) << r.body;
  fhir::Json person = Parse(r.body);
  EXPECT_EQ(std::string(person["identifier"][0]["system"].GetString()), "urn:oid:2.16.156.10011.1.2");
  EXPECT_EQ(std::string(person["identifier"][0]["value"].GetString()), pa);
  ASSERT_EQ(person["link"].Size(), 2u);
  EXPECT_EQ(std::string(person["link"][0]["target"]["reference"].GetString()), "Patient/a1");
  EXPECT_EQ(std::string(person["link"][0]["assurance"].GetString()), "level3") << "started the person";
  EXPECT_EQ(std::string(person["link"][1]["assurance"].GetString()), "level3") << "a certain match";
  EXPECT_EQ(std::string(person["meta"]["versionId"].GetString()), "2");
  auto trail = Parse(Api("GET", "persons/" + pa + "/trail").body);
  ASSERT_EQ(trail["changes"].Size(), 2u);
  EXPECT_EQ(std::string(trail["changes"][0]["action"].GetString()), "new");
  EXPECT_EQ(std::string(trail["changes"][1]["action"].GetString()), "auto-link");
  EXPECT_EQ(std::string(trail["changes"][1]["actor"].GetString()), "rhip-empi");
  EXPECT_EQ(trail["changes"][1]["before"].Size(), 1u);
  EXPECT_EQ(trail["changes"][1]["after"].Size(), 2u);

  // Clients cannot write Persons.
  EXPECT_EQ(Call("PUT", "Person/" + pa, r.body).status, 405);
  EXPECT_EQ(Call("DELETE", "Person/" + pa).status, 405);
  EXPECT_EQ(Call("POST", "", R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Person"},"request":{"method":"POST","url":"Person"}}]})").status, 405);

  // A restart reads the Persons back: same ids, and new persons continue the sequence.
  const std::string px = PersonOf("x1");
  Restart();
  EXPECT_EQ(PersonOf("a1"), pa);
  EXPECT_EQ(PersonOf("x1"), px);
  Put({.id = "a3", .name = "张伟", .birth = "1990-01-01", .id_number = kIdA, .org = "330402-T2"});
  EXPECT_EQ(PersonOf("a3"), pa);
  Put({.id = "y1", .name = "王芳", .birth = "1970-07-07", .gender = "female"});
  EXPECT_GT(*PersonSequence(PersonOf("y1")), std::max(*PersonSequence(pa), *PersonSequence(px)));
}

TEST_F(PersonLinkingTest, PatientsWrittenWithoutTheEmpiAreLinkedAtLoad) {
  // As after a crash between a Patient's commit and its Person's, or an offline import.
  PutDirect({.id = "d1", .name = "赵磊", .birth = "1960-02-02", .id_number = Id18("33040219600202031")});
  PutDirect({.id = "d2", .name = "赵磊", .birth = "1960-02-02", .id_number = Id18("33040219600202031"), .org = "330402-T1"});
  EXPECT_EQ(PersonOf("d1"), "");
  Restart();
  ASSERT_NE(PersonOf("d1"), "");
  EXPECT_EQ(PersonOf("d2"), PersonOf("d1"));
  const std::string p = PersonOf("d1");
  Restart();  // linked once: the next start changes nothing
  EXPECT_EQ(PersonOf("d1"), p);
  EXPECT_EQ(Parse(Call("GET", "Person/" + p).body)["meta"]["versionId"].GetString(), std::string("1"))
      << "both found in one batch: one Person version";
}

TEST_F(PersonLinkingTest, WithoutWaitingForThePersonWriteTheDecisionIsVisibleAndFlushMakesItDurable) {
  Close();
  Open(/*wait_for_person_write=*/false);
  Put({.id = "w1", .name = "张伟", .birth = "1990-01-01", .id_number = kIdA});
  Put({.id = "w2", .name = "张伟", .birth = "1990-01-01", .id_number = kIdA, .org = "330402-T1"});
  const std::string p = PersonOf("w1");
  ASSERT_FALSE(p.empty()) << "decided before the Patient write returned";
  EXPECT_EQ(PersonOf("w2"), p);
  ASSERT_TRUE(empi_->Flush().ok());
  fhir::Json person = Parse(Call("GET", "Person/" + p).body);
  EXPECT_EQ(person["link"].Size(), 2u);
  Restart();
  EXPECT_EQ(PersonOf("w2"), p);
}

TEST_F(PersonLinkingTest, AChainOfWeakLinksNeverJoinsTwoValidIdNumbers) {
  Put({.id = "a1", .name = "张伟", .birth = "1990-01-01", .id_number = kIdA, .phone = "13812345678"});
  Put({.id = "b1", .name = "张伟", .birth = "1990-01-01", .phone = "13812345678", .org = "330402-T1"});
  ASSERT_EQ(PersonOf("b1"), PersonOf("a1"));
  // Alike in everything but a different valid ID number: another person, however strong the chain through b1.
  Put({.id = "c1", .name = "张伟", .birth = "1990-01-01", .id_number = kIdC, .phone = "13812345678", .org = "330402-T2"});
  EXPECT_NE(PersonOf("c1"), PersonOf("a1"));
  // An automatically linked record that changes to a conflicting valid number leaves its person; the person keeps its id.
  const std::string pa = PersonOf("a1");
  Put({.id = "b1", .name = "张伟", .birth = "1990-01-01", .id_number = kIdC, .phone = "13812345678", .org = "330402-T1"});
  EXPECT_EQ(PersonOf("a1"), pa);
  EXPECT_NE(PersonOf("b1"), pa);
  EXPECT_EQ(PersonOf("b1"), PersonOf("c1"));
  EXPECT_EQ(empi_->directory().PatientsOf(pa), (std::vector<std::string>{"a1"}));
}

TEST_F(PersonLinkingTest, GrayZoneGoesToReviewWithAnExplanationAndTheDecisionSticks) {
  Put({.id = "g1", .name = "陈静", .birth = "1975-03-03", .gender = "female", .county = "330402"});
  // The same name, birth date and sex, another county, no ID number or phone: the gray zone.
  Put({.id = "g2", .name = "陈静", .birth = "1975-03-03", .gender = "female", .org = "330411-T1", .county = "330411"});
  EXPECT_NE(PersonOf("g2"), PersonOf("g1")) << "not linked automatically";
  auto list = Parse(Api("GET", "review").body);
  ASSERT_EQ(list["total"].GetInt(), 1) << fhir::WriteJson(list);
  const auto& item = list["items"][0];
  EXPECT_EQ(std::string(item["status"].GetString()), "open");
  EXPECT_EQ(std::string(item["records"][0]["patient"].GetString()), "g2");
  EXPECT_EQ(std::string(item["records"][1]["patient"].GetString()), "g1");
  EXPECT_EQ(std::string(item["records"][1]["name"].GetString()), "陈静");
  const auto& fields = item["explanation"]["fields"];
  ASSERT_EQ(fields.Size(), 7u);
  double sum = 0;
  for (const auto& f : fields.GetArray()) sum += f["log2_m_over_u"].GetDouble();
  EXPECT_NEAR(sum, item["weight"].GetDouble(), 0.05) << "the fields add up to the weight";
  EXPECT_EQ(std::string(fields[6]["field"].GetString()), "county");
  EXPECT_EQ(fields[6]["level"].GetInt(), 2);
  EXPECT_LT(fields[6]["log2_m_over_u"].GetDouble(), 0);
  EXPECT_EQ(std::string(fields[0]["meaning"].GetString()), "missing");
  const int64_t id = item["id"].GetInt64();

  // Errors: bad decision, no reason, unknown review.
  EXPECT_EQ(Api("POST", "review/" + std::to_string(id), R"({"decision":"maybe","steward":"s","reason":"r"})").status, 400);
  EXPECT_EQ(Api("POST", "review/" + std::to_string(id), R"({"decision":"link","steward":"s"})").status, 400);
  EXPECT_EQ(Api("POST", "review/999", R"({"decision":"link","steward":"s","reason":"r"})").status, 404);
  EXPECT_EQ(Api("DELETE", "review/" + std::to_string(id)).status, 405);

  auto decided = Api("POST", "review/" + std::to_string(id), R"({"decision":"link","steward":"steward-wang","reason":"moved county; same mother"})");
  ASSERT_EQ(decided.status, 200) << decided.body;
  EXPECT_EQ(PersonOf("g2"), PersonOf("g1"));
  EXPECT_EQ(Api("POST", "review/" + std::to_string(id), R"({"decision":"no-link","steward":"s","reason":"r"})").status, 409);
  EXPECT_EQ(Parse(Api("GET", "review").body)["total"].GetInt(), 0);
  auto done = Parse(Api("GET", "review", "", {{"status", "link"}}).body);
  ASSERT_EQ(done["total"].GetInt(), 1);
  EXPECT_EQ(std::string(done["items"][0]["steward"].GetString()), "steward-wang");
  // The steward's link is manual (level4) and survives updates and restarts.
  const std::string p = PersonOf("g1");
  Put({.id = "g2", .name = "陈静", .birth = "1975-03-04", .gender = "female", .org = "330411-T1", .county = "330411"});
  Restart();
  EXPECT_EQ(PersonOf("g2"), p);
  auto person = Parse(Api("GET", "persons/" + p).body);
  for (const auto& l : person["links"].GetArray())
    EXPECT_EQ(std::string(l["assurance"].GetString()), std::string(l["patient"].GetString()) == "g2" ? "level4" : "level3");
}

TEST_F(PersonLinkingTest, NoLinkDecisionKeepsRecordsApartThroughLaterMatches) {
  Put({.id = "n1", .name = "陈静", .birth = "1975-03-03", .gender = "female"});
  Put({.id = "n2", .name = "陈静", .birth = "1975-03-03", .gender = "female", .org = "330411-T1", .county = "330411"});
  auto list = Parse(Api("GET", "review").body);
  ASSERT_EQ(list["total"].GetInt(), 1);
  const std::string id = std::to_string(list["items"][0]["id"].GetInt64());
  ASSERT_EQ(Api("POST", "review/" + id, R"({"decision":"no-link","steward":"s1","reason":"twins"})").status, 200);
  // n2 moves to n1's county: now a probable match, but the steward said two people.
  Put({.id = "n2", .name = "陈静", .birth = "1975-03-03", .gender = "female", .org = "330411-T1", .county = "330402"});
  EXPECT_NE(PersonOf("n2"), PersonOf("n1"));
  Restart();
  Put({.id = "n2", .name = "陈静", .birth = "1975-03-03", .gender = "female", .phone = "13900001111",
       .org = "330411-T1", .county = "330402"});
  EXPECT_NE(PersonOf("n2"), PersonOf("n1"));
  EXPECT_EQ(Parse(Api("GET", "review").body)["total"].GetInt(), 0) << "no new review of a decided pair";
}

TEST_F(PersonLinkingTest, LinkUnlinkMergeUnmergeRoundTripsAndAreAudited) {
  Put({.id = "m1", .name = "刘洋", .birth = "1980-08-08", .id_number = Id18("33040219800808051")});
  Put({.id = "m2", .name = "刘洋", .birth = "1980-08-08", .id_number = Id18("33040219800808051"), .org = "330402-T1"});
  Put({.id = "m3", .name = "刘阳", .birth = "1980-08-18"});
  const std::string p1 = PersonOf("m1"), p3 = PersonOf("m3");
  ASSERT_EQ(PersonOf("m2"), p1);
  ASSERT_NE(p3, p1);
  auto before1 = empi_->Person(p1), before3 = empi_->Person(p3);

  // Merge p3 into p1, then unmerge: exactly the former persons again, same ids.
  auto merged = Api("POST", "merge", "{\"source\":\"" + p3 + "\",\"target\":\"" + p1 + "\",\"steward\":\"s\",\"reason\":\"same man\"}");
  ASSERT_EQ(merged.status, 200) << merged.body;
  EXPECT_EQ(PersonOf("m3"), p1);
  EXPECT_EQ(empi_->directory().PatientsOf(p3), (std::vector<std::string>{"m1", "m2", "m3"})) << "a merged id answers for the survivor";
  fhir::Json retired = Parse(Call("GET", "Person/" + p3).body);
  EXPECT_FALSE(retired["active"].GetBool());
  EXPECT_EQ(std::string(retired["link"][0]["target"]["reference"].GetString()), "Person/" + p1);
  EXPECT_EQ(Api("POST", "merge", "{\"source\":\"" + p3 + "\",\"target\":\"" + p1 + "\",\"steward\":\"s\",\"reason\":\"again\"}").status, 422);
  auto unmerged = Api("POST", "unmerge", "{\"person\":\"" + p3 + "\",\"steward\":\"s\",\"reason\":\"wrong merge\"}");
  ASSERT_EQ(unmerged.status, 200) << unmerged.body;
  EXPECT_EQ(PersonOf("m3"), p3);
  EXPECT_EQ(empi_->Person(p1)->links, before1->links);
  EXPECT_EQ(empi_->Person(p3)->links, before3->links);
  EXPECT_TRUE(empi_->Person(p3)->active);
  EXPECT_EQ(Api("POST", "unmerge", "{\"person\":\"" + p3 + "\",\"steward\":\"s\",\"reason\":\"x\"}").status, 422);
  // ... and automatic matching does not merge them back.
  Put({.id = "m3", .name = "刘洋", .birth = "1980-08-08"});
  EXPECT_EQ(PersonOf("m3"), p3);

  // Unlink m2 from p1: a new person, pinned; link it back by hand.
  auto unlinked = Parse(Api("POST", "unlink", R"({"patient":"m2","steward":"s","reason":"different man, same ID typed twice"})").body);
  const std::string p2 = unlinked["id"].GetString();
  EXPECT_NE(p2, p1);
  EXPECT_EQ(PersonOf("m2"), p2);
  EXPECT_EQ(Api("POST", "unlink", R"({"patient":"m2","steward":"s","reason":"x"})").status, 422) << "already alone";
  Put({.id = "m2", .name = "刘洋", .birth = "1980-08-08", .id_number = Id18("33040219800808051"), .phone = "13700000000", .org = "330402-T1"});
  EXPECT_EQ(PersonOf("m2"), p2) << "an update does not undo the steward's unlink";
  ASSERT_EQ(Api("POST", "link", "{\"patient\":\"m2\",\"person\":\"" + p1 + "\",\"steward\":\"s\",\"reason\":\"checked the card\"}").status, 200);
  EXPECT_EQ(PersonOf("m2"), p1);
  EXPECT_FALSE(empi_->Person(p2)->active) << "its only record left";
  // Errors.
  EXPECT_EQ(Api("POST", "link", R"({"patient":"nobody","person":"x","steward":"s","reason":"r"})").status, 404);
  EXPECT_EQ(Api("POST", "link", "{\"patient\":\"m1\",\"person\":\"" + p1 + "\"}").status, 400);
  EXPECT_EQ(Api("GET", "nothing").status, 404);
  Put({.id = "k1", .name = "周杰", .birth = "1979-01-01", .id_number = Id18("33040219790101011")});
  EXPECT_EQ(Api("POST", "link", "{\"patient\":\"k1\",\"person\":\"" + p1 + "\",\"steward\":\"s\",\"reason\":\"r\"}").status, 422)
      << "two valid ID numbers are two people, even for a steward";

  // Every change is in the trail, with who and why.
  auto trail = Parse(Api("GET", "persons/" + p3 + "/trail").body);
  std::vector<std::string> actions;
  for (const auto& c : trail["changes"].GetArray()) actions.push_back(c["action"].GetString());
  EXPECT_EQ(actions, (std::vector<std::string>{"new", "merge", "unmerge"}));
  EXPECT_EQ(std::string(trail["changes"][1]["actor"].GetString()), "s");
  EXPECT_NE(std::string(trail["changes"][1]["reason"].GetString()).find("same man"), std::string::npos);
  // And the Person's history has a version per change.
  fhir::Json history = Parse(Call("GET", "Person/" + p3 + "/_history").body);
  EXPECT_EQ(history["total"].GetInt(), 3);
}

TEST_F(PersonLinkingTest, BadInputIsStoredFlaggedAndNeverMergedOnWeakEvidence) {
  Put({.id = "q1", .name = "黄勇", .birth = "1966-06-06"});
  // A malformed ID number, otherwise a probable match: flagged, its own person, and a review.
  Put({.id = "q2", .name = "黄勇", .birth = "1966-06-06", .id_number = "33040219660606", .org = "330402-T1"});
  EXPECT_NE(PersonOf("q2"), PersonOf("q1"));
  auto person = Parse(Call("GET", "Person/" + PersonOf("q2")).body);
  EXPECT_EQ(std::string(person["meta"]["tag"][0]["code"].GetString()), "data-quality");
  EXPECT_EQ(std::string(person["link"][0]["assurance"].GetString()), "level1");
  bool flagged = false;
  for (const auto& e : person["link"][0]["extension"].GetArray())
    flagged |= std::string(e["valueCode"].GetString()) == "id-malformed";
  EXPECT_TRUE(flagged);
  auto reviews = Parse(Api("GET", "review").body);
  ASSERT_EQ(reviews["total"].GetInt(), 1);
  EXPECT_EQ(std::string(reviews["items"][0]["explanation"]["flags_a"][0].GetString()), "id-malformed");
  // No name at all: stored and linked on what it has (the same valid ID number, birth date: certain).
  const std::string id = Id18("33040219660606071");
  Put({.id = "q3", .name = "黄勇", .birth = "1966-06-06", .id_number = id, .org = "330402-T2"});
  Put({.id = "q4", .birth = "1966-06-06", .id_number = id, .org = "330402-T3"});
  EXPECT_EQ(PersonOf("q4"), PersonOf("q3"));
  EXPECT_NE(Call("GET", "Person/" + PersonOf("q4")).body.find("no-name"), std::string::npos);
  // A birth date in the future: stored, flagged, not used for matching.
  Put({.id = "q5", .name = "黄勇", .birth = "2199-01-01", .org = "330402-T4"});
  EXPECT_NE(PersonOf("q5"), "");
  EXPECT_NE(Call("GET", "Person/" + PersonOf("q5")).body.find("birth-invalid"), std::string::npos);
  // An impossible date written past the validator (an old import) is flagged too.
  PutDirect({.id = "q6", .name = "黄勇", .birth = "1966-02-30", .org = "330402-T5"});
  Restart();
  EXPECT_NE(Call("GET", "Person/" + PersonOf("q6")).body.find("birth-invalid"), std::string::npos);
  // Data-quality persons can be listed by their tag.
  EXPECT_GE(SearchIds({{"_tag", "http://rhip.health/CodeSystem/mpi-flag|data-quality"}}, "Person").size(), 3u);
}

TEST_F(PersonLinkingTest, SourceSystemMergeFollowsPatientLinkReplacedBy) {
  Put({.id = "s1", .name = "杨帆", .birth = "1991-09-09", .phone = "13600000001"});
  Put({.id = "s2", .name = "杨凡", .birth = "1991-09-19", .org = "330402-H01"});
  const std::string keep = PersonOf("s1"), gone = PersonOf("s2");
  ASSERT_NE(keep, gone);
  // HL7 ADT^A40 maps to this: the merged record, inactive, replaced by the survivor.
  Put({.id = "s2", .extra = R"(,"active":false,"link":[{"other":{"reference":"Patient/s1"},"type":"replaced-by"}])"});
  EXPECT_EQ(PersonOf("s2"), keep);
  EXPECT_FALSE(empi_->Person(gone)->active);
  EXPECT_EQ(empi_->Person(gone)->merged_into, keep);
  auto trail = Parse(Api("GET", "persons/" + keep + "/trail").body);
  EXPECT_EQ(std::string(trail["changes"][trail["changes"].Size() - 1]["action"].GetString()), "source-merge");
  // Imported without the EMPI, the merged record stored before its survivor: linked to it at load.
  PutDirect({.id = "t2", .extra = R"(,"active":false,"link":[{"other":{"reference":"Patient/t1"},"type":"replaced-by"}])"});
  PutDirect({.id = "t1", .name = "吴敏", .birth = "1992-02-02", .gender = "female"});
  Restart();
  ASSERT_NE(PersonOf("t1"), "");
  EXPECT_EQ(PersonOf("t2"), PersonOf("t1"));
}

TEST_F(PersonLinkingTest, PixListsEveryIdentifierOfThePerson) {
  Put({.id = "a1", .name = "张伟", .birth = "1990-01-01", .id_number = kIdA, .card = "HC0001"});
  Put({.id = "a2", .name = "张伟", .birth = "1990-01-01", .id_number = kIdA, .org = "330402-T1"});
  Put({.id = "a3", .name = "张伟", .birth = "1990-01-01", .phone = "13812345678", .org = "330402-T2", .card = "HC0001"});
  const std::string p = PersonOf("a1");
  ASSERT_EQ(PersonOf("a3"), p);
  auto pix = [&](std::vector<std::pair<std::string, std::string>> q) { return Call("GET", "Patient/$ihe-pix", "", std::move(q)); };
  auto r = pix({{"sourceIdentifier", "http://rhip.health/id/mrn/330402-T2|M-a3"}});
  ASSERT_EQ(r.status, 200) << r.body;
  fhir::Json out = Parse(r.body);
  std::set<std::string> ids, targets;
  for (const auto& param : out["parameter"].GetArray()) {
    if (std::string(param["name"].GetString()) == "targetIdentifier")
      ids.insert(std::string(param["valueIdentifier"]["system"].GetString()) + "|" + param["valueIdentifier"]["value"].GetString());
    else
      targets.insert(param["valueReference"]["reference"].GetString());
  }
  EXPECT_TRUE(ids.count("urn:oid:2.16.156.10011.1.2|" + p));
  EXPECT_TRUE(ids.count("urn:oid:2.16.156.10011.1.3|" + kIdA));
  EXPECT_TRUE(ids.count("urn:oid:2.16.156.10011.1.19|HC0001"));
  EXPECT_TRUE(ids.count("http://rhip.health/id/mrn/330402-H01|M-a1"));
  EXPECT_TRUE(ids.count("http://rhip.health/id/mrn/330402-T1|M-a2"));
  EXPECT_EQ(targets, (std::set<std::string>{"Patient/a1", "Patient/a2", "Patient/a3"}));
  // By the person id, with a target system.
  r = pix({{"sourceIdentifier", "urn:oid:2.16.156.10011.1.2|" + p}, {"targetSystem", "http://rhip.health/id/mrn/330402-T1"}});
  ASSERT_EQ(r.status, 200);
  out = Parse(r.body);
  ASSERT_EQ(out["parameter"].Size(), 2u);
  EXPECT_EQ(std::string(out["parameter"][0]["valueIdentifier"]["value"].GetString()), "M-a2");
  EXPECT_EQ(std::string(out["parameter"][1]["valueReference"]["reference"].GetString()), "Patient/a2");
  // The 15-digit form of the ID number finds the person too.
  const std::string id15 = kIdA.substr(0, 6) + kIdA.substr(8, 9);
  EXPECT_EQ(pix({{"sourceIdentifier", "urn:oid:2.16.156.10011.1.3|" + id15}}).status, 200);
  // Unknown and malformed.
  EXPECT_EQ(pix({{"sourceIdentifier", "urn:oid:2.16.156.10011.1.3|" + kIdC}}).status, 404);
  EXPECT_EQ(pix({{"sourceIdentifier", "no-bar"}}).status, 400);
  EXPECT_EQ(pix({{"sourceIdentifier", "|value"}}).status, 400);
  EXPECT_EQ(pix({}).status, 400);
  EXPECT_EQ(Call("POST", "Patient/$ihe-pix").status, 405);
  // Listed in the CapabilityStatement, and Person is read-only there.
  auto cap = Call("GET", "metadata").body;
  EXPECT_NE(cap.find("IHE.PIXm.pix"), std::string::npos);
  fhir::Json c = Parse(cap);
  for (const auto& res : c["rest"][0]["resource"].GetArray()) {
    if (std::string(res["type"].GetString()) != "Person") continue;
    for (const auto& i : res["interaction"].GetArray()) EXPECT_NE(std::string(i["code"].GetString()), "create");
  }
}

TEST_F(PersonLinkingTest, IdentifierSearchFindsThePersonsRecordsAtEveryInstitution) {
  Put({.id = "a1", .name = "张伟", .birth = "1990-01-01", .id_number = kIdA, .phone = "13812345678"});
  Put({.id = "a2", .name = "张伟", .birth = "1990-01-01", .phone = "13812345678", .org = "330402-T1"});  // no ID number
  Put({.id = "z1", .name = "王芳", .birth = "1970-07-07", .gender = "female", .id_number = Id18("33040219700707022")});
  ASSERT_EQ(PersonOf("a2"), PersonOf("a1"));
  EXPECT_EQ(SearchIds({{"identifier", "urn:oid:2.16.156.10011.1.3|" + kIdA}}), (std::vector<std::string>{"a1", "a2"}));
  EXPECT_EQ(SearchIds({{"identifier", "urn:oid:2.16.156.10011.1.2|" + PersonOf("a1")}}), (std::vector<std::string>{"a1", "a2"}));
  // An institution's own number stays an institution's own number.
  EXPECT_EQ(SearchIds({{"identifier", "http://rhip.health/id/mrn/330402-T1|M-a2"}}), (std::vector<std::string>{"a2"}));
  // Combined with other criteria, and through a chain from the clinical resources.
  EXPECT_EQ(SearchIds({{"identifier", "urn:oid:2.16.156.10011.1.3|" + kIdA}, {"_id", "a2,z1"}}), (std::vector<std::string>{"a2"}));
  ASSERT_EQ(Call("PUT", "Observation/o2",
                 R"({"resourceType":"Observation","id":"o2","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/a2"}})")
                .status,
            201);
  EXPECT_EQ(SearchIds({{"subject:Patient.identifier", "urn:oid:2.16.156.10011.1.3|" + kIdA}}, "Observation"),
            (std::vector<std::string>{"o2"}));
  EXPECT_TRUE(SearchIds({{"identifier", "urn:oid:2.16.156.10011.1.3|" + kIdC}}).empty());
  // Conditional writes still match exactly what they name.
  auto r = Call("PUT", "Patient", PatientJson({.id = "a1", .name = "张伟", .birth = "1990-01-01", .id_number = kIdA}),
                {{"identifier", "urn:oid:2.16.156.10011.1.3|" + kIdA}});
  EXPECT_EQ(r.status, 200) << "updates a1, the one record holding the number: " << r.body;
}

}  // namespace
}  // namespace rhip::mpi
