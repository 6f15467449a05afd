#include "rhip/mpi/link.h"

#include "rhip/core/time.h"
#include "rhip/mpi/person.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <numeric>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace rhip::mpi {
namespace {

constexpr int kLevels[kFieldCount] = {5, 5, 5, 3, 3, 3, 3};  // levels per field, 0 included
constexpr size_t kMaxBucket = 64;  // a blocking key shared by more records than this is not selective

std::string_view Str(const rapidjson::Value& v, const char* k) {
  auto it = v.FindMember(k);
  return it != v.MemberEnd() && it->value.IsString() ? std::string_view(it->value.GetString(), it->value.GetStringLength())
                                                     : std::string_view();
}

class Timer {
 public:
  double Lap() {
    auto now = std::chrono::steady_clock::now();
    double s = std::chrono::duration<double>(now - t_).count();
    t_ = now;
    return s;
  }

 private:
  std::chrono::steady_clock::time_point t_ = std::chrono::steady_clock::now();
};

uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

int Hamming18(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return 99;
  int d = 0;
  for (size_t i = 0; i < a.size(); ++i) d += a[i] != b[i];
  // An adjacent transposition is one typing error too.
  if (d == 2) {
    for (size_t i = 0; i + 1 < a.size(); ++i)
      if (a[i] != b[i]) return a[i] == b[i + 1] && a[i + 1] == b[i] ? 1 : 2;
  }
  return d;
}

bool ValidId(const NormalizedId& id) { return id.status == IdStatus::kValid || id.status == IdStatus::kConflicting; }

struct UnionFind {
  std::vector<int64_t> parent;
  std::vector<std::vector<std::string>> ids;  // valid ID numbers in the set (at most one, by the rule)
  explicit UnionFind(size_t n) : parent(n), ids(n) { std::iota(parent.begin(), parent.end(), 0); }
  int64_t Find(int64_t x) {
    while (parent[static_cast<size_t>(x)] != x) x = parent[static_cast<size_t>(x)] = parent[static_cast<size_t>(parent[static_cast<size_t>(x)])];
    return x;
  }
};

// Comparison patterns as one number (mixed radix over the fields' level counts).
constexpr size_t kPatterns = 5 * 5 * 5 * 3 * 3 * 3 * 3;
uint16_t PatternCode(const Levels& l) {
  uint32_t c = 0;
  for (int f = 0; f < kFieldCount; ++f) c = c * static_cast<uint32_t>(kLevels[f]) + l[f];
  return static_cast<uint16_t>(c);
}
Levels PatternLevels(uint16_t code) {
  Levels l{};
  uint32_t c = code;
  for (int f = kFieldCount - 1; f >= 0; --f) {
    l[f] = static_cast<uint8_t>(c % static_cast<uint32_t>(kLevels[f]));
    c /= static_cast<uint32_t>(kLevels[f]);
  }
  return l;
}
int NameLevelOf(uint16_t code) {
  uint32_t c = code;
  for (int f = kFieldCount - 1; f > kFieldName; --f) c /= static_cast<uint32_t>(kLevels[f]);
  return static_cast<int>(c % static_cast<uint32_t>(kLevels[kFieldName]));
}

bool LeapYear(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// A full calendar date, not before 1900 and not after today (UTC+08:00).
bool PlausibleBirthDate(std::string_view b) {
  if (b.size() != 10 || b[4] != '-' || b[7] != '-') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9})
    if (b[i] < '0' || b[i] > '9') return false;
  const int y = std::stoi(std::string(b.substr(0, 4))), m = std::stoi(std::string(b.substr(5, 2))),
            d = std::stoi(std::string(b.substr(8, 2)));
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1900 || m < 1 || m > 12 || d < 1 || d > kDays[m - 1] + (m == 2 && LeapYear(y))) return false;
  static const std::string today = FormatLocalDate(NowMicros());
  return std::string(b) <= today;
}

}  // namespace

StatusOr<PatientRecord> RecordFromPatientJson(std::string_view json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) return InvalidArgument("not a JSON object");
  if (Str(d, "resourceType") != "Patient") return InvalidArgument("not a Patient");
  PatientRecord r;
  r.id = std::string(Str(d, "id"));
  if (r.id.empty()) return InvalidArgument("Patient without an id");
  r.birth = std::string(Str(d, "birthDate"));
  // Partial dates (YYYY, YYYY-MM) are valid FHIR but not compared; impossible ones are flagged.
  const bool partial = (r.birth.size() == 4 || r.birth.size() == 7) && r.birth[0] >= '1' && r.birth[0] <= '2';
  if (!r.birth.empty() && !partial && !PlausibleBirthDate(r.birth)) {
    r.quality |= kFlagBirthInvalid;
    r.birth.clear();
  }
  if (partial) r.birth.clear();
  const std::string_view g = Str(d, "gender");
  r.sex = g == "male" ? Sex::kMale : g == "female" ? Sex::kFemale : Sex::kUnknown;
  std::string id_raw;
  if (auto it = d.FindMember("identifier"); it != d.MemberEnd() && it->value.IsArray()) {
    for (const auto& i : it->value.GetArray()) {
      if (!i.IsObject()) continue;
      if (Str(i, "system") == "urn:oid:2.16.156.10011.1.3") id_raw = std::string(Str(i, "value"));
      if (Str(i, "system") == "urn:oid:2.16.156.10011.1.19") r.health_card = std::string(Str(i, "value"));
    }
  }
  r.id_number = NormalizeIdNumber(id_raw, r.birth, r.sex);
  if (!id_raw.empty()) {
    if (r.id_number.status == IdStatus::kMalformed) r.quality |= kFlagIdMalformed;
    if (r.id_number.status == IdStatus::kBadCheck) r.quality |= kFlagIdBadCheck;
    if (r.id_number.status == IdStatus::kConflicting) r.quality |= kFlagIdInconsistent;
  }
  if (auto it = d.FindMember("link"); it != d.MemberEnd() && it->value.IsArray()) {
    for (const auto& l : it->value.GetArray()) {
      if (!l.IsObject() || Str(l, "type") != "replaced-by") continue;
      auto other = l.FindMember("other");
      if (other == l.MemberEnd() || !other->value.IsObject()) continue;
      const std::string_view ref = Str(other->value, "reference");
      if (ref.rfind("Patient/", 0) == 0) r.replaced_by = std::string(ref.substr(8));
    }
  }
  if (auto it = d.FindMember("name"); it != d.MemberEnd() && it->value.IsArray() && !it->value.Empty() && it->value[0].IsObject()) {
    const auto& n = it->value[0];
    std::string text(Str(n, "text"));
    if (text.empty()) {
      text = std::string(Str(n, "family"));
      if (auto gi = n.FindMember("given"); gi != n.MemberEnd() && gi->value.IsArray())
        for (const auto& x : gi->value.GetArray())
          if (x.IsString()) text += x.GetString();
    }
    r.name = NormalizeName(text);
  }
  if (r.name.empty()) r.quality |= kFlagNoName;
  if (auto it = d.FindMember("telecom"); it != d.MemberEnd() && it->value.IsArray()) {
    for (const auto& t : it->value.GetArray())
      if (t.IsObject() && Str(t, "system") == "phone" && r.phone.empty()) r.phone = NormalizePhone(Str(t, "value"));
  }
  if (auto it = d.FindMember("address"); it != d.MemberEnd() && it->value.IsArray() && !it->value.Empty() && it->value[0].IsObject()) {
    r.county = std::string(Str(it->value[0], "district"));
    r.address = NormalizeAddress(Str(it->value[0], "text"));
  }
  return r;
}

StatusOr<std::vector<PatientRecord>> ReadPatientNdjson(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read " + path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(std::move(line));
  // Parsing and normalizing is most of the work: both cores share it.
  std::vector<PatientRecord> out(lines.size());
  struct FirstError {
    size_t line = SIZE_MAX;
    std::string message;
  };
  std::vector<FirstError> errors(2);
  std::vector<std::thread> workers;
  for (size_t w = 0; w < 2; ++w) {
    workers.emplace_back([&, w] {
      for (size_t i = w; i < lines.size(); i += 2) {
        if (lines[i].empty()) continue;
        auto r = RecordFromPatientJson(lines[i]);
        if (!r.ok()) {
          if (errors[w].line == SIZE_MAX) errors[w] = {i + 1, r.status().message()};
          continue;
        }
        out[i] = std::move(*r);
      }
    });
  }
  for (auto& t : workers) t.join();
  const FirstError& first = errors[0].line < errors[1].line ? errors[0] : errors[1];  // in file order
  if (first.line != SIZE_MAX) return InvalidArgument(path + ":" + std::to_string(first.line) + ": " + first.message);
  out.erase(std::remove_if(out.begin(), out.end(), [](const PatientRecord& r) { return r.id.empty(); }), out.end());
  return out;
}

Levels Compare(const PatientRecord& a, const PatientRecord& b) {
  Levels l{};
  const std::string &ia = a.id_number.number, &ib = b.id_number.number;
  if (!ia.empty() && !ib.empty()) {
    if (ia == ib) l[kFieldId] = 1;
    else if (Hamming18(ia, ib) == 1) l[kFieldId] = 2;
    else if (ValidId(a.id_number) && ValidId(b.id_number)) l[kFieldId] = 3;
    else l[kFieldId] = 4;
  }
  if (!a.name.empty() && !b.name.empty()) {
    l[kFieldName] = a.name.simplified == b.name.simplified ? 1
                    : a.name.pinyin == b.name.pinyin       ? 2
                    : a.name.fuzzy == b.name.fuzzy         ? 3
                                                           : 4;
  }
  if (a.birth.size() == 10 && b.birth.size() == 10) {
    const std::string_view x = a.birth, y = b.birth;
    if (x == y) l[kFieldBirth] = 1;
    else if (x.substr(0, 4) == y.substr(0, 4) && x.substr(5, 2) == y.substr(8, 2) && x.substr(8, 2) == y.substr(5, 2)) l[kFieldBirth] = 2;
    else if ((x.substr(0, 4) == y.substr(0, 4)) + (x.substr(5, 2) == y.substr(5, 2)) + (x.substr(8, 2) == y.substr(8, 2)) == 2) l[kFieldBirth] = 3;
    else l[kFieldBirth] = 4;
  }
  if (a.sex != Sex::kUnknown && b.sex != Sex::kUnknown) l[kFieldSex] = a.sex == b.sex ? 1 : 2;
  if (!a.phone.empty() && !b.phone.empty()) l[kFieldPhone] = a.phone == b.phone ? 1 : 2;
  if (!a.health_card.empty() && !b.health_card.empty()) l[kFieldCard] = a.health_card == b.health_card ? 1 : 2;
  if (!a.county.empty() && !b.county.empty()) l[kFieldCounty] = a.county == b.county ? 1 : 2;
  return l;
}

LinkResult LinkRecords(const std::vector<PatientRecord>& input, const LinkOptions& o) {
  LinkResult result;
  LinkStats& st = result.stats;
  st.records = static_cast<int64_t>(input.size());
  const size_t n = input.size();
  result.person_of.assign(n, 0);
  if (n == 0) return result;
  // Work in record-id order, so that the input's order never matters.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return input[a].id < input[b].id; });
  auto rec = [&](size_t k) -> const PatientRecord& { return input[order[k]]; };
  Timer timer;

  // 1. Blocking: each rule makes its pairs on its own (rules run on two threads).
  using KeyFn = std::string (*)(const PatientRecord&);
  const std::vector<std::pair<const char*, KeyFn>> rules = {
      {"id-number", [](const PatientRecord& r) { return r.id_number.number; }},
      {"health-card", [](const PatientRecord& r) { return r.health_card; }},
      {"phone", [](const PatientRecord& r) { return IsMobile(r.phone) ? r.phone : std::string(); }},
      {"fuzzy-name+birth",
       [](const PatientRecord& r) { return r.name.empty() || r.birth.empty() ? std::string() : r.name.fuzzy + "|" + r.birth; }},
      {"fuzzy-name+birth-swapped",
       [](const PatientRecord& r) {
         if (r.name.empty() || r.birth.size() != 10) return std::string();
         std::string m = r.birth.substr(5, 2), d = r.birth.substr(8, 2);
         if (m > d) std::swap(m, d);
         return r.name.fuzzy + "|" + r.birth.substr(0, 4) + m + d;
       }},
      {"birth+sex+county+initials",
       [](const PatientRecord& r) {
         return r.birth.empty() || r.name.empty()
                    ? std::string()
                    : r.birth + "|" + std::to_string(static_cast<int>(r.sex)) + "|" + r.county + "|" + r.name.initials;
       }},
  };
  std::vector<std::vector<uint64_t>> made(rules.size());
  auto run_rule = [&](size_t ri) {
    std::unordered_map<std::string, std::vector<uint32_t>> buckets;
    buckets.reserve(n);
    for (size_t k = 0; k < n; ++k) {
      std::string key = rules[ri].second(rec(k));
      if (!key.empty()) buckets[std::move(key)].push_back(static_cast<uint32_t>(k));
    }
    for (auto& [key, members] : buckets) {
      if (members.size() < 2 || members.size() > kMaxBucket) continue;
      for (size_t x = 0; x < members.size(); ++x)
        for (size_t y = x + 1; y < members.size(); ++y) made[ri].push_back(static_cast<uint64_t>(members[x]) << 32 | members[y]);
    }
  };
  {
    std::thread other([&] {
      for (size_t ri = 1; ri < rules.size(); ri += 2) run_rule(ri);
    });
    for (size_t ri = 0; ri < rules.size(); ri += 2) run_rule(ri);
    other.join();
  }
  std::vector<uint64_t> pair_list;
  for (size_t ri = 0; ri < rules.size(); ++ri) {
    st.pairs_per_rule.emplace_back(rules[ri].first, static_cast<int64_t>(made[ri].size()));
    pair_list.insert(pair_list.end(), made[ri].begin(), made[ri].end());
    std::vector<uint64_t>().swap(made[ri]);
  }
  std::sort(pair_list.begin(), pair_list.end());
  pair_list.erase(std::unique(pair_list.begin(), pair_list.end()), pair_list.end());
  st.candidate_pairs = static_cast<int64_t>(pair_list.size());
  st.seconds_blocking = timer.Lap();

  // 2. Each name's frequency (term-frequency u for an exact name), counted once per record.
  std::vector<uint32_t> name_freq(n, 0);
  {
    std::unordered_map<std::string_view, uint32_t> count;
    count.reserve(n);
    for (size_t k = 0; k < n; ++k)
      if (!rec(k).name.empty()) ++count[rec(k).name.simplified];
    for (size_t k = 0; k < n; ++k)
      if (!rec(k).name.empty()) name_freq[k] = count[rec(k).name.simplified];
  }
  std::vector<double> name_w(n, 0);  // log2(m / u) of an exact name, u = that name's own frequency
  st.seconds_preparing = timer.Lap();

  // 3. u from random pairs (deterministic: seeded, over the id-sorted records).
  std::array<std::array<double, kMaxLevels>, kFieldCount> u_count{};
  for (int64_t s = 0; s < o.u_sample_pairs; ++s) {
    const uint64_t h = Mix(o.seed * 0x100000001B3ULL + static_cast<uint64_t>(s));
    const size_t a = h % n, b = (h >> 32) % n;
    if (a == b) continue;
    const Levels l = Compare(rec(a), rec(b));
    for (int f = 0; f < kFieldCount; ++f) u_count[f][l[f]] += 1;
  }
  for (int f = 0; f < kFieldCount; ++f) {
    double total = 0;
    for (int v = 1; v < kLevels[f]; ++v) total += u_count[f][v] + 1;
    for (int v = 1; v < kLevels[f]; ++v) st.u[f][v] = (u_count[f][v] + 1) / total;
  }

  // 4. Every candidate pair compared once, into a pattern code; m by EM over the patterns.
  std::vector<uint16_t> codes(pair_list.size());
  std::vector<int64_t> pattern_count(kPatterns, 0);
  for (size_t i = 0; i < pair_list.size(); ++i) {
    const size_t a = pair_list[i] >> 32, b = pair_list[i] & 0xffffffff;
    codes[i] = PatternCode(Compare(rec(a), rec(b)));
    ++pattern_count[codes[i]];
  }
  std::vector<std::pair<Levels, int64_t>> patterns;
  for (size_t c = 0; c < kPatterns; ++c)
    if (pattern_count[c] > 0) patterns.emplace_back(PatternLevels(static_cast<uint16_t>(c)), pattern_count[c]);
  for (int f = 0; f < kFieldCount; ++f) {  // start: agreement likely among matches
    st.m[f][1] = 0.9;
    for (int v = 2; v < kLevels[f]; ++v) st.m[f][v] = 0.1 / (kLevels[f] - 2);
  }
  double lambda = 0.3;
  for (int it = 0; it < o.em_iterations && !patterns.empty(); ++it) {
    std::array<std::array<double, kMaxLevels>, kFieldCount> mc{};
    double matches = 0, total = 0;
    for (const auto& [l, count] : patterns) {
      double lm = std::log(lambda), lu = std::log(1 - lambda);
      for (int f = 0; f < kFieldCount; ++f) {
        if (l[f] == 0) continue;
        lm += std::log(st.m[f][l[f]]);
        lu += std::log(st.u[f][l[f]]);
      }
      const double p = 1 / (1 + std::exp(lu - lm));
      matches += p * static_cast<double>(count);
      total += static_cast<double>(count);
      for (int f = 0; f < kFieldCount; ++f)
        if (l[f] != 0) mc[f][l[f]] += p * static_cast<double>(count);
    }
    lambda = std::clamp(matches / total, 1e-6, 1 - 1e-6);
    for (int f = 0; f < kFieldCount; ++f) {
      double sum = 0;
      for (int v = 1; v < kLevels[f]; ++v) sum += mc[f][v] + 0.01;
      for (int v = 1; v < kLevels[f]; ++v) st.m[f][v] = (mc[f][v] + 0.01) / sum;
    }
  }
  st.lambda = lambda;

  // 5. Weights: one per pattern, plus the exact name's term-frequency weight of the record.
  std::vector<double> pattern_w(kPatterns, 0);
  for (const auto& [l, count] : patterns) {
    double w = 0;
    for (int f = 0; f < kFieldCount; ++f)
      if (l[f] != 0 && !(f == kFieldName && l[f] == 1)) w += std::log2(st.m[f][l[f]] / st.u[f][l[f]]);
    pattern_w[PatternCode(l)] = w;
  }
  for (size_t k = 0; k < n; ++k)
    name_w[k] = std::log2(st.m[kFieldName][1] /
                          std::max(static_cast<double>(name_freq[k]) / static_cast<double>(n), 1.0 / static_cast<double>(n)));
  struct Scored {
    double w;
    uint32_t a, b;
  };
  std::vector<Scored> linked;
  for (size_t i = 0; i < pair_list.size(); ++i) {
    const uint32_t a = static_cast<uint32_t>(pair_list[i] >> 32), b = static_cast<uint32_t>(pair_list[i] & 0xffffffff);
    const double w = pattern_w[codes[i]] + (NameLevelOf(codes[i]) == 1 ? name_w[a] : 0.0);
    if (w >= o.threshold) linked.push_back({w, a, b});
  }
  st.linked_pairs = static_cast<int64_t>(linked.size());
  st.seconds_scoring = timer.Lap();

  // 5. Clusters: strongest links first; never two different valid ID numbers in one cluster.
  std::sort(linked.begin(), linked.end(), [](const Scored& x, const Scored& y) {
    return x.w != y.w ? x.w > y.w : (x.a != y.a ? x.a < y.a : x.b < y.b);
  });
  UnionFind uf(n);
  for (size_t k = 0; k < n; ++k)
    if (ValidId(rec(k).id_number)) uf.ids[k].push_back(rec(k).id_number.number);
  for (const Scored& s : linked) {
    int64_t ra = uf.Find(s.a), rb = uf.Find(s.b);
    if (ra == rb) continue;
    if (ra > rb) std::swap(ra, rb);  // the smaller index (= smallest record id) stays the root
    auto& root_ids = uf.ids[static_cast<size_t>(ra)];
    auto& other = uf.ids[static_cast<size_t>(rb)];
    if (!root_ids.empty() && !other.empty() && root_ids[0] != other[0]) {
      ++st.refused_joins;
      continue;
    }
    uf.parent[static_cast<size_t>(rb)] = ra;
    if (root_ids.empty()) root_ids = std::move(other);
    other.clear();
  }
  // The label of a cluster: its member with the smallest record id.
  std::vector<int64_t> smallest(n, -1);
  for (size_t k = 0; k < n; ++k) {
    const size_t r = static_cast<size_t>(uf.Find(static_cast<int64_t>(k)));
    if (smallest[r] < 0) smallest[r] = static_cast<int64_t>(k);
  }
  for (size_t k = 0; k < n; ++k)
    result.person_of[order[k]] = static_cast<int64_t>(order[static_cast<size_t>(smallest[static_cast<size_t>(uf.Find(static_cast<int64_t>(k)))])]);
  st.seconds_clustering = timer.Lap();
  return result;
}

StablePersonIds AssignPersonIds(const std::vector<PatientRecord>& records, const LinkResult& result,
                                const std::unordered_map<std::string, std::string>& previous) {
  StablePersonIds out;
  out.person_of.assign(records.size(), "");
  // Clusters (by label) and, for each previous person, how many of its records are in the input.
  std::map<int64_t, std::vector<size_t>> clusters;
  std::map<std::string, int64_t> present;  // previous person id → its records in the input
  for (size_t i = 0; i < records.size(); ++i) {
    clusters[result.person_of[i]].push_back(i);
    if (auto p = previous.find(records[i].id); p != previous.end()) ++present[p->second];
  }
  std::set<std::string> taken;
  for (const auto& [id, person] : previous) taken.insert(person);
  // Clusters in the order of their smallest record id: deterministic whatever the input order.
  std::vector<const std::vector<size_t>*> ordered;
  std::vector<std::string> smallest;
  for (auto& [label, members] : clusters) {
    std::sort(members.begin(), members.end(), [&](size_t a, size_t b) { return records[a].id < records[b].id; });
    ordered.push_back(&members);
  }
  std::sort(ordered.begin(), ordered.end(),
            [&](const auto* a, const auto* b) { return records[a->front()].id < records[b->front()].id; });
  std::set<std::string> kept;
  std::vector<const std::vector<size_t>*> fresh;
  for (const auto* members : ordered) {
    std::map<std::string, int64_t> inside;  // previous person → its records in this cluster
    for (size_t i : *members)
      if (auto p = previous.find(records[i].id); p != previous.end()) ++inside[p->second];
    std::string best;
    int64_t best_n = 0;
    for (const auto& [person, n] : inside)
      if (n == present[person] && n > best_n) best = person, best_n = n;  // all of it is here: same or grew
    if (best.empty()) {
      fresh.push_back(members);
      continue;
    }
    kept.insert(best);
    for (size_t i : *members) out.person_of[i] = best;
  }
  for (const auto* members : fresh) {
    std::string id = "person-" + records[members->front()].id;
    for (int n = 2; taken.count(id); ++n) id = "person-" + records[members->front()].id + "-" + std::to_string(n);
    taken.insert(id);
    for (size_t i : *members) out.person_of[i] = id;
  }
  out.kept = static_cast<int64_t>(kept.size());
  out.created = static_cast<int64_t>(fresh.size());
  for (const auto& [person, n] : present)
    if (!kept.count(person)) out.retired.push_back(person);
  return out;
}

PairwiseQuality EvaluatePairs(const std::vector<std::string>& predicted, const std::vector<std::string>& truth) {
  PairwiseQuality q;
  std::unordered_map<std::string, int64_t> p, t;
  std::map<std::pair<std::string, std::string>, int64_t> both;
  for (size_t i = 0; i < predicted.size() && i < truth.size(); ++i) {
    ++p[predicted[i]];
    ++t[truth[i]];
    ++both[{predicted[i], truth[i]}];
  }
  auto pairs = [](int64_t k) { return k * (k - 1) / 2; };
  for (const auto& [k, c] : p) q.predicted_pairs += pairs(c);
  for (const auto& [k, c] : t) q.true_pairs += pairs(c);
  for (const auto& [k, c] : both) q.correct_pairs += pairs(c);
  return q;
}

}  // namespace rhip::mpi
