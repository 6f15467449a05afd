#include "rhip/gen/generator.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <future>
#include <memory>
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
  double LogNormal(double median, double sigma) {
    double u1 = std::max(Uniform(), 1e-12), u2 = Uniform();
    double z = std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
    return median * std::exp(sigma * z);
  }
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
std::string DateTimeStr(int64_t day, int minutes) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%sT%02d:%02d:00+08:00", DateStr(day).c_str(), minutes / 60 % 24, minutes % 60);
  return buf;
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
  Rng rng(Mix(seed, static_cast<uint64_t>(index) * 2 + 1));
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
  p.birth_region = rng.Chance(0.85) ? p.county : kElsewhere[rng.Next() % 6];
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

// ---- indicator truth -------------------------------------------------------------

struct Acc {
  double num = 0, den = 0;
};
struct Indicators {
  // key: indicator|year|org
  std::map<std::string, Acc> acc;
  void Add(const std::string& ind, int year, const std::string& org, double num, double den) {
    Acc& a = acc[ind + "|" + std::to_string(year) + "|" + org];
    a.num += num;
    a.den += den;
  }
};

// ---- the generator --------------------------------------------------------------

// What one block of residents produces; blocks are generated in parallel and
// written in order, so the output does not depend on scheduling.
struct Ctx {
  rapidjson::StringBuffer buf;
  std::map<std::string, std::string> lines;  // type → NDJSON text
  std::map<std::string, int64_t> counts;
  std::string truth;
  std::string immunization_truth;
  // HL7 v2.5 messages (segments end in \r, messages in \n): UTF-8 senders, GB18030 senders, VXU.
  std::string adt_utf8, adt_gb18030, vxu;
  std::unordered_map<std::string, std::string> pid_segment;  // Patient record id → its PID segment
  Indicators ind;
  void Put(const std::string& type) {
    std::string& l = lines[type];
    l.append(buf.GetString(), buf.GetSize());
    l += '\n';
    ++counts[type];
  }
};

class Generator {
 public:
  Generator(const GenOptions& o, int64_t start_day) : o_(o), start_day_(start_day), region_(BuildRegion()) {}

  Status Open() {
    const fs::path dir = fs::path(o_.out) / "fhir";
    for (const char* t : {"Organization", "Practitioner", "PractitionerRole", "Patient", "Encounter", "Condition",
                          "Procedure", "Claim", "Immunization", "CareTeam", "EpisodeOfCare"}) {
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
    if (!adt_utf8_ || !adt_gb_ || !vxu_) return Status(StatusCode::kUnavailable, "cannot write hl7v2/*.hl7");
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
    Person p = MakePerson(index, o_.seed, start_day_, o_.years);
    Rng rng(Mix(o_.seed, static_cast<uint64_t>(index) * 2 + 2));
    std::unordered_map<std::string, std::string> records;  // org id → Patient id
    auto record_at = [&](const Org& org) -> const std::string& {
      auto it = records.find(org.id);
      if (it != records.end()) return it->second;
      std::string rid = "pat-" + p.id.substr(1) + "-" + org.id;
      WritePatient(c, p, org, rid, rng);
      return records.emplace(org.id, rid).first->second;
    };
    int seq = 0;  // this resident's encounters
    const int age0 = static_cast<int>((start_day_ - p.birth_day) / 365);
    for (int year = 0; year < o_.years; ++year) {
      const int64_t y0 = start_day_ + static_cast<int64_t>(year * 365.25);
      const int cal_year = CalendarYear(y0);
      const int age = age0 + year;
      if (y0 + 365 < p.birth_day) continue;  // not born yet this year
      double rate = age < 7 ? 6 : age < 18 ? 3 : age < 45 ? 4.5 : age < 65 ? 8.5 : 15;
      if (p.hypertension) rate += 3;
      if (p.diabetes) rate += 2;
      int visits = rng.Poisson(rate * 0.93);
      for (int v = 0; v < visits; ++v) {
        int64_t day = y0 + rng.Int(0, 364);
        if (day < p.birth_day) continue;
        Visit(c, p, rng, day, cal_year, rng.Chance(0.04) ? "EMER" : "AMB", record_at, &seq);
      }
      double admit = age < 5 ? 0.10 : age < 45 ? 0.08 : age < 65 ? 0.16 : 0.32;
      if (rng.Chance(admit)) {
        int64_t day = y0 + rng.Int(0, 364);
        if (day >= p.birth_day) Visit(c, p, rng, day, cal_year, "IMP", record_at, &seq);
      }
    }
    Immunizations(c, p, index, record_at);
    Contracts(c, p, index, record_at);
  }

  // Family-doctor contracts (家庭医生签约): one-year EpisodeOfCare with the town's
  // team, ~40 % of residents and ~75 % of key populations; contracted hypertensive
  // or diabetic residents get quarterly home/clinic follow-ups (HH encounters),
  // with some missed. Own random stream.
  template <typename RecordAt>
  void Contracts(Ctx& c, const Person& p, int64_t index, RecordAt& record_at) const {
    Rng rng(Mix(o_.seed, static_cast<uint64_t>(index) * 2 + 4));
    const Org& centre = region_.orgs[region_.townships.at(p.county)[static_cast<size_t>(p.town)]];
    int follow_seq = 0;
    for (int year = 0; year < o_.years; ++year) {
      const int64_t y0 = start_day_ + static_cast<int64_t>(year * 365.25);
      const int cal_year = CalendarYear(y0);
      if (p.birth_day > y0 + 364) continue;  // not yet born
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
      const int64_t from = std::max(y0, p.birth_day) + rng.Int(0, 30);
      c.buf.Clear();
      Writer w(c.buf);
      w.StartObject();
      Str(w, "resourceType", "EpisodeOfCare");
      Str(w, "id", "contract-" + p.id.substr(1) + "-" + std::to_string(cal_year));
      Str(w, "status", "active");
      CodingList(w, "type", "http://rhip.health/CodeSystem/episode-type", "family-doctor-contract");
      Ref(w, "patient", "Patient", patient);
      Ref(w, "managingOrganization", "Organization", centre.id);
      w.Key("period");
      w.StartObject();
      Str(w, "start", DateStr(from));
      Str(w, "end", DateStr(from + 364));
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
        if (day < p.birth_day) continue;
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
    Rng rng(Mix(o_.seed, static_cast<uint64_t>(index) * 2 + 3));
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
        if (!in_force || due < start_day_ || due >= end_day) continue;
        std::string given;
        std::string record;
        if (!rng.Chance(0.03)) {
          double r = rng.Uniform();
          int delay = r < 0.70 ? rng.Int(0, 7) : r < 0.90 ? rng.Int(8, 30) : rng.Int(31, 90);
          int64_t day = due + (d.age_days == 0 ? 0 : delay);
          auto prev = last_given.find(d.vaccine);
          if (prev != last_given.end()) day = std::max(day, prev->second + 28);
          if (day < end_day) {
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
      }
    }
  }

  // Appends a block's output to the files, in block order.
  void Flush(Ctx& c) {
    for (auto& [type, text] : c.lines) files_[type]->Append(text, c.counts[type]);
    std::fputs(c.truth.c_str(), truth_);
    std::fputs(c.immunization_truth.c_str(), imm_truth_);
    std::fwrite(c.adt_utf8.data(), 1, c.adt_utf8.size(), adt_utf8_);
    std::fwrite(c.vxu.data(), 1, c.vxu.size(), vxu_);
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
    if (cls == "AMB" && rng.Chance(0.60)) {
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

  template <typename RecordAt>
  void Visit(Ctx& c, const Person& p, Rng& rng, int64_t day, int year, const char* cls, RecordAt& record_at,
             int* seq) const {
    if (day > start_day_ + static_cast<int64_t>(o_.years * 365.25)) return;
    const std::string klass = cls;
    const Org& org = ChooseInstitution(p, rng, klass);
    const std::string& patient = record_at(org);
    const std::string n = p.id.substr(1) + "-" + std::to_string(++*seq);
    const std::string enc = "enc-" + n;
    const bool imp = klass == "IMP";
    const int start_min = rng.Int(7 * 60 + 30, 17 * 60);
    const int los = imp ? std::max(1, static_cast<int>(rng.LogNormal(6, 0.6))) : 0;
    // Diagnosis
    const data::Diagnosis* dx;
    if (imp) {
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
      w.Key("participant");
      w.StartArray();
      w.StartObject();
      Ref(w, "individual", "Practitioner", org.id + "-D" + std::to_string(rng.Int(1, org.doctors)));
      w.EndObject();
      w.EndArray();
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
    }
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
      size_t p1 = key.find('|'), p2 = key.find('|', p1 + 1);
      std::string value = a.den > 0 ? std::to_string(a.num / a.den) : "";
      std::fprintf(f, "%s,%s,%s,%.2f,%.2f,%s\n", key.substr(0, p1).c_str(), key.substr(p1 + 1, p2 - p1 - 1).c_str(),
                   key.substr(p2 + 1).c_str(), a.num, a.den, value.c_str());
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
  Indicators ind_;
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
  auto make = [&](int64_t b) {
    auto c = std::make_unique<Ctx>();
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
