#include "rhip/security/guard.h"

#include <algorithm>
#include <optional>

#include "rhip/fhir/definitions.h"
#include "rhip/fhir/index.h"
#include "rhip/fhir/rest.h"

namespace rhip::security {
namespace {

constexpr size_t kMaxAuditedPatients = 500;
constexpr char kMrnPrefix[] = "http://rhip.health/id/mrn/";
constexpr char kOrgSystem[] = "http://rhip.health/id/org";

bool IsCompartmentType(std::string_view type) {
  return !fhir::Definitions::R4().PatientCompartmentParams(type).empty() || type == "Patient";
}

// The reference parameters that name the institution responsible for a resource.
const std::vector<std::string>& OwnerParams(const std::string& type) {
  static const auto* table = [] {
    auto* t = new std::unordered_map<std::string, std::vector<std::string>>();  // immutable after start, lives until exit
    const auto& defs = fhir::Definitions::R4();
    for (const std::string& rt : defs.ResourceTypes()) {
      auto& list = (*t)[rt];
      for (const char* p : {"organization", "performer", "provider", "service-provider", "requester", "asserter"})
        if (const auto* d = defs.SearchParam(rt, p); d && d->type == store::ParamType::kReference) list.emplace_back(p);
      list.emplace_back("identifier");
    }
    return t;
  }();
  static const std::vector<std::string> kNone{"identifier"};
  auto it = table->find(type);
  return it == table->end() ? kNone : it->second;
}

void CollectChainParams(const store::Criterion& c, std::vector<std::string>* out) {
  out->push_back(c.param);
  if (c.chain && c.chain->inner) {
    const store::Criterion& inner = *c.chain->inner;
    out->push_back(c.param + "." + inner.param);
    CollectChainParams(inner, out);
  }
}

void StripDisplays(fhir::JsonValue& v) {
  if (v.IsObject()) {
    if (v.HasMember("reference") && v.HasMember("display")) v.RemoveMember("display");
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) StripDisplays(it->value);
  } else if (v.IsArray()) {
    for (auto& x : v.GetArray()) StripDisplays(x);
  }
}

}  // namespace

void Deidentify(fhir::Json& doc) {
  if (!doc.IsObject()) return;
  for (const char* m : {"text", "identifier", "name", "telecom", "photo", "contact", "note", "link"})
    if (doc.HasMember(m)) doc.RemoveMember(m);
  if (fhir::JsonValue* a = doc.HasMember("address") ? &doc["address"] : nullptr; a && a->IsArray()) {
    for (auto& addr : a->GetArray()) {
      if (!addr.IsObject()) continue;
      for (const char* m : {"text", "line", "postalCode", "period"})
        if (addr.HasMember(m)) addr.RemoveMember(m);
    }
  }
  if (doc.HasMember("birthDate") && doc["birthDate"].IsString() && doc["birthDate"].GetStringLength() >= 4) {
    std::string year(doc["birthDate"].GetString(), 4);
    doc["birthDate"].SetString(year.c_str(), 4, doc.GetAllocator());
  }
  StripDisplays(doc);
}

Guard::Guard(Principal principal, std::string break_glass_reason, store::Store* store,
             const mpi::PersonDirectory* persons, const CareRelationships* care,
             std::shared_ptr<const Pseudonymizer> pseudonyms)
    : principal_(std::move(principal)),
      break_glass_reason_(principal_.role == Role::kClinician ? std::move(break_glass_reason) : std::string()),
      store_(store),
      persons_(persons),
      care_(care),
      pseudonyms_(std::move(pseudonyms)) {}

std::string JobOwnerOf(const Principal& p) { return std::string(RoleName(p.role)) + ":" + p.subject; }

namespace {

// An export job's rules: the policy's read decision for each resource, with
// the job's mode (plain or de-identified) as a fact; de-identified jobs run
// every resource through the Pseudonymizer.
class JobRules : public fhir::DisclosureRules {
 public:
  JobRules(Principal p, bool deidentified, std::shared_ptr<const Pseudonymizer> pseudonyms)
      : principal_(std::move(p)), owner_(JobOwnerOf(principal_)), deidentified_(deidentified),
        pseudonyms_(std::move(pseudonyms)) {}

  Status Disclose(store::ResourceVersion& v) const override {
    TargetFacts f;
    f.type = v.type;
    f.compartment_type = IsCompartmentType(v.type);
    f.deidentified = deidentified_;
    std::optional<fhir::Json> doc;
    if (f.compartment_type || deidentified_) {
      auto parsed = fhir::ParseJson(v.json);
      if (!parsed.ok()) return Status(StatusCode::kInternal, "stored " + v.type + "/" + v.id + " is not JSON");
      if (f.compartment_type) f.patients = fhir::PatientCompartmentOf(*parsed, v.type);
      doc = std::move(*parsed);
    }
    const Decision d = Decide(principal_, Action::kRead, f);
    if (d.effect == Effect::kDeny) return Status(StatusCode::kPermissionDenied, d.reason);
    // Never plain when the job is de-identified, whatever the read decision says
    // (directory data: only references and stray ID numbers change).
    if (deidentified_) {
      pseudonyms_->Deidentify(*doc);
      v.json = fhir::WriteJson(*doc);
    } else if (d.effect == Effect::kAllowRedacted) {
      return Status(StatusCode::kPermissionDenied, "a plain export cannot carry redacted data");
    }
    return Status::Ok();
  }
  bool deidentified() const override { return deidentified_; }
  const std::string& owner() const override { return owner_; }

 private:
  const Principal principal_;
  const std::string owner_;
  const bool deidentified_;
  const std::shared_ptr<const Pseudonymizer> pseudonyms_;
};

}  // namespace

std::unique_ptr<fhir::DisclosureRules> Guard::RulesForJob() {
  return std::make_unique<JobRules>(principal_, export_deidentified_, pseudonyms_);
}

Status Guard::OnJobAccess(std::string_view owner) {
  TargetFacts f;
  f.own_job = !owner.empty() && owner == JobOwnerOf(principal_);
  Decision d = Decide(principal_, Action::kJob, f);
  return d.effect == Effect::kDeny ? Refuse(d) : Status::Ok();
}

Status Guard::Refuse(const Decision& d) {
  record_.denials.push_back(d.reason);
  return Status(StatusCode::kPermissionDenied, "access denied for " + std::string(RoleName(principal_.role)) + " " +
                                                   principal_.subject + ": " + d.reason);
}

std::vector<std::string> Guard::RecordsOfSamePersons(const std::vector<std::string>& patients) const {
  std::vector<std::string> out = patients;
  if (persons_) {
    for (const std::string& p : patients)
      if (auto person = persons_->PersonOf(p))
        for (auto& q : persons_->PatientsOf(*person)) out.push_back(std::move(q));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

TargetFacts Guard::PatientFacts(const std::string& type, std::vector<std::string> patients) const {
  TargetFacts f;
  f.type = type;
  f.compartment_type = IsCompartmentType(type);
  f.break_glass_reason = break_glass_reason_;
  if (principal_.role == Role::kResident && persons_ && !patients.empty()) {
    const std::vector<std::string> mine = persons_->PatientsOf(principal_.person);
    f.own_person = std::all_of(patients.begin(), patients.end(), [&](const std::string& p) {
      return std::binary_search(mine.begin(), mine.end(), p);
    });
  }
  if ((principal_.role == Role::kClinician || principal_.role == Role::kSystem) && care_ && !patients.empty()) {
    // Every patient the resource names must be in the institution's care.
    const Micros now = NowMicros();
    CareRelation found = CareRelation::kNone;
    for (const std::string& p : patients) {
      const CareRelation r = care_->RelationOf(principal_.org, RecordsOfSamePersons({p}), now);
      if (r == CareRelation::kNone) {
        found = CareRelation::kNone;
        break;
      }
      if (found == CareRelation::kNone) found = r;
    }
    f.care = found;
  }
  f.patients = std::move(patients);
  return f;
}

Status Guard::OnSearch(store::SearchQuery& query) {
  TargetFacts f;
  f.type = query.type;
  f.compartment_type = IsCompartmentType(query.type);
  std::vector<std::string> params;
  for (const auto& c : query.criteria) CollectChainParams(c, &params);
  for (const auto& s : query.sort) params.push_back(s.param);
  f.identifying_search = std::any_of(params.begin(), params.end(), IsIdentifyingParam);
  const Decision d = Decide(principal_, Action::kSearch, f);
  if (d.effect == Effect::kDeny) return Refuse(d);
  if (d.effect == Effect::kAllowRedacted) redact_ = true;
  switch (d.narrowing) {
    case Narrowing::kNone: break;
    case Narrowing::kOwnPerson:
      query.compartment = persons_ ? persons_->PatientsOf(principal_.person) : std::vector<std::string>{};
      break;
    case Narrowing::kCareSet: {
      std::vector<std::string> set;
      if (care_) set = RecordsOfSamePersons(care_->PatientsInCareOf(principal_.org, NowMicros()));
      // Break-glass opens the records of the patients the search names, nobody else's.
      if (!break_glass_reason_.empty()) {
        std::vector<std::string> named;
        for (const auto& c : query.criteria) {
          const bool patient_ref = c.type == store::ParamType::kReference && !c.chain &&
                                   (c.param == "patient" || c.param == "subject");
          const bool patient_id = query.type == "Patient" && c.param == "_id";
          if (!patient_ref && !patient_id) continue;
          for (const auto& v : c.values) {
            const std::string& id = patient_id ? v.code : v.target_id;
            if (!id.empty() && (patient_id || v.target_type.empty() || v.target_type == "Patient")) named.push_back(id);
          }
        }
        if (!named.empty()) {
          for (auto& p : RecordsOfSamePersons(named)) set.push_back(std::move(p));
          record_.break_glass = true;
        }
      }
      std::sort(set.begin(), set.end());
      set.erase(std::unique(set.begin(), set.end()), set.end());
      query.compartment = std::move(set);
      break;
    }
  }
  return Status::Ok();
}

Status Guard::OnHistory(std::string_view type, std::string_view id) {
  const std::string t(type);
  if (type.empty()) {
    Decision d = Decide(principal_, Action::kHistorySystem, {});
    return d.effect == Effect::kDeny ? Refuse(d) : Status::Ok();
  }
  if (id.empty()) {
    TargetFacts f;
    f.type = t;
    f.compartment_type = IsCompartmentType(t);
    Decision d = Decide(principal_, Action::kHistoryType, f);
    return d.effect == Effect::kDeny ? Refuse(d) : Status::Ok();
  }
  // One resource's history: decided on its current version (each version is
  // then disclosed on its own).
  std::vector<std::string> patients;
  if (store_) {
    auto cur = store_->Read(t, id);
    if (cur.ok()) {
      auto doc = fhir::ParseJson(cur->json);
      if (doc.ok()) patients = fhir::PatientCompartmentOf(*doc, t);
    }
  }
  Decision d = Decide(principal_, Action::kHistoryInstance, PatientFacts(t, patients));
  if (d.effect == Effect::kDeny) return Refuse(d);
  if (d.break_glass) record_.break_glass = true;
  return Status::Ok();
}

Status Guard::OnEverything(std::string_view patient_id) {
  Decision d = Decide(principal_, Action::kEverything, PatientFacts("Patient", {std::string(patient_id)}));
  record_.patients.insert(std::string(patient_id));
  if (d.effect == Effect::kDeny) return Refuse(d);
  if (d.break_glass) record_.break_glass = true;
  return Status::Ok();
}

Status Guard::OnOperation(std::string_view name, const fhir::RestRequest& request) {
  TargetFacts f;
  f.operation = std::string(name);
  if (name == "$export") {
    for (const auto& [k, v] : request.query) {
      if (k != "deidentify") continue;
      if (v != "true" && v != "false")
        return InvalidArgument("deidentify must be true or false (a de-identified, pseudonymised export), not '" + v + "'");
      f.deidentify_requested = v == "true";
    }
  }
  Decision d = Decide(principal_, Action::kOperation, f);
  if (d.effect == Effect::kDeny) return Refuse(d);
  if (name == "$export") {
    export_deidentified_ = d.effect == Effect::kAllowRedacted;
    if (export_deidentified_) {
      if (!pseudonyms_)
        return Status(StatusCode::kUnavailable, "de-identified exports need the pseudonymisation key, which is not loaded");
      record_.redacted = true;
    }
  }
  return Status::Ok();
}

Status Guard::OnDisclose(store::ResourceVersion& v) {
  if (v.deleted) return Status::Ok();
  const bool compartment = IsCompartmentType(v.type);
  std::vector<std::string> patients;
  std::optional<fhir::Json> doc;
  auto parse = [&]() -> Status {
    if (doc) return Status::Ok();
    auto parsed = fhir::ParseJson(v.json);
    if (!parsed.ok()) return Status(StatusCode::kInternal, "stored " + v.type + "/" + v.id + " is not JSON");
    doc = std::move(*parsed);
    return Status::Ok();
  };
  if (compartment) {
    if (v.compartment) {  // the store read them from its index with the resource
      patients = *v.compartment;
    } else {
      RETURN_IF_ERROR(parse());
      patients = fhir::PatientCompartmentOf(*doc, v.type);
    }
  }
  TargetFacts f = PatientFacts(v.type, patients);
  Decision d = Decide(principal_, Action::kRead, f);
  if (d.effect == Effect::kAllowRedacted && !redact_) redact_ = true;
  if (d.effect == Effect::kDeny) {
    ++record_.withheld;
    return Refuse(d);
  }
  for (const auto& p : patients)
    if (record_.patients.size() < kMaxAuditedPatients) record_.patients.insert(p);
  if (d.break_glass) record_.break_glass = true;
  if (d.effect == Effect::kAllowRedacted && compartment) {
    RETURN_IF_ERROR(parse());
    Deidentify(*doc);
    v.json = fhir::WriteJson(*doc);
    record_.redacted = true;
  }
  return Status::Ok();
}

std::vector<std::string> Guard::OwnerOrgs(const std::string& type, const store::IndexRows& rows) const {
  std::vector<std::string> out;
  const auto& params = OwnerParams(type);
  for (const auto& r : rows.references) {
    if (r.target_type != "Organization") continue;
    if (std::find(params.begin(), params.end(), r.param) == params.end()) continue;
    out.push_back(care_ ? care_->OrgCodeOf(r.target_id) : r.target_id);
  }
  for (const auto& t : rows.tokens) {
    if (t.param != "identifier") continue;
    if (t.system.rfind(kMrnPrefix, 0) == 0) out.push_back(t.system.substr(sizeof(kMrnPrefix) - 1));
    if (type == "Organization" && t.system == kOrgSystem) out.push_back(t.code);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Status Guard::OnWrite(std::string_view type, std::string_view id, const store::IndexRows* index) {
  const std::string t(type);
  TargetFacts f;
  f.type = t;
  f.compartment_type = IsCompartmentType(t);
  if (index) {
    f.owner_orgs = OwnerOrgs(t, *index);
    for (const auto& p : index->compartment_patients)
      if (record_.patients.size() < kMaxAuditedPatients) record_.patients.insert(p);
  }
  if (store_ && principal_.role != Role::kAdmin) {
    auto cur = store_->Read(t, id);
    if (cur.ok()) {
      f.replaces_existing = true;
      auto doc = fhir::ParseJson(cur->json);
      if (doc.ok()) {
        f.current_owner_orgs = OwnerOrgs(t, fhir::ExtractIndexOf(*doc, t, OwnerParams(t)));
        for (const auto& p : fhir::PatientCompartmentOf(*doc, t))
          if (record_.patients.size() < kMaxAuditedPatients) record_.patients.insert(p);
      }
    }
  }
  Decision d = Decide(principal_, index ? Action::kWrite : Action::kDelete, f);
  return d.effect == Effect::kDeny ? Refuse(d) : Status::Ok();
}

}  // namespace rhip::security
