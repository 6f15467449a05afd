#include "rhip/mpi/index.h"

#include <algorithm>
#include <cmath>
#include <mutex>

namespace rhip::mpi {

double MatchModel::Contribution(int f, int level, double name_u) const {
  if (level == 0) return 0;
  const double uu = f == kFieldName && level == 1 && name_u > 0 ? name_u : u[f][level];
  return std::log2(std::max(m[f][level], 1e-9) / std::max(uu, 1e-12));
}

double MatchModel::Weight(const Levels& l, double name_u) const {
  double w = 0;
  for (int f = 0; f < kFieldCount; ++f) w += Contribution(f, l[f], name_u);
  return w;
}

Grade MatchModel::GradeOf(double w) const {
  return w >= certain ? Grade::kCertain : w >= probable ? Grade::kProbable : w >= possible ? Grade::kPossible : Grade::kNone;
}

MatchModel DefaultModel() {
  MatchModel o;
  // EM on 238,665 generated records (seed 13): see bench/RESULTS.md, EMPI batch linkage.
  o.m[kFieldId] = {0, 0.97, 0.028, 1e-4, 2e-4};
  o.u[kFieldId] = {0, 2e-6, 6e-6, 0.972, 0.028};
  o.m[kFieldName] = {0, 0.945, 0.041, 0.013, 3e-4};
  o.u[kFieldName] = {0, 5e-5, 1.5e-5, 3.5e-5, 0.9999};
  o.m[kFieldBirth] = {0, 0.99, 0.0075, 0.002, 5e-4};
  o.u[kFieldBirth] = {0, 6.5e-5, 1.5e-5, 0.0042, 0.9957};
  o.m[kFieldSex] = {0, 0.999, 0.001};
  o.u[kFieldSex] = {0, 0.5, 0.5};
  o.m[kFieldPhone] = {0, 0.81, 0.19};
  o.u[kFieldPhone] = {0, 1.5e-5, 0.99998};
  o.m[kFieldCard] = {0, 0.9997, 3e-4};
  o.u[kFieldCard] = {0, 2.5e-5, 0.99997};
  o.m[kFieldCounty] = {0, 0.95, 0.05};
  o.u[kFieldCounty] = {0, 0.15, 0.85};
  return o;
}

const char* GradeCode(Grade g) {
  switch (g) {
    case Grade::kCertain: return "certain";
    case Grade::kProbable: return "probable";
    case Grade::kPossible: return "possible";
    case Grade::kNone: return "certainly-not";
  }
  return "certainly-not";
}

PatientIndex::PatientIndex(MatchModel model) : model_(std::move(model)) {}

std::vector<std::string> PatientIndex::Keys(const PatientRecord& r) const {
  std::vector<std::string> k;
  if (!r.id_number.number.empty()) k.push_back("i|" + r.id_number.number);
  if (!r.health_card.empty()) k.push_back("c|" + r.health_card);
  if (IsMobile(r.phone)) k.push_back("p|" + r.phone);
  if (!r.name.empty() && r.birth.size() == 10) {
    k.push_back("n|" + r.name.fuzzy + "|" + r.birth);
    std::string m = r.birth.substr(5, 2), d = r.birth.substr(8, 2);
    if (m > d) std::swap(m, d);
    k.push_back("s|" + r.name.fuzzy + "|" + r.birth.substr(0, 4) + m + d);
    k.push_back("b|" + r.birth + "|" + std::to_string(static_cast<int>(r.sex)) + "|" + r.county + "|" + r.name.initials);
  }
  return k;
}

void PatientIndex::Unindex(const PatientRecord& r) {
  for (const auto& key : Keys(r)) {
    auto it = blocks_.find(key);
    if (it == blocks_.end()) continue;
    it->second.erase(r.id);
    if (it->second.empty()) blocks_.erase(it);
  }
  if (!r.name.empty() && --name_count_[r.name.simplified] <= 0) name_count_.erase(r.name.simplified);
}

void PatientIndex::Upsert(PatientRecord record) {
  std::unique_lock lock(mu_);
  auto it = records_.find(record.id);
  if (it != records_.end()) Unindex(it->second);
  for (const auto& key : Keys(record)) blocks_[key].insert(record.id);
  if (!record.name.empty()) ++name_count_[record.name.simplified];
  const std::string id = record.id;
  records_[id] = std::move(record);
}

void PatientIndex::Remove(const std::string& id) {
  std::unique_lock lock(mu_);
  auto it = records_.find(id);
  if (it == records_.end()) return;
  Unindex(it->second);
  records_.erase(it);
}

size_t PatientIndex::size() const {
  std::shared_lock lock(mu_);
  return records_.size();
}

MatchCandidate PatientIndex::ScoreLocked(const PatientRecord& query, const PatientRecord& r) const {
  MatchCandidate c;
  c.id = r.id;
  c.levels = Compare(query, r);
  if (c.levels[kFieldName] == 1) {
    const double n = std::max<double>(1, static_cast<double>(records_.size()));
    auto nc = name_count_.find(r.name.simplified);
    c.name_u = std::max(nc == name_count_.end() ? 1.0 : static_cast<double>(nc->second), 1.0) / n;
  }
  c.weight = model_.Weight(c.levels, c.name_u);
  // Two different valid ID numbers are two people, however alike the rest.
  if (c.levels[kFieldId] == 3) c.weight = std::min(c.weight, model_.possible - 1);
  c.grade = model_.GradeOf(c.weight);
  return c;
}

std::optional<MatchCandidate> PatientIndex::Score(const PatientRecord& query, const std::string& id) const {
  std::shared_lock lock(mu_);
  auto it = records_.find(id);
  if (it == records_.end()) return std::nullopt;
  return ScoreLocked(query, it->second);
}

std::optional<PatientRecord> PatientIndex::Find(const std::string& id) const {
  std::shared_lock lock(mu_);
  auto it = records_.find(id);
  if (it == records_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> PatientIndex::WithIdNumber(const std::string& number) const {
  std::shared_lock lock(mu_);
  std::vector<std::string> out;
  auto b = blocks_.find("i|" + number);
  if (b == blocks_.end()) return out;
  for (const auto& id : b->second)
    if (records_.at(id).id_number.number == number) out.push_back(id);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<MatchCandidate> PatientIndex::Match(const PatientRecord& query, int count) const {
  std::shared_lock lock(mu_);
  std::unordered_set<std::string> seen;
  std::vector<MatchCandidate> out;
  for (const auto& key : Keys(query)) {
    auto b = blocks_.find(key);
    if (b == blocks_.end() || b->second.size() > 256) continue;  // not selective
    for (const auto& id : b->second) {
      if (id == query.id || !seen.insert(id).second) continue;
      MatchCandidate c = ScoreLocked(query, records_.at(id));
      if (c.grade != Grade::kNone) out.push_back(std::move(c));
    }
  }
  std::sort(out.begin(), out.end(), [](const MatchCandidate& a, const MatchCandidate& b) {
    return a.weight != b.weight ? a.weight > b.weight : a.id < b.id;
  });
  if (count >= 0 && out.size() > static_cast<size_t>(count)) out.resize(static_cast<size_t>(count));
  return out;
}

}  // namespace rhip::mpi
