// EmpiService's state and linker, shared by empi_service.cc (linking, load,
// batches) and empi_api.cc (stewardship, $ihe-pix, the JSON API). Private to src/mpi.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "rhip/core/notification.h"

#include "rhip/mpi/empi_service.h"

namespace rhip::mpi {
namespace internal {

using Pair = std::pair<std::string, std::string>;
inline Pair Ordered(const std::string& a, const std::string& b) { return a < b ? Pair{a, b} : Pair{b, a}; }

struct RecordState {
  std::string person;
  std::string valid_id;  // the record's valid ID number (18 characters), or ""
  uint32_t flags = 0;
};

// The changes one batch makes, so that they can be written together and undone
// together if the write fails.
struct Batch {
  Micros now = 0;
  std::map<std::string, std::optional<PersonState>> person_before;  // first touch in this batch
  std::map<std::string, std::optional<RecordState>> record_before;
  struct Why {
    std::string action, actor, reason;
  };
  std::map<std::string, Why> notes;  // person id → why it changed (the trail line)
  std::vector<Pair> no_link_added, open_added, open_removed;
  std::vector<int64_t> decided;
  std::vector<store::MatchReview> reviews;  // to insert or update
};

// Who waits for a set of jobs: the last of them to finish wakes that caller alone
// (a condition variable shared by every caller woke them all at each batch).
struct Waiter {
  explicit Waiter(size_t jobs) : remaining(jobs) {}
  std::atomic<size_t> remaining;
  Notification finished;
};

struct Job {
  std::function<StatusOr<std::string>(Batch&)> fn;
  StatusOr<std::string> result = std::string();
  // Patient writes wait until the decision is made (visible to readers); steward
  // actions until it is durable, since the steward must hear of a failed write.
  bool wait_durable = true;
  Waiter* waiter = nullptr;
  // The linker's last touch of the job: its caller (and the job) may be gone after.
  void Finish() {
    Waiter* w = waiter;
    if (w->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) w->finished.Notify();
  }
};

}  // namespace internal

struct EmpiService::Impl : public PersonDirectory {
  using Batch = internal::Batch;

  store::Store* store = nullptr;
  PatientIndex* index = nullptr;
  EmpiOptions options;

  // The persons. Written only on the linker thread (or by Load before it starts).
  mutable std::shared_mutex mu;
  std::unordered_map<std::string, internal::RecordState> records;  // GUARDED_BY(mu) Patient id → its person
  std::unordered_map<std::string, PersonState> persons;           // GUARDED_BY(mu) incl. merged and emptied ones
  std::set<internal::Pair> no_link;                               // GUARDED_BY(mu) steward: never the same person
  std::set<internal::Pair> open_reviews;                          // GUARDED_BY(mu)
  std::map<internal::Pair, int64_t> review_ids;                   // GUARDED_BY(mu)
  std::set<int64_t> decided_reviews;                              // GUARDED_BY(mu) decided since Load
  int64_t next_seq = 1;                                           // GUARDED_BY(mu)

  // The linker's queue.
  std::mutex q_mu;
  std::condition_variable q_cv;
  std::deque<internal::Job*> queue;  // GUARDED_BY(q_mu)
  bool running = false;              // GUARDED_BY(q_mu)
  bool stopping = false;             // GUARDED_BY(q_mu)
  std::thread linker;

  // PersonDirectory.
  std::optional<std::string> PersonOf(std::string_view patient_id) const override;
  std::vector<std::string> PatientsOf(std::string_view person_id) const override;

  // Mutations (REQUIRES mu held exclusively, inside a batch).
  void Note(Batch& b, const std::string& person, const char* action, const std::string& actor, const std::string& reason);
  PersonState& TouchPerson(Batch& b, const std::string& id);
  void TouchRecord(Batch& b, const std::string& patient);
  void AddLink(Batch& b, const std::string& person, PersonLink link, const std::string& valid_id);
  void RemoveLink(Batch& b, const std::string& patient, const std::string& merged_into_if_empty);
  std::string NewPerson(Batch& b);
  void QueueReview(Batch& b, const PatientRecord& rec, const MatchCandidate& c, uint32_t other_flags, const std::string& why);
  void Relink(Batch& b, const PatientRecord& rec);
  void Forget(Batch& b, const std::string& patient);
  void AddNoLink(Batch& b, const std::string& a, const std::string& b_id, const std::string& actor,
                 const std::string& reason, const std::string& source);

  // Reads (REQUIRES mu held).
  std::string ConflictingId(const std::string& valid_id, const PersonState& p, const std::string& skip) const;
  bool NoLinkWith(const std::string& patient, const PersonState& p) const;
  double Needed(uint32_t flags) const;
  std::string Survivor(std::string_view person_id) const;
  std::string ExplainJson(const MatchCandidate& c, uint32_t flags_a, uint32_t flags_b, const std::string& why) const;

  // Decides every job, calls `decided` (the decisions are visible), then writes them in one transaction.
  [[nodiscard]] Status ProcessBatch(const std::vector<internal::Job*>& jobs, const std::function<void()>& decided = nullptr);
  StatusOr<std::string> Submit(std::function<StatusOr<std::string>(Batch&)> fn, bool wait_durable = true);
  // Queues every function and waits for all of them; the first error, if any.
  Status SubmitAll(std::vector<std::function<StatusOr<std::string>(Batch&)>> fns, bool wait_durable);
  void LinkerLoop();
};

}  // namespace rhip::mpi
