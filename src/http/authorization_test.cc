// The authorization matrix (issue 6): role × resource × relationship →
// allowed / denied, every cell through the HTTP API of the platform router,
// including attempts to reach another person's data by search, _include,
// _revinclude, chained parameters, $everything, history, vread, $export,
// $match and transactions.
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <filesystem>
#include <map>

#include "rhip/core/time.h"
#include "rhip/fhir/rest.h"
#include "rhip/http/serve.h"
#include "rhip/security/gate.h"
#include "rhip/store/store.h"

namespace rhip::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using security::Role;

// PER-1 has records at both institutions (pa1 at A, pb1 at B); PER-2 one at B (pb2).
class FakePersons : public mpi::PersonDirectory {
 public:
  std::optional<std::string> PersonOf(std::string_view patient) const override {
    if (patient == "pa1" || patient == "pb1") return "PER-1";
    if (patient == "pb2") return "PER-2";
    return std::nullopt;
  }
  std::vector<std::string> PatientsOf(std::string_view person) const override {
    if (person == "PER-1") return {"pa1", "pb1"};
    if (person == "PER-2") return {"pb2"};
    return {};
  }
};

std::string Day(int days_from_now) { return FormatLocalDate(NowMicros() + days_from_now * kMicrosPerDay); }

std::string Org(const std::string& id, const std::string& code) {
  return R"({"resourceType":"Organization","id":")" + id + R"(","identifier":[{"system":"http://rhip.health/id/org","value":")" +
         code + R"("}],"name":"Institution )" + code + R"("})";
}
std::string PatientJson(const std::string& id, const std::string& org_code, const std::string& name, const std::string& idno) {
  return R"({"resourceType":"Patient","id":")" + id + R"(","identifier":[{"system":"http://rhip.health/id/mrn/)" + org_code +
         R"(","value":"MRN-)" + id + R"("},{"system":"urn:oid:2.16.156.10011.1.3","value":")" + idno +
         R"("}],"name":[{"text":")" + name + R"("}],"telecom":[{"system":"phone","value":"13812345678"}],"gender":"male","birthDate":"1990-05-17","address":[{"text":"南湖区某路1号","district":"330402"}]})";
}
std::string Obs(const std::string& id, const std::string& patient, const std::string& org, const std::string& extra = "") {
  return R"({"resourceType":"Observation","id":")" + id + R"(","status":"final","code":{"text":"血红蛋白"},"subject":{"reference":"Patient/)" +
         patient + R"(","display":"张伟"},"performer":[{"reference":"Organization/)" + org + R"("}])" + extra + "}";
}
std::string Enc(const std::string& id, const std::string& patient, const std::string& org, int days_ago) {
  return R"({"resourceType":"Encounter","id":")" + id + R"(","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},"subject":{"reference":"Patient/)" +
         patient + R"("},"serviceProvider":{"reference":"Organization/)" + org + R"("},"period":{"start":")" + Day(-days_ago) +
         R"(","end":")" + Day(-days_ago) + R"("}})";
}

class AuthorizationMatrix : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::filesystem::temp_directory_path() / ("rhip-authz-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    store_ = std::move(*store::OpenStore({.url = "sqlite::memory:"}));
    auto fhir = fhir::NewFhirService(store_.get());
    auto put = [&](const std::string& type, const std::string& id, const std::string& json) {
      fhir::RestRequest r;
      r.method = "PUT";
      r.path = type + "/" + id;
      r.body = json;
      r.base_url = "http://test/fhir";
      auto out = fhir->Handle(r);
      ASSERT_LT(out.status, 300) << type << "/" << id << ": " << out.body;
    };
    put("Organization", "ORG-A", Org("ORG-A", "47000001"));
    put("Organization", "ORG-B", Org("ORG-B", "47000002"));
    put("Organization", "ORG-C", Org("ORG-C", "47000003"));
    put("Organization", "ORG-D", Org("ORG-D", "47000004"));
    put("Patient", "pa1", PatientJson("pa1", "47000001", "张伟", "330402199005171234"));
    put("Patient", "pb1", PatientJson("pb1", "47000002", "张伟", "330402199005171234"));
    put("Patient", "pb2", PatientJson("pb2", "47000002", "李娜", "330411198502023456"));
    put("Encounter", "e-a1", Enc("e-a1", "pa1", "ORG-A", 10));        // A cares for PER-1 (10 days ago)
    put("Encounter", "e-b2-old", Enc("e-b2-old", "pb2", "ORG-A", 200));  // too long ago: no relationship
    put("Observation", "o-a1", Obs("o-a1", "pa1", "ORG-A"));
    put("Observation", "o-b2", Obs("o-b2", "pb2", "ORG-B"));
    // PER-1's record at B points at PER-2's observation (an _include path to someone else's data).
    put("Observation", "o-b1", Obs("o-b1", "pb1", "ORG-B", R"(,"hasMember":[{"reference":"Observation/o-b2"}])"));
    put("ServiceRequest", "ref-c", R"({"resourceType":"ServiceRequest","id":"ref-c","status":"active","intent":"order","category":[{"coding":[{"code":"referral"}]}],"subject":{"reference":"Patient/pb2"},"performer":[{"reference":"Organization/ORG-C"}],"authoredOn":")" + Day(-5) + R"("})");
    put("EpisodeOfCare", "contract-d", R"({"resourceType":"EpisodeOfCare","id":"contract-d","status":"active","type":[{"coding":[{"system":"http://rhip.health/CodeSystem/episode-type","code":"family-doctor-contract"}]}],"patient":{"reference":"Patient/pb2"},"managingOrganization":{"reference":"Organization/ORG-D"},"period":{"start":")" + Day(-100) + R"(","end":")" + Day(265) + R"("}})");
    put("Person", "PER-1", R"({"resourceType":"Person","id":"PER-1","link":[{"target":{"reference":"Patient/pa1"}},{"target":{"reference":"Patient/pb1"}}]})");
    put("Person", "PER-2", R"({"resourceType":"Person","id":"PER-2","link":[{"target":{"reference":"Patient/pb2"}}]})");
    put("Practitioner", "dr-1", R"({"resourceType":"Practitioner","id":"dr-1","name":[{"text":"王医生"}]})");

    gate_ = std::move(*security::Gate::Open({.data_dir = dir_.string(), .store = store_.get(), .persons = &persons_}));
    ServeOptions so;
    so.gate = gate_.get();
    so.fhir.on_written = [](const store::ResourceVersion& v) { gate_->OnWritten(v); };
    auto fake_op = [](const fhir::RestRequest&) {
      fhir::RestResponse r;
      r.body = R"({"resourceType":"Bundle","type":"searchset"})";
      return r;
    };
    so.fhir.operations = {{"$export", fake_op}, {"$import", fake_op}, {"$match", fake_op}};
    so.extra_routes.push_back({"GET", "/api/mpi/queue", [](const HttpRequest&) { return HttpResponse::Json(200, "[]"); }});
    so.extra_routes.push_back({"GET", "/api/hl7/status", [](const HttpRequest&) { return HttpResponse::Json(200, "{}"); }});
    ServerOptions o;
    o.port = 0;
    o.threads = 2;
    o.handle_signals = false;
    o.access_log = false;
    server_ = std::make_unique<HttpServer>(o, PlatformRouter(so, *store_));
    ASSERT_TRUE(server_->Listen().ok());
    thread_ = std::thread([] { server_->Run(); });
  }
  static void TearDownTestSuite() {
    server_->Stop();
    thread_.join();
    server_.reset();
    gate_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  struct Response {
    int status = 0;
    std::string headers, body;
  };

  static std::string Token(Role role, const std::string& org = "", const std::string& person = "",
                           std::vector<std::string> scopes = {}) {
    security::Principal p{.subject = "matrix", .role = role, .org = org, .person = person};
    p.scopes = scopes.empty() ? security::DefaultScopes(role, role != Role::kSystem) : scopes;
    return *gate_->tokens().Issue(p, 600);
  }

  static Response Call(const std::string& token, const std::string& method, const std::string& target,
                       const std::string& body = "", const std::string& extra = "") {
    asio::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(server_->port())));
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n" +
                      (token.empty() ? "" : "Authorization: Bearer " + token + "\r\n") +
                      (body.empty() || extra.find("Content-Type") != std::string::npos ? "" : "Content-Type: application/fhir+json\r\n") + extra +
                      "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    asio::write(s, asio::buffer(req));
    std::string all;
    boost::system::error_code ec;
    char buf[8192];
    for (;;) {
      size_t n = s.read_some(asio::buffer(buf), ec);
      all.append(buf, n);
      if (ec) break;
    }
    Response r;
    r.status = std::atoi(all.substr(9, 3).c_str());
    const size_t split = all.find("\r\n\r\n");
    r.headers = all.substr(0, split);
    r.body = split == std::string::npos ? "" : all.substr(split + 4);
    return r;
  }

  static inline std::filesystem::path dir_;
  static inline std::unique_ptr<store::Store> store_;
  static inline FakePersons persons_;
  static inline std::unique_ptr<security::Gate> gate_;
  static inline std::unique_ptr<HttpServer> server_;
  static inline std::thread thread_;
};

// One cell of the matrix.
struct Cell {
  const char* what;
  Role role;
  const char* org;
  const char* person;
  const char* method;
  const char* target;
  int status;                        // expected HTTP status
  std::vector<std::string> has;      // substrings the body must contain
  std::vector<std::string> lacks;    // … and must not
  std::string body = "";
  std::string headers = "";
};

constexpr const char* A = "47000001";
constexpr const char* B = "47000002";
constexpr const char* C = "47000003";
constexpr const char* D = "47000004";
const std::string kGlass = "X-Break-Glass-Reason: unconscious, brought in by ambulance\r\n";

std::vector<Cell> Matrix() {
  return {
      // ---- resident PER-1 (records pa1 at A, pb1 at B) ----
      {"resident reads own record at A", Role::kResident, "", "PER-1", "GET", "/fhir/Patient/pa1", 200, {"\"id\":\"pa1\""}, {}},
      {"resident reads own record at B", Role::kResident, "", "PER-1", "GET", "/fhir/Observation/o-b1", 200, {"o-b1"}, {}},
      {"resident reads another person's observation", Role::kResident, "", "PER-1", "GET", "/fhir/Observation/o-b2", 403, {"another person"}, {"血红蛋白"}},
      {"resident reads another person's patient", Role::kResident, "", "PER-1", "GET", "/fhir/Patient/pb2", 403, {}, {"李娜"}},
      {"resident vreads another person's version", Role::kResident, "", "PER-1", "GET", "/fhir/Observation/o-b2/_history/1", 403, {}, {"血红蛋白"}},
      {"resident search is narrowed to own person", Role::kResident, "", "PER-1", "GET", "/fhir/Observation?_total=accurate", 200, {"\"total\":2", "o-a1", "o-b1"}, {"\"id\":\"o-b2\""}},
      {"resident searches by another subject", Role::kResident, "", "PER-1", "GET", "/fhir/Observation?subject=Patient/pb2&_total=accurate", 200, {"\"total\":0"}, {"\"id\":\"o-b2\""}},
      {"resident searches Patient by another ID number", Role::kResident, "", "PER-1", "GET", "/fhir/Patient?identifier=330411198502023456&_total=accurate", 200, {"\"total\":0"}, {"李娜"}},
      {"resident chained search on another person", Role::kResident, "", "PER-1", "GET", "/fhir/Observation?subject:Patient.identifier=330411198502023456&_total=accurate", 200, {"\"total\":0"}, {"\"id\":\"o-b2\""}},
      {"resident _include to another person's data", Role::kResident, "", "PER-1", "GET", "/fhir/Observation?_id=o-b1&_include=Observation:has-member", 200, {"\"id\":\"o-b1\""}, {"\"id\":\"o-b2\""}},
      {"resident _revinclude of another person's data", Role::kResident, "", "PER-1", "GET", "/fhir/Patient?_revinclude=Observation:subject", 200, {"o-a1"}, {"\"id\":\"o-b2\"", "李娜"}},
      {"resident $everything of own record", Role::kResident, "", "PER-1", "GET", "/fhir/Patient/pa1/$everything", 200, {"o-a1"}, {}},
      {"resident $everything of another person", Role::kResident, "", "PER-1", "GET", "/fhir/Patient/pb2/$everything", 403, {}, {"李娜"}},
      {"resident history of another person's resource", Role::kResident, "", "PER-1", "GET", "/fhir/Observation/o-b2/_history", 403, {}, {"血红蛋白"}},
      {"resident history of own resource", Role::kResident, "", "PER-1", "GET", "/fhir/Observation/o-b1/_history", 200, {"o-b1"}, {}},
      {"resident type history", Role::kResident, "", "PER-1", "GET", "/fhir/Observation/_history", 403, {}, {}},
      {"resident system history", Role::kResident, "", "PER-1", "GET", "/fhir/_history", 403, {}, {}},
      {"resident $export", Role::kResident, "", "PER-1", "GET", "/fhir/Patient/$export", 403, {}, {}},
      {"resident $match", Role::kResident, "", "PER-1", "POST", "/fhir/Patient/$match", 403, {}, {}, R"({"resourceType":"Parameters"})"},
      {"resident writes", Role::kResident, "", "PER-1", "PUT", "/fhir/Observation/o-a1", 403, {}, {}, Obs("o-a1", "pa1", "ORG-A")},
      {"resident batch read of another person", Role::kResident, "", "PER-1", "POST", "/fhir", 200, {"403"}, {"李娜"},
       R"({"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient/pb2"}}]})"},
      {"resident reads directory data", Role::kResident, "", "PER-1", "GET", "/fhir/Practitioner/dr-1", 200, {"王医生"}, {}},
      {"resident reads own Person", Role::kResident, "", "PER-1", "GET", "/fhir/Person/PER-1", 200, {"PER-1"}, {}},
      {"resident reads another Person", Role::kResident, "", "PER-1", "GET", "/fhir/Person/PER-2", 403, {}, {}},
      {"resident on the EMPI review API", Role::kResident, "", "PER-1", "GET", "/api/mpi/queue", 403, {}, {}},
      // ---- clinician at A: encounter 10 days ago with PER-1; 200 days ago with PER-2 (expired) ----
      {"clinician A reads PER-1 at A (encounter)", Role::kClinician, A, "", "GET", "/fhir/Observation/o-a1", 200, {"o-a1"}, {}},
      {"clinician A reads PER-1's record at B (same person)", Role::kClinician, A, "", "GET", "/fhir/Observation/o-b1", 200, {"o-b1"}, {}},
      {"clinician A reads PER-2 (encounter 200 days ago)", Role::kClinician, A, "", "GET", "/fhir/Observation/o-b2", 403, {"no care relationship"}, {"血红蛋白"}},
      {"clinician A breaks the glass for PER-2", Role::kClinician, A, "", "GET", "/fhir/Observation/o-b2", 200, {"o-b2"}, {}, "", kGlass},
      {"clinician A search narrowed to persons in care", Role::kClinician, A, "", "GET", "/fhir/Observation?_total=accurate", 200, {"\"total\":2", "o-a1", "o-b1"}, {"\"id\":\"o-b2\""}},
      {"clinician A searches PER-2 by subject", Role::kClinician, A, "", "GET", "/fhir/Observation?subject=Patient/pb2&_total=accurate", 200, {"\"total\":0"}, {}},
      {"clinician A searches PER-2 by subject, break-glass", Role::kClinician, A, "", "GET", "/fhir/Observation?subject=Patient/pb2&_total=accurate", 200, {"\"total\":1", "o-b2"}, {}, "", kGlass},
      {"clinician A finds PER-2 by ID number", Role::kClinician, A, "", "GET", "/fhir/Patient?identifier=330411198502023456&_total=accurate", 200, {"\"total\":0"}, {"李娜"}},
      {"clinician A _include to PER-2", Role::kClinician, A, "", "GET", "/fhir/Observation?_id=o-b1&_include=Observation:has-member", 200, {"o-b1"}, {"\"id\":\"o-b2\""}},
      {"clinician A $everything of PER-2", Role::kClinician, A, "", "GET", "/fhir/Patient/pb2/$everything", 403, {}, {"李娜"}},
      {"clinician A $everything of PER-1", Role::kClinician, A, "", "GET", "/fhir/Patient/pb1/$everything", 200, {"o-b1"}, {}},
      {"clinician A history of PER-2's resource", Role::kClinician, A, "", "GET", "/fhir/Observation/o-b2/_history", 403, {}, {}},
      {"clinician A $export", Role::kClinician, A, "", "GET", "/fhir/$export", 403, {}, {}},
      {"clinician A $match", Role::kClinician, A, "", "POST", "/fhir/Patient/$match", 403, {}, {}, R"({"resourceType":"Parameters"})"},
      {"clinician A writes", Role::kClinician, A, "", "POST", "/fhir/Encounter", 403, {"write"}, {}, Enc("x", "pa1", "ORG-A", 1)},
      // ---- clinicians with the other relationships to PER-2 ----
      {"clinician C reads PER-2 (referral to C)", Role::kClinician, C, "", "GET", "/fhir/Observation/o-b2", 200, {"o-b2"}, {}},
      {"clinician D reads PER-2 (family-doctor contract)", Role::kClinician, D, "", "GET", "/fhir/Observation/o-b2", 200, {"o-b2"}, {}},
      {"clinician D reads PER-1 (none)", Role::kClinician, D, "", "GET", "/fhir/Observation/o-a1", 403, {}, {}},
      // ---- system of institution A ----
      {"system A writes its own encounter", Role::kSystem, A, "", "PUT", "/fhir/Encounter/e-a2", 201, {}, {}, Enc("e-a2", "pa1", "ORG-A", 1)},
      {"system A writes an encounter of B", Role::kSystem, A, "", "PUT", "/fhir/Encounter/e-a3", 403, {"another institution"}, {}, Enc("e-a3", "pa1", "ORG-B", 1)},
      {"system A takes over B's observation", Role::kSystem, A, "", "PUT", "/fhir/Observation/o-b2", 403, {"belongs to another institution"}, {}, Obs("o-b2", "pb2", "ORG-A")},
      {"system A deletes B's observation", Role::kSystem, A, "", "DELETE", "/fhir/Observation/o-b2", 403, {}, {}},
      {"system A writes without an owner", Role::kSystem, A, "", "POST", "/fhir/Observation", 403, {"cannot tell"}, {},
       R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/pa1"}})"},
      {"system A registers its own patient", Role::kSystem, A, "", "PUT", "/fhir/Patient/pa9", 201, {}, {}, PatientJson("pa9", "47000001", "赵六", "330402199001011234")},
      {"system A registers a patient with B's MRN", Role::kSystem, A, "", "PUT", "/fhir/Patient/pa8", 403, {}, {}, PatientJson("pa8", "47000002", "赵七", "330402199001011234")},
      {"system A transaction with one foreign entry", Role::kSystem, A, "", "POST", "/fhir", 403, {}, {},
       "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[{\"resource\":" + Enc("e-t1", "pa1", "ORG-A", 1) +
           ",\"request\":{\"method\":\"PUT\",\"url\":\"Encounter/e-t1\"}},{\"resource\":" + Enc("e-t2", "pa1", "ORG-B", 1) +
           ",\"request\":{\"method\":\"PUT\",\"url\":\"Encounter/e-t2\"}}]}"},
      {"system A reads PER-1 (care)", Role::kSystem, A, "", "GET", "/fhir/Observation/o-b1", 200, {}, {}},
      {"system A reads PER-2", Role::kSystem, A, "", "GET", "/fhir/Observation/o-b2", 403, {}, {}},
      {"system A cannot break the glass", Role::kSystem, A, "", "GET", "/fhir/Observation/o-b2", 403, {}, {}, "", kGlass},
      {"system B updates its own observation", Role::kSystem, B, "", "PUT", "/fhir/Observation/o-b2", 200, {}, {}, Obs("o-b2", "pb2", "ORG-B")},
      {"system A on the HL7 status API", Role::kSystem, A, "", "GET", "/api/hl7/status", 403, {}, {}},
      // ---- CDC and commission: de-identified ----
      {"cdc line list of patients", Role::kCdc, "", "", "GET", "/fhir/Patient?_count=50", 200, {"\"gender\":\"male\"", "\"birthDate\":\"1990\"", "330402"},
       {"张伟", "李娜", "330402199005171234", "13812345678", "MRN-", "南湖区"}},
      {"cdc reads one patient", Role::kCdc, "", "", "GET", "/fhir/Patient/pb2", 200, {"\"district\":\"330402\""}, {"李娜", "330411198502023456", "13812345678"}},
      {"cdc observations without names in displays", Role::kCdc, "", "", "GET", "/fhir/Observation?_count=50", 200, {"血红蛋白"}, {"张伟"}},
      {"cdc searches by ID number", Role::kCdc, "", "", "GET", "/fhir/Patient?identifier=330411198502023456", 403, {"identifier"}, {"李娜"}},
      {"cdc searches by name", Role::kCdc, "", "", "GET", "/fhir/Patient?name=%E6%9D%8E", 403, {}, {}},
      {"cdc chained search by ID number", Role::kCdc, "", "", "GET", "/fhir/Observation?subject:Patient.identifier=330411198502023456", 403, {}, {}},
      {"cdc _include brings patients de-identified", Role::kCdc, "", "", "GET", "/fhir/Observation?_include=Observation:subject", 200, {"\"resourceType\":\"Patient\""}, {"李娜", "张伟", "330411198502023456"}},
      {"cdc $everything", Role::kCdc, "", "", "GET", "/fhir/Patient/pb2/$everything", 403, {}, {}},
      {"cdc history", Role::kCdc, "", "", "GET", "/fhir/Patient/pb2/_history", 403, {}, {}},
      {"cdc $export (de-identified)", Role::kCdc, "", "", "GET", "/fhir/$export", 200, {}, {}},
      {"cdc $import", Role::kCdc, "", "", "POST", "/fhir/$import", 403, {"admin"}, {}, R"({"resourceType":"Parameters"})"},
      {"commission $export (de-identified)", Role::kCommission, "", "", "GET", "/fhir/Patient/$export", 200, {}, {}},
      {"clinician A asks for a de-identified $export", Role::kClinician, A, "", "GET", "/fhir/$export?deidentify=true", 403, {}, {}},
      {"resident asks for a de-identified $export", Role::kResident, "", "PER-1", "GET", "/fhir/Patient/$export?deidentify=true", 403, {}, {}},
      {"admin $export with a bad deidentify", Role::kAdmin, "", "", "GET", "/fhir/$export?deidentify=yes", 400, {"deidentify must be true or false"}, {}},
      {"cdc writes", Role::kCdc, "", "", "PUT", "/fhir/Observation/o-a1", 403, {}, {}, Obs("o-a1", "pa1", "ORG-A")},
      {"commission line list", Role::kCommission, "", "", "GET", "/fhir/Patient", 200, {"\"birthDate\":\"1990\""}, {"张伟", "330402199005171234"}},
      {"commission searches by phone", Role::kCommission, "", "", "GET", "/fhir/Patient?telecom=13812345678", 403, {}, {}},
      // ---- data steward ----
      {"steward reads any patient", Role::kSteward, "", "", "GET", "/fhir/Patient/pb2", 200, {"李娜"}, {}},
      {"steward searches patients by ID number", Role::kSteward, "", "", "GET", "/fhir/Patient?identifier=330411198502023456&_total=accurate", 200, {"\"total\":1"}, {}},
      {"steward reads persons", Role::kSteward, "", "", "GET", "/fhir/Person?_total=accurate", 200, {"\"total\":2"}, {}},
      {"steward reads clinical data", Role::kSteward, "", "", "GET", "/fhir/Observation/o-a1", 403, {}, {}},
      {"steward searches clinical data", Role::kSteward, "", "", "GET", "/fhir/Observation", 403, {}, {}},
      {"steward $everything", Role::kSteward, "", "", "GET", "/fhir/Patient/pb2/$everything", 403, {}, {}},
      {"steward $match", Role::kSteward, "", "", "POST", "/fhir/Patient/$match", 200, {}, {}, R"({"resourceType":"Parameters"})"},
      {"steward review queue", Role::kSteward, "", "", "GET", "/api/mpi/queue", 200, {}, {}},
      {"steward $export", Role::kSteward, "", "", "GET", "/fhir/$export", 403, {}, {}},
      // ---- admin ----
      {"admin reads anyone", Role::kAdmin, "", "", "GET", "/fhir/Observation/o-b2", 200, {}, {}},
      {"admin system history", Role::kAdmin, "", "", "GET", "/fhir/_history", 200, {}, {}},
      {"admin $export", Role::kAdmin, "", "", "GET", "/fhir/$export", 200, {}, {}},
      {"admin HL7 status", Role::kAdmin, "", "", "GET", "/api/hl7/status", 200, {}, {}},
      {"admin full patient search", Role::kAdmin, "", "", "GET", "/fhir/Patient?identifier=330411198502023456", 200, {"李娜"}, {}},
  };
}

TEST_F(AuthorizationMatrix, EveryCellThroughTheHttpApi) {
  for (const Cell& c : Matrix()) {
    SCOPED_TRACE(c.what);
    const std::string token = Token(c.role, c.org, c.person);
    Response r = Call(token, c.method, c.target, c.body, c.headers);
    EXPECT_EQ(r.status, c.status) << c.what << "\n" << r.body.substr(0, 600);
    for (const auto& s : c.has) EXPECT_NE(r.body.find(s), std::string::npos) << c.what << ": missing " << s << "\n" << r.body.substr(0, 600);
    for (const auto& s : c.lacks) EXPECT_EQ(r.body.find(s), std::string::npos) << c.what << ": leaks " << s;
  }
}

TEST_F(AuthorizationMatrix, BreakGlassIsFlaggedInTheResponse) {
  Response r = Call(Token(Role::kClinician, A), "GET", "/fhir/Observation/o-b2", "", kGlass);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.headers.find("X-Rhip-Break-Glass"), std::string::npos);
  Response normal = Call(Token(Role::kClinician, A), "GET", "/fhir/Observation/o-a1");
  EXPECT_EQ(normal.headers.find("X-Rhip-Break-Glass"), std::string::npos);
}

TEST_F(AuthorizationMatrix, ScopesNarrowATokenBelowItsRole) {
  const std::string read_only = Token(Role::kSystem, A, "", {"system/*.read"});
  EXPECT_EQ(Call(read_only, "PUT", "/fhir/Encounter/e-a5", Enc("e-a5", "pa1", "ORG-A", 1)).status, 403);
  EXPECT_EQ(Call(read_only, "GET", "/fhir/Observation/o-a1").status, 200);
}

TEST_F(AuthorizationMatrix, ANewEncounterOpensThePersonToTheInstitution) {
  const std::string clinician_b = Token(Role::kClinician, B);
  EXPECT_EQ(Call(clinician_b, "GET", "/fhir/Observation/o-a1").status, 403);
  // B's system records a visit of PER-1 at B today: the index is kept current by the write.
  EXPECT_EQ(Call(Token(Role::kSystem, B), "PUT", "/fhir/Encounter/e-b1", Enc("e-b1", "pb1", "ORG-B", 0)).status, 201);
  EXPECT_EQ(Call(clinician_b, "GET", "/fhir/Observation/o-a1").status, 200);
}

TEST_F(AuthorizationMatrix, ErrorsDoNotEchoIdNumbersOrPhones) {
  Response r = Call(Token(Role::kAdmin), "POST", "/fhir", R"({"resourceType":"Bundle","type":"transaction","entry":[
      {"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient?identifier=110101199003074518"}},
       "request":{"method":"POST","url":"Observation"}}]})");
  EXPECT_GE(r.status, 400);
  EXPECT_EQ(r.body.find("110101199003074518"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("110101********4518"), std::string::npos) << r.body;
}

// ---- audit completeness: every endpoint leaves exactly one AuditEvent ----

struct Audited {
  const char* what;
  std::string token;  // "" = none
  const char* method;
  const char* target;
  std::string body;
  std::string content_type;
  std::string subtype;   // restful-interaction code (or api / login)
  std::string outcome;   // "0" or "4"
  std::string must_name; // e.g. "Patient/pa1"
};

TEST_F(AuthorizationMatrix, EveryEndpointProducesOneAuditEvent) {
  const std::string admin = Token(Role::kAdmin), clinician = Token(Role::kClinician, A),
                    resident = Token(Role::kResident, "", "PER-1"), steward = Token(Role::kSteward);
  auto secret = gate_->accounts().AddClient({.id = "his-audit", .org = A});
  ASSERT_TRUE(secret.ok());
  const std::string form = "application/x-www-form-urlencoded";
  const std::string fhir = "application/fhir+json";
  std::vector<Audited> cases = {
      {"read", clinician, "GET", "/fhir/Observation/o-a1", "", "", "read", "0", "Patient/pa1"},
      {"vread", clinician, "GET", "/fhir/Observation/o-a1/_history/1", "", "", "vread", "0", "Patient/pa1"},
      {"instance history", clinician, "GET", "/fhir/Observation/o-a1/_history", "", "", "history-instance", "0", "Patient/pa1"},
      {"type history", admin, "GET", "/fhir/Observation/_history", "", "", "history-type", "0", ""},
      {"system history", admin, "GET", "/fhir/_history?_count=5", "", "", "history-system", "0", ""},
      {"search", clinician, "GET", "/fhir/Observation?_count=10", "", "", "search-type", "0", "Patient/pb1"},
      {"POST _search", resident, "POST", "/fhir/Observation/_search", "status=final", form, "search-type", "0", "Patient/pa1"},
      {"$everything", resident, "GET", "/fhir/Patient/pa1/$everything", "", "", "operation", "0", "Patient/pa1"},
      {"create", Token(Role::kSystem, A), "POST", "/fhir/Encounter", Enc("ignored", "pa1", "ORG-A", 2), fhir, "create", "0", "Patient/pa1"},
      {"update", Token(Role::kSystem, A), "PUT", "/fhir/Encounter/e-aud", Enc("e-aud", "pa1", "ORG-A", 2), fhir, "update", "0", "Patient/pa1"},
      {"delete", Token(Role::kSystem, A), "DELETE", "/fhir/Encounter/e-aud", "", "", "delete", "0", "Patient/pa1"},
      {"batch", admin, "POST", "/fhir", R"({"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient/pb2"}}]})", fhir, "batch", "0", "Patient/pb2"},
      {"transaction", admin, "POST", "/fhir", "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[{\"resource\":" + Enc("e-tx", "pb2", "ORG-B", 1) + ",\"request\":{\"method\":\"PUT\",\"url\":\"Encounter/e-tx\"}}]}", fhir, "transaction", "0", "Patient/pb2"},
      {"export", admin, "GET", "/fhir/$export", "", "", "operation", "0", ""},
      {"match by steward", steward, "POST", "/fhir/Patient/$match", R"({"resourceType":"Parameters"})", fhir, "operation", "0", ""},
      {"refused read", resident, "GET", "/fhir/Observation/o-b2", "", "", "read", "4", ""},
      {"refused export", clinician, "GET", "/fhir/$export", "", "", "operation", "4", ""},
      {"no token", "", "GET", "/fhir/Observation/o-a1", "", "", "read", "4", ""},
      {"bad token", "x.y.z", "GET", "/fhir/Patient", "", "", "search-type", "4", ""},
      {"HL7 status API", admin, "GET", "/api/hl7/status", "", "", "api", "0", ""},
      {"EMPI review API", steward, "GET", "/api/mpi/queue", "", "", "api", "0", ""},
      {"EMPI review API refused", clinician, "GET", "/api/mpi/queue", "", "", "api", "4", ""},
      {"access log", resident, "GET", "/api/me/access-log", "", "", "api", "0", ""},
      {"login", "", "POST", "/auth/token", "grant_type=client_credentials&client_id=his-audit&client_secret=" + *secret, form, "login", "0", ""},
      {"failed login", "", "POST", "/auth/token", "grant_type=client_credentials&client_id=his-audit&client_secret=wrong", form, "login", "4", ""},
  };
  for (const Audited& c : cases) {
    SCOPED_TRACE(c.what);
    ASSERT_TRUE(gate_->audit()->Flush().ok());
    const int64_t before = gate_->audit()->written();
    Response r = Call(c.token, c.method, c.target, c.body, c.content_type.empty() ? "" : "Content-Type: " + c.content_type + "\r\n");
    ASSERT_TRUE(gate_->audit()->Flush().ok());
    EXPECT_EQ(gate_->audit()->written(), before + 1) << c.what << " (HTTP " << r.status << ")";
    auto last = gate_->audit()->Newest(1);
    ASSERT_TRUE(last.ok() && !last->empty());
    const std::string& ev = (*last)[0];
    EXPECT_NE(ev.find("\"code\":\"" + c.subtype + "\""), std::string::npos) << c.what << ": " << ev;
    EXPECT_NE(ev.find("\"outcome\":\"" + c.outcome + "\""), std::string::npos) << c.what << " (HTTP " << r.status << "): " << ev;
    if (!c.must_name.empty()) EXPECT_NE(ev.find(c.must_name), std::string::npos) << c.what << ": " << ev;
  }
  // Public endpoints leave no trace (they disclose nothing about anyone).
  ASSERT_TRUE(gate_->audit()->Flush().ok());
  const int64_t before = gate_->audit()->written();
  Call("", "GET", "/fhir/metadata");
  Call("", "GET", "/healthz");
  ASSERT_TRUE(gate_->audit()->Flush().ok());
  EXPECT_EQ(gate_->audit()->written(), before);
}

TEST_F(AuthorizationMatrix, AResidentSeesWhoReadTheirRecordsAndNobodyElses) {
  const std::string clinician_a = Token(Role::kClinician, A);
  EXPECT_EQ(Call(clinician_a, "GET", "/fhir/Observation/o-b1").status, 200);  // PER-1's record at B
  EXPECT_EQ(Call(clinician_a, "GET", "/fhir/Observation/o-b2", "", kGlass).status, 200);  // PER-2, break-glass
  Response mine = Call(Token(Role::kResident, "", "PER-1"), "GET", "/api/me/access-log");
  ASSERT_EQ(mine.status, 200) << mine.body;
  EXPECT_NE(mine.body.find("\"institution\":\"47000001\""), std::string::npos) << mine.body;
  EXPECT_NE(mine.body.find("\"role\":\"clinician\""), std::string::npos);
  EXPECT_EQ(mine.body.find("unconscious"), std::string::npos);  // PER-2's break-glass is not PER-1's business
  Response theirs = Call(Token(Role::kResident, "", "PER-2"), "GET", "/api/me/access-log");
  ASSERT_EQ(theirs.status, 200);
  EXPECT_NE(theirs.body.find("\"breakGlassReason\":\"unconscious, brought in by ambulance\""), std::string::npos) << theirs.body;
  EXPECT_EQ(Call(clinician_a, "GET", "/api/me/access-log").status, 403);
}

}  // namespace
}  // namespace rhip::http
