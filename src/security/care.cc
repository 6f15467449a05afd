#include "rhip/security/care.h"

#include <algorithm>
#include <limits>
#include <mutex>

#include "rhip/fhir/json.h"

namespace rhip::security {
namespace {

using fhir::Member;
using fhir::StringMember;

constexpr Micros kForever = std::numeric_limits<Micros>::max();

// "Patient/123" → "123" when it points at `type`; "" otherwise.
std::string IdIn(std::string_view reference, std::string_view type) {
  if (reference.size() <= type.size() + 1 || reference.compare(0, type.size(), type) != 0 || reference[type.size()] != '/')
    return {};
  std::string_view id = reference.substr(type.size() + 1);
  if (size_t h = id.find('/'); h != std::string_view::npos) id = id.substr(0, h);
  return std::string(id);
}

std::string RefId(const fhir::JsonValue& obj, const char* member, std::string_view type) {
  const fhir::JsonValue* r = Member(obj, member);
  if (!r || !r->IsObject()) return {};
  return IdIn(StringMember(*r, "reference"), type);
}

bool HasCode(const fhir::JsonValue& obj, const char* member, std::string_view code) {
  const fhir::JsonValue* list = Member(obj, member);
  auto in_concept = [&](const fhir::JsonValue& cc) {
    const fhir::JsonValue* codings = Member(cc, "coding");
    if (!codings || !codings->IsArray()) return false;
    for (const auto& c : codings->GetArray())
      if (StringMember(c, "code") == code) return true;
    return false;
  };
  if (!list) return false;
  if (list->IsArray()) {
    for (const auto& cc : list->GetArray())
      if (in_concept(cc)) return true;
    return false;
  }
  return in_concept(*list);
}

Micros DateLow(std::string_view s, Micros otherwise) {
  if (s.empty()) return otherwise;
  auto r = ParseFhirDate(s);
  return r.ok() ? r->low : otherwise;
}
Micros DateHigh(std::string_view s, Micros otherwise) {
  if (s.empty()) return otherwise;
  auto r = ParseFhirDate(s);
  return r.ok() ? r->high : otherwise;
}

int Strength(CareRelation r) {
  switch (r) {
    case CareRelation::kEncounter: return 3;
    case CareRelation::kReferral: return 2;
    case CareRelation::kContract: return 1;
    case CareRelation::kNone: return 0;
  }
  return 0;
}

}  // namespace

Status CareRelationships::Load(store::Store& store) {
  for (const char* type : {"Organization", "Encounter", "ServiceRequest", "EpisodeOfCare"}) {
    RETURN_IF_ERROR(store.Scan(type, [this](const store::ResourceVersion& v) {
      std::unique_lock lock(mu_);
      Apply(v);
      return Status::Ok();
    }));
  }
  return Status::Ok();
}

void CareRelationships::OnWritten(const store::ResourceVersion& v) {
  if (v.type != "Organization" && v.type != "Encounter" && v.type != "ServiceRequest" && v.type != "EpisodeOfCare")
    return;
  std::unique_lock lock(mu_);
  Apply(v);
}

void CareRelationships::Remove(const std::string& key) {
  auto it = by_resource_.find(key);
  if (it == by_resource_.end()) return;
  for (const Fact& f : it->second) {
    auto& list = by_patient_[f.patient];
    list.erase(std::remove_if(list.begin(), list.end(),
                              [&](const Fact& g) { return g.org_id == f.org_id && g.kind == f.kind && g.from == f.from && g.until == f.until; }),
               list.end());
    if (list.empty()) by_patient_.erase(f.patient);
    auto& counts = patients_by_org_[f.org_id];
    if (--counts[f.patient] <= 0) counts.erase(f.patient);
  }
  by_resource_.erase(it);
}

void CareRelationships::Apply(const store::ResourceVersion& v) {
  const std::string key = v.type + "/" + v.id;
  if (v.type == "Organization") {
    // An institution's code; an update may change it.
    auto old = org_codes_.find(v.id);
    if (old != org_codes_.end()) {
      auto& ids = org_ids_[old->second];
      ids.erase(std::remove(ids.begin(), ids.end(), v.id), ids.end());
      org_codes_.erase(old);
    }
    if (v.deleted) return;
    auto doc = fhir::ParseJson(v.json);
    if (!doc.ok()) return;
    std::string code = v.id;
    if (const fhir::JsonValue* ids = Member(*doc, "identifier"); ids && ids->IsArray())
      for (const auto& i : ids->GetArray())
        if (StringMember(i, "system") == "http://rhip.health/id/org" && !StringMember(i, "value").empty())
          code = std::string(StringMember(i, "value"));
    org_codes_[v.id] = code;
    org_ids_[code].push_back(v.id);
    return;
  }
  Remove(key);
  if (v.deleted) return;
  auto doc = fhir::ParseJson(v.json);
  if (!doc.ok()) return;
  const fhir::JsonValue& r = *doc;
  std::vector<Fact> facts;
  const std::string_view status = StringMember(r, "status");
  if (status == "entered-in-error" || status == "cancelled") return;
  if (v.type == "Encounter") {
    Fact f;
    f.patient = RefId(r, "subject", "Patient");
    f.org_id = RefId(r, "serviceProvider", "Organization");
    f.kind = CareRelation::kEncounter;
    const fhir::JsonValue* period = Member(r, "period");
    const Micros start = period ? DateLow(StringMember(*period, "start"), 0) : 0;
    const Micros end = period ? DateHigh(StringMember(*period, "end"), 0) : 0;
    f.from = std::numeric_limits<Micros>::min();
    const Micros last = std::max(start, end);
    f.until = last == 0 ? kForever : last + kEncounterWindow;
    facts.push_back(std::move(f));
  } else if (v.type == "ServiceRequest") {
    if (!HasCode(r, "category", "referral")) return;
    const std::string patient = RefId(r, "subject", "Patient");
    const bool open = status == "active" || status == "on-hold" || status == "draft";
    const Micros authored = DateLow(StringMember(r, "authoredOn"), 0);
    if (const fhir::JsonValue* perf = Member(r, "performer"); perf && perf->IsArray()) {
      for (const auto& p : perf->GetArray()) {
        Fact f;
        f.patient = patient;
        f.org_id = IdIn(StringMember(p, "reference"), "Organization");
        f.kind = CareRelation::kReferral;
        f.from = std::numeric_limits<Micros>::min();
        f.until = open || authored == 0 ? kForever : authored + kEncounterWindow;
        facts.push_back(std::move(f));
      }
    }
  } else if (v.type == "EpisodeOfCare") {
    if (!HasCode(r, "type", "family-doctor-contract")) return;
    if (status != "active" && status != "planned" && status != "waitlist" && status != "onhold" && !status.empty() &&
        status != "finished")
      return;
    Fact f;
    f.patient = RefId(r, "patient", "Patient");
    f.org_id = RefId(r, "managingOrganization", "Organization");
    f.kind = CareRelation::kContract;
    const fhir::JsonValue* period = Member(r, "period");
    f.from = period ? DateLow(StringMember(*period, "start"), std::numeric_limits<Micros>::min())
                    : std::numeric_limits<Micros>::min();
    f.until = period ? DateHigh(StringMember(*period, "end"), kForever) : kForever;
    if (status == "finished" && !(period && Member(*period, "end"))) return;  // ended, but when is unknown
    facts.push_back(std::move(f));
  }
  std::vector<Fact> kept;
  for (Fact& f : facts) {
    if (f.patient.empty() || f.org_id.empty()) continue;
    by_patient_[f.patient].push_back(f);
    ++patients_by_org_[f.org_id][f.patient];
    kept.push_back(std::move(f));
  }
  if (!kept.empty()) by_resource_[key] = std::move(kept);
}

std::string CareRelationships::CodeOfLocked(std::string_view org_id) const {
  auto it = org_codes_.find(std::string(org_id));
  return it == org_codes_.end() ? std::string(org_id) : it->second;
}

std::string CareRelationships::OrgCodeOf(std::string_view org_id) const {
  std::shared_lock lock(mu_);
  return CodeOfLocked(org_id);
}

CareRelation CareRelationships::RelationOf(std::string_view org_code, const std::vector<std::string>& patient_ids,
                                           Micros now) const {
  std::shared_lock lock(mu_);
  CareRelation best = CareRelation::kNone;
  for (const std::string& p : patient_ids) {
    auto it = by_patient_.find(p);
    if (it == by_patient_.end()) continue;
    for (const Fact& f : it->second) {
      if (now < f.from || now > f.until) continue;
      if (Strength(f.kind) <= Strength(best)) continue;
      if (CodeOfLocked(f.org_id) == org_code) best = f.kind;
    }
  }
  return best;
}

std::vector<std::string> CareRelationships::PatientsInCareOf(std::string_view org_code, Micros now) const {
  std::shared_lock lock(mu_);
  std::vector<std::string> org_ids{std::string(org_code)};
  if (auto it = org_ids_.find(std::string(org_code)); it != org_ids_.end())
    for (const auto& id : it->second)
      if (id != org_code) org_ids.push_back(id);
  std::vector<std::string> out;
  for (const std::string& org_id : org_ids) {
    if (CodeOfLocked(org_id) != org_code) continue;
    auto it = patients_by_org_.find(org_id);
    if (it == patients_by_org_.end()) continue;
    for (const auto& [patient, n] : it->second) {
      auto facts = by_patient_.find(patient);
      if (facts == by_patient_.end()) continue;
      for (const Fact& f : facts->second) {
        if (f.org_id == org_id && now >= f.from && now <= f.until) {
          out.push_back(patient);
          break;
        }
      }
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace rhip::security
