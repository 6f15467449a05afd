#include "rhip/gen/generator.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <unicode/ucnv.h>

#include "rhip/core/id_card.h"

namespace rhip::gen {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<rapidjson::Document> ReadNdjson(const fs::path& p) {
  std::vector<rapidjson::Document> out;
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line)) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    EXPECT_FALSE(d.HasParseError()) << p << ": " << line.substr(0, 200);
    out.push_back(std::move(d));
  }
  return out;
}

// Reads a CSV with a header into rows of columns (no quoting: the generator writes none).
std::vector<std::vector<std::string>> ReadCsv(const fs::path& p) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> cols;
    std::stringstream ss(line);
    std::string col;
    while (std::getline(ss, col, ',')) cols.push_back(col);
    if (!line.empty() && line.back() == ',') cols.emplace_back();
    rows.push_back(cols);
  }
  return rows;
}

std::string RefId(const rapidjson::Value& ref) {
  std::string r = ref["reference"].GetString();
  return r.substr(r.find('/') + 1);
}
std::string PersonOf(const std::string& patient_id) { return "P" + patient_id.substr(4, 8); }  // pat-00000001-ORG

// One generated region shared by the distribution tests (2,000 residents × 3 years).
class GeneratedRegion : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("rhip-gen-test-" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    GenOptions o;
    o.residents = 2000;
    o.seed = 11;
    o.years = 3;
    o.out = dir_->string();
    auto s = GenerateRegion(o, nullptr);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    summary_ = new GenSummary(*s);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete summary_;
  }
  static fs::path* dir_;
  static GenSummary* summary_;
};
fs::path* GeneratedRegion::dir_ = nullptr;
GenSummary* GeneratedRegion::summary_ = nullptr;

TEST_F(GeneratedRegion, SameSeedGivesIdenticalBytesAndOtherSeedsDiffer) {
  auto again = fs::temp_directory_path() / ("rhip-gen-again-" + std::to_string(::getpid()));
  fs::remove_all(again);
  GenOptions o;
  o.residents = 2000;
  o.seed = 11;
  o.years = 3;
  o.out = again.string();
  ASSERT_TRUE(GenerateRegion(o, nullptr).ok());
  for (const char* f : {"fhir/Patient.ndjson", "fhir/Encounter.ndjson", "fhir/Claim.ndjson", "truth/patients.csv",
                        "truth/indicators.csv"})
    EXPECT_EQ(Slurp(*dir_ / f), Slurp(again / f)) << f;
  fs::remove_all(again);
  o.seed = 12;
  ASSERT_TRUE(GenerateRegion(o, nullptr).ok());
  EXPECT_NE(Slurp(*dir_ / "fhir/Patient.ndjson"), Slurp(again / "fhir/Patient.ndjson"));
  fs::remove_all(again);
}

TEST_F(GeneratedRegion, SurnamesFollowNationalFrequencies) {
  // Person-level names come from the truth: take each person's first record.
  std::map<std::string, std::string> first_record;
  std::ifstream truth(*dir_ / "truth/patients.csv");
  std::string line;
  std::getline(truth, line);
  std::map<std::string, std::string> person_of;
  while (std::getline(truth, line)) {
    auto c1 = line.find(','), c2 = line.find(',', c1 + 1);
    std::string rid = line.substr(0, c1), pid = line.substr(c1 + 1, c2 - c1 - 1);
    if (line.substr(c2 + 1).find("name") == std::string::npos) person_of[rid] = pid;
  }
  std::map<std::string, std::string> surname_of_person;
  for (auto& p : ReadNdjson(*dir_ / "fhir/Patient.ndjson")) {
    auto it = person_of.find(p["id"].GetString());
    if (it != person_of.end()) surname_of_person[it->second] = p["name"][0]["family"].GetString();
  }
  std::map<std::string, int> counts;
  for (auto& [_, s] : surname_of_person) counts[s]++;
  int top5 = counts["王"] + counts["李"] + counts["张"] + counts["刘"] + counts["陈"];
  double share = static_cast<double>(top5) / static_cast<double>(surname_of_person.size());
  EXPECT_GT(share, 0.27);  // DOMAIN B.2: ~30 %
  EXPECT_LT(share, 0.37);
}

TEST_F(GeneratedRegion, AgePyramidVisitRatesAndCareShares) {
  std::map<std::string, std::string> org_level, org_county;
  for (auto& o : ReadNdjson(*dir_ / "fhir/Organization.ndjson")) {
    org_level[o["id"].GetString()] = o["type"][0]["coding"][0]["code"].GetString();
    org_county[o["id"].GetString()] = o["address"][0]["district"].GetString();
  }
  std::map<std::string, std::string> patient_county;
  int old = 0, people = 0;
  for (auto& p : ReadNdjson(*dir_ / "fhir/Patient.ndjson")) {
    patient_county[p["id"].GetString()] = p["address"][0]["district"].GetString();
  }
  // ages from the population register (truth/residents.csv): ≥ 65 at the start (2021)
  for (const auto& row : ReadCsv(*dir_ / "truth/residents.csv")) {
    ++people;
    old += row[2] < "1956-01-01";
  }
  EXPECT_EQ(people, 2000);
  std::ifstream truth(*dir_ / "truth/patients.csv");
  std::string line;
  std::getline(truth, line);
  std::set<std::string> persons;
  while (std::getline(truth, line)) persons.insert(line.substr(line.find(',') + 1, 9));
  EXPECT_GT(persons.size(), 1900u);  // everyone but some newborns and movers has a record
  EXPECT_LE(persons.size(), 2000u);
  double old_share = static_cast<double>(old) / people;
  EXPECT_GT(old_share, 0.12);
  EXPECT_LT(old_share, 0.26);

  int outpatient = 0, primary = 0, visits = 0, in_county = 0, inpatient = 0;
  for (auto& e : ReadNdjson(*dir_ / "fhir/Encounter.ndjson")) {
    std::string cls = e["class"]["code"].GetString();
    if (cls == "HH") continue;  // follow-ups are not visits (DOMAIN B.6: AMB + EMER + IMP)
    std::string org = std::string(e["serviceProvider"]["reference"].GetString()).substr(13);
    std::string patient = std::string(e["subject"]["reference"].GetString()).substr(8);
    ++visits;
    in_county += org_county[org] == patient_county[patient];
    if (cls == "IMP") {
      ++inpatient;
      continue;
    }
    ++outpatient;
    primary += org_level[org] == "township" || org_level[org] == "village";
  }
  double per_year = static_cast<double>(outpatient) / people / 3;
  EXPECT_GT(per_year, 6.5);  // ~8 per resident-year
  EXPECT_LT(per_year, 9.5);
  double primary_share = static_cast<double>(primary) / outpatient;
  EXPECT_GT(primary_share, 0.55);  // ~60 %
  EXPECT_LT(primary_share, 0.66);
  double county_share = static_cast<double>(in_county) / visits;
  EXPECT_GT(county_share, 0.85);  // 88-90 %
  EXPECT_LT(county_share, 0.93);
  double admission = static_cast<double>(inpatient) / people / 3;
  EXPECT_GT(admission, 0.12);  // 15-20 % per year
  EXPECT_LT(admission, 0.22);
}

TEST_F(GeneratedRegion, EveryIdNumberIsValidOrCorruptedAsTheTruthSays) {
  std::map<std::string, std::string> corruption;
  std::ifstream truth(*dir_ / "truth/patients.csv");
  std::string line;
  std::getline(truth, line);
  while (std::getline(truth, line)) {
    auto c1 = line.find(','), c2 = line.find(',', c1 + 1);
    corruption[line.substr(0, c1)] = line.substr(c2 + 1);
  }
  int typos = 0, missing = 0, old15 = 0;
  for (auto& p : ReadNdjson(*dir_ / "fhir/Patient.ndjson")) {
    std::string id = p["id"].GetString();
    const std::string& c = corruption.at(id);
    std::string number;
    for (auto& ident : p["identifier"].GetArray())
      if (std::string(ident["system"].GetString()) == "urn:oid:2.16.156.10011.1.3") number = ident["value"].GetString();
    if (number.empty()) {
      EXPECT_NE(c.find("id-missing"), std::string::npos) << id;
      ++missing;
      continue;
    }
    auto parsed = ParseIdCard(number);
    if (c.find("id-typo") != std::string::npos) {
      ++typos;  // a changed digit breaks the check character or the date (or, rarely, both hold)
      continue;
    }
    ASSERT_TRUE(parsed.ok()) << id << " " << number << ": " << parsed.status().ToString();
    if (number.size() == 15) {
      EXPECT_NE(c.find("id-15"), std::string::npos);
      ++old15;
    }
    EXPECT_EQ(parsed->sex == Sex::kMale, std::string(p["gender"].GetString()) == "male") << id;
  }
  EXPECT_GT(typos, 0);
  EXPECT_GT(missing, 0);
  EXPECT_GT(old15, 0);
}

TEST_F(GeneratedRegion, IndicatorTruthHasTheCityAndEveryCounty) {
  std::string csv = Slurp(*dir_ / "truth/indicators.csv");
  EXPECT_EQ(csv.rfind("indicator,period,org,numerator,denominator,value\n", 0), 0u);
  for (const char* org : {"330400", "330402", "330411", "330421", "330424", "330481", "330482", "330483"})
    EXPECT_NE(csv.find("county-visit-rate,2021," + std::string(org) + ","), std::string::npos) << org;
  EXPECT_NE(csv.find("primary-care-visit-rate,2022,330400,"), std::string::npos);
  EXPECT_NE(csv.find("inpatient-avg-cost,2023,330483,"), std::string::npos);
  EXPECT_GT(summary_->resources, 100000);
}

TEST_F(GeneratedRegion, FamilyDoctorContractsCoverKeyPopulations) {
  std::map<std::string, double> rate;  // indicator → city value for 2022
  std::ifstream in(*dir_ / "truth/indicators.csv");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(",2022,330400,") == std::string::npos) continue;
    rate[line.substr(0, line.find(','))] = std::stod(line.substr(line.rfind(',') + 1));
  }
  EXPECT_GT(rate["contract-rate"], 0.34);  // ~40 % of residents
  EXPECT_LT(rate["contract-rate"], 0.48);
  EXPECT_GT(rate["key-pop-contract-rate"], 0.68);  // ~75 % of key populations
  EXPECT_LT(rate["key-pop-contract-rate"], 0.82);
  EXPECT_GT(rate["htn-standard-mgmt-rate"], 0.4);
  EXPECT_LT(rate["htn-standard-mgmt-rate"], 0.85);
  int contracts = 0, follow_ups = 0;
  for (auto& e : ReadNdjson(*dir_ / "fhir/EpisodeOfCare.ndjson")) {
    ++contracts;
    EXPECT_EQ(std::string(e["type"][0]["coding"][0]["code"].GetString()), "family-doctor-contract");
  }
  for (auto& e : ReadNdjson(*dir_ / "fhir/Encounter.ndjson"))
    follow_ups += std::string(e["class"]["code"].GetString()) == "HH";
  EXPECT_GT(contracts, 1500);
  EXPECT_GT(follow_ups, 1000);
}

int CountOf(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
  return n;
}

TEST_F(GeneratedRegion, Hl7MessagesMirrorTheRegistrationsAndVaccinations) {
  const std::string utf8 = Slurp(*dir_ / "hl7v2/adt.hl7");
  const std::string gb = Slurp(*dir_ / "hl7v2/adt-gb18030.hl7");
  const std::string vxu = Slurp(*dir_ / "hl7v2/vxu.hl7");
  // GB18030 bytes decode (ICU) to the same kind of messages.
  UErrorCode err = U_ZERO_ERROR;
  int32_t n = ucnv_convert("UTF-8", "GB18030", nullptr, 0, gb.data(), static_cast<int32_t>(gb.size()), &err);
  std::string decoded(static_cast<size_t>(n), '\0');
  err = U_ZERO_ERROR;
  ucnv_convert("UTF-8", "GB18030", decoded.data(), n, gb.data(), static_cast<int32_t>(gb.size()), &err);
  ASSERT_TRUE(U_SUCCESS(err));
  EXPECT_NE(gb, decoded) << "the GB18030 file must not be UTF-8";
  const int utf8_msgs = CountOf(utf8, "MSH|"), gb_msgs = CountOf(decoded, "MSH|");
  EXPECT_GT(gb_msgs, 0);
  EXPECT_EQ(CountOf(utf8, "|CHN|UNICODE UTF-8\r"), utf8_msgs);
  EXPECT_EQ(CountOf(decoded, "|CHN|GB 18030-2000\r"), gb_msgs);
  EXPECT_NE(decoded.find("^^^^NNCHN"), std::string::npos);
  EXPECT_EQ(utf8_msgs + gb_msgs, static_cast<int>(ReadNdjson(*dir_ / "fhir/Patient.ndjson").size()));
  EXPECT_EQ(CountOf(vxu, "VXU^V04^VXU_V04"), static_cast<int>(ReadNdjson(*dir_ / "fhir/Immunization.ndjson").size()));
  EXPECT_EQ(CountOf(vxu, "\rRXA|"), CountOf(vxu, "MSH|"));
}

TEST_F(GeneratedRegion, ResultsRepeatAcrossInstitutionsExactlyAsTheTruthSays) {
  struct Report {
    std::string person, code, org, date;
  };
  std::map<std::string, Report> reports;
  std::set<std::string> referenced;
  int lab = 0, rad = 0;
  for (auto& r : ReadNdjson(*dir_ / "fhir/DiagnosticReport.ndjson")) {
    const std::string cat = r["category"][0]["coding"][0]["code"].GetString();
    (cat == "LAB" ? lab : rad)++;
    reports[r["id"].GetString()] = {PersonOf(RefId(r["subject"])), r["code"]["coding"][0]["code"].GetString(),
                                    RefId(r["performer"][0]), std::string(r["effectiveDateTime"].GetString()).substr(0, 10)};
    if (r.HasMember("result"))
      for (auto& o : r["result"].GetArray()) referenced.insert(RefId(o));
    if (cat == "RAD") { EXPECT_TRUE(r.HasMember("conclusion")); }
  }
  EXPECT_GT(lab, 2000);
  EXPECT_GT(rad, 200);
  int observations = 0, high = 0;
  for (auto& o : ReadNdjson(*dir_ / "fhir/Observation.ndjson")) {
    ++observations;
    EXPECT_TRUE(referenced.count(o["id"].GetString())) << o["id"].GetString();
    const double v = o["valueQuantity"]["value"].GetDouble();
    const double lo = o["referenceRange"][0]["low"]["value"].GetDouble();
    const double hi = o["referenceRange"][0]["high"]["value"].GetDouble();
    const std::string flag = o["interpretation"][0]["coding"][0]["code"].GetString();
    EXPECT_EQ(flag, v < lo ? "L" : v > hi ? "H" : "N") << o["id"].GetString();
    high += flag == "H";
  }
  EXPECT_EQ(observations, static_cast<int>(referenced.size()));
  EXPECT_GT(high, observations / 50);  // diabetics' glucose, infections' white cells …
  // Every truth row names two reports of one person and one item, at two institutions,
  // inside the item's validity window.
  const std::map<std::string, int> window = {{"58410-2", 3}, {"24325-3", 14}, {"24362-6", 14}, {"2345-7", 7},
                                             {"4548-4", 30}, {"57698-3", 30}, {"MR-KNEE", 60}};
  auto rows = ReadCsv(*dir_ / "truth/repeated-results.csv");
  EXPECT_GT(rows.size(), 100u);
  for (const auto& row : rows) {
    ASSERT_EQ(row.size(), 10u);
    if (row[9] == "reused") continue;  // no second report: RecognitionAnswersOrdersByReuse
    ASSERT_EQ(row[9], "repeated");
    const Report& prior = reports.at(row[2]);
    const Report& again = reports.at(row[5]);
    EXPECT_EQ(prior.person, row[0]);
    EXPECT_EQ(again.person, row[0]);
    EXPECT_EQ(prior.code, row[1]);
    EXPECT_EQ(again.code, row[1]);
    EXPECT_EQ(prior.org, row[3]);
    EXPECT_EQ(again.org, row[6]);
    EXPECT_NE(prior.org, again.org);
    EXPECT_LE(prior.date, again.date);
    const int days = std::stoi(row[8]);
    EXPECT_GE(days, 0);
    EXPECT_LE(days, window.count(row[1]) ? window.at(row[1]) : 30) << row[1];
  }
}

// 检查检验互认 (DOMAIN B.7): from the second year an order with a still-valid result of
// another institution is often answered by reusing it; the ServiceRequest says so and
// points at the prior report, and recognition-rate's truth is reused / (reused + repeated).
TEST_F(GeneratedRegion, RecognitionAnswersOrdersByReuseAndItsRateMatchesTheTruth) {
  std::map<std::string, std::string> report_org;  // DiagnosticReport id → performer
  for (auto& r : ReadNdjson(*dir_ / "fhir/DiagnosticReport.ndjson")) report_org[r["id"].GetString()] = RefId(r["performer"][0]);
  std::map<std::string, int> reused_per_year;
  int reused = 0;
  for (auto& sr : ReadNdjson(*dir_ / "fhir/ServiceRequest.ndjson")) {
    if (!sr.HasMember("extension")) continue;
    ASSERT_STREQ(sr["extension"][0]["url"].GetString(), "http://rhip.health/fhir/StructureDefinition/result-recognition");
    ASSERT_STREQ(sr["extension"][0]["valueCode"].GetString(), "reused");
    ++reused;
    const std::string prior = RefId(sr["supportingInfo"][0]);
    ASSERT_TRUE(report_org.count(prior)) << prior;
    EXPECT_NE(report_org[prior], RefId(sr["requester"])) << "reuse is of another institution's result";
    const std::string year = std::string(sr["authoredOn"].GetString()).substr(0, 4);
    EXPECT_NE(year, "2021") << "the service goes live in the second year";
    ++reused_per_year[year];
  }
  EXPECT_GT(reused, 20);
  std::map<std::string, int> repeated_per_year;
  for (const auto& row : ReadCsv(*dir_ / "truth/repeated-results.csv"))
    if (row[9] == "repeated") ++repeated_per_year[row[7].substr(0, 4)];
  std::map<std::string, std::pair<int, int>> truth;  // year → (numerator, denominator)
  for (const auto& row : ReadCsv(*dir_ / "truth/indicators.csv"))
    if (row[0] == "recognition-rate" && row[2] == "330400") truth[row[1]] = {std::stoi(row[3]), std::stoi(row[4])};
  ASSERT_EQ(truth.size(), 3u);
  EXPECT_EQ(truth["2021"].first, 0);
  EXPECT_EQ(truth["2021"].second, repeated_per_year["2021"]);
  for (const char* y : {"2022", "2023"}) {
    EXPECT_EQ(truth[y].first, reused_per_year[y]) << y;
    EXPECT_EQ(truth[y].second, reused_per_year[y] + repeated_per_year[y]) << y;
    const double rate = static_cast<double>(truth[y].first) / truth[y].second;
    EXPECT_GT(rate, 0.2) << y;
    EXPECT_LT(rate, 0.7) << y;
  }
}

TEST_F(GeneratedRegion, ReferralsGoUpAndDownAndLeadToAVisit) {
  std::map<std::string, std::string> level;
  for (auto& o : ReadNdjson(*dir_ / "fhir/Organization.ndjson"))
    level[o["id"].GetString()] = o["type"][0]["coding"][0]["code"].GetString();
  std::map<std::string, std::string> performer;  // completed referral → receiving org
  int up = 0, down = 0;
  for (auto& s : ReadNdjson(*dir_ / "fhir/ServiceRequest.ndjson")) {
    if (s.HasMember("extension")) continue;  // orders answered by result recognition
    EXPECT_EQ(std::string(s["category"][0]["coding"][0]["code"].GetString()), "referral");
    const std::string direction = s["code"]["coding"][0]["code"].GetString();
    const std::string from = level[RefId(s["requester"])], to = level[RefId(s["performer"][0])];
    const bool primary_from = from == "township" || from == "village";
    const bool primary_to = to == "township" || to == "village";
    if (direction == "up") {
      ++up;
      EXPECT_TRUE(primary_from && !primary_to) << s["id"].GetString();
    } else {
      ++down;
      EXPECT_EQ(direction, "down");
      EXPECT_TRUE(!primary_from && primary_to) << s["id"].GetString();
    }
    if (std::string(s["status"].GetString()) == "completed") performer[s["id"].GetString()] = RefId(s["performer"][0]);
  }
  EXPECT_GT(up, 50);
  EXPECT_GT(down, 5);
  int tasks = 0;
  for (auto& t : ReadNdjson(*dir_ / "fhir/Task.ndjson")) {
    ++tasks;
    EXPECT_EQ(std::string(t["status"].GetString()) == "completed", performer.count(RefId(t["focus"])) == 1);
  }
  EXPECT_EQ(tasks, up + down);
  std::map<std::string, int> visits;  // referral → encounters based on it, at the receiving org
  for (auto& e : ReadNdjson(*dir_ / "fhir/Encounter.ndjson")) {
    if (!e.HasMember("basedOn")) continue;
    const std::string ref = RefId(e["basedOn"][0]);
    ASSERT_TRUE(performer.count(ref)) << ref;
    EXPECT_EQ(RefId(e["serviceProvider"]), performer[ref]);
    ++visits[ref];
  }
  for (const auto& [ref, org] : performer) EXPECT_LE(visits[ref], 1) << ref;
  EXPECT_GT(visits.size(), performer.size() * 9 / 10);  // unless the period ended first
}

TEST_F(GeneratedRegion, AppointmentsBookSlotsAndMatchTheAppointmentRateTruth) {
  std::map<std::string, std::pair<int, std::string>> slots;  // id → capacity, status
  std::string last_start;
  for (auto& s : ReadNdjson(*dir_ / "fhir/Slot.ndjson")) {
    ASSERT_TRUE(s.HasMember("extension"));
    EXPECT_EQ(std::string(s["extension"][0]["url"].GetString()), "http://rhip.health/fhir/StructureDefinition/slot-capacity");
    slots[s["id"].GetString()] = {s["extension"][0]["valueInteger"].GetInt(), s["status"].GetString()};
    last_start = std::max(last_start, std::string(s["start"].GetString()));
  }
  EXPECT_GE(last_start, "2024-01-10") << "bookable sessions after the period (2021-2023)";
  std::map<std::string, int> booked;
  std::set<std::string> fulfilled;
  for (auto& a : ReadNdjson(*dir_ / "fhir/Appointment.ndjson")) {
    const std::string slot = RefId(a["slot"][0]);
    ASSERT_TRUE(slots.count(slot)) << slot;
    ++booked[slot];
    if (std::string(a["status"].GetString()) == "fulfilled") fulfilled.insert(a["id"].GetString());
  }
  for (const auto& [id, n] : booked) EXPECT_EQ(slots[id].second, n >= slots[id].first ? "busy" : "free") << id;
  std::map<std::string, std::string> org_county;
  for (auto& o : ReadNdjson(*dir_ / "fhir/Organization.ndjson"))
    org_county[o["id"].GetString()] = o["address"][0]["district"].GetString();
  double with = 0, outpatient = 0;
  for (auto& e : ReadNdjson(*dir_ / "fhir/Encounter.ndjson")) {
    const std::string cls = e["class"]["code"].GetString();
    const bool has = e.HasMember("appointment");
    if (has) { EXPECT_TRUE(fulfilled.count(RefId(e["appointment"][0]))); }
    if ((cls != "AMB" && cls != "EMER") || std::string(e["period"]["start"].GetString()).substr(0, 4) != "2022") continue;
    ++outpatient;
    with += has;
  }
  double truth = -1;
  for (const auto& row : ReadCsv(*dir_ / "truth/indicators.csv"))
    if (row[0] == "appointment-rate" && row[1] == "2022" && row[2] == "330400") truth = std::stod(row[5]);
  EXPECT_NEAR(truth, with / outpatient, 1e-6);
  EXPECT_GT(truth, 0.15);
  EXPECT_LT(truth, 0.45);
}

TEST_F(GeneratedRegion, NotifiableDiseasesHaveSeasonsAndInjectedOutbreaksStandOut) {
  struct Case {
    std::string county, icd, onset;
  };
  std::vector<Case> cases;
  std::map<std::string, std::string> condition_county;
  for (const auto& row : ReadCsv(*dir_ / "truth/notifiable.csv")) {
    cases.push_back({row[3], row[4], row[5]});
    condition_county[row[0]] = row[3];
  }
  int reports = 0;
  for (auto& c : ReadNdjson(*dir_ / "fhir/Condition.ndjson")) {
    if (std::string(c["category"][0]["coding"][0]["code"].GetString()) != "notifiable") continue;
    ++reports;
    EXPECT_TRUE(condition_county.count(c["id"].GetString()));
    EXPECT_EQ(std::string(c["category"][0]["coding"][0]["system"].GetString()),
              "http://rhip.health/CodeSystem/condition-category");
    EXPECT_TRUE(c.HasMember("onsetDateTime") && c.HasMember("recordedDate") && c.HasMember("recorder"));
  }
  EXPECT_EQ(reports, static_cast<int>(cases.size()));
  // Influenza peaks in winter.
  int winter = 0, summer = 0;
  for (const auto& c : cases) {
    if (c.icd != "J11.100") continue;
    const std::string m = c.onset.substr(5, 2);
    winter += m == "12" || m == "01" || m == "02";
    summer += m == "06" || m == "07" || m == "08";
  }
  EXPECT_GT(winter, 3 * summer + 5);
  // Each outbreak: its window holds at least its cases, far above the same county and
  // disease's average for a window that long.
  auto rows = ReadCsv(*dir_ / "truth/outbreaks.csv");
  ASSERT_GE(rows.size(), 2u);
  int fixed = 0;
  for (const auto& ob : rows) {
    const std::string county = ob[1], icd = ob[2], start = ob[4], end = ob[5];
    const int listed = std::stoi(ob[6]);
    int inside = 0, total = 0;
    for (const auto& c : cases) {
      if (c.county != county || c.icd != icd) continue;
      ++total;
      inside += c.onset >= start && c.onset <= end;
    }
    if (ob[7] == "fixed-threshold") {
      ++fixed;
      EXPECT_EQ(icd, "A00.900");
      EXPECT_EQ(listed, 1);
      EXPECT_EQ(total, 1);
      continue;
    }
    EXPECT_GE(inside, listed);
    if (listed < 5) continue;  // too small a county in this 2,000-resident region to say more
    const double days = 1 + (std::stoi(end.substr(8, 2)) - std::stoi(start.substr(8, 2)) + 31) % 31;
    const double expected_elsewhere = static_cast<double>(total - inside) / (3 * 365) * days;
    EXPECT_GT(inside, 3 * expected_elsewhere + 2) << ob[0] << " " << icd << " in " << county;
  }
  EXPECT_EQ(fixed, 1);
}

TEST_F(GeneratedRegion, MigrantsHaveCareOnlyWhileTheyLiveHere) {
  std::map<std::string, std::pair<std::string, std::string>> stay;  // person → arrived, left
  int arrived = 0, left = 0;
  for (const auto& row : ReadCsv(*dir_ / "truth/residents.csv")) {
    ASSERT_EQ(row.size(), 9u);
    arrived += !row[5].empty();
    left += !row[6].empty();
    if (!row[5].empty() || !row[6].empty()) stay[row[0]] = {row[5], row[6]};
  }
  EXPECT_GT(arrived, 2000 * 0.02);  // ~1.5 % a year over 3 years
  EXPECT_LT(arrived, 2000 * 0.08);
  EXPECT_GT(left, 2000 * 0.01);
  EXPECT_LT(left, 2000 * 0.06);
  int checked = 0;
  for (auto& e : ReadNdjson(*dir_ / "fhir/Encounter.ndjson")) {
    auto it = stay.find(PersonOf(RefId(e["subject"])));
    if (it == stay.end()) continue;
    const std::string day = std::string(e["period"]["start"].GetString()).substr(0, 10);
    if (!it->second.first.empty()) { EXPECT_GE(day, it->second.first) << e["id"].GetString(); }
    if (!it->second.second.empty()) { EXPECT_LT(day, it->second.second) << e["id"].GetString(); }
    ++checked;
  }
  EXPECT_GT(checked, 100);
}

TEST_F(GeneratedRegion, OruMessagesMirrorTheReports) {
  const std::string oru = Slurp(*dir_ / "hl7v2/oru.hl7");
  int reports = 0, observations = 0, imaging = 0;
  for (auto& r : ReadNdjson(*dir_ / "fhir/DiagnosticReport.ndjson")) {
    ++reports;
    imaging += std::string(r["category"][0]["coding"][0]["code"].GetString()) == "RAD";
  }
  observations = static_cast<int>(ReadNdjson(*dir_ / "fhir/Observation.ndjson").size());
  EXPECT_EQ(CountOf(oru, "ORU^R01^ORU_R01"), reports);
  EXPECT_EQ(CountOf(oru, "\rOBR|1|"), reports);
  EXPECT_EQ(CountOf(oru, "|NM|"), observations);
  EXPECT_EQ(CountOf(oru, "|TX|"), imaging);
  EXPECT_EQ(CountOf(oru, "\rPID|1||"), reports);
}

TEST(GenerateRegion, RejectsBadOptionsAndKeepsNonEmptyFolders) {
  GenOptions o;
  o.out = (fs::temp_directory_path() / ("rhip-gen-bad-" + std::to_string(::getpid()))).string();
  o.residents = 0;
  EXPECT_EQ(GenerateRegion(o, nullptr).status().code(), StatusCode::kInvalidArgument);
  o.residents = 10;
  o.years = 0;
  EXPECT_EQ(GenerateRegion(o, nullptr).status().code(), StatusCode::kInvalidArgument);
  o.years = 1;
  o.start = "2021-13-01";
  EXPECT_EQ(GenerateRegion(o, nullptr).status().code(), StatusCode::kInvalidArgument);
  o.start = "2021-01-01";
  fs::create_directories(o.out);
  std::ofstream(fs::path(o.out) / "keep.txt") << "precious";
  auto refused = GenerateRegion(o, nullptr);
  EXPECT_EQ(refused.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(refused.status().message().find("--force"), std::string::npos);
  EXPECT_TRUE(fs::exists(fs::path(o.out) / "keep.txt"));
  o.force = true;
  EXPECT_TRUE(GenerateRegion(o, nullptr).ok());
  fs::remove_all(o.out);
  o.out = "/proc/rhip-cannot-write-here";
  o.force = false;
  EXPECT_EQ(GenerateRegion(o, nullptr).status().code(), StatusCode::kUnavailable);
}

int RunCli(const std::string& args, std::string* err) {
  const char* bin = std::getenv("RHIP_BIN");
  if (!bin) return -1;
  std::string errfile = (fs::temp_directory_path() / ("rhip-cli-err-" + std::to_string(::getpid()))).string();
  int rc = std::system((std::string(bin) + " " + args + " >/dev/null 2>" + errfile).c_str());
  *err = Slurp(errfile);
  fs::remove(errfile);
  return WEXITSTATUS(rc);
}

TEST(GenCommand, BadArgumentsGiveOneLineErrorAndNonZeroExit) {
  if (!std::getenv("RHIP_BIN")) GTEST_SKIP() << "RHIP_BIN not set (run through ctest)";
  std::string err;
  EXPECT_NE(RunCli("gen --residents 0 --out /tmp/rhip-x-none", &err), 0);
  EXPECT_NE(err.find("--residents must be a positive number"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 2);  // the progress line's newline + the error
  EXPECT_NE(RunCli("gen --residents 5 --bogus 1 --out /tmp/rhip-x-none", &err), 0);
  EXPECT_NE(err.find("bogus"), std::string::npos) << err;
  EXPECT_NE(RunCli("gen --residents 5 --out /proc/rhip-x", &err), 0);
}

}  // namespace
}  // namespace rhip::gen

namespace rhip::gen {
namespace {

TEST(Immunizations, FollowTheScheduleVersionInForceAndAreMostlyOnTime) {
  auto dir = fs::temp_directory_path() / ("rhip-gen-imm-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  GenOptions o;
  o.residents = 3000;
  o.seed = 5;
  o.years = 2;
  o.start = "2024-01-01";  // crosses the 2025 pertussis schedule change
  o.out = dir.string();
  ASSERT_TRUE(GenerateRegion(o, nullptr).ok());
  std::ifstream in(dir / "truth/immunizations.csv");
  std::string line;
  std::getline(in, line);
  ASSERT_EQ(line, "person_id,record_id,vaccine,dose,schedule,due_date,given_date");
  int doses = 0, missed = 0, late = 0;
  std::map<std::string, std::string> last_given;  // person|vaccine → date
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string x;
    while (std::getline(ss, x, ',')) f.push_back(x);
    if (f.size() == 6) f.emplace_back();
    ASSERT_EQ(f.size(), 7u) << line;
    ++doses;
    const std::string &vaccine = f[2], &schedule = f[4], &due = f[5], &given = f[6];
    EXPECT_EQ(schedule, due >= "2025-01-01" ? "2025" : "2021") << line;
    if (schedule == "2025") {
      EXPECT_NE(vaccine, "dt") << "DT is not routine from 2025";
    }
    if (given.empty()) {
      ++missed;
      continue;
    }
    EXPECT_GE(given, due) << line;
    if (given > due) ++late;
    std::string key = f[0] + "|" + vaccine;
    if (last_given.count(key)) {
      int y1 = std::stoi(last_given[key].substr(0, 4)), m1 = std::stoi(last_given[key].substr(5, 2)),
          d1 = std::stoi(last_given[key].substr(8, 2));
      int y2 = std::stoi(given.substr(0, 4)), m2 = std::stoi(given.substr(5, 2)), d2 = std::stoi(given.substr(8, 2));
      int64_t gap = (y2 - y1) * 365LL + (m2 - m1) * 30LL + (d2 - d1);
      EXPECT_GE(gap, 26) << line;  // ≥ 28 days (month lengths approximated)
    }
    last_given[key] = given;
  }
  EXPECT_GT(doses, 500);
  double miss_share = static_cast<double>(missed) / doses;
  EXPECT_GT(miss_share, 0.01);  // a few percent missed
  EXPECT_LT(miss_share, 0.08);
  EXPECT_GT(late, 0);
  // The coverage truth (B.3: given by the due date + 30 days / due, among children living
  // here) agrees with the dose list.
  auto days = [](const std::string& d) {
    return std::chrono::sys_days(std::chrono::year_month_day(std::chrono::year(std::stoi(d.substr(0, 4))),
                                                             std::chrono::month(std::stoi(d.substr(5, 2))),
                                                             std::chrono::day(std::stoi(d.substr(8, 2)))))
        .time_since_epoch()
        .count();
  };
  const auto end = days("2025-12-31");
  double due_2024 = 0, on_time_2024 = 0;
  for (const auto& row : ReadCsv(dir / "truth/immunizations.csv")) {
    if (row[5].substr(0, 4) != "2024" || days(row[5]) + 30 > end) continue;
    ++due_2024;
    on_time_2024 += row.size() > 6 && !row[6].empty() && days(row[6]) <= days(row[5]) + 30;
  }
  double truth = -1;
  for (const auto& row : ReadCsv(dir / "truth/indicators.csv"))
    if (row[0] == "immunization-coverage" && row[1] == "2024" && row[2] == "330400") truth = std::stod(row[5]);
  EXPECT_NEAR(truth, on_time_2024 / due_2024, 1e-6);
  EXPECT_GT(truth, 0.80);
  EXPECT_LT(truth, 0.97);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rhip::gen
