#include "rhip/ingest/hl7_processor.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include "rhip/core/log.h"
#include "rhip/core/time.h"
#include "rhip/fhir/json.h"
#include "rhip/fhir/validator.h"
#include "rhip/hl7/message.h"
#include "rhip/hl7/to_fhir.h"

namespace rhip::ingest {
namespace {

// "YYYYMMDDHHMMSS" in the region's time (UTC+8), for MSH-7 of the ACK.
std::string Hl7Now() {
  const Micros local = NowMicros() + 8LL * 3600 * kMicrosPerSecond;
  const int64_t secs = local / kMicrosPerSecond;
  int y;
  unsigned m, d;
  CivilFromDays(secs / 86400, &y, &m, &d);
  const int64_t s = secs % 86400;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d%02u%02u%02d%02d%02d", y % 10000, m % 100, d % 100, static_cast<int>(s / 3600),
                static_cast<int>(s / 60 % 60), static_cast<int>(s % 60));
  return buf;
}

// The first issue of an OperationOutcome, for the sender.
std::string OutcomeText(const std::string& body) {
  auto doc = fhir::ParseJson(body);
  if (!doc.ok() || !doc->HasMember("issue") || !(*doc)["issue"].IsArray() || (*doc)["issue"].Empty())
    return "the platform refused the message";
  const auto& issue = (*doc)["issue"][0];
  std::string text(fhir::StringMember(issue, "diagnostics"));
  if (const auto* expr = fhir::Member(issue, "expression"); expr && expr->IsArray() && !expr->Empty() && (*expr)[0].IsString())
    text += " (at " + std::string((*expr)[0].GetString()) + ")";
  return text;
}

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

// A message checked and mapped, ready to apply.
struct Prepared {
  std::string bundle;
  std::string patient_key;  // sender + MRN: messages about one patient are applied in order
};

// Parse, map and validate: everything that can be said about a message before it is stored.
std::optional<Prepared> Prepare(std::string_view raw, hl7::Hl7Error* error) {
  auto message = hl7::Parse(raw, error);
  if (!message) return std::nullopt;
  auto mapped = hl7::MapToFhir(*message, error);
  if (!mapped) return std::nullopt;
  const auto& entries = mapped->doc["entry"];
  for (rapidjson::SizeType i = 0; i < entries.Size(); ++i) {
    auto issues = fhir::ValidateResource(entries[i]["resource"]);
    for (const auto& issue : issues) {
      if (issue.severity != "error" && issue.severity != "fatal") continue;
      error->code = hl7::ErrorCode::kDataType;
      error->text = "the " + mapped->types[i] + " made of this message is not valid FHIR: " + issue.diagnostics +
                    (issue.expression.empty() ? "" : " (at " + issue.expression + ")");
      return std::nullopt;
    }
  }
  Prepared p;
  p.bundle = std::move(mapped->bundle);
  p.patient_key = message->sender + "|" + message->Get("PID", 3, 1);
  return p;
}

struct Item {
  store::InboundMessage record;
  Prepared prepared;
};

}  // namespace

struct Hl7Processor::Impl {
  store::Store* store;  // the FHIR store: effects, and the "applied" mark committed with them
  store::Store* inbox;  // the receive log: raw messages, their ACKs, queued/processed/failed
  fhir::FhirService* fhir;
  Hl7ProcessorOptions options;
  std::atomic<uint64_t> counter{0};

  mutable std::mutex mu;
  // One per partition: a message wakes only its partition's applier.
  std::unique_ptr<std::condition_variable[]> work_cv;
  std::condition_variable space_cv, idle_cv;
  std::vector<std::deque<Item>> partitions;
  int64_t queued = 0;  // in partitions or being applied
  int64_t processed = 0, failed = 0;
  bool stopping = false;
  std::vector<std::thread> workers;
  std::atomic<Micros> last_received{0};  // when a receiver last accepted a message
  // Applied messages whose receive-log record still says queued (FlushMarks).
  std::mutex marks_mu;
  std::vector<store::InboundMessage> marks;  // GUARDED_BY(marks_mu)
  std::chrono::steady_clock::time_point marks_flushed = std::chrono::steady_clock::now();

  std::string NextControlId() {
    char buf[48];
    std::snprintf(buf, sizeof buf, "RHIP%llx%06llx", static_cast<unsigned long long>(NowMicros() / kMicrosPerSecond),
                  static_cast<unsigned long long>(counter.fetch_add(1) % 0xFFFFFF));
    return buf;
  }

  // Records a dead letter; returns false when even that could not be stored.
  bool DeadLetter(store::InboundMessage record, const std::string& reason) {
    record.status = "failed";
    record.error = reason;
    // The message is in the receive log already (accepted, then refused when applied):
    // only its outcome changes, so the queued copy need not carry the raw bytes.
    Status st = inbox->Write([&](store::WriteTransaction& tx) { return tx.SetMessageStatus(record); });
    if (!st.ok()) {
      log::Error("hl7 sender={} control={} dead letter not recorded: {}", record.sender, record.control_id, st.ToString());
      return false;
    }
    std::lock_guard lock(mu);
    ++failed;
    return true;
  }

  void Enqueue(Item item) {
    // With a receive log of its own, the raw bytes stay there: the queue holds the Bundle
    // (a full queue of ORU^R01 messages is smaller, and has fewer pages to fault in).
    if (inbox != store) std::string().swap(item.record.raw);
    const size_t p = Fnv1a(item.prepared.patient_key) % partitions.size();
    std::lock_guard lock(mu);
    partitions[p].push_back(std::move(item));
    work_cv[p].notify_one();
  }

  enum class Outcome { kProcessed, kFailed, kRetry };

  // The request that applies one accepted message: its transaction, and its "processed"
  // mark committed with the effects (in the FHIR store, without the raw bytes), so that
  // after a crash a message marked there is not applied twice. `record` must outlive it.
  fhir::RestRequest ApplyRequest(const store::InboundMessage& record, const std::string& bundle) {
    fhir::RestRequest req;
    req.method = "POST";
    req.body = bundle;
    req.base_url = "urn:rhip:hl7";
    req.in_transaction = [this, &record](store::WriteTransaction& tx) {
      store::InboundMessage done = record;
      done.status = "processed";
      done.error.clear();
      if (inbox != store) done.raw.clear();
      return tx.PutMessage(done);
    };
    return req;
  }

  Outcome Applied(const store::InboundMessage& record, const fhir::RestResponse& resp, std::string* error) {
    if (resp.status == 200) {
      if (inbox != store) {
        std::lock_guard lock(marks_mu);
        marks.push_back(record);
      }
      return Outcome::kProcessed;
    }
    *error = OutcomeText(resp.body);
    return resp.status >= 500 ? Outcome::kRetry : Outcome::kFailed;
  }

  // Applies one accepted message.
  Outcome Apply(const store::InboundMessage& record, const std::string& bundle, std::string* error) {
    return Applied(record, fhir->Handle(ApplyRequest(record, bundle)), error);
  }

  // Applies several accepted messages, each all-or-nothing on its own, in one store
  // commit (FhirService::HandleTransactions).
  std::vector<Outcome> ApplyAll(const std::vector<Item>& items, std::vector<std::string>* errors) {
    std::vector<fhir::RestRequest> reqs;
    reqs.reserve(items.size());
    for (const Item& item : items) reqs.push_back(ApplyRequest(item.record, item.prepared.bundle));
    std::vector<fhir::RestResponse> resps = fhir->HandleTransactions(reqs);
    std::vector<Outcome> out;
    errors->assign(items.size(), std::string());
    for (size_t i = 0; i < items.size(); ++i) out.push_back(Applied(items[i].record, resps[i], &(*errors)[i]));
    return out;
  }

  // The receive log follows the FHIR store (which already holds the mark), in batches:
  // one receive-log commit per applied message competed with the receivers for that
  // store's writer. After a crash, a message the log still calls queued is found marked
  // in the FHIR store at start and not applied again (Start).
  static constexpr size_t kMarksPerCommit = 512;
  static constexpr size_t kApplyBatch = 32;  // messages applied in one FHIR-store commit
  static constexpr auto kMarksAtMost = std::chrono::milliseconds(200);  // how far the log may lag

  void FlushMarks() {
    std::vector<store::InboundMessage> batch;
    {
      std::lock_guard lock(marks_mu);
      batch.swap(marks);
      marks_flushed = std::chrono::steady_clock::now();
    }
    if (batch.empty()) return;
    Status st = inbox->Write([&](store::WriteTransaction& tx) -> Status {
      for (auto& record : batch) {
        record.status = "processed";
        record.error.clear();
        RETURN_IF_ERROR(tx.SetMessageStatus(record));
      }
      return Status::Ok();
    });
    if (!st.ok())
      log::Warn("hl7 {} messages applied; the receive log was not updated (it is at start): {}", batch.size(), st.ToString());
  }

  // After an applied message: flush when enough are waiting, when they have waited long
  // enough, or when this applier has nothing more to do.
  void MaybeFlushMarks(bool idle) {
    bool due;
    {
      std::lock_guard lock(marks_mu);
      due = !marks.empty() && (idle || marks.size() >= kMarksPerCommit ||
                               std::chrono::steady_clock::now() - marks_flushed >= kMarksAtMost);
    }
    if (due) FlushMarks();
  }

  // Called by the receivers for every message they accept.
  void Received() { last_received.store(NowMicros(), std::memory_order_relaxed); }

  // The applier's rest after a batch while messages keep arriving (options.applier_rest).
  void Rest(size_t p, std::chrono::steady_clock::duration batch_took) {
    if (options.applier_rest <= 0) return;
    if (NowMicros() - last_received.load(std::memory_order_relaxed) > 100 * 1000) return;  // input paused
    std::unique_lock lock(mu);
    if (queued * 2 >= options.max_queued) return;  // the backlog comes first now
    const auto rest = std::chrono::duration_cast<std::chrono::microseconds>(batch_took * options.applier_rest);
    work_cv[p].wait_for(lock, rest, [&] { return stopping; });
  }

  void Worker(size_t p) {
    pthread_setname_np(pthread_self(), "rhip-hl7-apply");
    // Receiving comes first: a lower priority for this thread only (Linux: per thread).
    if (options.applier_nice > 0) setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), options.applier_nice);
    while (true) {
      // Up to kApplyBatch messages in one commit, at most one per patient: a message about
      // a patient already in the batch waits for the next batch, so a retried message is
      // never overtaken by a later one about the same patient.
      std::vector<Item> batch;
      {
        std::unique_lock lock(mu);
        work_cv[p].wait(lock, [&] { return stopping || !partitions[p].empty(); });
        if (stopping) return;
        std::unordered_set<std::string> patients;
        while (!partitions[p].empty() && batch.size() < kApplyBatch &&
               patients.insert(partitions[p].front().prepared.patient_key).second) {
          batch.push_back(std::move(partitions[p].front()));
          partitions[p].pop_front();
        }
      }
      std::vector<std::string> errors;
      const auto batch_start = std::chrono::steady_clock::now();
      std::vector<Outcome> outcomes = ApplyAll(batch, &errors);
      const auto batch_took = std::chrono::steady_clock::now() - batch_start;
      int64_t done_ok = 0;
      for (size_t i = 0; i < batch.size(); ++i) {
        const store::InboundMessage& record = batch[i].record;
        Outcome o = outcomes[i];
        std::string& error = errors[i];
        for (int attempt = 0; o == Outcome::kRetry && attempt < 50; ++attempt) {
          log::Warn("hl7 sender={} control={} not applied yet ({}); retrying", record.sender, record.control_id, error);
          {
            std::unique_lock lock(mu);
            if (work_cv[p].wait_for(lock, std::chrono::milliseconds(200 * (attempt + 1)), [&] { return stopping; })) return;
          }
          o = Apply(record, batch[i].prepared.bundle, &error);
        }
        if (o == Outcome::kProcessed) {
          ++done_ok;
        } else if (o == Outcome::kFailed) {
          log::Warn("hl7 sender={} control={} type={} could not be applied: {}", record.sender, record.control_id,
                    record.type, error);
          DeadLetter(record, error);
        }  // kRetry after 50 attempts: it stays queued in the store and is tried after a restart
      }
      bool idle;
      {
        std::lock_guard lock(mu);
        processed += done_ok;
        idle = partitions[p].empty();
      }
      if (inbox != store) MaybeFlushMarks(idle);
      {
        std::lock_guard lock(mu);
        queued -= static_cast<int64_t>(batch.size());
      }
      space_cv.notify_all();
      idle_cv.notify_all();
      Rest(p, batch_took);
    }
  }
};

Hl7Processor::Hl7Processor(store::Store* store, fhir::FhirService* fhir, Hl7ProcessorOptions options,
                           store::Store* inbox)
    : impl_(std::make_unique<Impl>()) {
  impl_->store = store;
  impl_->inbox = inbox ? inbox : store;
  impl_->fhir = fhir;
  impl_->options = options;
  impl_->partitions.resize(static_cast<size_t>(std::max(1, options.appliers)));
  impl_->work_cv = std::make_unique<std::condition_variable[]>(impl_->partitions.size());
}

Hl7Processor::~Hl7Processor() { Stop(); }

Status Hl7Processor::Start() {
  Impl& s = *impl_;
  // What a crash (or a stop) left accepted but not applied, in arrival order.
  ASSIGN_OR_RETURN(auto pending, s.inbox->Messages("queued", 100000000));
  int64_t requeued = 0;
  for (auto& record : pending) {
    if (s.inbox != s.store) {  // applied just before the crash: only the receive log is behind
      auto applied = s.store->ReadMessage(record.sender, record.control_id);
      if (applied.ok() && applied->has_value() && (*applied)->status == "processed") {
        std::lock_guard lock(s.marks_mu);
        s.marks.push_back(std::move(record));
        continue;
      }
    }
    hl7::Hl7Error error;
    auto prepared = Prepare(record.raw, &error);
    if (!prepared) {  // accepted once, so this is a mapping change: keep it as a dead letter
      s.DeadLetter(record, error.Describe());
      continue;
    }
    {
      std::lock_guard lock(s.mu);
      ++s.queued;
    }
    s.Enqueue({std::move(record), std::move(*prepared)});
    ++requeued;
  }
  if (s.inbox != s.store) s.FlushMarks();  // the log catches up, in one commit
  if (requeued > 0) log::Info("hl7 {} accepted messages queued again after a restart", requeued);
  for (size_t p = 0; p < s.partitions.size(); ++p) s.workers.emplace_back([&s, p] { s.Worker(p); });
  return Status::Ok();
}

void Hl7Processor::Stop() {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.mu);
    s.stopping = true;
  }
  for (size_t p = 0; p < s.partitions.size(); ++p) s.work_cv[p].notify_all();
  s.space_cv.notify_all();
  for (auto& t : s.workers) t.join();
  s.workers.clear();
  if (s.inbox != s.store) s.FlushMarks();
}

std::string Hl7Processor::Process(std::string_view raw, std::string_view authenticated_sender) {
  Impl& s = *impl_;
  const hl7::Header h = hl7::Identify(raw);
  if (!authenticated_sender.empty() && h.sending_facility != authenticated_sender) {
    // Before the receive log is consulted: neither its ACKs nor its keys belong to this client.
    hl7::Hl7Error e;
    e.code = hl7::ErrorCode::kUnknownKey;
    e.segment = "MSH";
    e.field = 4;
    e.reject = true;
    e.text = "MSH-4 sending facility '" + h.sending_facility + "' is not the institution of the client certificate ('" +
             std::string(authenticated_sender) + "'); send your own institution's messages only";
    log::Warn("hl7 certificate={} sent a message as sender={} control={}: refused", authenticated_sender,
              h.sending_facility, h.control_id);
    return hl7::BuildAck(h, hl7::AckCode::kReject, &e, s.NextControlId(), Hl7Now());
  }
  // A re-sent message (same sender and MSH-10) is found by the receive log's insert, which
  // checks the unique key anyway: no read per message, and it gets the ACK recorded for it.
  const bool keyable = h.ok && !h.sending_facility.empty() && !h.control_id.empty();
  const std::string now = Hl7Now();
  store::InboundMessage record{.sender = h.sending_facility, .control_id = h.control_id, .type = h.type,
                               .received = NowMicros(), .raw = std::string(raw), .status = "queued",
                               .ack = {}, .error = {}, .attempts = 1};
  // Records `record` unless its key is held: std::nullopt when recorded now, else the ACK
  // recorded before (nullopt too when it could not be recorded: *st says why). Only for a
  // keyable message: hl7::Parse refuses one without MSH-4 or MSH-10, so every accepted
  // message is keyable.
  auto add = [&](Status* st) -> std::optional<std::string> {
    std::optional<std::string> earlier;
    *st = s.inbox->Write([&](store::WriteTransaction& tx) -> Status {
      ASSIGN_OR_RETURN(earlier, tx.AddMessage(record));
      if (earlier && earlier->empty()) {  // held without an ACK (an older record): this one replaces it
        earlier.reset();
        return tx.PutMessage(record);
      }
      return Status::Ok();
    });
    return earlier;
  };
  hl7::Hl7Error error;
  auto prepared = Prepare(raw, &error);
  if (!prepared) {
    std::string ack = hl7::BuildAck(h, error.reject ? hl7::AckCode::kReject : hl7::AckCode::kError, &error,
                                    s.NextControlId(), now);
    if (keyable) {
      record.ack = ack;
      record.status = "failed";
      record.error = error.Describe();
      Status st;
      if (auto earlier = add(&st)) return *earlier;  // accepted (or refused) before: the same answer
      if (!st.ok()) {
        log::Error("hl7 sender={} control={} dead letter not recorded: {}", record.sender, record.control_id,
                   st.ToString());
        hl7::Hl7Error internal;
        internal.text = "the platform could not record the message; send it again";
        return hl7::BuildAck(h, hl7::AckCode::kError, &internal, s.NextControlId(), now);
      }
      std::lock_guard lock(s.mu);
      ++s.failed;
    }
    log::Warn("hl7 sender={} control={} type={} refused: {}", record.sender, record.control_id, record.type,
              error.Describe());
    return ack;
  }
  // Bounded queue: a sender faster than the appliers waits here for room.
  {
    std::unique_lock lock(s.mu);
    s.space_cv.wait(lock, [&] { return s.stopping || s.queued < s.options.max_queued; });
    ++s.queued;
  }
  auto unqueue = [&] {
    {
      std::lock_guard lock(s.mu);
      --s.queued;
    }
    s.space_cv.notify_all();
  };
  record.ack = hl7::BuildAck(h, hl7::AckCode::kAccept, nullptr, s.NextControlId(), now);
  Status st;
  if (auto earlier = add(&st)) {
    unqueue();
    return *earlier;
  }
  if (!st.ok()) {
    unqueue();
    hl7::Hl7Error internal;
    internal.text = "the platform could not store the message (" + st.message() + "); send it again";
    log::Error("hl7 sender={} control={} not stored: {}", record.sender, record.control_id, st.ToString());
    return hl7::BuildAck(h, hl7::AckCode::kError, &internal, s.NextControlId(), now);
  }
  std::string ack = record.ack;
  s.Received();
  s.Enqueue({std::move(record), std::move(*prepared)});
  return ack;
}

StatusOr<ReplaySummary> Hl7Processor::Replay(int limit) {
  Impl& s = *impl_;
  ASSIGN_OR_RETURN(auto dead, s.inbox->Messages("failed", limit));
  ReplaySummary sum;
  for (auto& record : dead) {
    ++sum.attempted;
    ++record.attempts;
    hl7::Hl7Error error;
    auto prepared = Prepare(record.raw, &error);
    std::string reason;
    if (prepared) {
      // Applied now: from here on a re-send gets AA.
      store::InboundMessage accepted = record;
      accepted.ack = hl7::BuildAck(hl7::Identify(record.raw), hl7::AckCode::kAccept, nullptr, s.NextControlId(), Hl7Now());
      if (s.Apply(accepted, prepared->bundle, &reason) == Impl::Outcome::kProcessed) {
        ++sum.processed;
        continue;
      }
    } else {
      reason = error.Describe();
    }
    ++sum.failed;
    record.status = "failed";
    record.error = reason;
    RETURN_IF_ERROR(s.inbox->Write([&](store::WriteTransaction& tx) { return tx.PutMessage(record); }));
  }
  if (s.inbox != s.store) s.FlushMarks();
  return sum;
}

Hl7Stats Hl7Processor::Stats() const {
  std::lock_guard lock(impl_->mu);
  return {impl_->queued, impl_->processed, impl_->failed};
}

bool Hl7Processor::WaitIdle(double seconds) {
  std::unique_lock lock(impl_->mu);
  return impl_->idle_cv.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return impl_->queued == 0; });
}

}  // namespace rhip::ingest
