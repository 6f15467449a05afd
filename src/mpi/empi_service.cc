#include "rhip/mpi/empi_service.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "mpi/empi_internal.h"
#include "rhip/core/log.h"
#include "rhip/core/time.h"
#include "rhip/fhir/index.h"
#include "rhip/fhir/json.h"
#include "rhip/fhir/operation_outcome.h"

namespace rhip::mpi {

using internal::Batch;
using internal::Job;
using internal::Ordered;
using internal::Pair;
using internal::RecordState;

namespace {

constexpr char kActorEmpi[] = "rhip-empi";

bool ValidNumber(const NormalizedId& id) { return id.status == IdStatus::kValid || id.status == IdStatus::kConflicting; }
std::string ValidIdOf(const PatientRecord& r) { return ValidNumber(r.id_number) ? r.id_number.number : std::string(); }

std::string Fixed(double w) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", w);
  return buf;
}

}  // namespace

// ---- the in-memory state and its mutations ---------------------------------

void EmpiService::Impl::Note(Batch& b, const std::string& person, const char* action, const std::string& actor,
                             const std::string& reason) {
  auto [it, fresh] = b.notes.try_emplace(person);
  if (fresh) {
    it->second = {action, actor, reason};
    return;
  }
  if (actor != kActorEmpi) {  // a steward's action names the change, whatever else the batch did to the person
    it->second.action = action;
    it->second.actor = actor;
  }
  if (it->second.reason.size() < 2000) it->second.reason += "; " + reason;
}

PersonState& EmpiService::Impl::TouchPerson(Batch& b, const std::string& id) {
  if (!b.person_before.count(id)) {
    auto it = persons.find(id);
    b.person_before[id] = it == persons.end() ? std::nullopt : std::optional<PersonState>(it->second);
  }
  PersonState& p = persons[id];
  if (p.id.empty()) p.id = id;
  return p;
}

void EmpiService::Impl::TouchRecord(Batch& b, const std::string& patient) {
  if (b.record_before.count(patient)) return;
  auto it = records.find(patient);
  b.record_before[patient] = it == records.end() ? std::nullopt : std::optional<RecordState>(it->second);
}

void EmpiService::Impl::AddLink(Batch& b, const std::string& person, PersonLink link, const std::string& valid_id) {
  PersonState& p = TouchPerson(b, person);
  p.active = true;
  p.merged_into.clear();
  auto pos = std::lower_bound(p.links.begin(), p.links.end(), link.patient,
                              [](const PersonLink& l, const std::string& id) { return l.patient < id; });
  TouchRecord(b, link.patient);
  records[link.patient] = {person, valid_id, link.flags};
  if (pos != p.links.end() && pos->patient == link.patient) {
    *pos = std::move(link);
  } else {
    p.links.insert(pos, std::move(link));
  }
}

void EmpiService::Impl::RemoveLink(Batch& b, const std::string& patient, const std::string& merged_into_if_empty) {
  auto r = records.find(patient);
  if (r == records.end()) return;
  const std::string person = r->second.person;
  PersonState& p = TouchPerson(b, person);
  p.links.erase(std::remove_if(p.links.begin(), p.links.end(), [&](const PersonLink& l) { return l.patient == patient; }),
                p.links.end());
  if (p.links.empty()) {
    p.active = false;
    p.merged_into = merged_into_if_empty;
  }
  TouchRecord(b, patient);
  records.erase(patient);
}

std::string EmpiService::Impl::NewPerson(Batch& b) {
  const std::string id = PersonIdFor(options.region, next_seq++);
  PersonState& p = TouchPerson(b, id);
  p.active = true;
  return id;
}

std::string EmpiService::Impl::ConflictingId(const std::string& valid_id, const PersonState& p, const std::string& skip) const {
  if (valid_id.empty()) return {};
  for (const auto& l : p.links) {
    if (l.patient == skip) continue;
    auto r = records.find(l.patient);
    if (r != records.end() && !r->second.valid_id.empty() && r->second.valid_id != valid_id) return r->second.valid_id;
  }
  return {};
}

bool EmpiService::Impl::NoLinkWith(const std::string& patient, const PersonState& p) const {
  for (const auto& l : p.links)
    if (l.patient != patient && no_link.count(Ordered(patient, l.patient))) return true;
  return false;
}

double EmpiService::Impl::Needed(uint32_t flags) const {
  // A record with data-quality flags is linked automatically only on a certain match.
  return flags ? options.model.certain : options.model.probable;
}

void EmpiService::Impl::QueueReview(Batch& b, const PatientRecord& rec, const MatchCandidate& c, uint32_t other_flags,
                                    const std::string& why) {
  const Pair pair = Ordered(rec.id, c.id);
  if (open_reviews.count(pair) || no_link.count(pair)) return;
  store::MatchReview r;
  r.created = b.now;
  r.record_a = rec.id;
  r.record_b = c.id;
  r.weight = c.weight;
  r.status = "open";
  r.detail = ExplainJson(c, rec.quality, other_flags, why);
  b.reviews.push_back(std::move(r));
  open_reviews.insert(pair);
  b.open_added.push_back(pair);
}

// Decides where one written Patient record belongs (module comment of empi_service.h).
void EmpiService::Impl::Relink(Batch& b, const PatientRecord& rec) {
  const std::string valid = ValidIdOf(rec);
  const MatchModel& model = options.model;
  auto cur = records.find(rec.id);

  // The source system merged this record into another (Patient.link replaced-by, HL7 ADT^A40).
  if (!rec.replaced_by.empty()) {
    auto t = records.find(rec.replaced_by);
    if (t != records.end()) {
      const std::string target = t->second.person;
      const std::string why = "Patient/" + rec.id + " was replaced by Patient/" + rec.replaced_by +
                              " (merged by its source system, e.g. HL7 ADT^A40)";
      if (cur != records.end() && cur->second.person != target) {
        Note(b, cur->second.person, "source-merge", kActorEmpi, why);
        RemoveLink(b, rec.id, target);
      }
      Note(b, target, "source-merge", kActorEmpi, why);
      AddLink(b, target, {rec.id, Assurance::kLevel3, LinkMethod::kSource, rec.quality}, valid);
      return;
    }
  }

  std::string alone_in;  // the person the record is alone in (it may join a better one)
  if (cur != records.end()) {
    const std::string pid = cur->second.person;
    PersonState& p = persons[pid];
    auto link = std::find_if(p.links.begin(), p.links.end(), [&](const PersonLink& l) { return l.patient == rec.id; });
    if (link == p.links.end()) return;  // inconsistent state; never expected
    if (link->flags != rec.quality || cur->second.valid_id != valid) {
      PersonLink updated = *link;
      updated.flags = rec.quality;
      Note(b, pid, "update", kActorEmpi, "Patient/" + rec.id + " was updated");
      AddLink(b, pid, updated, valid);
    }
    if (link->method != LinkMethod::kAuto) return;  // a steward's or the source system's link stays
    PersonState& person = persons[pid];
    if (person.links.size() > 1) {
      bool keep = ConflictingId(valid, person, rec.id).empty() && !NoLinkWith(rec.id, person);
      if (keep) {
        keep = false;
        for (const auto& other : person.links) {
          if (other.patient == rec.id) continue;
          auto s = index->Score(rec, other.patient);
          if (s && s->weight >= Needed(rec.quality | other.flags)) {
            keep = true;
            break;
          }
        }
      }
      if (keep) return;
      Note(b, pid, "split", kActorEmpi,
           "Patient/" + rec.id + " was updated and no longer matches the person's other records: it leaves the person");
      RemoveLink(b, rec.id, "");
    } else {
      alone_in = pid;
    }
  }

  // Candidates grouped by person, best first; ineligible persons are skipped.
  struct Option {
    std::string person;
    MatchCandidate c;
    uint32_t flags = 0;
  };
  std::vector<Option> options_by_person;
  std::unordered_set<std::string> seen;
  for (auto& c : index->Match(rec, 32)) {
    auto r = records.find(c.id);
    if (r == records.end()) continue;  // not linked yet (its own turn comes)
    const std::string& pid = r->second.person;
    if (pid == alone_in || !seen.insert(pid).second) continue;
    const PersonState& p = persons[pid];
    if (!p.active || !ConflictingId(valid, p, rec.id).empty() || NoLinkWith(rec.id, p)) continue;
    options_by_person.push_back({pid, std::move(c), r->second.flags});
  }
  const Option* chosen = nullptr;
  for (const auto& o : options_by_person) {
    if (o.c.weight >= Needed(rec.quality | o.flags)) {
      chosen = &o;
      break;
    }
  }
  if (chosen) {
    const std::string why = "Patient/" + rec.id + " matched Patient/" + chosen->c.id + " at weight " +
                            Fixed(chosen->c.weight) + " (" + GradeCode(chosen->c.grade) + ")";
    if (!alone_in.empty()) {
      Note(b, alone_in, "auto-link", kActorEmpi, why + "; its person is merged into " + chosen->person);
      RemoveLink(b, rec.id, chosen->person);
    }
    Note(b, chosen->person, "auto-link", kActorEmpi, why);
    AddLink(b, chosen->person,
            {rec.id, chosen->c.weight >= model.certain ? Assurance::kLevel3 : Assurance::kLevel2, LinkMethod::kAuto, rec.quality},
            valid);
  } else if (alone_in.empty()) {
    const std::string pid = NewPerson(b);
    std::string why = "Patient/" + rec.id + " starts a person: no eligible record matches at or above the threshold";
    if (rec.quality) {
      why += "; data-quality flags:";
      for (const auto& f : QualityFlagCodes(rec.quality)) why += " " + f;
    }
    Note(b, pid, "new", kActorEmpi, why);
    AddLink(b, pid, {rec.id, rec.quality ? Assurance::kLevel1 : Assurance::kLevel3, LinkMethod::kAuto, rec.quality}, valid);
  }
  // The gray zone (and any second person above the threshold) goes to the stewards.
  int queued = 0;
  for (const auto& o : options_by_person) {
    if (&o == chosen || queued >= options.reviews_per_record || o.c.weight < model.possible) continue;
    const double needed = Needed(rec.quality | o.flags);
    const std::string why = o.c.weight < needed
                                ? "weight " + Fixed(o.c.weight) + " is below the " + (needed == model.certain ? "certain" : "probable") +
                                      " threshold " + Fixed(needed) + (rec.quality | o.flags ? " (a record has data-quality flags)" : "")
                                : "another person also matches above the threshold";
    QueueReview(b, rec, o.c, o.flags, why);
    ++queued;
  }
}

void EmpiService::Impl::Forget(Batch& b, const std::string& patient) {
  auto r = records.find(patient);
  if (r == records.end()) return;
  Note(b, r->second.person, "remove", kActorEmpi, "Patient/" + patient + " was deleted");
  RemoveLink(b, patient, "");
}

std::string EmpiService::Impl::ExplainJson(const MatchCandidate& c, uint32_t flags_a, uint32_t flags_b,
                                           const std::string& why) const {
  static const char* kFields[kFieldCount] = {"id-number", "name", "birth-date", "sex", "phone", "health-card", "county"};
  static const char* kMeaning[kFieldCount][kMaxLevels] = {
      {"missing", "exact", "one character apart", "different (both valid: conflicting)", "different"},
      {"missing", "same characters", "same pinyin", "same fuzzy pinyin (near-homophones)", "different"},
      {"missing", "exact", "day and month swapped", "one of year/month/day differs", "different"},
      {"missing", "same", "different", "", ""},
      {"missing", "same", "different", "", ""},
      {"missing", "same", "different", "", ""},
      {"missing", "same", "different", "", ""},
  };
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("weight");
  w.Double(std::round(c.weight * 100) / 100);
  w.Key("grade");
  w.String(GradeCode(c.grade));
  w.Key("why");
  w.String(why.c_str());
  w.Key("fields");
  w.StartArray();
  for (int f = 0; f < kFieldCount; ++f) {
    w.StartObject();
    w.Key("field");
    w.String(kFields[f]);
    w.Key("level");
    w.Int(c.levels[f]);
    w.Key("meaning");
    w.String(kMeaning[f][c.levels[f]]);
    w.Key("log2_m_over_u");
    w.Double(std::round(options.model.Contribution(f, c.levels[f], c.name_u) * 100) / 100);
    w.EndObject();
  }
  w.EndArray();
  for (auto [key, flags] : {std::pair{"flags_a", flags_a}, std::pair{"flags_b", flags_b}}) {
    w.Key(key);
    w.StartArray();
    for (const auto& code : QualityFlagCodes(flags)) w.String(code.c_str());
    w.EndArray();
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

// ---- batches: decisions in memory, then one store transaction ---------------

Status EmpiService::Impl::ProcessBatch(const std::vector<Job*>& jobs, const std::function<void()>& decided) {
  Batch b;
  b.now = NowMicros();
  struct Dirty {
    PersonState state;
    store::PersonChange change;
    store::PutRequest put;
  };
  std::vector<Dirty> dirty;
  {
    std::unique_lock lock(mu);
    for (Job* j : jobs) j->result = j->fn(b);
    for (const auto& [id, before] : b.person_before) {
      const PersonState& now = persons.at(id);
      if (before && *before == now) continue;
      Dirty d;
      d.state = now;
      const auto& note = b.notes[id];
      d.change = {.person_id = id, .person_version = now.version + 1, .at = b.now, .action = note.action,
                  .actor = note.actor, .reason = note.reason, .before = before ? LinksJson(before->links) : "[]",
                  .after = LinksJson(now.links)};
      if (!now.merged_into.empty()) d.change.after = "{\"merged_into\":\"" + now.merged_into + "\"}";
      dirty.push_back(std::move(d));
    }
  }
  if (decided) decided();
  // The Person resources are built outside the lock and outside the store's writer
  // thread; a big batch (a start linking an import) on both cores.
  auto build = [&](size_t first, size_t step) {
    for (size_t i = first; i < dirty.size(); i += step) {
      Dirty& d = dirty[i];
      auto doc = fhir::ParseJson(PersonJson(d.state));
      if (!doc.ok()) continue;  // PersonJson writes valid JSON
      const int64_t version = d.state.version + 1;
      fhir::SetVersionMeta(*doc, version, b.now);
      d.put = {.type = "Person", .id = d.state.id, .version = version, .last_updated = b.now,
               .method = version == 1 ? "POST" : "PUT", .json = fhir::WriteJson(*doc), .index = fhir::ExtractIndex(*doc, "Person")};
    }
  };
  if (dirty.size() >= 128) {
    std::thread other(build, 1, 2);
    build(0, 2);
    other.join();
  } else {
    build(0, 1);
  }
  Status st;
  if (!dirty.empty() || !b.reviews.empty()) {
    st = store->Write([&](store::WriteTransaction& tx) -> Status {
      for (Dirty& d : dirty) {
        // The EMPI is the only writer of Person (FhirServiceOptions.managed_types), so its version is current.
        RETURN_IF_ERROR(tx.Put(d.put));
        RETURN_IF_ERROR(tx.AppendPersonChange(d.change));
      }
      for (auto& r : b.reviews) {
        ASSIGN_OR_RETURN(int64_t id, tx.PutReview(r));
        r.id = id;
      }
      return Status::Ok();
    });
  }
  std::unique_lock lock(mu);
  if (st.ok()) {
    for (const Dirty& d : dirty) persons[d.state.id].version = d.state.version + 1;
    for (const auto& r : b.reviews) review_ids[Ordered(r.record_a, r.record_b)] = r.id;
    return Status::Ok();
  }
  // Nothing was written: undo the batch's decisions. The Patients stay unlinked until the next Load.
  log::Error("empi: writing {} Person changes failed ({}); their Patients are linked at the next start", dirty.size(),
             st.ToString());
  for (auto& [id, before] : b.person_before) {
    if (before) {
      persons[id] = *before;
    } else {
      persons.erase(id);
    }
  }
  for (auto& [id, before] : b.record_before) {
    if (before) {
      records[id] = *before;
    } else {
      records.erase(id);
    }
  }
  for (const auto& p : b.no_link_added) no_link.erase(p);
  for (const auto& p : b.open_added) open_reviews.erase(p);
  for (const auto& p : b.open_removed) open_reviews.insert(p);
  for (int64_t id : b.decided) decided_reviews.erase(id);
  return st;  // the jobs may be gone (released at `decided`): the caller reports it to those still waiting
}

StatusOr<std::string> EmpiService::Impl::Submit(std::function<StatusOr<std::string>(Batch&)> fn, bool wait_durable) {
  internal::Waiter waiter(1);
  Job job;
  job.fn = std::move(fn);
  job.wait_durable = wait_durable;
  job.waiter = &waiter;
  {
    std::lock_guard lock(q_mu);
    if (!running) return Status(StatusCode::kUnavailable, "the EMPI is not running (starting or stopping)");
    queue.push_back(&job);
  }
  q_cv.notify_one();
  waiter.finished.Wait();
  return job.result;
}

Status EmpiService::Impl::SubmitAll(std::vector<std::function<StatusOr<std::string>(Batch&)>> fns, bool wait_durable) {
  if (fns.empty()) return Status::Ok();
  internal::Waiter waiter(fns.size());
  std::vector<Job> jobs(fns.size());
  {
    std::lock_guard lock(q_mu);
    if (!running) return Status(StatusCode::kUnavailable, "the EMPI is not running (starting or stopping)");
    for (size_t i = 0; i < fns.size(); ++i) {
      jobs[i].fn = std::move(fns[i]);
      jobs[i].wait_durable = wait_durable;
      jobs[i].waiter = &waiter;
      queue.push_back(&jobs[i]);
    }
  }
  q_cv.notify_one();
  waiter.finished.Wait();
  for (const Job& j : jobs)
    if (!j.result.ok()) return j.result.status();
  return Status::Ok();
}

void EmpiService::Impl::LinkerLoop() {
  for (;;) {
    std::vector<Job*> batch;
    {
      std::unique_lock lock(q_mu);
      q_cv.wait(lock, [&] { return stopping || !queue.empty(); });
      if (queue.empty()) return;  // stopping, and nothing left
      while (!queue.empty() && batch.size() < static_cast<size_t>(options.max_batch)) {
        batch.push_back(queue.front());
        queue.pop_front();
      }
    }
    // With options.wait_for_person_write off, a Patient write returns once its
    // person is decided: the Person write then shares its commit with the next
    // Patients' (see empi_service.h on crashes). Released jobs are not touched again.
    std::vector<Job*> waiting;
    const Status st = ProcessBatch(batch, [&] {
      for (Job* j : batch) {
        if (j->wait_durable || !j->result.ok()) {
          waiting.push_back(j);
        } else {
          j->Finish();
        }
      }
    });
    for (Job* j : waiting) {
      if (!st.ok() && j->result.ok()) j->result = st;
      j->Finish();
    }
  }
}

std::optional<std::string> EmpiService::Impl::PersonOf(std::string_view patient_id) const {
  std::shared_lock lock(mu);
  auto it = records.find(std::string(patient_id));
  if (it == records.end()) return std::nullopt;
  return it->second.person;
}

std::string EmpiService::Impl::Survivor(std::string_view person_id) const {
  std::string id(person_id);
  for (int hop = 0; hop < 32; ++hop) {
    auto it = persons.find(id);
    if (it == persons.end() || it->second.merged_into.empty()) return id;
    id = it->second.merged_into;
  }
  return id;
}

std::vector<std::string> EmpiService::Impl::PatientsOf(std::string_view person_id) const {
  std::shared_lock lock(mu);
  std::vector<std::string> out;
  // A person merged into another answers for the survivor: the same resident.
  auto it = persons.find(Survivor(person_id));
  if (it == persons.end()) return out;
  for (const auto& l : it->second.links) out.push_back(l.patient);
  return out;
}

// ---- EmpiService -------------------------------------------------------------

EmpiService::EmpiService(store::Store* store, EmpiOptions options)
    : store_(store), index_(std::make_shared<PatientIndex>(options.model)), impl_(std::make_unique<Impl>()) {
  impl_->store = store;
  impl_->index = index_.get();
  impl_->options = std::move(options);
}

EmpiService::~EmpiService() { Stop(); }

void EmpiService::Stop() {
  {
    std::lock_guard lock(impl_->q_mu);
    if (!impl_->running) return;
    impl_->running = false;
    impl_->stopping = true;
    impl_->q_cv.notify_all();
  }
  if (impl_->linker.joinable()) impl_->linker.join();
}

Status EmpiService::Load() {
  Impl& m = *impl_;
  int64_t persons = 0;
  {
    std::unique_lock lock(m.mu);
    RETURN_IF_ERROR(store_->Scan("Person", [&](const store::ResourceVersion& v) {
      auto p = ParsePersonJson(v.json);
      if (!p.ok()) {
        log::Warn("empi: Person/{} is not readable ({}); skipped", v.id, p.status().message());
        return Status::Ok();
      }
      p->version = v.version;
      for (const auto& l : p->links) {
        if (m.records.count(l.patient)) {
          log::Warn("empi: Patient/{} is linked by two Persons; kept in {}", l.patient, m.records[l.patient].person);
          continue;
        }
        m.records[l.patient] = {p->id, "", l.flags};
      }
      if (auto seq = PersonSequence(p->id)) m.next_seq = std::max(m.next_seq, *seq + 1);
      ++persons;
      m.persons[p->id] = std::move(*p);
      return Status::Ok();
    }));
    for (const char* status : {"no-link", "open"}) {
      for (int64_t offset = 0;; offset += 5000) {
        ASSIGN_OR_RETURN(auto page, store_->Reviews(status, 5000, offset));
        for (const auto& r : page) {
          const Pair pair = Ordered(r.record_a, r.record_b);
          (std::string_view(status) == "open" ? m.open_reviews : m.no_link).insert(pair);
          m.review_ids[pair] = r.id;
        }
        if (page.size() < 5000) break;
      }
    }
  }
  // Index every Patient; those without a Person are linked below (a crash
  // between a Patient's commit and its Person's, or an offline import).
  std::vector<PatientRecord> unlinked;
  std::unordered_set<std::string> present;
  int64_t indexed = 0, unreadable = 0;
  // Parsing and normalizing is most of the work: chunks of records on both cores.
  std::vector<std::string> chunk;
  auto flush = [&] {
    std::vector<std::optional<PatientRecord>> parsed(chunk.size());
    auto parse = [&](size_t first) {
      for (size_t i = first; i < chunk.size(); i += 2)
        if (auto r = RecordFromPatientJson(chunk[i]); r.ok()) parsed[i] = std::move(*r);
    };
    std::thread other(parse, 1);
    parse(0);
    other.join();
    std::unique_lock lock(m.mu);
    for (auto& r : parsed) {
      if (!r) {
        ++unreadable;
        continue;
      }
      present.insert(r->id);
      if (r->replaced_by.empty()) index_->Upsert(*r);
      ++indexed;
      auto it = m.records.find(r->id);
      if (it == m.records.end()) {
        unlinked.push_back(std::move(*r));
      } else {
        it->second.valid_id = ValidIdOf(*r);
      }
    }
    chunk.clear();
  };
  RETURN_IF_ERROR(store_->Scan("Patient", [&](const store::ResourceVersion& v) {
    chunk.push_back(v.json);
    if (chunk.size() == 4096) flush();
    return Status::Ok();
  }));
  flush();
  std::vector<std::string> gone;
  {
    std::shared_lock lock(m.mu);
    for (const auto& [id, rec] : m.records)
      if (!present.count(id)) gone.push_back(id);
  }
  // Records merged away by their source follow their survivor, so they come last.
  std::stable_partition(unlinked.begin(), unlinked.end(), [](const PatientRecord& r) { return r.replaced_by.empty(); });
  const size_t recovered = unlinked.size();
  for (size_t start = 0; start < unlinked.size() || start < gone.size(); start += 1000) {
    std::vector<Job> jobs;
    for (size_t i = start; i < std::min(unlinked.size(), start + 1000); ++i)
      jobs.push_back({.fn = [&m, rec = &unlinked[i]](Batch& b) -> StatusOr<std::string> {
        m.Relink(b, *rec);
        return std::string();
      }});
    for (size_t i = start; i < std::min(gone.size(), start + 1000); ++i)
      jobs.push_back({.fn = [&m, id = gone[i]](Batch& b) -> StatusOr<std::string> {
        m.Forget(b, id);
        return std::string();
      }});
    std::vector<Job*> ptrs;
    for (auto& j : jobs) ptrs.push_back(&j);
    RETURN_IF_ERROR(m.ProcessBatch(ptrs));
    for (auto& j : jobs) RETURN_IF_ERROR(j.result.status());
  }
  log::Info("empi: {} Patient records indexed ({} unreadable), {} Persons; linked {} records without a Person, forgot {} deleted",
            indexed, unreadable, persons, recovered, gone.size());
  std::lock_guard lock(m.q_mu);
  m.running = true;
  m.stopping = false;
  m.linker = std::thread([&m] { m.LinkerLoop(); });
  return Status::Ok();
}

void EmpiService::OnWritten(const store::ResourceVersion& v) { OnWritten(v, impl_->options.wait_for_person_write); }

void EmpiService::OnWritten(const store::ResourceVersion& v, bool wait_for_person_write) {
  if (v.type != "Patient") return;
  Impl& m = *impl_;
  StatusOr<std::string> done = std::string();
  if (v.deleted) {
    index_->Remove(v.id);
    done = m.Submit(
        [&m, id = v.id](Batch& b) -> StatusOr<std::string> {
          m.Forget(b, id);
          return std::string();
        },
        wait_for_person_write);
  } else {
    auto r = RecordFromPatientJson(v.json);
    if (!r.ok()) return;
    if (r->replaced_by.empty()) {
      index_->Upsert(*r);
    } else {
      index_->Remove(r->id);  // merged away by its source: no longer a matching candidate
    }
    done = m.Submit(
        [&m, rec = std::move(*r)](Batch& b) -> StatusOr<std::string> {
          m.Relink(b, rec);
          return std::string();
        },
        wait_for_person_write);
  }
  if (!done.ok()) log::Warn("empi: Patient/{} not linked now ({}); it is linked at the next start", v.id, done.status().message());
}

Status EmpiService::Flush() {
  // A job of its own waits for durability; the linker runs batches in order.
  return impl_->Submit([](Batch&) -> StatusOr<std::string> { return std::string(); }, true).status();
}

void EmpiService::OnWrittenBatch(const std::vector<store::ResourceVersion>& written) {
  Impl& m = *impl_;
  std::vector<std::function<StatusOr<std::string>(Batch&)>> jobs;
  for (const auto& v : written) {
    if (v.type != "Patient") continue;
    if (v.deleted) {
      index_->Remove(v.id);
      jobs.push_back([&m, id = v.id](Batch& b) -> StatusOr<std::string> {
        m.Forget(b, id);
        return std::string();
      });
      continue;
    }
    auto r = RecordFromPatientJson(v.json);
    if (!r.ok()) continue;
    if (r->replaced_by.empty()) {
      index_->Upsert(*r);
    } else {
      index_->Remove(r->id);
    }
    jobs.push_back([&m, rec = std::move(*r)](Batch& b) -> StatusOr<std::string> {
      m.Relink(b, rec);
      return std::string();
    });
  }
  if (jobs.empty()) return;
  const size_t n = jobs.size();
  if (Status st = m.SubmitAll(std::move(jobs), m.options.wait_for_person_write); !st.ok())
    log::Warn("empi: {} imported Patients not linked now ({}); they are linked at the next start", n, st.message());
}

const PersonDirectory& EmpiService::directory() const { return *impl_; }

std::optional<PersonState> EmpiService::Person(std::string_view person_id) const {
  std::shared_lock lock(impl_->mu);
  auto it = impl_->persons.find(std::string(person_id));
  if (it == impl_->persons.end()) return std::nullopt;
  return it->second;
}

}  // namespace rhip::mpi
