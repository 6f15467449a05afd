#include "rhip/security/person_links.h"

#include <algorithm>
#include <mutex>

#include "rhip/fhir/json.h"

namespace rhip::security {

Status StorePersonDirectory::Load(store::Store& store) {
  return store.Scan("Person", [this](const store::ResourceVersion& v) {
    std::unique_lock lock(mu_);
    Apply(v);
    return Status::Ok();
  });
}

void StorePersonDirectory::OnWritten(const store::ResourceVersion& v) {
  if (v.type != "Person") return;
  std::unique_lock lock(mu_);
  Apply(v);
}

void StorePersonDirectory::Apply(const store::ResourceVersion& v) {
  if (auto old = patients_.find(v.id); old != patients_.end()) {
    for (const auto& p : old->second) person_of_.erase(p);
    patients_.erase(old);
  }
  if (v.deleted) return;
  auto doc = fhir::ParseJson(v.json);
  if (!doc.ok()) return;
  std::vector<std::string> linked;
  if (const fhir::JsonValue* links = fhir::Member(*doc, "link"); links && links->IsArray()) {
    for (const auto& l : links->GetArray()) {
      const fhir::JsonValue* target = fhir::Member(l, "target");
      if (!target) continue;
      std::string_view ref = fhir::StringMember(*target, "reference");
      if (ref.rfind("Patient/", 0) == 0) linked.emplace_back(ref.substr(8));
    }
  }
  std::sort(linked.begin(), linked.end());
  linked.erase(std::unique(linked.begin(), linked.end()), linked.end());
  for (const auto& p : linked) person_of_[p] = v.id;
  patients_[v.id] = std::move(linked);
}

std::optional<std::string> StorePersonDirectory::PersonOf(std::string_view patient_id) const {
  std::shared_lock lock(mu_);
  auto it = person_of_.find(std::string(patient_id));
  if (it == person_of_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> StorePersonDirectory::PatientsOf(std::string_view person_id) const {
  std::shared_lock lock(mu_);
  auto it = patients_.find(std::string(person_id));
  return it == patients_.end() ? std::vector<std::string>{} : it->second;
}

}  // namespace rhip::security
