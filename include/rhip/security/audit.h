// The audit log (issue 6): one FHIR R4 AuditEvent for every read, search,
// write, export, login and refusal — who, which role and institution, which
// patients, what, why (break-glass reason), outcome — in an append-only,
// hash-chained log of its own (DATA/audit.db, a Store like any other: the
// SQLite details stay behind the store interface).
//
// Chain: records are numbered 1, 2, 3 … (the AuditEvent id, zero-padded);
// each carries, in the extension `…/audit-previous-hash`, the SHA-256 of the
// previous record's JSON exactly as written (64 zeros for the first). The
// events of one batch are stored together as one page (a FHIR Bundle of type
// collection, ids 1, 2, 3 …), so the store pays one row per batch, not per event. Verify
// recomputes the chain and names the first record that does not fit. After
// each batch the head (last number and hash) is also written to
// DATA/audit.head, so cutting records off the end is detected too — unless
// both files are rewritten together. Against that, anchors: with
// `anchor_path` the writer also appends the head ("SEQ HASH INSTANT") to a
// file of its own (on another disk, an append-only mount, a log shipped off
// the machine) at most every `anchor_interval`, and at a graceful stop; and
// verification prints the head so an operator can keep it anywhere. Verify
// with anchors fails when the chain is shorter than an anchor or its record
// there has another hash.
//
// Off the request path: Record() only queues; one writer thread appends the
// queue in batches (one store transaction per batch) at least every
// `flush_interval`. A crash (SIGKILL, power loss) loses at most what was queued
// in the last interval plus the batch being committed; a full queue makes
// Record() wait (back-pressure) rather than drop an event.
//
// Thread-safety: Record, Flush and ForPatients may be called from many threads.
//
// Example:
//   ASSIGN_OR_RETURN(auto audit, AuditLog::Open({.dir = "data/demo"}));
//   audit->Record({.subtype = "read", .action = "R", .who = "dr-li", .role = "clinician", .patients = {"p1"}});
//   ASSIGN_OR_RETURN(AuditVerification v, VerifyAuditLog("data/demo"));
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rhip/core/status.h"
#include "rhip/core/time.h"
#include "rhip/store/store.h"

namespace rhip::security {

struct AuditEntry {
  Micros recorded = 0;           // 0 = now
  std::string type = "rest";     // "rest" | "login"
  std::string subtype;           // read, vread, search-type, history-instance, create, update, delete, operation, login …
  std::string action = "R";      // C R U D E (FHIR AuditEventAction)
  int outcome = 0;               // 0 success, 4 refused / not found, 8 failed
  std::string outcome_desc;      // the refusal's reason, the error
  std::string who;               // principal subject (or the user name a login tried)
  std::string role, org, person, token_id, remote;
  std::string what;              // "GET /fhir/Observation?code=…" (ID numbers and phones masked)
  int http_status = 0;
  std::vector<std::string> patients;  // Patient ids touched
  std::string break_glass_reason;     // non-empty: flagged for review
};

struct AuditOptions {
  std::string dir;  // the data folder: DATA/audit.db, DATA/audit.head
  std::chrono::milliseconds flush_interval{200};
  size_t max_batch = 2000;
  size_t max_queue = 200000;
  std::string anchor_path;  // empty: no anchor file
  std::chrono::milliseconds anchor_interval{std::chrono::seconds(60)};
  std::optional<store::StoreKey> store_key{};  // encrypts DATA/audit.db (docs/STORAGE.md); none: plain
  // The page index's bucket: records 1 … N-1 are bucket 0, N … 2N-1 bucket 1, and so on
  // (audit.cc). Fixed for the life of a log: records indexed under another size are not
  // found by ForPatients. Changed only by tests, to cross buckets with a few records.
  int64_t index_bucket_events = 32768;
};

class AuditLog {
 public:
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;
  ~AuditLog();  // flushes what is queued

  static StatusOr<std::unique_ptr<AuditLog>> Open(AuditOptions options);

  void Record(AuditEntry entry);
  // Returns once everything recorded before the call is durable.
  Status Flush();
  // The newest AuditEvents naming any of the patients (a resident's access log), newest first.
  StatusOr<std::vector<std::string>> ForPatients(const std::vector<std::string>& patient_ids, int count);
  // The newest AuditEvents (JSON), newest first.
  StatusOr<std::vector<std::string>> Newest(int count);
  int64_t written() const;

 private:
  struct Impl;
  explicit AuditLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct AuditVerification {
  bool ok = true;
  int64_t records = 0;
  int64_t first_broken = 0;  // the sequence number of the first record that does not fit (0 = none)
  std::string problem;       // what is wrong there
  // The chain's head as recomputed (the last record and its SHA-256), whether or not it is intact.
  int64_t head_seq = 0;
  std::string head_hash;
  int anchors_checked = 0;
};

// A head recorded elsewhere: record `seq` had SHA-256 `hash`.
struct AuditAnchor {
  int64_t seq = 0;
  std::string hash;
  std::string source;  // where it came from, for messages ("anchors.log line 3")
};

// Anchors from `spec`: an anchor file (lines "SEQ HASH [INSTANT]", as the
// server writes them) or one anchor typed as "SEQ:HASH". kInvalidArgument /
// kNotFound saying what is wrong.
StatusOr<std::vector<AuditAnchor>> ParseAuditAnchors(const std::string& spec);

// Recomputes the chain of DATA/audit.db (and checks DATA/audit.head and every anchor).
// `store_key`: the data folder's store key when its stores are encrypted.
StatusOr<AuditVerification> VerifyAuditLog(const std::string& dir, const std::vector<AuditAnchor>& anchors = {},
                                           const std::optional<store::StoreKey>& store_key = std::nullopt);

// Reads a data folder's audit log without writing to it (also while a server writes it):
// the newest `count` AuditEvents (JSON), newest first; with `patient_ids`, those naming
// any of them (what AuditLog::ForPatients returns). For `rhip audit show`.
StatusOr<std::vector<std::string>> ReadAuditEvents(const std::string& dir, const std::vector<std::string>& patient_ids,
                                                   int count, const std::optional<store::StoreKey>& store_key = std::nullopt);

// The SHA-256 of `data` in lower-case hex.
std::string Sha256Hex(std::string_view data);

}  // namespace rhip::security
