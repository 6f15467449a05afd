#include "rhip/gen/generator.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include <unicode/ucnv.h>

#include "gen/data.h"
#include "rhip/core/id_card.h"
#include "rhip/core/time.h"

namespace rhip::gen {
namespace {

namespace fs = std::filesystem;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// ---- randomness -------------------------------------------------------------

// SplitMix64: small, fast, and good enough for synthetic data; one per resident.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  int Int(int lo, int hi) { return lo + static_cast<int>(Next() % static_cast<uint64_t>(hi - lo + 1)); }
  bool Chance(double p) { return Uniform() < p; }
  int Poisson(double mean) {
    double l = std::exp(-mean), p = 1.0;
    int k = 0;
    do {
      ++k;
      p *= Uniform();
    } while (p > l && k < 200);
    return k - 1;
  }
  double Normal() {  // standard normal (Box-Muller)
    double u1 = std::max(Uniform(), 1e-12), u2 = Uniform();
    return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
  }
  double LogNormal(double median, double sigma) { return median * std::exp(sigma * Normal()); }
  template <typename T>
  const T& Pick(const std::vector<T>& v) { return v[Next() % v.size()]; }

 private:
  uint64_t s_;
};

// FNV-1a: a string hash that, unlike std::hash, is the same on every platform
// and standard library, so the output depends on the seed alone.
uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char ch : s) h = (h ^ ch) * 0x100000001b3ULL;
  return h;
}

uint64_t Mix(uint64_t a, uint64_t b) {
  Rng r(a * 0x9E3779B97F4A7C15ULL ^ (b + 0x632BE59BD9B4E019ULL));
  r.Next();
  return r.Next();
}

// Each resident has independent random streams, one per purpose, so that adding
// draws to one part of a life (say, lab results) never shifts another (visits).
enum class Stream : uint64_t { kPerson = 1, kCare, kImmunization, kContract, kNotifiable, kResults, kRegistration };
Rng ResidentStream(uint64_t seed, int64_t index, Stream s) {
  return Rng(Mix(Mix(seed, static_cast<uint64_t>(index)), static_cast<uint64_t>(s)));
}

template <typename T, typename W>
size_t PickWeighted(Rng& rng, const std::vector<T>& items, W weight) {
  double total = 0;
  for (const auto& i : items) total += weight(i);
  double x = rng.Uniform() * total;
  for (size_t k = 0; k < items.size(); ++k) {
    x -= weight(items[k]);
    if (x < 0) return k;
  }
  return items.size() - 1;
}

// ---- institutions -------------------------------------------------------------

enum class Level { kCityHospital, kCountyHospital, kTownship, kVillage, kCdc, kPrivate, kGovernment };

const char* LevelCode(Level l) {
  switch (l) {
    case Level::kCityHospital: return "city-hospital";
    case Level::kCountyHospital: return "county-hospital";
    case Level::kTownship: return "township";
    case Level::kVillage: return "village";
    case Level::kCdc: return "cdc";
    case Level::kPrivate: return "private";
    case Level::kGovernment: return "govt";
  }
  return "other";
}

struct Org {
  std::string id;    // FHIR id, also the org code (http://rhip.health/id/org)
  std::string name;
  Level level;
  std::string county;
  int town = -1;     // index into the county's towns, for townships and villages
  std::string part_of;
  int doctors = 2;
  bool primary() const { return level == Level::kTownship || level == Level::kVillage; }
};

struct Region {
  std::vector<Org> orgs;
  std::vector<size_t> city_hospitals;
  std::unordered_map<std::string, std::vector<size_t>> county_hospitals;  // lead first
  std::unordered_map<std::string, std::vector<size_t>> townships;         // by town index
  std::unordered_map<std::string, std::vector<size_t>> villages;          // 2 per town, in order
  std::unordered_map<std::string, std::vector<size_t>> privates;
};

Region BuildRegion() {
  Region r;
  auto add = [&](Org o) {
    r.orgs.push_back(std::move(o));
    return r.orgs.size() - 1;
  };
  for (const auto& c : data::kCounties) {
    add({"gov-" + std::string(c.code), std::string(c.name) + "卫生健康局", Level::kGovernment, std::string(c.code), -1, "", 0});
  }
  r.city_hospitals.push_back(add({"330400-H01", "嘉兴市第一医院", Level::kCityHospital, "330402", -1, "", 40}));
  r.city_hospitals.push_back(add({"330400-H02", "嘉兴市第二医院", Level::kCityHospital, "330411", -1, "", 35}));
  r.city_hospitals.push_back(add({"330400-H03", "嘉兴市中医医院", Level::kCityHospital, "330402", -1, "", 20}));
  r.city_hospitals.push_back(add({"330400-H04", "嘉兴市妇幼保健院", Level::kCityHospital, "330411", -1, "", 15}));
  for (const auto& c : data::kCounties) {
    std::string code(c.code), name(c.name);
    std::string lead = code + "-H01";
    // 医共体: the county hospital leads the county's medical community.
    r.county_hospitals[code].push_back(add({lead, name + "人民医院", Level::kCountyHospital, code, -1, "gov-" + code, 25}));
    r.county_hospitals[code].push_back(add({code + "-H02", name + "中医医院", Level::kCountyHospital, code, -1, lead, 12}));
    r.county_hospitals[code].push_back(add({code + "-H03", name + "妇幼保健院", Level::kCountyHospital, code, -1, lead, 8}));
    add({code + "-CDC", name + "疾病预防控制中心", Level::kCdc, code, -1, "gov-" + code, 4});
    for (size_t t = 0; t < c.towns.size(); ++t) {
      std::string town(c.towns[t]);
      bool street = town.find("街道") != std::string::npos;
      std::string tid = code + "-T" + std::to_string(t + 1);
      r.townships[code].push_back(add({tid, town + (street ? "社区卫生服务中心" : "卫生院"), Level::kTownship, code,
                                       static_cast<int>(t), lead, 8}));
      for (int v = 1; v <= 2; ++v) {
        r.villages[code].push_back(add({tid + "-V" + std::to_string(v),
                                        town + (street ? "社区卫生服务站" : "村卫生室") + std::to_string(v),
                                        Level::kVillage, code, static_cast<int>(t), lead, 1}));
      }
    }
    r.privates[code].push_back(add({code + "-P01", name + "仁和门诊部", Level::kPrivate, code, -1, "", 2}));
  }
  return r;
}

// ---- NDJSON files ---------------------------------------------------------------

class Ndjson {
 public:
  Ndjson() = default;
  Ndjson(const Ndjson&) = delete;
  Ndjson& operator=(const Ndjson&) = delete;
  ~Ndjson() {
    if (f_) std::fclose(f_);
  }
  bool Open(const fs::path& p) {
    f_ = std::fopen(p.c_str(), "wb");
    if (f_) std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
    return f_ != nullptr;
  }
  void Put(const rapidjson::StringBuffer& b) {
    std::fwrite(b.GetString(), 1, b.GetSize(), f_);
    std::fputc('\n', f_);
    ++count_;
  }
  void Append(const std::string& text, int64_t n) {
    std::fwrite(text.data(), 1, text.size(), f_);
    count_ += n;
  }
  int64_t count() const { return count_; }
  bool Close() {
    bool ok = f_ && std::fclose(f_) == 0;
    f_ = nullptr;
    return ok;
  }

 private:
  std::FILE* f_ = nullptr;
  int64_t count_ = 0;
};

void Str(Writer& w, const char* k, std::string_view v) {
  w.Key(k);
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}
void Ref(Writer& w, const char* k, std::string_view type, std::string_view id) {
  w.Key(k);
  w.StartObject();
  std::string r = std::string(type) + "/" + std::string(id);
  Str(w, "reference", r);
  w.EndObject();
}
void Coding(Writer& w, const char* k, std::string_view system, std::string_view code, std::string_view display = {}) {
  w.Key(k);
  w.StartObject();
  w.Key("coding");
  w.StartArray();
  w.StartObject();
  Str(w, "system", system);
  Str(w, "code", code);
  if (!display.empty()) Str(w, "display", display);
  w.EndObject();
  w.EndArray();
  w.EndObject();
}

// `key: [ {coding: [ {system, code} ]} ]` — a one-element array of CodeableConcept.
void CodingList(Writer& w, const char* k, std::string_view system, std::string_view code) {
  w.Key(k);
  w.StartArray();
  w.StartObject();
  w.Key("coding");
  w.StartArray();
  w.StartObject();
  Str(w, "system", system);
  Str(w, "code", code);
  w.EndObject();
  w.EndArray();
  w.EndObject();
  w.EndArray();
}

// HL7 v2 escape sequences for the delimiters |^~\& (MSH-2 defaults).
std::string Hl7Escape(std::string_view v) {
  std::string out;
  for (char ch : v) {
    switch (ch) {
      case '|': out += "\\F\\"; break;
      case '^': out += "\\S\\"; break;
      case '~': out += "\\R\\"; break;
      case '&': out += "\\T\\"; break;
      case '\\': out += "\\E\\"; break;
      default: out += ch;
    }
  }
  return out;
}

std::string DateStr(int64_t day) { return FormatCivilDate(day); }
void TwoDigits(char* out, int v) {
  out[0] = static_cast<char>('0' + v / 10);
  out[1] = static_cast<char>('0' + v % 10);
}
std::string DateTimeStr(int64_t day, int minutes) {  // YYYY-MM-DDTHH:MM:00+08:00
  std::string s = DateStr(day);
  s += "THH:MM:00+08:00";
  TwoDigits(&s[11], minutes / 60 % 24);
  TwoDigits(&s[14], minutes % 60);
  return s;
}

// ---- residents ------------------------------------------------------------------

struct Person {
  int64_t index = 0;
  std::string id;  // truth person id
  std::string surname, given;
  bool male = true;
  int64_t birth_day = 0;  // days since epoch
  std::string county;
  int town = 0;
  std::string id_number;  // valid 18-digit
  std::string birth_region;
  std::string phone;
  std::string health_card;
  std::string address;
  bool hypertension = false, diabetes = false;
  // Migration: residents who move into the region during the period, or leave it.
  int64_t arrive_day = INT64_MIN;
  int64_t leave_day = INT64_MAX;
  bool Present(int64_t day) const { return day >= birth_day && day >= arrive_day && day < leave_day; }
};

std::vector<std::string_view> Chars(std::string_view s) {  // UTF-8 characters
  std::vector<std::string_view> out;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

Person MakePerson(int64_t index, uint64_t seed, int64_t ref_day, int years) {
  Rng rng = ResidentStream(seed, index, Stream::kPerson);
  Person p;
  p.index = index;
  char id[32];
  std::snprintf(id, sizeof id, "P%08lld", static_cast<long long>(index + 1));
  p.id = id;
  p.male = rng.Chance(0.507);
  p.surname = std::string(data::kSurnames[PickWeighted(rng, data::kSurnames, [](const auto& w) { return w.weight; })].value);
  const auto& pool = p.male ? data::kGivenMale : data::kGivenFemale;
  p.given = std::string(rng.Pick(pool));
  if (rng.Chance(0.7)) p.given += std::string(rng.Pick(pool));
  size_t band = PickWeighted(rng, data::kAgeBands, [](double w) { return w; });
  int age_days = static_cast<int>(band * 5 * 365.25 + rng.Uniform() * 5 * 365.25);
  p.birth_day = ref_day - age_days;
  // Births during the simulated years (~7.5 per 1,000 residents a year).
  if (rng.Chance(0.0075 * years)) p.birth_day = ref_day + rng.Int(0, years * 365 - 1);
  size_t c = PickWeighted(rng, data::kCounties, [](const auto& k) { return k.population_share; });
  p.county = std::string(data::kCounties[c].code);
  p.town = static_cast<int>(rng.Next() % data::kCounties[c].towns.size());
  // Where the ID number was first issued: mostly here, some migrants from elsewhere.
  static const char* kElsewhere[] = {"341221", "510322", "411522", "362329", "320583", "330106"};
  // Migration (~1.5 % a year move in, ~1 % a year move out); movers-in mostly hold
  // ID numbers issued elsewhere.
  const int period_days = years * 365;
  if (rng.Chance(0.015 * years)) {
    p.arrive_day = ref_day + rng.Int(30, period_days - 1);
  } else if (rng.Chance(0.01 * years)) {
    p.leave_day = ref_day + rng.Int(30, period_days - 1);
  }
  const bool migrant = p.arrive_day != INT64_MIN;
  p.birth_region = rng.Chance(migrant ? 0.3 : 0.85) ? p.county : kElsewhere[rng.Next() % 6];
  char seq[4];
  int s = rng.Int(0, 499) * 2 + (p.male ? 1 : 0);
  std::snprintf(seq, sizeof seq, "%03d", s % 1000);
  std::string birth = DateStr(p.birth_day);
  std::string first17 = p.birth_region + birth.substr(0, 4) + birth.substr(5, 2) + birth.substr(8, 2) + seq;
  p.id_number = first17 + IdCardCheckChar(first17);
  static const char* kPrefixes[] = {"138", "139", "135", "136", "137", "150", "151", "157", "158", "159",
                                    "182", "187", "188", "130", "131", "132", "155", "156", "133", "153",
                                    "180", "189", "177", "199"};
  char phone[16];
  std::snprintf(phone, sizeof phone, "%s%08d", kPrefixes[rng.Next() % 24], rng.Int(0, 99999999));
  p.phone = phone;
  char card[24];
  std::snprintf(card, sizeof card, "3304%014lld", static_cast<long long>(Mix(seed, index) % 100000000000000ULL));
  p.health_card = card;
  p.address = "浙江省嘉兴市" + std::string(data::kCounties[c].name) + std::string(data::kCounties[c].towns[p.town]) +
              std::to_string(rng.Int(1, 30)) + "村" + std::to_string(rng.Int(1, 120)) + "号";
  int age = age_days / 365;
  p.hypertension = age >= 18 && rng.Chance(age < 40 ? 0.06 : age < 60 ? 0.25 : 0.48);
  p.diabetes = age >= 18 && rng.Chance(age < 40 ? 0.02 : age < 60 ? 0.10 : 0.18);
  return p;
}

// ---- one resident's life while it is generated -----------------------------------

struct Ordered {  // a test or exam ordered at a visit
  bool imaging = false;
  size_t item = 0;  // index into kLabPanels or kImagingExams
  bool operator==(const Ordered&) const = default;
};

struct Life {
  const Person& p;
  std::function<const std::string&(const Org&)> record_at;  // the Patient an institution holds for them
  Rng care, results;
  int seq = 0;        // encounters
  int referrals = 0;
  struct Report {
    Ordered what;
    int64_t day;
    const Org* org;
    std::string id;
  };
  std::vector<Report> reports = {};
  std::unordered_map<std::string_view, std::pair<int64_t, double>> last_value = {};  // LOINC → (day, value)
};

struct VisitSpec {
  int64_t day;
  const char* cls;                      // AMB, EMER, IMP
  const Org* org = nullptr;             // null: where this resident would go
  std::string based_on = {};            // the referral (ServiceRequest id) that led here
  const data::Diagnosis* dx = nullptr;  // the referral's reason
  const std::vector<Ordered>* repeat = nullptr;  // tests the referring institution already did
};

struct VisitResult {
  const Org* org = nullptr;  // null: no visit (after the period)
  const data::Diagnosis* dx = nullptr;
  std::string patient, enc;
  int64_t day = 0, end_day = 0;
  int start_min = 0;
  std::vector<Ordered> ordered;
};

// Injected outbreaks and the one fixed-threshold case (truth/outbreaks.csv).
struct Outbreak {
  std::string id;
  std::string county;
  const data::NotifiableDisease* disease;
  int64_t start, end;           // days, inclusive
  double per_resident = 0;      // expected extra cases per eligible resident of the county
  int64_t resident = -1;        // fixed-threshold events: the one case
  bool fixed_threshold = false;
};

struct SlotUse {  // an outpatient session (号源) with bookings
  const Org* org = nullptr;
  int64_t day = 0;
  bool am = true;
  int booked = 0;
};

// ---- indicator truth -------------------------------------------------------------

struct Acc {
  double num = 0, den = 0;
};
struct Indicators {
  // (indicator, year, org); org codes are short enough for std::string's small-buffer
  // storage, so keeping a tally costs no allocation (this runs ~10 times per visit).
  using Key = std::tuple<std::string_view, int, std::string>;
  std::map<Key, Acc> acc;
  void Add(std::string_view ind, int year, std::string_view org, double num, double den) {
    Acc& a = acc[Key{ind, year, std::string(org)}];
    a.num += num;
    a.den += den;
  }
};

// ---- the generator --------------------------------------------------------------

// What one block of residents produces; blocks are generated in parallel and
// written in order, so the output does not depend on scheduling.
struct Ctx {
  rapidjson::StringBuffer buf;
  std::map<std::string, std::string, std::less<>> lines;  // type → NDJSON text
  std::map<std::string, int64_t, std::less<>> counts;
  std::string truth;
  std::string immunization_truth;
  // HL7 v2.5 messages (segments end in \r, messages in \n): UTF-8 senders, GB18030 senders, VXU.
  std::string adt_utf8, adt_gb18030, vxu, oru;
  std::string residents_truth, results_truth, notifiable_truth;
  std::map<std::string, SlotUse> slots;  // slot id → bookings
  std::map<size_t, int64_t> outbreak_cases;
  std::unordered_map<std::string, std::string> pid_segment;  // Patient record id → its PID segment
  Indicators ind;
  void Put(std::string_view type) {
    auto it = lines.find(type);
    if (it == lines.end()) it = lines.emplace(std::string(type), std::string()).first;
    it->second.append(buf.GetString(), buf.GetSize());
    it->second += '\n';
    auto n = counts.find(type);
    if (n == counts.end()) n = counts.emplace(std::string(type), 0).first;
    ++n->second;
  }
  // Ready for the next block; strings keep their capacity (no page faults for fresh memory).
  void Clear() {
    for (auto& [type, text] : lines) text.clear();
    counts.clear();
    for (std::string* s : {&truth, &immunization_truth, &adt_utf8, &adt_gb18030, &vxu, &oru, &residents_truth,
                           &results_truth, &notifiable_truth})
      s->clear();
    slots.clear();
    outbreak_cases.clear();
    pid_segment.clear();
    ind.acc.clear();
  }
};

class Generator {
 public:
  Generator(const GenOptions& o, int64_t start_day) : o_(o), start_day_(start_day), region_(BuildRegion()) {
    PlanOutbreaks();
  }

  Status Open() {
    const fs::path dir = fs::path(o_.out) / "fhir";
    for (const char* t : {"Organization", "Practitioner", "PractitionerRole", "Patient", "Encounter", "Condition",
                          "Procedure", "Claim", "Immunization", "CareTeam", "EpisodeOfCare", "Observation",
                          "DiagnosticReport", "ServiceRequest", "Task", "HealthcareService", "Schedule", "Slot",
                          "Appointment"}) {
      auto f = std::make_unique<Ndjson>();
      if (!f->Open(dir / (std::string(t) + ".ndjson")))
        return Status(StatusCode::kUnavailable, "cannot write " + (dir / t).string() + ".ndjson");
      files_[t] = std::move(f);
    }
    std::error_code ec;
    fs::create_directories(fs::path(o_.out) / "hl7v2", ec);
    adt_utf8_ = std::fopen((fs::path(o_.out) / "hl7v2" / "adt.hl7").c_str(), "wb");
    adt_gb_ = std::fopen((fs::path(o_.out) / "hl7v2" / "adt-gb18030.hl7").c_str(), "wb");
    vxu_ = std::fopen((fs::path(o_.out) / "hl7v2" / "vxu.hl7").c_str(), "wb");
    oru_ = std::fopen((fs::path(o_.out) / "hl7v2" / "oru.hl7").c_str(), "wb");
    if (!adt_utf8_ || !adt_gb_ || !vxu_ || !oru_) return Status(StatusCode::kUnavailable, "cannot write hl7v2/*.hl7");
    for (auto [file, name, header] :
         {std::tuple{&residents_truth_, "residents.csv", "person_id,sex,birth_date,county,town,arrived,left,hypertension,diabetes\n"},
          std::tuple{&results_truth_, "repeated-results.csv",
                     "person_id,item,prior_report,prior_org,prior_date,report,org,date,days_apart,outcome\n"},
          std::tuple{&notifiable_truth_, "notifiable.csv", "condition_id,record_id,person_id,county,icd10,onset,outbreak_id\n"}}) {
      *file = std::fopen((fs::path(o_.out) / "truth" / name).c_str(), "wb");
      if (!*file) return Status(StatusCode::kUnavailable, std::string("cannot write truth/") + name);
      std::fputs(header, *file);
    }
    imm_truth_ = std::fopen((fs::path(o_.out) / "truth" / "immunizations.csv").c_str(), "wb");
    if (!imm_truth_) return Status(StatusCode::kUnavailable, "cannot write truth/immunizations.csv");
    std::fputs("person_id,record_id,vaccine,dose,schedule,due_date,given_date\n", imm_truth_);
    truth_ = std::fopen((fs::path(o_.out) / "truth" / "patients.csv").c_str(), "wb");
    if (!truth_) return Status(StatusCode::kUnavailable, "cannot write truth/patients.csv");
    std::fputs("record_id,person_id,corruptions\n", truth_);
    return Status::Ok();
  }

  void WriteInstitutions(Ctx& c) {
    for (const Org& org : region_.orgs) {
      c.buf.Clear();
      Writer w(c.buf);
      w.StartObject();
      Str(w, "resourceType", "Organization");
      Str(w, "id", org.id);
      w.Key("identifier");
      w.StartArray();
      w.StartObject();
      Str(w, "system", "http://rhip.health/id/org");
      Str(w, "value", org.id);
      w.EndObject();
      w.EndArray();
      w.Key("active");
      w.Bool(true);
      CodingList(w, "type", "http://rhip.health/CodeSystem/org-level", LevelCode(org.level));
      Str(w, "name", org.name);
      w.Key("address");
      w.StartArray();
      w.StartObject();
      Str(w, "district", org.county);
      Str(w, "city", "嘉兴市");
      Str(w, "state", "浙江省");
      w.EndObject();
      w.EndArray();
      if (!org.part_of.empty()) Ref(w, "partOf", "Organization", org.part_of);
      w.EndObject();
      c.Put("Organization");
      if (org.level == Level::kGovernment) continue;
      if (Bookable(org)) WriteSchedule(c, org);
      for (int d = 1; d <= org.doctors; ++d) {
        std::string pid = org.id + "-D" + std::to_string(d);
        Rng rng(Mix(o_.seed, Fnv1a(pid)));
        bool male = rng.Chance(0.5);
        std::string name = std::string(data::kSurnames[PickWeighted(rng, data::kSurnames, [](const auto& x) { return x.weight; })].value) +
                           std::string(rng.Pick(male ? data::kGivenMale : data::kGivenFemale));
        c.buf.Clear();
        Writer pw(c.buf);
        pw.StartObject();
        Str(pw, "resourceType", "Practitioner");
        Str(pw, "id", pid);
        pw.Key("identifier");
        pw.StartArray();
        pw.StartObject();
        Str(pw, "system", "http://rhip.health/id/practitioner");
        Str(pw, "value", "L" + pid);
        pw.EndObject();
        pw.EndArray();
        pw.Key("name");
        pw.StartArray();
        pw.StartObject();
        Str(pw, "text", name);
        pw.EndObject();
        pw.EndArray();
        Str(pw, "gender", male ? "male" : "female");
        pw.EndObject();
        c.Put("Practitioner");
        c.buf.Clear();
        Writer rw(c.buf);
        rw.StartObject();
        Str(rw, "resourceType", "PractitionerRole");
        Str(rw, "id", pid + "-R");
        Ref(rw, "practitioner", "Practitioner", pid);
        Ref(rw, "organization", "Organization", org.id);
        CodingList(rw, "code", "http://rhip.health/CodeSystem/practitioner-role", org.primary() ? "family-doctor" : "physician");
        rw.EndObject();
        c.Put("PractitionerRole");
      }
      if (org.level == Level::kTownship) {  // the centre's family-doctor team (家庭医生团队)
        c.buf.Clear();
        Writer tw(c.buf);
        tw.StartObject();
        Str(tw, "resourceType", "CareTeam");
        Str(tw, "id", "team-" + org.id);
        Str(tw, "status", "active");
        Str(tw, "name", org.name + "家庭医生团队");
        tw.Key("participant");
        tw.StartArray();
        for (int d = 1; d <= std::min(org.doctors, 3); ++d) {
          tw.StartObject();
          Ref(tw, "member", "Practitioner", org.id + "-D" + std::to_string(d));
          tw.EndObject();
        }
        tw.EndArray();
        tw.Key("managingOrganization");
        tw.StartArray();
        tw.StartObject();
        Str(tw, "reference", "Organization/" + org.id);
        tw.EndObject();
        tw.EndArray();
        tw.EndObject();
        c.Put("CareTeam");
      }
    }
  }

  // One resident: registrations (with clerks' errors) and years of care.
  void Resident(int64_t index, Ctx& c) const {
    const Person p = MakePerson(index, o_.seed, start_day_, o_.years);
    std::unordered_map<std::string, std::string> records;  // org id → Patient id
    Rng registration = ResidentStream(o_.seed, index, Stream::kRegistration);
    Life life{p, [&](const Org& org) -> const std::string& {
                auto it = records.find(org.id);
                if (it != records.end()) return it->second;
                std::string rid = "pat-" + p.id.substr(1) + "-" + org.id;
                WritePatient(c, p, org, rid, registration);
                return records.emplace(org.id, rid).first->second;
              },
              ResidentStream(o_.seed, index, Stream::kCare), ResidentStream(o_.seed, index, Stream::kResults)};
    Rng& rng = life.care;
    const int age0 = static_cast<int>((start_day_ - p.birth_day) / 365);
    for (int year = 0; year < o_.years; ++year) {
      const int64_t y0 = start_day_ + static_cast<int64_t>(year * 365.25);
      const int age = age0 + year;
      if (y0 + 365 < p.birth_day) continue;  // not born yet this year
      double rate = age < 7 ? 6 : age < 18 ? 3 : age < 45 ? 4.5 : age < 65 ? 8.5 : 15;
      if (p.hypertension) rate += 3;
      if (p.diabetes) rate += 2;
      // The year's visits in date order (outpatient, emergency, maybe one stay).
      std::vector<std::pair<int64_t, const char*>> visits;
      const int n = rng.Poisson(rate * 0.9);
      for (int v = 0; v < n; ++v) visits.emplace_back(y0 + rng.Int(0, 364), rng.Chance(0.04) ? "EMER" : "AMB");
      const double admit = age < 5 ? 0.10 : age < 45 ? 0.08 : age < 65 ? 0.16 : 0.32;
      if (rng.Chance(admit)) visits.emplace_back(y0 + rng.Int(0, 364), "IMP");
      std::stable_sort(visits.begin(), visits.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      for (const auto& [day, cls] : visits) {
        if (!p.Present(day)) continue;
        const VisitResult r = Visit(c, life, VisitSpec{day, cls});
        if (!r.org) continue;
        const std::string_view klass = cls;
        if (klass == "AMB" && r.org->primary() &&
            rng.Chance(p.hypertension || p.diabetes || age >= 65 ? 0.05 : 0.015)) {
          ReferUp(c, life, r);
        } else if (klass == "IMP" && !r.org->primary() && r.dx->rehab && rng.Chance(0.35)) {
          ReferDown(c, life, r);
        }
      }
    }
    RepeatedResults(c, life);
    auto day_or_empty = [](int64_t d, int64_t none) { return d == none ? std::string() : DateStr(d); };
    c.residents_truth += p.id + "," + (p.male ? "M" : "F") + "," + DateStr(p.birth_day) + "," + p.county + "," +
                         std::to_string(p.town + 1) + "," + day_or_empty(p.arrive_day, INT64_MIN) + "," +
                         day_or_empty(p.leave_day, INT64_MAX) + "," + (p.hypertension ? "1" : "0") + "," +
                         (p.diabetes ? "1" : "0") + "\n";
    Immunizations(c, p, index, life.record_at);
    Contracts(c, p, index, life.record_at);
    Notifiable(c, life);
  }

  // Family-doctor contracts (家庭医生签约): one-year EpisodeOfCare with the town's
  // team, ~40 % of residents and ~75 % of key populations; contracted hypertensive
  // or diabetic residents get quarterly home/clinic follow-ups (HH encounters),
  // with some missed. Own random stream.
  template <typename RecordAt>
  void Contracts(Ctx& c, const Person& p, int64_t index, RecordAt& record_at) const {
    Rng rng = ResidentStream(o_.seed, index, Stream::kContract);
    const Org& centre = region_.orgs[region_.townships.at(p.county)[static_cast<size_t>(p.town)]];
    int follow_seq = 0;
    for (int year = 0; year < o_.years; ++year) {
      const int64_t y0 = start_day_ + static_cast<int64_t>(year * 365.25);
      const int cal_year = CalendarYear(y0);
      if (!p.Present(y0 + 182)) continue;  // a resident of the area at mid-year (born, not moved away)
      const int age = static_cast<int>((y0 - p.birth_day) / 365);
      const bool key_population = age >= 65 || age <= 6 || p.hypertension || p.diabetes;
      // 重点人群签约覆盖率 ~75 %, overall ~40 %
      const bool signed_up = rng.Chance(key_population ? 0.75 : 0.22);
      for (const std::string& area : {p.county, std::string("330400")}) {
        c.ind.Add("contract-rate", cal_year, area, signed_up ? 1 : 0, 1);
        if (key_population) c.ind.Add("key-pop-contract-rate", cal_year, area, signed_up ? 1 : 0, 1);
      }
      if (!signed_up) continue;
      const std::string& patient = record_at(centre);
      const std::string doctor = centre.id + "-D" + std::to_string(rng.Int(1, std::min(centre.doctors, 3)));
      const int64_t from = std::max({y0, p.birth_day, p.arrive_day}) + rng.Int(0, 30);
      const bool moved_away = p.leave_day <= from + 364;  // the contract ends when they leave
      c.buf.Clear();
      Writer w(c.buf);
      w.StartObject();
      Str(w, "resourceType", "EpisodeOfCare");
      Str(w, "id", "contract-" + p.id.substr(1) + "-" + std::to_string(cal_year));
      Str(w, "status", moved_away ? "finished" : "active");
      CodingList(w, "type", "http://rhip.health/CodeSystem/episode-type", "family-doctor-contract");
      Ref(w, "patient", "Patient", patient);
      Ref(w, "managingOrganization", "Organization", centre.id);
      w.Key("period");
      w.StartObject();
      Str(w, "start", DateStr(from));
      Str(w, "end", DateStr(moved_away ? p.leave_day - 1 : from + 364));
      w.EndObject();
      Ref(w, "careManager", "Practitioner", doctor);
      w.Key("team");
      w.StartArray();
      w.StartObject();
      Str(w, "reference", "CareTeam/team-" + centre.id);
      w.EndObject();
      w.EndArray();
      w.EndObject();
      c.Put("EpisodeOfCare");
      if (!p.hypertension && !p.diabetes) continue;
      int done = 0;
      for (int q = 0; q < 4; ++q) {
        if (rng.Chance(0.12)) continue;  // a missed quarterly follow-up
        const int64_t day = y0 + q * 91 + rng.Int(0, 80);
        if (!p.Present(day)) continue;
        ++done;
        c.buf.Clear();
        Writer e(c.buf);
        e.StartObject();
        Str(e, "resourceType", "Encounter");
        Str(e, "id", "fu-" + p.id.substr(1) + "-" + std::to_string(++follow_seq));
        Str(e, "status", "finished");
        e.Key("class");
        e.StartObject();
        Str(e, "system", "http://terminology.hl7.org/CodeSystem/v3-ActCode");
        Str(e, "code", "HH");
        e.EndObject();
        CodingList(e, "type", "http://rhip.health/CodeSystem/encounter-type",
                   p.hypertension ? "hypertension-follow-up" : "diabetes-follow-up");
        Ref(e, "subject", "Patient", patient);
        e.Key("episodeOfCare");
        e.StartArray();
        e.StartObject();
        Str(e, "reference", "EpisodeOfCare/contract-" + p.id.substr(1) + "-" + std::to_string(cal_year));
        e.EndObject();
        e.EndArray();
        e.Key("participant");
        e.StartArray();
        e.StartObject();
        Ref(e, "individual", "Practitioner", doctor);
        e.EndObject();
        e.EndArray();
        e.Key("period");
        e.StartObject();
        const int minute = rng.Int(8 * 60, 16 * 60);
        Str(e, "start", DateTimeStr(day, minute));
        Str(e, "end", DateTimeStr(day, minute + 20));
        e.EndObject();
        Ref(e, "serviceProvider", "Organization", centre.id);
        e.EndObject();
        c.Put("Encounter");
      }
      // 高血压规范管理率: contracted hypertensive residents with ≥ 4 follow-ups in the year
      if (p.hypertension) {
        for (const std::string& area : {p.county, std::string("330400")})
          c.ind.Add("htn-standard-mgmt-rate", cal_year, area, done >= 4 ? 1 : 0, 1);
      }
    }
  }

  // Children's vaccinations at the township health centre (DOMAIN B.3): each dose
  // due inside the simulated years, given with a realistic delay or (a few percent)
  // missed; same-vaccine doses at least 28 days apart. Own random stream, so
  // vaccinations never change the rest of a resident's history.
  template <typename RecordAt>
  void Immunizations(Ctx& c, const Person& p, int64_t index, RecordAt& record_at) const {
    const int64_t end_day = start_day_ + static_cast<int64_t>(o_.years * 365.25);
    if (end_day - p.birth_day > 7 * 365) return;
    Rng rng = ResidentStream(o_.seed, index, Stream::kImmunization);
    const Org& clinic = region_.orgs[region_.townships.at(p.county)[static_cast<size_t>(p.town)]];
    std::unordered_map<std::string_view, int64_t> last_given;
    const data::ScheduleVersion* versions[2] = {&data::kImmunizationSchedules[0], &data::kImmunizationSchedules[1]};
    // Doses of the version in force on each due date.
    for (int v = 0; v < 2; ++v) {
      for (const auto& d : versions[v]->doses) {
        const int64_t due = p.birth_day + d.age_days;
        const std::string due_str = DateStr(due);
        const bool in_force = due_str >= versions[v]->effective_from &&
                              (v == 1 || due_str < versions[1]->effective_from);
        if (!in_force || due < start_day_ || due >= end_day || !p.Present(due)) continue;
        std::string given;
        std::string record;
        if (!rng.Chance(0.03)) {
          double r = rng.Uniform();
          int delay = r < 0.70 ? rng.Int(0, 7) : r < 0.90 ? rng.Int(8, 30) : rng.Int(31, 90);
          int64_t day = due + (d.age_days == 0 ? 0 : delay);
          auto prev = last_given.find(d.vaccine);
          if (prev != last_given.end()) day = std::max(day, prev->second + 28);
          if (day < end_day && p.Present(day)) {
            last_given[d.vaccine] = day;
            given = DateStr(day);
            record = record_at(clinic);
            c.buf.Clear();
            Writer w(c.buf);
            w.StartObject();
            Str(w, "resourceType", "Immunization");
            Str(w, "id", "imm-" + p.id.substr(1) + "-" + std::string(d.vaccine) + "-" + std::to_string(d.dose));
            Str(w, "status", "completed");
            Coding(w, "vaccineCode", "http://rhip.health/CodeSystem/vaccine", d.vaccine);
            Ref(w, "patient", "Patient", record);
            Str(w, "occurrenceDateTime", DateTimeStr(day, rng.Int(8 * 60, 16 * 60)));
            w.Key("performer");
            w.StartArray();
            w.StartObject();
            Ref(w, "actor", "Organization", clinic.id);
            w.EndObject();
            w.EndArray();
            w.Key("protocolApplied");
            w.StartArray();
            w.StartObject();
            w.Key("doseNumberPositiveInt");
            w.Int(d.dose);
            w.EndObject();
            w.EndArray();
            w.EndObject();
            c.Put("Immunization");
            std::string ts = given;
            ts.erase(std::remove(ts.begin(), ts.end(), '-'), ts.end());
            char ctrl[24];
            std::snprintf(ctrl, sizeof ctrl, "V%016llx",
                          static_cast<unsigned long long>(Fnv1a(p.id + std::string(d.vaccine) + std::to_string(d.dose))));
            c.vxu += "MSH|^~\\&|EPI|" + clinic.id + "|RHIP|330400|" + ts + "100000||VXU^V04^VXU_V04|" + ctrl +
                     "|P|2.5|||||CHN|UNICODE UTF-8\r" + c.pid_segment[record] + "\rORC|RE\rRXA|0|" +
                     std::to_string(d.dose) + "|" + ts + "100000|" + ts + "100000|" + std::string(d.vaccine) +
                     "^^RHIPVAX|999||||||||||||||CP\r\n";
          }
        }
        c.immunization_truth += p.id + "," + record + "," + std::string(d.vaccine) + "," + std::to_string(d.dose) +
                                "," + std::string(versions[v]->name) + "," + due_str + "," + given + "\n";
        // 免疫规划接种率 (B.3): doses given by the due age + 30 days' grace, over the children
        // living here when the dose fell due; per township clinic, county and city.
        if (due + kCoverageGraceDays <= end_day) {
          const bool on_time = !given.empty() && last_given[d.vaccine] <= due + kCoverageGraceDays;
          for (const std::string& area : {clinic.id, p.county, std::string("330400")})
            c.ind.Add("immunization-coverage", CalendarYear(due), area, on_time ? 1 : 0, 1);
        }
      }
    }
  }

  // ---- appointments (预约诊疗) ----

  static bool Bookable(const Org& org) {
    return org.level == Level::kCityHospital || org.level == Level::kCountyHospital || org.level == Level::kTownship;
  }
  static int SlotCapacity(const Org& org) {
    return org.level == Level::kCityHospital ? 50 : org.level == Level::kCountyHospital ? 40 : 20;
  }
  static std::string SlotId(const Org& org, int64_t day, bool am) {
    std::string d = DateStr(day);
    d.erase(std::remove(d.begin(), d.end(), '-'), d.end());
    return "slot-" + org.id + "-" + d + (am ? "-am" : "-pm");
  }

  // Whether an outpatient visit was booked ahead; referrals mostly come with a booking.
  static bool BookAhead(const Org& org, bool referred, Rng& rng) {
    switch (org.level) {
      case Level::kCityHospital: return rng.Chance(referred ? 0.9 : 0.6);
      case Level::kCountyHospital: return rng.Chance(referred ? 0.85 : 0.45);
      case Level::kTownship: return rng.Chance(referred ? 0.5 : 0.12);
      default: return false;
    }
  }

  void WriteAppointment(Ctx& c, const std::string& id, const std::string& patient, const Org& org, int doctor,
                        int64_t day, int start_min, Rng& rng, const char* status) const {
    const bool am = start_min < 12 * 60;
    const std::string slot = SlotId(org, day, am);
    SlotUse& use = c.slots[slot];
    use.org = &org;
    use.day = day;
    use.am = am;
    ++use.booked;
    c.buf.Clear();
    Writer w(c.buf);
    w.StartObject();
    Str(w, "resourceType", "Appointment");
    Str(w, "id", id);
    Str(w, "status", status);
    CodingList(w, "serviceType", "http://rhip.health/CodeSystem/service-type", "outpatient");
    Str(w, "start", DateTimeStr(day, start_min));
    Str(w, "end", DateTimeStr(day, start_min + 15));
    w.Key("slot");
    w.StartArray();
    w.StartObject();
    Str(w, "reference", "Slot/" + slot);
    w.EndObject();
    w.EndArray();
    Str(w, "created", DateStr(day - rng.Int(1, 7)));
    w.Key("participant");
    w.StartArray();
    w.StartObject();
    Ref(w, "actor", "Patient", patient);
    Str(w, "status", "accepted");
    w.EndObject();
    w.StartObject();
    Ref(w, "actor", "Practitioner", org.id + "-D" + std::to_string(doctor));
    Str(w, "status", "accepted");
    w.EndObject();
    w.EndArray();
    w.EndObject();
    c.Put("Appointment");
  }

  // Each bookable institution's outpatient service and its schedule (Slots are written at the end).
  void WriteSchedule(Ctx& c, const Org& org) const {
    c.buf.Clear();
    Writer w(c.buf);
    w.StartObject();
    Str(w, "resourceType", "HealthcareService");
    Str(w, "id", "hs-" + org.id);
    w.Key("active");
    w.Bool(true);
    Ref(w, "providedBy", "Organization", org.id);
    Str(w, "name", org.name + "门诊");
    w.EndObject();
    c.Put("HealthcareService");
    c.buf.Clear();
    Writer s(c.buf);
    s.StartObject();
    Str(s, "resourceType", "Schedule");
    Str(s, "id", "sched-" + org.id);
    s.Key("active");
    s.Bool(true);
    CodingList(s, "serviceType", "http://rhip.health/CodeSystem/service-type", "outpatient");
    s.Key("actor");
    s.StartArray();
    s.StartObject();
    Str(s, "reference", "HealthcareService/hs-" + org.id);
    s.EndObject();
    s.EndArray();
    s.Key("planningHorizon");
    s.StartObject();
    Str(s, "start", DateStr(start_day_));
    Str(s, "end", DateStr(EndDay() + kFutureSlotDays));
    s.EndObject();
    s.EndObject();
    c.Put("Schedule");
  }

  // ---- results (检查检验) ----

  // What a doctor orders for this diagnosis at this kind of institution.
  std::vector<Ordered> Orders(Life& life, const Org& org, const std::string& klass, const data::Diagnosis& dx,
                              const std::vector<Ordered>* repeat) const {
    Rng& rng = life.results;
    const bool hospital = org.level == Level::kCityHospital || org.level == Level::kCountyHospital;
    std::vector<Ordered> out;
    auto lab = [&](size_t i) {
      if (std::find(out.begin(), out.end(), Ordered{false, i}) == out.end()) out.push_back({false, i});
    };
    auto img = [&](size_t i) {
      const auto m = data::kImagingExams[i].modality;
      if ((hospital || m == "DX" || m == "US") && std::find(out.begin(), out.end(), Ordered{true, i}) == out.end())
        out.push_back({true, i});
    };
    // A referral's receiving doctor often repeats what the referring centre did
    // (the waste that result recognition, DOMAIN B.7, is meant to avoid).
    if (repeat && !repeat->empty() && rng.Chance(0.65)) {
      for (const Ordered& o : *repeat) o.imaging ? img(o.item) : lab(o.item);
      return out;
    }
    if (org.level == Level::kVillage) return out;
    const bool imp = klass == "IMP";
    const double p = imp ? 1.0 : klass == "EMER" ? 0.8 : hospital ? 0.25 : 0.12;
    if (!rng.Chance(p)) return out;
    const std::string_view code = dx.icd10;
    auto is = [&](std::string_view prefix) { return code.substr(0, prefix.size()) == prefix; };
    enum { kCbc, kLiver, kRenal, kGlucose, kHba1c, kLipids };
    enum { kDrChest, kCtChest, kCtHead, kUsAbd, kMrKnee };
    if (imp) {
      lab(kCbc);
      lab(kLiver);
      lab(kRenal);
    }
    if (is("J")) {
      lab(kCbc);
      if (is("J18") || is("J44") || is("C34")) img(hospital ? kCtChest : kDrChest);
      else if (rng.Chance(0.3)) img(kDrChest);
    } else if (is("E11")) {
      lab(kGlucose);
      if (rng.Chance(0.7)) lab(kHba1c);
      if (rng.Chance(0.3)) lab(kLipids);
    } else if (is("I10")) {
      if (rng.Chance(0.5)) lab(kRenal);
      if (rng.Chance(0.4)) lab(kLipids);
      if (rng.Chance(0.3)) lab(kGlucose);
    } else if (is("E78") || is("I25")) {
      lab(kLipids);
    } else if (is("I63") || is("R51")) {
      img(kCtHead);
    } else if (is("K80") || is("K35")) {
      lab(kCbc);
      img(kUsAbd);
    } else if (is("M17") || is("M54")) {
      if (rng.Chance(0.5)) img(kMrKnee);
    } else if (is("Z00")) {  // health check-up
      for (size_t i : {kCbc, kLiver, kRenal, kGlucose, kLipids}) lab(i);
      img(kDrChest);
      img(kUsAbd);
    } else {
      lab(kCbc);
    }
    if (klass == "EMER") lab(kCbc);
    return out;
  }

  // A result value: a healthy adult's distribution shifted by what they have; a test
  // repeated within a month stays close to the previous value.
  double LabValue(Life& life, const data::LabItem& item, const data::Diagnosis& dx, int64_t day) const {
    Rng& rng = life.results;
    auto prev = life.last_value.find(item.loinc);
    double v;
    if (prev != life.last_value.end() && std::abs(day - prev->second.first) <= 30) {
      v = prev->second.second + rng.Normal() * item.sd * 0.2;
    } else {
      double mean = item.mean, sd = item.sd;
      const std::string_view code = dx.icd10;
      if (life.p.diabetes && item.loinc == "2345-7") mean = 8.2, sd = 1.8;
      if (life.p.diabetes && item.loinc == "4548-4") mean = 7.5, sd = 1.0;
      if (item.loinc == "6690-2" && (code[0] == 'J' || code.substr(0, 3) == "K35")) mean = 11, sd = 3;
      if (life.p.hypertension && (item.loinc == "2093-3" || item.loinc == "13457-7")) mean += 0.5;
      v = mean + rng.Normal() * sd;
    }
    v = std::max(v, item.low * 0.3);
    const double scale = std::pow(10.0, item.decimals);
    v = std::round(v * scale) / scale;
    life.last_value[item.loinc] = {day, v};
    return v;
  }

  static std::string Hl7Time(int64_t day, int minutes) {
    std::string d = DateStr(day);
    d.erase(std::remove(d.begin(), d.end(), '-'), d.end());
    char buf[16];
    std::snprintf(buf, sizeof buf, "%02d%02d00", minutes / 60 % 24, minutes % 60);
    return d + buf;
  }

  static void Quantity(Writer& w, const char* key, double v, const data::LabItem& item) {
    w.Key(key);
    w.StartObject();
    w.Key("value");
    if (item.decimals == 0) w.Int64(static_cast<int64_t>(v)); else w.Double(v);
    Str(w, "unit", item.unit);
    Str(w, "system", "http://unitsofmeasure.org");
    Str(w, "code", item.unit);
    w.EndObject();
  }

  static std::string Number(double v, int decimals) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
  }

  // DiagnosticReport + Observations for each ordered item, the same as ORU^R01, and the
  // truth of every result that repeats one from another institution inside its window.
  void WriteResults(Ctx& c, Life& life, const VisitResult& v) const {
    const Org& org = *v.org;
    const std::string n = v.enc.substr(4);
    const std::string& pid = c.pid_segment[v.patient];
    for (size_t k = 0; k < v.ordered.size(); ++k) {
      const Ordered& o = v.ordered[k];
      const std::string report = "dr-" + n + "-" + std::to_string(k + 1);
      if (const Life::Report* prior = RecognizablePrior(life, o, org, v.day);
          prior && v.day >= RecognitionGoLive() && life.results.Chance(kReuseShare)) {
        WriteReuse(c, life, v, o, *prior, "sr-" + n + "-" + std::to_string(k + 1));
        continue;
      }
      const int minute = std::min(v.start_min + 20 + static_cast<int>(k) * 5, 23 * 60);
      const int issued_minute = std::min(minute + (o.imaging ? 90 : 120), 23 * 60 + 59);
      const std::string effective = DateTimeStr(v.day, minute), issued = DateTimeStr(v.day, issued_minute);
      const std::string_view code = o.imaging ? data::kImagingExams[o.item].code : data::kLabPanels[o.item].code;
      const std::string_view display = o.imaging ? data::kImagingExams[o.item].display : data::kLabPanels[o.item].display;
      std::string oru = "MSH|^~\\&|" + std::string(o.imaging ? "RIS" : "LIS") + "|" + org.id + "|RHIP|330400|" +
                        Hl7Time(v.day, issued_minute) + "||ORU^R01^ORU_R01|" + Hl7Control('R', report) +
                        "|P|2.5|||||CHN|UNICODE UTF-8\r" + pid + "\rPV1|1|" + (v.end_day > v.day ? "I" : "O") +
                        std::string(17, '|') + v.enc + "\r";
      std::vector<std::string> results;
      std::string conclusion;
      if (o.imaging) {
        const auto& exam = data::kImagingExams[o.item];
        conclusion = std::string(life.results.Chance(0.6) ? exam.conclusions[0] : life.results.Pick(exam.conclusions));
        oru += "OBR|1|" + report + "|" + report + "|" + std::string(code) + "^" + std::string(display) +
               "^RHIPEXAM|||" + Hl7Time(v.day, minute) + std::string(15, '|') + Hl7Time(v.day, issued_minute) + "||" +
               std::string(exam.modality) + "|F\rOBX|1|TX|" + std::string(code) + "^" + std::string(display) +
               "^RHIPEXAM||" + Hl7Escape(conclusion) + "||||||F|||" + Hl7Time(v.day, minute) + "\r";
      } else {
        const auto& panel = data::kLabPanels[o.item];
        oru += "OBR|1|" + report + "|" + report + "|" + std::string(code) + "^" + std::string(display) + "^LN|||" +
               Hl7Time(v.day, minute) + std::string(15, '|') + Hl7Time(v.day, issued_minute) + "||LAB|F\r";
        for (size_t i = 0; i < panel.items.size(); ++i) {
          const auto& item = panel.items[i];
          const double value = LabValue(life, item, *v.dx, v.day);
          const char* flag = value < item.low ? "L" : value > item.high ? "H" : "N";
          const std::string obs = "obs-" + n + "-" + std::to_string(k + 1) + "-" + std::to_string(i + 1);
          results.push_back(obs);
          WriteObservation(c, obs, v, item, value, flag, effective, issued);
          oru += "OBX|" + std::to_string(i + 1) + "|NM|" + std::string(item.loinc) + "^" + std::string(item.display) +
                 "^LN||" + Number(value, item.decimals) + "|" + std::string(item.unit) + "|" +
                 Number(item.low, item.decimals) + "-" + Number(item.high, item.decimals) + "|" + flag + "|||F|||" +
                 Hl7Time(v.day, minute) + "\r";
        }
      }
      WriteReport(c, report, v, o.imaging, code, display, effective, issued, results, conclusion);
      c.oru += oru + "\n";
      life.reports.push_back({o, v.day, &org, report});
    }
  }

  void WriteObservation(Ctx& c, const std::string& id, const VisitResult& v, const data::LabItem& item, double value,
                        const char* flag, const std::string& effective, const std::string& issued) const {
    c.buf.Clear();
    Writer w(c.buf);
    w.StartObject();
    Str(w, "resourceType", "Observation");
    Str(w, "id", id);
    Str(w, "status", "final");
    CodingList(w, "category", "http://terminology.hl7.org/CodeSystem/observation-category", "laboratory");
    Coding(w, "code", "http://loinc.org", item.loinc, item.display);
    Ref(w, "subject", "Patient", v.patient);
    Ref(w, "encounter", "Encounter", v.enc);
    Str(w, "effectiveDateTime", effective);
    Str(w, "issued", issued);
    w.Key("performer");
    w.StartArray();
    w.StartObject();
    Str(w, "reference", "Organization/" + v.org->id);
    w.EndObject();
    w.EndArray();
    Quantity(w, "valueQuantity", value, item);
    CodingList(w, "interpretation", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", flag);
    w.Key("referenceRange");
    w.StartArray();
    w.StartObject();
    Quantity(w, "low", item.low, item);
    Quantity(w, "high", item.high, item);
    w.EndObject();
    w.EndArray();
    w.EndObject();
    c.Put("Observation");
  }

  void WriteReport(Ctx& c, const std::string& id, const VisitResult& v, bool imaging, std::string_view code,
                   std::string_view display, const std::string& effective, const std::string& issued,
                   const std::vector<std::string>& results, const std::string& conclusion) const {
    c.buf.Clear();
    Writer w(c.buf);
    w.StartObject();
    Str(w, "resourceType", "DiagnosticReport");
    Str(w, "id", id);
    w.Key("identifier");
    w.StartArray();
    w.StartObject();
    Str(w, "system", "http://rhip.health/id/report/" + v.org->id);
    Str(w, "value", id);
    w.EndObject();
    w.EndArray();
    Str(w, "status", "final");
    CodingList(w, "category", "http://terminology.hl7.org/CodeSystem/v2-0074", imaging ? "RAD" : "LAB");
    Coding(w, "code", imaging ? "http://rhip.health/CodeSystem/exam-item" : "http://loinc.org", code, display);
    Ref(w, "subject", "Patient", v.patient);
    Ref(w, "encounter", "Encounter", v.enc);
    Str(w, "effectiveDateTime", effective);
    Str(w, "issued", issued);
    w.Key("performer");
    w.StartArray();
    w.StartObject();
    Str(w, "reference", "Organization/" + v.org->id);
    w.EndObject();
    w.EndArray();
    if (!results.empty()) {
      w.Key("result");
      w.StartArray();
      for (const auto& r : results) {
        w.StartObject();
        Str(w, "reference", "Observation/" + r);
        w.EndObject();
      }
      w.EndArray();
    }
    if (!conclusion.empty()) Str(w, "conclusion", conclusion);
    w.EndObject();
    c.Put("DiagnosticReport");
  }

  // ---- result recognition (检查检验互认, DOMAIN B.7) ----

  // The region's recognition service goes live at the start of the second year:
  // from then on, an order with a recognizable prior result is often answered by
  // reusing it (kReuseShare); before, every such order was done again.
  static constexpr double kReuseShare = 0.45;
  int64_t RecognitionGoLive() const { return o_.years > 1 ? start_day_ + 365 : start_day_; }

  static int ValidDays(const Ordered& o) {
    return o.imaging ? data::kImagingExams[o.item].valid_days : data::kLabPanels[o.item].valid_days;
  }

  // The latest result of the same item from another institution still valid on `day`.
  static const Life::Report* RecognizablePrior(const Life& life, const Ordered& o, const Org& org, int64_t day) {
    const Life::Report* best = nullptr;
    for (const Life::Report& r : life.reports)
      if (r.what == o && r.org != &org && r.day <= day && day - r.day <= ValidDays(o) && (!best || r.day > best->day))
        best = &r;
    return best;
  }

  // An order answered by reusing a prior result: a completed ServiceRequest that
  // points at the prior report (supportingInfo) and says so in its extension; no
  // new test is done. Tallied as recognition-rate's numerator and denominator.
  void WriteReuse(Ctx& c, Life& life, const VisitResult& v, const Ordered& o, const Life::Report& prior,
                  const std::string& id) const {
    const std::string_view code = o.imaging ? data::kImagingExams[o.item].code : data::kLabPanels[o.item].code;
    const std::string_view display = o.imaging ? data::kImagingExams[o.item].display : data::kLabPanels[o.item].display;
    c.buf.Clear();
    Writer w(c.buf);
    w.StartObject();
    Str(w, "resourceType", "ServiceRequest");
    Str(w, "id", id);
    w.Key("extension");
    w.StartArray();
    w.StartObject();
    Str(w, "url", "http://rhip.health/fhir/StructureDefinition/result-recognition");
    Str(w, "valueCode", "reused");
    w.EndObject();
    w.EndArray();
    Str(w, "status", "completed");
    Str(w, "intent", "order");
    CodingList(w, "category", "http://rhip.health/CodeSystem/service-request-category", o.imaging ? "exam" : "lab");
    Coding(w, "code", o.imaging ? "http://rhip.health/CodeSystem/exam-item" : "http://loinc.org", code, display);
    Ref(w, "subject", "Patient", v.patient);
    Ref(w, "encounter", "Encounter", v.enc);
    Str(w, "authoredOn", DateTimeStr(v.day, std::min(v.start_min + 15, 23 * 60)));
    Ref(w, "requester", "Organization", v.org->id);
    w.Key("supportingInfo");
    w.StartArray();
    w.StartObject();
    Str(w, "reference", "DiagnosticReport/" + prior.id);
    w.EndObject();
    w.EndArray();
    w.EndObject();
    c.Put("ServiceRequest");
    c.results_truth += life.p.id + "," + std::string(code) + "," + prior.id + "," + prior.org->id + "," +
                       DateStr(prior.day) + "," + id + "," + v.org->id + "," + DateStr(v.day) + "," +
                       std::to_string(v.day - prior.day) + ",reused\n";
    for (const std::string& area : {v.org->county, std::string("330400")})
      c.ind.Add("recognition-rate", CalendarYear(v.day), area, 1, 1);
  }

  // 检查检验互认 truth: each result for which another institution's result of the same
  // item was still valid (DOMAIN B.7): the latest such prior result. Each is an order
  // that had a recognizable prior result and was done again (recognition-rate's
  // denominator only).
  void RepeatedResults(Ctx& c, Life& life) const {
    auto& reports = life.reports;
    std::stable_sort(reports.begin(), reports.end(), [](const auto& a, const auto& b) { return a.day < b.day; });
    for (size_t i = 0; i < reports.size(); ++i) {
      const Life::Report& r = reports[i];
      const bool imaging = r.what.imaging;
      const int valid_days = imaging ? data::kImagingExams[r.what.item].valid_days : data::kLabPanels[r.what.item].valid_days;
      for (size_t j = i; j-- > 0;) {
        const Life::Report& prior = reports[j];
        if (r.day - prior.day > valid_days) break;
        if (!(prior.what == r.what) || prior.org == r.org) continue;
        const std::string_view code = imaging ? data::kImagingExams[r.what.item].code : data::kLabPanels[r.what.item].code;
        c.results_truth += life.p.id + "," + std::string(code) + "," + prior.id + "," + prior.org->id + "," +
                           DateStr(prior.day) + "," + r.id + "," + r.org->id + "," + DateStr(r.day) + "," +
                           std::to_string(r.day - prior.day) + ",repeated\n";
        for (const std::string& area : {r.org->county, std::string("330400")})
          c.ind.Add("recognition-rate", CalendarYear(r.day), area, 0, 1);
        break;
      }
    }
  }

  // ---- referrals (双向转诊) ----

  // Up: a township centre sends a patient to the county hospital (sometimes the city).
  void ReferUp(Ctx& c, Life& life, const VisitResult& from) const {
    Rng& rng = life.care;
    const Person& p = life.p;
    const Org& to = rng.Chance(0.8) ? region_.orgs[region_.county_hospitals.at(p.county)[0]]
                                    : region_.orgs[rng.Pick(region_.city_hospitals)];
    Refer(c, life, from, to, "up", from.day + rng.Int(1, 7));
  }

  // Down: after a stay for stroke, fracture, heart failure or COPD, rehabilitation near home.
  void ReferDown(Ctx& c, Life& life, const VisitResult& from) const {
    const Org& to = region_.orgs[region_.townships.at(life.p.county)[static_cast<size_t>(life.p.town)]];
    Refer(c, life, from, to, "down", from.end_day + life.care.Int(1, 10));
  }

  void Refer(Ctx& c, Life& life, const VisitResult& from, const Org& to, const char* direction, int64_t day) const {
    Rng& rng = life.care;
    if (!life.p.Present(day) || day > EndDay()) return;
    const std::string id = "ref-" + life.p.id.substr(1) + "-" + std::to_string(++life.referrals);
    const bool accepted = rng.Chance(0.92);
    const std::string authored = DateTimeStr(std::string_view(direction) == "up" ? from.day : from.end_day,
                                             std::min(from.start_min + 30, 23 * 60));
    c.buf.Clear();
    Writer w(c.buf);
    w.StartObject();
    Str(w, "resourceType", "ServiceRequest");
    Str(w, "id", id);
    Str(w, "status", accepted ? "completed" : "revoked");
    Str(w, "intent", "order");
    CodingList(w, "category", "http://rhip.health/CodeSystem/service-request-category", "referral");
    Coding(w, "code", "http://rhip.health/CodeSystem/referral-direction", direction,
           std::string_view(direction) == "up" ? "上转" : "下转");
    Ref(w, "subject", "Patient", from.patient);
    Ref(w, "encounter", "Encounter", from.enc);
    Str(w, "occurrenceDateTime", DateStr(day));
    Str(w, "authoredOn", authored);
    Ref(w, "requester", "Organization", from.org->id);
    w.Key("performer");
    w.StartArray();
    w.StartObject();
    Str(w, "reference", "Organization/" + to.id);
    w.EndObject();
    w.EndArray();
    w.Key("reasonCode");
    w.StartArray();
    w.StartObject();
    w.Key("coding");
    w.StartArray();
    w.StartObject();
    Str(w, "system", "http://hl7.org/fhir/sid/icd-10");
    Str(w, "code", from.dx->icd10);
    Str(w, "display", from.dx->display);
    w.EndObject();
    w.EndArray();
    w.EndObject();
    w.EndArray();
    w.EndObject();
    c.Put("ServiceRequest");
    c.buf.Clear();
    Writer t(c.buf);
    t.StartObject();
    Str(t, "resourceType", "Task");
    Str(t, "id", "task-" + id);
    Str(t, "status", accepted ? "completed" : "rejected");
    Str(t, "intent", "order");
    Coding(t, "code", "http://hl7.org/fhir/CodeSystem/task-code", "fulfill");
    Ref(t, "focus", "ServiceRequest", id);
    Ref(t, "for", "Patient", from.patient);
    Str(t, "authoredOn", authored);
    Str(t, "lastModified", DateTimeStr(day, 8 * 60));
    Ref(t, "requester", "Organization", from.org->id);
    Ref(t, "owner", "Organization", to.id);
    t.EndObject();
    c.Put("Task");
    if (!accepted) return;
    VisitSpec spec{day, "AMB", &to, id, from.dx, &from.ordered};
    Visit(c, life, spec);
  }

  // ---- notifiable infectious diseases (传染病报告) ----

  // Seasonal baseline cases for each disease, plus this resident's share of any
  // outbreak injected in their county. Own random stream.
  void Notifiable(Ctx& c, Life& life) const {
    const Person& p = life.p;
    Rng rng = ResidentStream(o_.seed, p.index, Stream::kNotifiable);
    int reported = 0;
    auto eligible = [&](const data::NotifiableDisease& d, int64_t day) {
      const int64_t age = (day - p.birth_day) / 365;
      return p.Present(day) && day <= EndDay() && age >= d.age_min && age <= d.age_max;
    };
    for (size_t i = 0; i < data::kNotifiableDiseases.size(); ++i) {
      const auto& d = data::kNotifiableDiseases[i];
      const int n = rng.Poisson(d.rate_per_100k / 1e5 / eligible_share_[i] * o_.years);
      for (int j = 0; j < n; ++j) {
        const int64_t day = SeasonalDay(rng, d);
        if (day >= 0 && eligible(d, day)) ReportCase(c, life, rng, d, day, ++reported, nullptr);
      }
    }
    for (size_t k = 0; k < outbreaks_.size(); ++k) {
      const Outbreak& ob = outbreaks_[k];
      if (ob.county != p.county) continue;
      if (ob.fixed_threshold) {
        if (ob.resident == p.index && eligible(*ob.disease, ob.start)) {
          ReportCase(c, life, rng, *ob.disease, ob.start, ++reported, &ob);
          ++c.outbreak_cases[k];
        }
        continue;
      }
      if (!eligible(*ob.disease, ob.start)) continue;
      const int n = rng.Poisson(ob.per_resident);
      for (int j = 0; j < n; ++j) {
        // an epidemic curve: triangular, peaking mid-outbreak
        const double u = (rng.Uniform() + rng.Uniform()) / 2;
        const int64_t day = ob.start + static_cast<int64_t>(u * static_cast<double>(ob.end - ob.start + 1));
        if (!eligible(*ob.disease, day)) continue;
        ReportCase(c, life, rng, *ob.disease, day, ++reported, &ob);
        ++c.outbreak_cases[k];
      }
    }
  }

  // A day of the period drawn from the disease's seasonal curve (-1 if none was accepted).
  int64_t SeasonalDay(Rng& rng, const data::NotifiableDisease& d) const {
    for (int tries = 0; tries < 32; ++tries) {
      const int64_t day = start_day_ + rng.Int(0, static_cast<int>(EndDay() - start_day_));
      const int64_t doy = day - DaysFromCivil(CalendarYear(day), 1, 1);
      const double w = (1 + d.amplitude * std::cos(2 * M_PI * static_cast<double>(doy - d.peak_day) / 365.25)) /
                       (1 + d.amplitude);
      if (rng.Chance(w)) return day;
    }
    return -1;
  }

  void ReportCase(Ctx& c, Life& life, Rng& rng, const data::NotifiableDisease& d, int64_t onset, int k,
                  const Outbreak* outbreak) const {
    const Person& p = life.p;
    const double r = rng.Uniform();
    const Org& org = r < 0.55 ? region_.orgs[region_.county_hospitals.at(p.county)[0]]
                     : r < 0.9 ? region_.orgs[region_.townships.at(p.county)[static_cast<size_t>(p.town)]]
                               : region_.orgs[region_.city_hospitals[0]];
    const std::string& patient = life.record_at(org);
    const std::string id = "nd-" + p.id.substr(1) + "-" + std::to_string(k);
    const std::string doctor = org.id + "-D" + std::to_string(rng.Int(1, org.doctors));
    c.buf.Clear();
    Writer w(c.buf);
    w.StartObject();
    Str(w, "resourceType", "Condition");
    Str(w, "id", id);
    Coding(w, "clinicalStatus", "http://terminology.hl7.org/CodeSystem/condition-clinical", "active");
    Coding(w, "verificationStatus", "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed");
    CodingList(w, "category", "http://rhip.health/CodeSystem/condition-category", "notifiable");
    Coding(w, "code", "http://hl7.org/fhir/sid/icd-10", d.icd10, d.display);
    Ref(w, "subject", "Patient", patient);
    Str(w, "onsetDateTime", DateTimeStr(onset, rng.Int(0, 23 * 60)));
    Str(w, "recordedDate", DateTimeStr(onset + rng.Int(0, 2), rng.Int(8 * 60, 17 * 60)));
    Ref(w, "recorder", "Practitioner", doctor);
    Ref(w, "asserter", "Practitioner", doctor);
    w.EndObject();
    c.Put("Condition");
    c.notifiable_truth += id + "," + patient + "," + p.id + "," + p.county + "," + std::string(d.icd10) + "," +
                          DateStr(onset) + "," + (outbreak ? outbreak->id : "") + "\n";
  }

  // Outbreaks drawn once from the seed: two a year in random counties, near the
  // disease's season, 10-21 days long, large enough to stand out of the baseline;
  // and one cholera case (a fixed-threshold disease).
  void PlanOutbreaks() {
    Rng rng(Mix(o_.seed, 0x0B7B4EA7ULL));
    for (size_t i = 0; i < data::kNotifiableDiseases.size(); ++i) {
      const auto& d = data::kNotifiableDiseases[i];
      double share = 0, total = 0;
      for (size_t b = 0; b < data::kAgeBands.size(); ++b) {
        total += data::kAgeBands[b];
        for (int a = static_cast<int>(b) * 5; a < static_cast<int>(b) * 5 + 5; ++a)
          if (a >= d.age_min && a <= d.age_max) share += data::kAgeBands[b] / 5;
      }
      eligible_share_.push_back(std::max(share / total, 0.01));
    }
    std::vector<size_t> prone;
    for (size_t i = 0; i < data::kNotifiableDiseases.size(); ++i)
      if (data::kNotifiableDiseases[i].outbreak_prone) prone.push_back(i);
    for (int year = 0; year < o_.years; ++year) {
      for (int k = 0; k < 2; ++k) {
        const size_t di = prone[rng.Next() % prone.size()];
        const auto& d = data::kNotifiableDiseases[di];
        const auto& county = data::kCounties[PickWeighted(rng, data::kCounties, [](const auto& x) { return x.population_share; })];
        const int64_t y0 = start_day_ + static_cast<int64_t>(year * 365.25);
        int64_t start = y0 + ((d.peak_day + rng.Int(-45, 45)) % 365 + 365) % 365;
        const int len = rng.Int(10, 21);
        start = std::clamp<int64_t>(start, start_day_ + 30, EndDay() - len);
        const double eligible = static_cast<double>(o_.residents) * county.population_share * eligible_share_[di];
        const double baseline = d.rate_per_100k / 1e5 * static_cast<double>(o_.residents) * county.population_share *
                                len / 365.0 * (1 + d.amplitude);
        const double extra = std::max(8.0, 2.5 * baseline);
        if (eligible < 20) continue;  // too few people to have an outbreak
        Outbreak ob;
        ob.id = "OB" + std::to_string(outbreaks_.size() + 1);
        ob.county = std::string(county.code);
        ob.disease = &d;
        ob.start = start;
        ob.end = start + len - 1;
        ob.per_resident = extra / eligible;
        outbreaks_.push_back(ob);
      }
    }
    const int64_t who = static_cast<int64_t>(Mix(o_.seed, 0xC401E4AULL) % static_cast<uint64_t>(o_.residents));
    const Person p = MakePerson(who, o_.seed, start_day_, o_.years);
    for (int tries = 0; tries < 16; ++tries) {
      const int64_t day = start_day_ + 30 + rng.Int(0, static_cast<int>(EndDay() - start_day_ - 30));
      if (!p.Present(day)) continue;
      Outbreak ob;
      ob.id = "OB" + std::to_string(outbreaks_.size() + 1);
      ob.county = p.county;
      ob.disease = &data::kCholera;
      ob.start = ob.end = day;
      ob.resident = who;
      ob.fixed_threshold = true;
      outbreaks_.push_back(ob);
      break;
    }
  }

  int64_t EndDay() const { return start_day_ + static_cast<int64_t>(o_.years * 365.25) - 1; }
  static std::string Hl7Control(char kind, const std::string& key) {
    char ctrl[24];
    std::snprintf(ctrl, sizeof ctrl, "%c%016llx", kind, static_cast<unsigned long long>(Fnv1a(key)));
    return ctrl;
  }

  // Every outpatient session that was booked, and the bookable sessions of the two
  // weeks after the period (what a resident can book in the demo).
  void WriteSlots(Ctx& c) const {
    std::map<std::string, SlotUse> all = slots_;
    for (const Org& org : region_.orgs) {
      if (!Bookable(org)) continue;
      for (int64_t day = EndDay() + 1; day <= EndDay() + kFutureSlotDays; ++day)
        for (bool am : {true, false}) {
          SlotUse& s = all[SlotId(org, day, am)];
          s.org = &org;
          s.day = day;
          s.am = am;
        }
    }
    for (const auto& [id, s] : all) {
      const int capacity = SlotCapacity(*s.org);
      c.buf.Clear();
      Writer w(c.buf);
      w.StartObject();
      Str(w, "resourceType", "Slot");
      Str(w, "id", id);
      w.Key("extension");
      w.StartArray();
      w.StartObject();
      Str(w, "url", "http://rhip.health/fhir/StructureDefinition/slot-capacity");
      w.Key("valueInteger");
      w.Int(capacity);
      w.EndObject();
      w.EndArray();
      CodingList(w, "serviceType", "http://rhip.health/CodeSystem/service-type", "outpatient");
      Ref(w, "schedule", "Schedule", "sched-" + s.org->id);
      Str(w, "status", s.booked >= capacity ? "busy" : "free");
      Str(w, "start", DateTimeStr(s.day, s.am ? 8 * 60 : 13 * 60 + 30));
      Str(w, "end", DateTimeStr(s.day, s.am ? 12 * 60 : 17 * 60));
      w.EndObject();
      c.Put("Slot");
    }
  }

  Status WriteOutbreaks() const {
    std::FILE* f = std::fopen((fs::path(o_.out) / "truth" / "outbreaks.csv").c_str(), "wb");
    if (!f) return Status(StatusCode::kUnavailable, "cannot write truth/outbreaks.csv");
    std::fputs("outbreak_id,county,icd10,disease,start,end,cases,kind\n", f);
    for (size_t k = 0; k < outbreaks_.size(); ++k) {
      const Outbreak& ob = outbreaks_[k];
      auto it = outbreak_cases_.find(k);
      std::fprintf(f, "%s,%s,%s,%s,%s,%s,%lld,%s\n", ob.id.c_str(), ob.county.c_str(),
                   std::string(ob.disease->icd10).c_str(), std::string(ob.disease->display).c_str(),
                   DateStr(ob.start).c_str(), DateStr(ob.end).c_str(),
                   static_cast<long long>(it == outbreak_cases_.end() ? 0 : it->second),
                   ob.fixed_threshold ? "fixed-threshold" : "outbreak");
    }
    return std::fclose(f) == 0 ? Status::Ok() : Status(StatusCode::kUnavailable, "writing outbreaks.csv failed");
  }

  // Appends a block's output to the files, in block order.
  void Flush(Ctx& c) {
    for (auto& [type, text] : c.lines) {
      auto n = c.counts.find(type);
      if (n != c.counts.end()) files_[type]->Append(text, n->second);
    }
    std::fputs(c.truth.c_str(), truth_);
    std::fputs(c.immunization_truth.c_str(), imm_truth_);
    std::fwrite(c.adt_utf8.data(), 1, c.adt_utf8.size(), adt_utf8_);
    std::fwrite(c.vxu.data(), 1, c.vxu.size(), vxu_);
    std::fwrite(c.oru.data(), 1, c.oru.size(), oru_);
    std::fputs(c.residents_truth.c_str(), residents_truth_);
    std::fputs(c.results_truth.c_str(), results_truth_);
    std::fputs(c.notifiable_truth.c_str(), notifiable_truth_);
    for (const auto& [id, use] : c.slots) {
      SlotUse& s = slots_[id];
      if (!s.org) s = use; else s.booked += use.booked;
    }
    for (const auto& [k, n] : c.outbreak_cases) outbreak_cases_[k] += n;
    if (!c.adt_gb18030.empty()) {
      // Some institutions' systems still send GB18030 (MSH-18 says so); convert with ICU.
      UErrorCode err = U_ZERO_ERROR;
      const int32_t n = ucnv_convert("GB18030", "UTF-8", nullptr, 0, c.adt_gb18030.data(),
                                     static_cast<int32_t>(c.adt_gb18030.size()), &err);
      std::string gb(static_cast<size_t>(n), '\0');
      err = U_ZERO_ERROR;
      ucnv_convert("GB18030", "UTF-8", gb.data(), n, c.adt_gb18030.data(), static_cast<int32_t>(c.adt_gb18030.size()),
                   &err);
      if (U_SUCCESS(err)) std::fwrite(gb.data(), 1, gb.size(), adt_gb_);
    }
    for (auto& [k, a] : c.ind.acc) {
      Acc& t = ind_.acc[k];
      t.num += a.num;
      t.den += a.den;
    }
  }

  Status Finish(GenSummary* s) {
    {
      Ctx c;
      WriteSlots(c);
      Flush(c);
    }
    RETURN_IF_ERROR(WriteOutbreaks());
    for (std::FILE* f : {oru_, residents_truth_, results_truth_, notifiable_truth_}) std::fclose(f);
    std::fclose(truth_);
    std::fclose(imm_truth_);
    std::fclose(adt_utf8_);
    std::fclose(adt_gb_);
    std::fclose(vxu_);
    truth_ = nullptr;
    for (auto& [t, f] : files_) {
      s->per_type[t] = f->count();
      s->resources += f->count();
      if (!f->Close()) return Status(StatusCode::kUnavailable, "writing " + t + ".ndjson failed (disk full?)");
    }
    return WriteIndicators();
  }

 private:
  static int CalendarYear(int64_t day) {
    int y;
    unsigned m, d;
    CivilFromDays(day, &y, &m, &d);
    return y;
  }

  const Org& ChooseInstitution(const Person& p, Rng& rng, const std::string& cls) const {
    const auto& towns = region_.townships.at(p.county);
    const auto& villages = region_.villages.at(p.county);
    const auto& county = region_.county_hospitals.at(p.county);
    if (cls == "AMB" && rng.Chance(0.63)) {
      if (rng.Chance(0.03)) return region_.orgs[region_.privates.at(p.county)[0]];
      if (rng.Chance(0.30)) return region_.orgs[villages[static_cast<size_t>(p.town) * 2 + rng.Next() % 2]];
      return region_.orgs[towns[static_cast<size_t>(p.town)]];
    }
    if (cls == "IMP" && rng.Chance(0.08)) return region_.orgs[towns[static_cast<size_t>(p.town)]];
    // Secondary care: in the county ~88 % of the time, else a city hospital or a neighbouring county.
    if (rng.Chance(cls == "IMP" ? 0.80 : 0.72)) {
      size_t k = PickWeighted(rng, county, [&](size_t i) {
        return region_.orgs[i].id.back() == '1' ? 0.62 : region_.orgs[i].id.back() == '2' ? 0.25 : 0.13;
      });
      return region_.orgs[county[k]];
    }
    if (rng.Chance(0.8)) return region_.orgs[rng.Pick(region_.city_hospitals)];
    const auto& other = data::kCounties[rng.Next() % data::kCounties.size()];
    return region_.orgs[region_.county_hospitals.at(std::string(other.code))[0]];
  }

  // One encounter: diagnosis, maybe surgery, results, costs, and the indicator truth it feeds.
  VisitResult Visit(Ctx& c, Life& life, const VisitSpec& spec) const {
    VisitResult r;
    if (spec.day > start_day_ + static_cast<int64_t>(o_.years * 365.25)) return r;
    const Person& p = life.p;
    Rng& rng = life.care;
    const int64_t day = spec.day;
    const int year = CalendarYear(day);
    const std::string klass = spec.cls;
    const Org& org = spec.org ? *spec.org : ChooseInstitution(p, rng, klass);
    const std::string patient = life.record_at(org);
    const std::string n = p.id.substr(1) + "-" + std::to_string(++life.seq);
    const std::string enc = "enc-" + n;
    const bool imp = klass == "IMP";
    const int start_min = rng.Int(7 * 60 + 30, 17 * 60);
    const int los = imp ? std::max(1, static_cast<int>(rng.LogNormal(6, 0.6))) : 0;
    const int doctor = rng.Int(1, org.doctors);
    // Diagnosis
    const data::Diagnosis* dx;
    if (spec.dx) {
      dx = spec.dx;
    } else if (imp) {
      dx = &data::kInpatientDiagnoses[PickWeighted(rng, data::kInpatientDiagnoses, [](const auto& d) { return d.weight; })];
    } else if ((p.hypertension && rng.Chance(0.4))) {
      dx = &data::kOutpatientDiagnoses[1];
    } else if (p.diabetes && rng.Chance(0.3)) {
      dx = &data::kOutpatientDiagnoses[2];
    } else {
      dx = &data::kOutpatientDiagnoses[PickWeighted(rng, data::kOutpatientDiagnoses, [](const auto& d) { return d.weight; })];
    }
    const std::string cond = "cond-" + n;
    {
      c.buf.Clear();
      Writer w(c.buf);
      w.StartObject();
      Str(w, "resourceType", "Condition");
      Str(w, "id", cond);
      Coding(w, "clinicalStatus", "http://terminology.hl7.org/CodeSystem/condition-clinical", "active");
      CodingList(w, "category", "http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis");
      Coding(w, "code", "http://hl7.org/fhir/sid/icd-10", dx->icd10, dx->display);
      Ref(w, "subject", "Patient", patient);
      Ref(w, "encounter", "Encounter", enc);
      Str(w, "recordedDate", DateTimeStr(day, start_min));
      w.EndObject();
      c.Put("Condition");
    }
    // Surgery for some stays.
    const data::ProcedureDef* proc = nullptr;
    bool day_surgery = false;
    if (imp && org.level != Level::kTownship && rng.Chance(0.40)) {
      proc = &rng.Pick(data::kProcedures);
      day_surgery = proc->day_surgery_eligible && rng.Chance(0.35);
    }
    const int end_day_offset = day_surgery ? 0 : los;
    // Outpatient visits booked ahead (预约诊疗): most at hospitals, some at township centres.
    std::string appointment;
    if (klass == "AMB" && BookAhead(org, !spec.based_on.empty(), rng)) {
      appointment = "appt-" + n;
      WriteAppointment(c, appointment, patient, org, doctor, day, start_min, rng, "fulfilled");
      if (rng.Chance(0.05)) {  // an earlier booking the patient did not keep
        const int64_t missed = day - rng.Int(3, 10);
        if (life.p.Present(missed) && missed >= start_day_)
          WriteAppointment(c, appointment + "-noshow", patient, org, rng.Int(1, org.doctors), missed, start_min, rng,
                           "noshow");
      }
    }
    {
      c.buf.Clear();
      Writer w(c.buf);
      w.StartObject();
      Str(w, "resourceType", "Encounter");
      Str(w, "id", enc);
      Str(w, "status", "finished");
      w.Key("class");
      w.StartObject();
      Str(w, "system", "http://terminology.hl7.org/CodeSystem/v3-ActCode");
      Str(w, "code", klass);
      w.EndObject();
      if (day_surgery) {
        CodingList(w, "type", "http://rhip.health/CodeSystem/encounter-type", "day-surgery");
      }
      Ref(w, "subject", "Patient", patient);
      if (!spec.based_on.empty()) {
        w.Key("basedOn");
        w.StartArray();
        w.StartObject();
        Str(w, "reference", "ServiceRequest/" + spec.based_on);
        w.EndObject();
        w.EndArray();
      }
      w.Key("participant");
      w.StartArray();
      w.StartObject();
      Ref(w, "individual", "Practitioner", org.id + "-D" + std::to_string(doctor));
      w.EndObject();
      w.EndArray();
      if (!appointment.empty()) {
        w.Key("appointment");
        w.StartArray();
        w.StartObject();
        Str(w, "reference", "Appointment/" + appointment);
        w.EndObject();
        w.EndArray();
      }
      w.Key("period");
      w.StartObject();
      Str(w, "start", DateTimeStr(day, start_min));
      Str(w, "end", DateTimeStr(day + end_day_offset, imp ? rng.Int(9 * 60, 16 * 60) : start_min + rng.Int(10, 40)));
      w.EndObject();
      w.Key("diagnosis");
      w.StartArray();
      w.StartObject();
      Ref(w, "condition", "Condition", cond);
      w.Key("rank");
      w.Int(1);
      w.EndObject();
      w.EndArray();
      if (imp) {
        w.Key("hospitalization");
        w.StartObject();
        Coding(w, "dischargeDisposition", "http://terminology.hl7.org/CodeSystem/discharge-disposition", "home");
        w.EndObject();
      }
      Ref(w, "serviceProvider", "Organization", org.id);
      w.EndObject();
      c.Put("Encounter");
    }
    if (proc) {
      c.buf.Clear();
      Writer w(c.buf);
      w.StartObject();
      Str(w, "resourceType", "Procedure");
      Str(w, "id", "proc-" + n);
      w.Key("extension");
      w.StartArray();
      w.StartObject();
      Str(w, "url", "http://rhip.health/fhir/StructureDefinition/surgery-level");
      w.Key("valueInteger");
      w.Int(proc->level);
      w.EndObject();
      w.StartObject();
      Str(w, "url", "http://rhip.health/fhir/StructureDefinition/minimally-invasive");
      w.Key("valueBoolean");
      w.Bool(proc->minimally_invasive);
      w.EndObject();
      w.EndArray();
      Str(w, "status", "completed");
      Coding(w, "code", "http://rhip.health/CodeSystem/icd-9-cm-3", proc->code, proc->display);
      Ref(w, "subject", "Patient", patient);
      Ref(w, "encounter", "Encounter", enc);
      Str(w, "performedDateTime", DateTimeStr(day, start_min + 60));
      w.EndObject();
      c.Put("Procedure");
    }
    // Lab and imaging results; a referral's receiving doctor often orders the same tests again.
    r.org = &org;
    r.dx = dx;
    r.patient = patient;
    r.enc = enc;
    r.day = day;
    r.end_day = day + end_day_offset;
    r.start_min = start_min;
    r.ordered = Orders(life, org, klass, *dx, spec.repeat);
    WriteResults(c, life, r);
    // Costs (CNY): one Claim per encounter.
    struct Item {
      const char* category;
      double share;
    };
    static const std::vector<Item> kOutShares = {{"drug", 0.42}, {"exam", 0.12}, {"lab", 0.14}, {"service", 0.26}, {"material", 0.06}};
    static const std::vector<Item> kInShares = {{"drug", 0.28}, {"material", 0.20}, {"exam", 0.09}, {"lab", 0.10},
                                                {"service", 0.22}, {"bed", 0.08}, {"other", 0.03}};
    double median = imp ? (org.level == Level::kCityHospital ? 13000 : org.primary() ? 2600 : 8500) * (proc ? 1.8 : 1.0)
                        : (org.primary() ? 75 : org.level == Level::kCityHospital ? 330 : 240);
    if (klass == "EMER") median *= 1.6;
    double total = std::round(rng.LogNormal(median, imp ? 0.5 : 0.6) * 100) / 100;
    const auto& shares = imp ? kInShares : kOutShares;
    std::vector<double> amounts;
    double sum = 0;
    for (size_t i = 0; i < shares.size(); ++i) {
      double a = i + 1 == shares.size() ? std::round((total - sum) * 100) / 100
                                        : std::round(total * shares[i].share * (0.7 + 0.6 * rng.Uniform()) * 100) / 100;
      if (i + 1 < shares.size() && sum + a > total) a = std::max(0.0, std::round((total - sum) * 100) / 100);
      amounts.push_back(a);
      sum += a;
    }
    {
      c.buf.Clear();
      Writer w(c.buf);
      w.StartObject();
      Str(w, "resourceType", "Claim");
      Str(w, "id", "clm-" + n);
      Str(w, "status", "active");
      Coding(w, "type", "http://terminology.hl7.org/CodeSystem/claim-type", imp ? "institutional" : "professional");
      Str(w, "use", "claim");
      Ref(w, "patient", "Patient", patient);
      Str(w, "created", DateStr(day + end_day_offset));
      Ref(w, "provider", "Organization", org.id);
      Coding(w, "priority", "http://terminology.hl7.org/CodeSystem/processpriority", "normal");
      w.Key("insurance");
      w.StartArray();
      w.StartObject();
      w.Key("sequence");
      w.Int(1);
      w.Key("focal");
      w.Bool(true);
      w.Key("coverage");
      w.StartObject();
      Str(w, "display", "基本医疗保险");
      w.EndObject();
      w.EndObject();
      w.EndArray();
      w.Key("item");
      w.StartArray();
      for (size_t i = 0; i < shares.size(); ++i) {
        w.StartObject();
        w.Key("sequence");
        w.Int(static_cast<int>(i + 1));
        Coding(w, "category", "http://rhip.health/CodeSystem/charge-category", shares[i].category);
        w.Key("productOrService");
        w.StartObject();
        Str(w, "text", shares[i].category);
        w.EndObject();
        w.Key("encounter");
        w.StartArray();
        w.StartObject();
        Str(w, "reference", "Encounter/" + enc);
        w.EndObject();
        w.EndArray();
        w.Key("net");
        w.StartObject();
        w.Key("value");
        w.Double(amounts[i]);
        Str(w, "currency", "CNY");
        w.EndObject();
        w.EndObject();
      }
      w.EndArray();
      w.Key("total");
      w.StartObject();
      w.Key("value");
      w.Double(total);
      Str(w, "currency", "CNY");
      w.EndObject();
      w.EndObject();
      c.Put("Claim");
    }
    // Indicator truth, straight from the model (DOMAIN B.6).
    const bool in_county = org.county == p.county;
    for (const std::string& area : {p.county, std::string("330400")}) {
      c.ind.Add("county-visit-rate", year, area, (area == "330400" || in_county) ? 1 : 0, 1);
    }
    const int end_year = CalendarYear(day + end_day_offset);
    double service = 0;
    for (size_t i = 0; i < shares.size(); ++i) {
      std::string_view cat = shares[i].category;
      if (cat != "drug" && cat != "material" && cat != "exam" && cat != "lab") service += amounts[i];
    }
    for (const std::string& area : {org.county, std::string("330400")}) {
      if (!imp) {
        c.ind.Add("primary-care-visit-rate", year, area, org.primary() ? 1 : 0, 1);
        c.ind.Add("outpatient-avg-cost", year, area, total, 1);
        c.ind.Add("service-revenue-share", year, area, service, total);
      } else {
        c.ind.Add("inpatient-avg-cost", end_year, area, total, 1);
        c.ind.Add("service-revenue-share", end_year, area, service, total);
        if (proc) {
          c.ind.Add("day-surgery-share", end_year, area, day_surgery ? 1 : 0, 1);
          c.ind.Add("level34-surgery-share", end_year, area, proc->level >= 3 ? 1 : 0, 1);
          c.ind.Add("mis-share", end_year, area, proc->minimally_invasive ? 1 : 0, 1);
        }
      }
      if (!imp) c.ind.Add("appointment-rate", year, area, appointment.empty() ? 0 : 1, 1);
    }
    return r;
  }

  // The Patient an institution registered, with the errors its clerk made.
  void WritePatient(Ctx& c, const Person& p, const Org& org, const std::string& rid, Rng& rng) const {
    std::vector<std::string> corruptions;
    std::string surname = p.surname, given = p.given;
    auto replace_char = [&](const std::vector<std::vector<std::string_view>>& groups, const char* tag) {
      const std::string full = surname + given;  // `chars` points into it
      std::vector<std::string_view> chars = Chars(full);
      std::vector<size_t> candidates;
      for (size_t i = 0; i < chars.size(); ++i)
        for (const auto& g : groups)
          for (auto ch : g)
            if (ch == chars[i]) candidates.push_back(i);
      if (candidates.empty()) return;
      size_t i = candidates[rng.Next() % candidates.size()];
      for (const auto& g : groups) {
        if (std::find(g.begin(), g.end(), chars[i]) == g.end()) continue;
        std::string_view repl = chars[i];
        while (repl == chars[i]) repl = g[rng.Next() % g.size()];
        std::string out;
        for (size_t k = 0; k < chars.size(); ++k) out += std::string(k == i ? repl : chars[k]);
        size_t surname_len = Chars(surname).size();
        auto all = Chars(out);
        surname.clear();
        given.clear();
        for (size_t k = 0; k < all.size(); ++k) (k < surname_len ? surname : given) += std::string(all[k]);
        corruptions.push_back(tag);
        return;
      }
    };
    if (rng.Chance(0.03)) replace_char(data::kHomophones, "name-homophone");
    if (rng.Chance(0.015)) replace_char(data::kNearHomophones, "name-near-homophone");
    if (rng.Chance(0.01)) {
      std::vector<std::vector<std::string_view>> trad;
      for (const auto& [s, t] : data::kTraditional)
        if (s != t) trad.push_back({s, t});
      replace_char(trad, "name-traditional");
    }
    std::string id_number = p.id_number;
    const double missing = org.level == Level::kVillage ? 0.15 : org.level == Level::kPrivate ? 0.10 : 0.03;
    if (rng.Chance(missing)) {
      id_number.clear();
      corruptions.push_back("id-missing");
    } else if (rng.Chance(0.02)) {
      size_t pos = static_cast<size_t>(rng.Int(6, 16));
      id_number[pos] = static_cast<char>('0' + (id_number[pos] - '0' + rng.Int(1, 9)) % 10);
      corruptions.push_back("id-typo");
    } else if (p.birth_day < DaysFromCivil(1985, 1, 1) && rng.Chance(0.10)) {
      id_number = id_number.substr(0, 6) + id_number.substr(8, 9);  // old 15-digit card
      corruptions.push_back("id-15");
    }
    std::string birth = DateStr(p.birth_day);
    if (rng.Chance(0.01)) {
      std::string mm = birth.substr(5, 2), dd = birth.substr(8, 2);
      if (dd <= "12" && dd != mm) {
        birth = birth.substr(0, 5) + dd + "-" + mm;
        corruptions.push_back("birth-swap");
      }
    }
    std::string phone = p.phone;
    if (rng.Chance(0.10)) {
      phone = phone.substr(0, 3) + std::to_string(10000000 + rng.Int(0, 89999999));
      corruptions.push_back("phone-changed");
    }
    std::string address = p.address;
    if (rng.Chance(0.05)) {
      address = "浙江省嘉兴市" + std::to_string(rng.Int(1, 200)) + "号";
      corruptions.push_back("address-changed");
    }
    const std::string mrn = "MR" + std::to_string(Mix(o_.seed, Fnv1a(rid)) % 100000000);
    c.buf.Clear();
    Writer w(c.buf);
    w.StartObject();
    Str(w, "resourceType", "Patient");
    Str(w, "id", rid);
    w.Key("identifier");
    w.StartArray();
    w.StartObject();
    Str(w, "system", "http://rhip.health/id/mrn/" + org.id);
    Str(w, "value", mrn);
    w.EndObject();
    if (!id_number.empty()) {
      w.StartObject();
      Str(w, "system", "urn:oid:2.16.156.10011.1.3");
      Str(w, "value", id_number);
      w.EndObject();
    }
    if (!org.primary() || rng.Chance(0.5)) {
      w.StartObject();
      Str(w, "system", "urn:oid:2.16.156.10011.1.19");
      Str(w, "value", p.health_card);
      w.EndObject();
    }
    w.EndArray();
    w.Key("name");
    w.StartArray();
    w.StartObject();
    Str(w, "text", surname + given);
    Str(w, "family", surname);
    w.Key("given");
    w.StartArray();
    w.String(given.c_str(), static_cast<rapidjson::SizeType>(given.size()));
    w.EndArray();
    w.EndObject();
    w.EndArray();
    w.Key("telecom");
    w.StartArray();
    w.StartObject();
    Str(w, "system", "phone");
    Str(w, "value", phone);
    w.EndObject();
    w.EndArray();
    Str(w, "gender", p.male ? "male" : "female");
    Str(w, "birthDate", birth);
    w.Key("address");
    w.StartArray();
    w.StartObject();
    Str(w, "text", address);
    Str(w, "district", p.county);
    w.EndObject();
    w.EndArray();
    Ref(w, "managingOrganization", "Organization", org.id);
    w.EndObject();
    c.Put("Patient");
    std::string joined;
    for (const auto& tag : corruptions) joined += (joined.empty() ? "" : ";") + tag;
    c.truth += rid + "," + p.id + "," + joined + "\n";
    // The same registration as the institution's HIS sends it: ADT^A04 (DOMAIN A, HL7 v2 conventions).
    std::string pid = "PID|1||" + Hl7Escape(mrn) + "^^^" + org.id + "^MR";
    if (!id_number.empty()) pid += "~" + Hl7Escape(id_number) + "^^^^NNCHN";
    std::string compact_birth = birth;
    compact_birth.erase(std::remove(compact_birth.begin(), compact_birth.end(), '-'), compact_birth.end());
    pid += "||" + Hl7Escape(surname) + "^" + Hl7Escape(given) + "||" + compact_birth + "|" + (p.male ? "M" : "F") +
           "|||" + Hl7Escape(address) + "^^^^^^^^" + p.county + "||" + Hl7Escape(phone);
    const bool gb = org.level == Level::kVillage || org.level == Level::kPrivate;
    std::string start = DateStr(start_day_);
    start.erase(std::remove(start.begin(), start.end(), '-'), start.end());
    char ctrl[24];
    std::snprintf(ctrl, sizeof ctrl, "A%016llx", static_cast<unsigned long long>(Fnv1a(rid)));
    (gb ? c.adt_gb18030 : c.adt_utf8) += "MSH|^~\\&|HIS|" + org.id + "|RHIP|330400|" + start + "080000||ADT^A04^ADT_A01|" +
                                         ctrl + "|P|2.5|||||CHN|" + (gb ? "GB 18030-2000" : "UNICODE UTF-8") + "\r" +
                                         "EVN|A04|" + start + "080000\r" + pid + "\rPV1|1|O\r\n";
    c.pid_segment[rid] = pid;
  }

  Status WriteIndicators() {
    std::FILE* f = std::fopen((fs::path(o_.out) / "truth" / "indicators.csv").c_str(), "wb");
    if (!f) return Status(StatusCode::kUnavailable, "cannot write truth/indicators.csv");
    std::fputs("indicator,period,org,numerator,denominator,value\n", f);
    for (const auto& [key, a] : ind_.acc) {
      const auto& [ind, year, org] = key;
      std::string value = a.den > 0 ? std::to_string(a.num / a.den) : "";
      std::fprintf(f, "%s,%d,%s,%.2f,%.2f,%s\n", std::string(ind).c_str(), year, org.c_str(), a.num, a.den,
                   value.c_str());
    }
    return std::fclose(f) == 0 ? Status::Ok() : Status(StatusCode::kUnavailable, "writing indicators.csv failed");
  }

  const GenOptions& o_;
  const int64_t start_day_;
  Region region_;
  std::map<std::string, std::unique_ptr<Ndjson>> files_;
  std::FILE* truth_ = nullptr;
  std::FILE* imm_truth_ = nullptr;
  std::FILE* adt_utf8_ = nullptr;
  std::FILE* adt_gb_ = nullptr;
  std::FILE* vxu_ = nullptr;
  std::FILE* oru_ = nullptr;
  std::FILE* residents_truth_ = nullptr;
  std::FILE* results_truth_ = nullptr;
  std::FILE* notifiable_truth_ = nullptr;
  Indicators ind_;
  std::map<std::string, SlotUse> slots_;
  std::map<size_t, int64_t> outbreak_cases_;
  std::vector<Outbreak> outbreaks_;
  std::vector<double> eligible_share_;  // per notifiable disease: share of residents in its age range
  static constexpr int kFutureSlotDays = 14;  // bookable sessions after the period
  static constexpr int kCoverageGraceDays = 30;
};

}  // namespace

StatusOr<GenSummary> GenerateRegion(const GenOptions& o, const GenProgressFn& progress) {
  if (o.residents <= 0) return InvalidArgument("--residents must be a positive number, got " + std::to_string(o.residents));
  if (o.years < 1 || o.years > 20) return InvalidArgument("--years must be 1 to 20, got " + std::to_string(o.years));
  if (!IsValidFhirDate(o.start) || o.start.size() != 10)
    return InvalidArgument("--start must be a date YYYY-MM-DD, got '" + o.start + "'");
  if (o.out.empty()) return InvalidArgument("--out names no folder");
  std::error_code ec;
  if (fs::exists(o.out, ec) && !fs::is_empty(o.out, ec) && !o.force)
    return Status(StatusCode::kAlreadyExists, o.out + " is not empty: choose another folder or pass --force");
  if (o.force) {
    fs::remove_all(fs::path(o.out) / "fhir", ec);
    fs::remove_all(fs::path(o.out) / "truth", ec);
  }
  fs::create_directories(fs::path(o.out) / "fhir", ec);
  if (!ec) fs::create_directories(fs::path(o.out) / "truth", ec);
  if (ec) return Status(StatusCode::kUnavailable, "cannot create " + o.out + ": " + ec.message());

  const auto t0 = std::chrono::steady_clock::now();
  const int64_t start_day = DaysFromCivil(std::stoi(o.start.substr(0, 4)), static_cast<unsigned>(std::stoi(o.start.substr(5, 2))),
                                          static_cast<unsigned>(std::stoi(o.start.substr(8, 2))));
  Generator g(o, start_day);
  RETURN_IF_ERROR(g.Open());
  {
    Ctx c;
    g.WriteInstitutions(c);
    g.Flush(c);
  }
  // Blocks of residents generated on two threads, written in order.
  constexpr int64_t kBlock = 256;
  const int64_t blocks = (o.residents + kBlock - 1) / kBlock;
  // Contexts are reused, so their buffers keep their capacity from block to block.
  std::mutex pool_mu;
  std::vector<std::unique_ptr<Ctx>> pool;
  auto make = [&](int64_t b) {
    std::unique_ptr<Ctx> c;
    {
      std::lock_guard<std::mutex> lock(pool_mu);
      if (!pool.empty()) {
        c = std::move(pool.back());
        pool.pop_back();
      }
    }
    if (!c) c = std::make_unique<Ctx>();
    for (int64_t i = b * kBlock; i < std::min(o.residents, (b + 1) * kBlock); ++i) g.Resident(i, *c);
    return c;
  };
  auto last = std::chrono::steady_clock::now();
  std::deque<std::future<std::unique_ptr<Ctx>>> in_flight;
  int64_t next = 0, done = 0;
  while (done < blocks) {
    while (next < blocks && in_flight.size() < 4) in_flight.push_back(std::async(std::launch::async, make, next++));
    std::unique_ptr<Ctx> c = in_flight.front().get();
    in_flight.pop_front();
    g.Flush(*c);
    c->Clear();
    {
      std::lock_guard<std::mutex> lock(pool_mu);
      pool.push_back(std::move(c));
    }
    ++done;
    auto now = std::chrono::steady_clock::now();
    if (progress && (done == blocks || now - last > std::chrono::milliseconds(500))) {
      last = now;
      progress({std::min(o.residents, done * kBlock), o.residents, 0});
    }
  }
  GenSummary s;
  s.residents = o.residents;
  RETURN_IF_ERROR(g.Finish(&s));
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::FILE* f = std::fopen((fs::path(o.out) / "truth" / "summary.json").c_str(), "wb");
  if (!f) return Status(StatusCode::kUnavailable, "cannot write truth/summary.json");
  std::fprintf(f, "{\"residents\":%lld,\"seed\":%llu,\"years\":%d,\"start\":\"%s\",\"resources\":%lld,\"perType\":{",
               static_cast<long long>(o.residents), static_cast<unsigned long long>(o.seed), o.years, o.start.c_str(),
               static_cast<long long>(s.resources));
  bool first = true;
  for (const auto& [t, n] : s.per_type) {
    std::fprintf(f, "%s\"%s\":%lld", first ? "" : ",", t.c_str(), static_cast<long long>(n));
    first = false;
  }
  std::fputs("}}\n", f);
  std::fclose(f);
  return s;
}

}  // namespace rhip::gen
