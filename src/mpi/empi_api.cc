// EmpiService's outward side: stewardship (link, unlink, merge, unmerge, review
// decisions), Patient/$match, Patient/$ihe-pix, the Patient?identifier=
// widening, and the JSON API under /api/mpi.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "mpi/empi_internal.h"
#include "rhip/core/log.h"
#include "rhip/core/time.h"
#include "rhip/core/url.h"
#include "rhip/fhir/json.h"
#include "rhip/fhir/operation_outcome.h"

namespace rhip::mpi {

using internal::Batch;
using internal::Ordered;
using internal::Pair;

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

fhir::RestResponse Error(const Status& s) {
  fhir::RestResponse r;
  r.status = fhir::HttpStatusFor(s.code());
  r.body = fhir::OperationOutcomeJson(s);
  return r;
}

fhir::RestResponse JsonResponse(std::string body, int status = 200) {
  fhir::RestResponse r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = "application/json; charset=utf-8";
  return r;
}

void Str(Writer& w, const char* k, std::string_view v) {
  w.Key(k);
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}

// Weight → a probability-like score in (0, 1): 0.5 at the probable threshold.
double Score(double weight, double probable) { return 1.0 / (1.0 + std::exp2(probable - weight)); }

Status CheckSteward(const StewardRequest& who) {
  if (who.actor.empty()) return InvalidArgument("say who decides: 'steward' is required", "steward");
  if (who.reason.empty()) return InvalidArgument("say why: 'reason' is required (it is kept in the person's trail)", "reason");
  return Status::Ok();
}

std::string ValidOf(const EmpiService::Impl& m, const std::string& patient) {
  auto r = m.records.find(patient);
  return r == m.records.end() ? std::string() : r->second.valid_id;
}

// Moves every record of `source` into `target` (REQUIRES m.mu held exclusively).
StatusOr<std::string> MergeLocked(EmpiService::Impl& m, Batch& b, const std::string& source, const std::string& target,
                                  const char* action, const StewardRequest& who) {
  if (source == target) return Unprocessable("a person cannot be merged into itself");
  auto s = m.persons.find(source);
  auto t = m.persons.find(target);
  if (s == m.persons.end()) return NotFound("person " + source + " is not known");
  if (t == m.persons.end()) return NotFound("person " + target + " is not known");
  for (const auto* p : {&s->second, &t->second})
    if (!p->merged_into.empty())
      return Unprocessable("person " + p->id + " was merged into " + p->merged_into + ": use that person instead");
  if (s->second.links.empty()) return Unprocessable("person " + source + " has no records to merge");
  for (const auto& l : s->second.links) {
    const std::string conflict = m.ConflictingId(ValidOf(m, l.patient), t->second, "");
    if (!conflict.empty())
      return Unprocessable("persons " + source + " and " + target +
                           " hold two different valid ID numbers: they are two people (correct the records first)");
  }
  const std::vector<PersonLink> moving = s->second.links;
  m.Note(b, source, action, who.actor, who.reason + " [merged into " + target + "]");
  m.Note(b, target, action, who.actor, who.reason + " [merged " + source + " into it]");
  for (const auto& l : moving) {
    const std::string valid = ValidOf(m, l.patient);
    m.RemoveLink(b, l.patient, target);
    m.AddLink(b, target, {l.patient, Assurance::kLevel4, LinkMethod::kManual, l.flags}, valid);
  }
  return target;
}

// Moves one record out of its person into a new one, never to be matched back automatically.
StatusOr<std::string> UnlinkLocked(EmpiService::Impl& m, Batch& b, const std::string& patient, const StewardRequest& who) {
  auto r = m.records.find(patient);
  if (r == m.records.end()) return NotFound("Patient/" + patient + " is not linked by the EMPI (unknown or deleted)");
  const std::string old = r->second.person;
  const PersonState& p = m.persons[old];
  if (p.links.size() < 2) return Unprocessable("Patient/" + patient + " is already the only record of person " + old);
  PersonLink link = *std::find_if(p.links.begin(), p.links.end(), [&](const PersonLink& l) { return l.patient == patient; });
  std::vector<std::string> others;
  for (const auto& l : p.links)
    if (l.patient != patient) others.push_back(l.patient);
  const std::string valid = r->second.valid_id;
  m.Note(b, old, "unlink", who.actor, who.reason + " [Patient/" + patient + " unlinked]");
  m.RemoveLink(b, patient, "");
  const std::string fresh = m.NewPerson(b);
  m.Note(b, fresh, "unlink", who.actor, who.reason + " [Patient/" + patient + " unlinked from " + old + "]");
  link.assurance = Assurance::kLevel4;
  link.method = LinkMethod::kManual;
  m.AddLink(b, fresh, link, valid);
  for (const auto& o : others) m.AddNoLink(b, patient, o, who.actor, who.reason, "unlink");
  return fresh;
}

}  // namespace

void EmpiService::Impl::AddNoLink(Batch& b, const std::string& a, const std::string& other, const std::string& actor,
                                  const std::string& reason, const std::string& source) {
  const Pair pair = Ordered(a, other);
  if (no_link.count(pair)) return;
  no_link.insert(pair);
  b.no_link_added.push_back(pair);
  store::MatchReview r;
  if (auto id = review_ids.find(pair); id != review_ids.end() && open_reviews.count(pair)) {
    r.id = id->second;  // the open review of this pair is decided by the same act
    open_reviews.erase(pair);
    b.open_removed.push_back(pair);
  }
  r.created = b.now;
  r.record_a = a;
  r.record_b = other;
  r.detail = "{\"source\":\"" + source + "\"}";
  r.status = "no-link";
  r.decided = b.now;
  r.steward = actor;
  r.reason = reason;
  b.reviews.push_back(std::move(r));
}

// ---- stewardship -------------------------------------------------------------

StatusOr<std::string> EmpiService::Link(const std::string& patient, const std::string& person, const StewardRequest& who) {
  RETURN_IF_ERROR(CheckSteward(who));
  Impl& m = *impl_;
  return m.Submit([&m, patient, person, who](Batch& b) -> StatusOr<std::string> {
    auto r = m.records.find(patient);
    if (r == m.records.end()) return NotFound("Patient/" + patient + " is not linked by the EMPI (unknown or deleted)");
    auto p = m.persons.find(person);
    if (p == m.persons.end()) return NotFound("person " + person + " is not known");
    if (!p->second.merged_into.empty())
      return Unprocessable("person " + person + " was merged into " + p->second.merged_into + ": link to that person");
    const std::string valid = r->second.valid_id;
    if (!m.ConflictingId(valid, p->second, patient).empty())
      return Unprocessable("Patient/" + patient + " and person " + person +
                           " hold two different valid ID numbers: they are two people (correct the record first)");
    const std::string old = r->second.person;
    const PersonState& from = m.persons[old];
    PersonLink link = *std::find_if(from.links.begin(), from.links.end(), [&](const PersonLink& l) { return l.patient == patient; });
    if (old != person) {
      m.Note(b, old, "link", who.actor, who.reason + " [Patient/" + patient + " moved to " + person + "]");
      m.RemoveLink(b, patient, person);
    }
    m.Note(b, person, "link", who.actor, who.reason + " [Patient/" + patient + "]");
    link.assurance = Assurance::kLevel4;
    link.method = LinkMethod::kManual;
    m.AddLink(b, person, link, valid);
    return person;
  });
}

StatusOr<std::string> EmpiService::Unlink(const std::string& patient, const StewardRequest& who) {
  RETURN_IF_ERROR(CheckSteward(who));
  Impl& m = *impl_;
  return m.Submit([&m, patient, who](Batch& b) { return UnlinkLocked(m, b, patient, who); });
}

StatusOr<std::string> EmpiService::Merge(const std::string& source, const std::string& target, const StewardRequest& who) {
  RETURN_IF_ERROR(CheckSteward(who));
  Impl& m = *impl_;
  return m.Submit([&m, source, target, who](Batch& b) { return MergeLocked(m, b, source, target, "merge", who); });
}

StatusOr<std::string> EmpiService::Unmerge(const std::string& person, const StewardRequest& who) {
  RETURN_IF_ERROR(CheckSteward(who));
  // The records the person had before its last merge: from its trail.
  std::vector<PersonLink> before;
  bool found = false;
  for (int64_t offset = 0;; offset += 1000) {
    ASSIGN_OR_RETURN(auto page, store_->PersonChanges(person, 1000, offset));
    for (const auto& c : page) {
      if ((c.action != "merge" && c.action != "review-link") || c.after.find("merged_into") == std::string::npos) continue;
      ASSIGN_OR_RETURN(before, ParseLinksJson(c.before));
      found = true;
    }
    if (page.size() < 1000) break;
  }
  Impl& m = *impl_;
  return m.Submit([&m, person, who, before, found](Batch& b) -> StatusOr<std::string> {
    auto p = m.persons.find(person);
    if (p == m.persons.end()) return NotFound("person " + person + " is not known");
    const std::string target = p->second.merged_into;
    if (target.empty() || !found) return Unprocessable("person " + person + " is not merged into another person");
    std::vector<PersonLink> restore;
    for (const auto& l : before) {
      auto r = m.records.find(l.patient);
      if (r != m.records.end() && r->second.person == target) restore.push_back(l);
    }
    if (restore.empty()) return Unprocessable("none of the records person " + person + " had are still in " + target);
    m.Note(b, person, "unmerge", who.actor, who.reason + " [separated from " + target + "]");
    m.Note(b, target, "unmerge", who.actor, who.reason + " [" + person + " separated again]");
    for (const auto& l : restore) {
      const std::string valid = ValidOf(m, l.patient);
      m.RemoveLink(b, l.patient, "");
      m.AddLink(b, person, l, valid);
    }
    // Automatic matching must not join them again.
    std::vector<std::string> remaining;
    for (const auto& l : m.persons[target].links) remaining.push_back(l.patient);
    for (const auto& l : restore)
      for (const auto& t : remaining) m.AddNoLink(b, l.patient, t, who.actor, who.reason, "unmerge");
    return person;
  });
}

StatusOr<std::string> EmpiService::DecideReview(int64_t id, bool same_person, const StewardRequest& who) {
  RETURN_IF_ERROR(CheckSteward(who));
  ASSIGN_OR_RETURN(auto review, store_->ReadReview(id));
  if (!review) return NotFound("review " + std::to_string(id) + " does not exist");
  if (review->status != "open")
    return Conflict("review " + std::to_string(id) + " was already decided (" + review->status + " by " + review->steward + ")");
  Impl& m = *impl_;
  return m.Submit([&m, r = *review, same_person, who](Batch& b) mutable -> StatusOr<std::string> {
    if (m.decided_reviews.count(r.id)) return Conflict("review " + std::to_string(r.id) + " was already decided");
    auto ra = m.records.find(r.record_a);
    auto rb = m.records.find(r.record_b);
    if (ra == m.records.end() || rb == m.records.end())
      return Unprocessable("a record of review " + std::to_string(r.id) + " is no longer linked (deleted)");
    std::string result;
    if (same_person) {
      const std::string pa = ra->second.person, pb = rb->second.person;
      if (pa != pb) {
        ASSIGN_OR_RETURN(result, MergeLocked(m, b, pa, pb, "review-link", who));
      } else {
        result = pb;
      }
    } else {
      if (ra->second.person == rb->second.person) {
        ASSIGN_OR_RETURN(result, UnlinkLocked(m, b, r.record_a, who));
      } else {
        result = ra->second.person;
      }
      const Pair pair = Ordered(r.record_a, r.record_b);
      if (m.no_link.insert(pair).second) b.no_link_added.push_back(pair);
    }
    const Pair pair = Ordered(r.record_a, r.record_b);
    if (m.open_reviews.erase(pair)) b.open_removed.push_back(pair);
    m.decided_reviews.insert(r.id);
    b.decided.push_back(r.id);
    r.status = same_person ? "link" : "no-link";
    r.decided = b.now;
    r.steward = who.actor;
    r.reason = who.reason;
    b.reviews.push_back(r);
    return result;
  });
}

// ---- identifiers → persons -----------------------------------------------------

namespace {

bool PersonLevel(std::string_view system) {
  return system == kIdCardSystem || system == kHealthCardSystem || system == kPersonIdSystem;
}

}  // namespace

// The Patient records of every person that has a record with this identifier
// (or is that person, for the person-id system), sorted; empty when none.
static std::vector<std::string> PersonRecordsFor(const EmpiService::Impl& m, store::Store* store, const PatientIndex& index,
                                                 std::string_view system, std::string_view value) {
  std::set<std::string> out;
  if (system == kPersonIdSystem) {
    for (auto& id : m.PatientsOf(value)) out.insert(std::move(id));
    return {out.begin(), out.end()};
  }
  std::set<std::string> direct;
  store::SearchQuery q;
  q.type = "Patient";
  q.count = 200;
  store::Criterion c;
  c.param = "identifier";
  c.type = store::ParamType::kToken;
  store::SearchValue v;
  v.system = std::string(system);
  v.code = std::string(value);
  v.has_system = true;
  c.values.push_back(std::move(v));
  q.criteria.push_back(std::move(c));
  if (auto page = store->Search(q); page.ok()) {
    for (const auto& r : page->resources) direct.insert(r.id);
  } else {
    log::Warn("empi: identifier look-up failed: {}", page.status().message());
  }
  if (system == kIdCardSystem) {  // also the 15-digit and typed-differently forms of the same number
    const NormalizedId n = NormalizeIdNumber(value);
    if (!n.number.empty())
      for (auto& id : index.WithIdNumber(n.number)) direct.insert(std::move(id));
  }
  for (const auto& id : direct) {
    out.insert(id);
    if (auto person = m.PersonOf(id))
      for (auto& other : m.PatientsOf(*person)) out.insert(std::move(other));
  }
  return {out.begin(), out.end()};
}

Status EmpiService::ExpandSearch(store::SearchQuery& q) const {
  auto widen = [&](store::Criterion& c) {
    if (c.param != "identifier" || c.type != store::ParamType::kToken || c.modifier != store::Modifier::kNone ||
        c.chain || c.missing || c.values.empty())
      return;
    for (const auto& v : c.values)
      if (!v.has_system || !PersonLevel(v.system)) return;
    std::set<std::string> ids;
    for (const auto& v : c.values)
      for (auto& id : PersonRecordsFor(*impl_, store_, *index_, v.system, v.code)) ids.insert(std::move(id));
    if (ids.empty()) return;  // nothing known: the plain search answers (with nothing, or what the EMPI has not seen)
    c.param = "_id";
    c.values.clear();
    for (const auto& id : ids) {
      store::SearchValue v;
      v.code = id;
      c.values.push_back(std::move(v));
    }
  };
  if (q.type == "Patient")
    for (auto& c : q.criteria) widen(c);
  // Chains through a Patient reference: Observation?subject:Patient.identifier=urn:oid:…1.3|…
  for (auto& c : q.criteria) {
    if (!c.chain || c.chain->target_type != "Patient" || !c.chain->inner) continue;
    store::Criterion inner = *c.chain->inner;
    widen(inner);
    c.chain->inner = std::make_shared<const store::Criterion>(std::move(inner));
  }
  return Status::Ok();
}

// ---- FHIR operations -----------------------------------------------------------

std::pair<std::string, fhir::OperationHandler> EmpiService::MatchOperation() {
  return {"$match", [this](const fhir::RestRequest& req) -> fhir::RestResponse {
            if (req.path != "Patient/$match") return Error(NotFound("$match is defined on Patient: POST [base]/Patient/$match"));
            if (req.method != "POST") return Error(Status(StatusCode::kMethodNotAllowed, "$match takes POST with a Parameters resource"));
            auto doc = fhir::ParseJson(req.body);
            if (!doc.ok()) return Error(doc.status());
            if (fhir::StringMember(*doc, "resourceType") != "Parameters")
              return Error(InvalidArgument("$match takes a Parameters resource with a 'resource' parameter"));
            const fhir::JsonValue* patient = nullptr;
            bool only_certain = false;
            int count = 10;
            if (const auto* params = fhir::Member(*doc, "parameter"); params && params->IsArray()) {
              for (const auto& p : params->GetArray()) {
                const auto name = fhir::StringMember(p, "name");
                if (name == "resource") patient = fhir::Member(p, "resource");
                if (name == "onlyCertainMatches") {
                  const auto* b = fhir::Member(p, "valueBoolean");
                  if (!b || !b->IsBool()) return Error(InvalidArgument("onlyCertainMatches must be a valueBoolean").WithLocation("Parameters.parameter"));
                  only_certain = b->GetBool();
                }
                if (name == "count") {
                  const auto* c = fhir::Member(p, "valueInteger");
                  if (!c || !c->IsInt() || c->GetInt() < 1 || c->GetInt() > 100)
                    return Error(InvalidArgument("count must be a valueInteger from 1 to 100").WithLocation("Parameters.parameter"));
                  count = c->GetInt();
                }
              }
            }
            if (!patient || !patient->IsObject() || fhir::StringMember(*patient, "resourceType") != "Patient")
              return Error(InvalidArgument("the 'resource' parameter must hold a Patient").WithLocation("Parameters.parameter"));
            // The query Patient needs no id: give it one that matches nothing.
            fhir::Json copy;
            copy.CopyFrom(*patient, copy.GetAllocator());
            if (fhir::StringMember(copy, "id").empty()) fhir::SetString(copy, "id", "$match-query", copy.GetAllocator());
            auto query = RecordFromPatientJson(fhir::WriteJson(copy));
            if (!query.ok()) return Error(query.status());
            auto found = index_->Match(*query, count);
            rapidjson::StringBuffer buf;
            Writer w(buf);
            w.StartObject();
            Str(w, "resourceType", "Bundle");
            Str(w, "type", "searchset");
            w.Key("entry");
            w.StartArray();
            int total = 0;
            for (const auto& c : found) {
              if (only_certain && c.grade != Grade::kCertain) continue;
              auto stored = store_->Read("Patient", c.id);
              if (!stored.ok()) continue;  // deleted since it was indexed
              ++total;
              w.StartObject();
              Str(w, "fullUrl", req.base_url + "/Patient/" + c.id);
              w.Key("resource");
              w.RawValue(stored->json.c_str(), stored->json.size(), rapidjson::kObjectType);
              w.Key("search");
              w.StartObject();
              w.Key("extension");
              w.StartArray();
              w.StartObject();
              Str(w, "url", "http://hl7.org/fhir/StructureDefinition/match-grade");
              Str(w, "valueCode", GradeCode(c.grade));
              w.EndObject();
              w.EndArray();
              Str(w, "mode", "match");
              w.Key("score");
              w.Double(std::round(Score(c.weight, impl_->options.model.probable) * 10000) / 10000);
              w.EndObject();
              w.EndObject();
            }
            w.EndArray();
            w.Key("total");
            w.Int(total);
            w.EndObject();
            fhir::RestResponse r;
            r.body.assign(buf.GetString(), buf.GetSize());
            return r;
          }};
}

// IHE PIXm (ITI-83): GET Patient/$ihe-pix?sourceIdentifier=system|value[&targetSystem=…]
// → Parameters: targetIdentifier for every identifier of the person's records
// and the person id, targetId for each record.
std::pair<std::string, fhir::OperationHandler> EmpiService::PixOperation() {
  return {"$ihe-pix", [this](const fhir::RestRequest& req) -> fhir::RestResponse {
            if (req.path != "Patient/$ihe-pix")
              return Error(NotFound("$ihe-pix is defined on Patient: GET [base]/Patient/$ihe-pix?sourceIdentifier=system|value"));
            if (req.method != "GET") return Error(Status(StatusCode::kMethodNotAllowed, "$ihe-pix takes GET"));
            std::vector<std::string> sources, targets;
            for (const auto& [k, v] : req.query) {
              if (k == "sourceIdentifier") sources.push_back(v);
              if (k == "targetSystem") targets.push_back(v);
            }
            if (sources.size() != 1)
              return Error(InvalidArgument("give exactly one sourceIdentifier=system|value (e.g. urn:oid:2.16.156.10011.1.3|330402199001011234)",
                                           "sourceIdentifier"));
            const std::string& src = sources[0];
            const size_t bar = src.find('|');
            if (bar == std::string::npos || bar == 0 || bar + 1 == src.size())
              return Error(InvalidArgument("sourceIdentifier '" + src + "' must be system|value, both given", "sourceIdentifier"));
            const std::string system = src.substr(0, bar), value = src.substr(bar + 1);
            for (const auto& t : targets)
              if (t.empty()) return Error(InvalidArgument("targetSystem must not be empty", "targetSystem"));
            const std::vector<std::string> patients = PersonRecordsFor(*impl_, store_, *index_, system, value);
            if (patients.empty()) return Error(NotFound("no Patient record or person has the identifier " + src));
            auto wanted = [&](std::string_view sys) {
              return targets.empty() || std::find(targets.begin(), targets.end(), sys) != targets.end();
            };
            std::set<std::string> persons;
            for (const auto& p : patients)
              if (auto person = impl_->PersonOf(p)) persons.insert(*person);
            std::set<std::pair<std::string, std::string>> seen;
            std::vector<std::string> target_ids;
            rapidjson::StringBuffer buf;
            Writer w(buf);
            w.StartObject();
            Str(w, "resourceType", "Parameters");
            w.Key("parameter");
            w.StartArray();
            auto identifier = [&](std::string_view sys, std::string_view val) {
              if (!seen.insert({std::string(sys), std::string(val)}).second) return;
              w.StartObject();
              Str(w, "name", "targetIdentifier");
              w.Key("valueIdentifier");
              w.StartObject();
              Str(w, "system", sys);
              Str(w, "value", val);
              w.EndObject();
              w.EndObject();
            };
            if (wanted(kPersonIdSystem))
              for (const auto& person : persons) identifier(kPersonIdSystem, person);
            for (const auto& id : patients) {
              auto stored = store_->Read("Patient", id);
              if (!stored.ok()) continue;
              auto doc = fhir::ParseJson(stored->json);
              if (!doc.ok()) continue;
              bool any = targets.empty();
              if (const auto* ids = fhir::Member(*doc, "identifier"); ids && ids->IsArray()) {
                for (const auto& i : ids->GetArray()) {
                  const auto sys = fhir::StringMember(i, "system"), val = fhir::StringMember(i, "value");
                  if (sys.empty() || val.empty() || !wanted(sys)) continue;
                  identifier(sys, val);
                  any = true;
                }
              }
              if (any) target_ids.push_back(id);
            }
            for (const auto& id : target_ids) {
              w.StartObject();
              Str(w, "name", "targetId");
              w.Key("valueReference");
              w.StartObject();
              Str(w, "reference", "Patient/" + id);
              w.EndObject();
              w.EndObject();
            }
            w.EndArray();
            w.EndObject();
            fhir::RestResponse r;
            r.body.assign(buf.GetString(), buf.GetSize());
            return r;
          }};
}

// ---- the JSON API under /api/mpi ------------------------------------------------

namespace {

void WriteLinks(Writer& w, const std::vector<PersonLink>& links) {
  w.StartArray();
  for (const auto& l : links) {
    w.StartObject();
    Str(w, "patient", l.patient);
    Str(w, "assurance", AssuranceCode(l.assurance));
    Str(w, "method", LinkMethodCode(l.method));
    w.Key("flags");
    w.StartArray();
    for (const auto& f : QualityFlagCodes(l.flags)) w.String(f.c_str());
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
}

std::string Query(const fhir::RestRequest& req, std::string_view key) {
  for (const auto& [k, v] : req.query)
    if (k == key) return v;
  return {};
}

}  // namespace

fhir::RestResponse EmpiService::HandleApi(const fhir::RestRequest& req) {
  const std::vector<std::string> seg = SplitPath(req.path);
  std::string path;  // for messages: the path without stray slashes
  for (const auto& s : seg) path += (path.empty() ? "" : "/") + s;
  auto summary = [&](Writer& w, const std::string& patient) {
    w.StartObject();
    Str(w, "patient", patient);
    if (auto person = impl_->PersonOf(patient)) Str(w, "person", *person);
    if (auto r = index_->Find(patient)) {
      Str(w, "name", r->name.simplified);
      Str(w, "birth_date", r->birth);
      Str(w, "sex", r->sex == Sex::kMale ? "male" : r->sex == Sex::kFemale ? "female" : "unknown");
      Str(w, "id_number", r->id_number.number);
      Str(w, "phone", r->phone);
      Str(w, "county", r->county);
    }
    w.EndObject();
  };
  auto review_json = [&](Writer& w, const store::MatchReview& r) {
    w.StartObject();
    w.Key("id");
    w.Int64(r.id);
    Str(w, "status", r.status);
    Str(w, "created", FormatInstant(r.created));
    w.Key("weight");
    w.Double(std::round(r.weight * 100) / 100);
    w.Key("records");
    w.StartArray();
    summary(w, r.record_a);
    summary(w, r.record_b);
    w.EndArray();
    const auto pa = impl_->PersonOf(r.record_a), pb = impl_->PersonOf(r.record_b);
    w.Key("same_person_now");
    w.Bool(pa && pb && *pa == *pb);
    w.Key("explanation");
    w.RawValue(r.detail.c_str(), r.detail.size(), rapidjson::kObjectType);
    if (r.status != "open") {
      Str(w, "decided", FormatInstant(r.decided));
      Str(w, "steward", r.steward);
      Str(w, "reason", r.reason);
    }
    w.EndObject();
  };
  auto person_json = [&](const std::string& id) -> fhir::RestResponse {
    auto p = Person(id);
    if (!p) return Error(NotFound("person " + id + " is not known"));
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    Str(w, "id", p->id);
    w.Key("active");
    w.Bool(p->active);
    if (!p->merged_into.empty()) Str(w, "merged_into", p->merged_into);
    w.Key("version");
    w.Int64(p->version);
    w.Key("links");
    WriteLinks(w, p->links);
    w.EndObject();
    return JsonResponse(std::string(buf.GetString(), buf.GetSize()));
  };

  const bool get = req.method == "GET";
  if (seg.size() == 1 && seg[0] == "review" && get) {
    std::string status = Query(req, "status");
    if (status.empty()) status = "open";
    if (status == "all") status.clear();
    if (!status.empty() && status != "open" && status != "link" && status != "no-link")
      return Error(InvalidArgument("status must be open, link, no-link or all", "status"));
    const std::string count_s = Query(req, "_count"), offset_s = Query(req, "_offset");
    const int count = count_s.empty() ? 20 : std::atoi(count_s.c_str());
    const int64_t offset = offset_s.empty() ? 0 : std::atoll(offset_s.c_str());
    if (count < 1 || count > 200) return Error(InvalidArgument("_count must be 1 to 200", "_count"));
    if (offset < 0) return Error(InvalidArgument("_offset must not be negative", "_offset"));
    auto items = store_->Reviews(status, count, offset);
    if (!items.ok()) return Error(items.status());
    auto total = store_->CountReviews(status);
    if (!total.ok()) return Error(total.status());
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("total");
    w.Int64(*total);
    w.Key("offset");
    w.Int64(offset);
    w.Key("items");
    w.StartArray();
    for (const auto& r : *items) review_json(w, r);
    w.EndArray();
    if (offset + count < *total) Str(w, "next", "review?status=" + (status.empty() ? std::string("all") : status) +
                                                 "&_count=" + std::to_string(count) + "&_offset=" + std::to_string(offset + count));
    w.EndObject();
    return JsonResponse(std::string(buf.GetString(), buf.GetSize()));
  }
  if (seg.size() == 2 && seg[0] == "persons" && get) return person_json(seg[1]);
  if (seg.size() == 3 && seg[0] == "persons" && seg[2] == "trail" && get) {
    if (!Person(seg[1])) return Error(NotFound("person " + seg[1] + " is not known"));
    auto changes = store_->PersonChanges(seg[1], 1000, 0);
    if (!changes.ok()) return Error(changes.status());
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    Str(w, "person", seg[1]);
    w.Key("changes");
    w.StartArray();
    for (const auto& c : *changes) {
      w.StartObject();
      w.Key("version");
      w.Int64(c.person_version);
      Str(w, "at", FormatInstant(c.at));
      Str(w, "action", c.action);
      Str(w, "actor", c.actor);
      Str(w, "reason", c.reason);
      w.Key("before");
      w.RawValue(c.before.c_str(), c.before.size(), c.before[0] == '[' ? rapidjson::kArrayType : rapidjson::kObjectType);
      w.Key("after");
      w.RawValue(c.after.c_str(), c.after.size(), c.after[0] == '[' ? rapidjson::kArrayType : rapidjson::kObjectType);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return JsonResponse(std::string(buf.GetString(), buf.GetSize()));
  }
  if (seg.size() == 3 && seg[0] == "patients" && seg[2] == "person" && get) {
    auto person = impl_->PersonOf(seg[1]);
    if (!person) return Error(NotFound("Patient/" + seg[1] + " is not linked by the EMPI"));
    return person_json(*person);
  }
  if (seg.size() == 2 && seg[0] == "review" && get) {
    auto r = store_->ReadReview(std::atoll(seg[1].c_str()));
    if (!r.ok()) return Error(r.status());
    if (!*r) return Error(NotFound("review " + seg[1] + " does not exist"));
    rapidjson::StringBuffer buf;
    Writer w(buf);
    review_json(w, **r);
    return JsonResponse(std::string(buf.GetString(), buf.GetSize()));
  }

  const bool post = req.method == "POST";
  const bool known = (seg.size() == 2 && seg[0] == "review") ||
                     (seg.size() == 1 && (seg[0] == "link" || seg[0] == "unlink" || seg[0] == "merge" || seg[0] == "unmerge"));
  if (!known) {
    if (seg.size() >= 1 && (seg[0] == "review" || seg[0] == "persons" || seg[0] == "patients"))
      return Error(Status(StatusCode::kMethodNotAllowed, req.method + " is not supported on /api/mpi/" + path));
    return Error(NotFound("no EMPI API at /api/mpi/" + path +
                          " (review, review/{id}, link, unlink, merge, unmerge, persons/{id}, persons/{id}/trail, patients/{id}/person)"));
  }
  if (!post) return Error(Status(StatusCode::kMethodNotAllowed, "/api/mpi/" + path + " takes POST with a JSON body"));
  auto body = fhir::ParseJson(req.body);
  if (!body.ok()) return Error(body.status());
  if (!body->IsObject()) return Error(InvalidArgument("the body must be a JSON object"));
  auto field = [&](const char* k) { return std::string(fhir::StringMember(*body, k)); };
  const StewardRequest who{field("steward"), field("reason")};
  auto require = [&](const char* k) -> Status {
    return field(k).empty() ? InvalidArgument(std::string("'") + k + "' is required", k) : Status::Ok();
  };
  StatusOr<std::string> result = std::string();
  if (seg[0] == "review") {
    const std::string decision = field("decision");
    if (decision != "link" && decision != "no-link")
      return Error(InvalidArgument("decision must be \"link\" (the same person) or \"no-link\" (two people)", "decision"));
    char* end = nullptr;
    const long long id = std::strtoll(seg[1].c_str(), &end, 10);
    if (!end || *end != '\0' || id <= 0) return Error(NotFound("review " + seg[1] + " does not exist"));
    result = DecideReview(id, decision == "link", who);
  } else if (seg[0] == "link") {
    if (Status st = require("patient"); !st.ok()) return Error(st);
    std::string person = field("person");
    if (person.empty() && !field("with").empty()) {
      auto p = impl_->PersonOf(field("with"));
      if (!p) return Error(NotFound("Patient/" + field("with") + " is not linked by the EMPI"));
      person = *p;
    }
    if (person.empty()) return Error(InvalidArgument("give 'person' (a person id) or 'with' (a Patient id of that person)", "person"));
    result = Link(field("patient"), person, who);
  } else if (seg[0] == "unlink") {
    if (Status st = require("patient"); !st.ok()) return Error(st);
    result = Unlink(field("patient"), who);
  } else if (seg[0] == "merge") {
    if (Status st = require("source"); !st.ok()) return Error(st);
    if (Status st = require("target"); !st.ok()) return Error(st);
    result = Merge(field("source"), field("target"), who);
  } else {
    if (Status st = require("person"); !st.ok()) return Error(st);
    result = Unmerge(field("person"), who);
  }
  if (!result.ok()) return Error(result.status());
  return person_json(*result);
}

}  // namespace rhip::mpi
