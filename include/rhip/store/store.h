// Store: where rhip keeps resources, their versions and their search index.
//
// One interface, several backends: SQLite (embedded default, store/sqlite/) and
// PostgreSQL (scale-out; later). Nothing outside src/store/<backend>/ sees the
// backend's API. Resources are JSON documents with every version kept; the
// current version of each has extracted IndexRows that SearchQuery runs on.
//
// Thread-safety: a Store is safe to call from many threads at once. Reads run
// concurrently; writes are serialized and grouped: Write() hands a function to
// the store's writer, which runs several callers' functions in one database
// transaction (each inside its own savepoint, so one failure rolls back only its
// own changes) and returns to each caller only after the group is durable.
//
// Durability: when Write() returns OK the change survives a crash of the
// process. (SQLite: WAL with synchronous=NORMAL; see docs/STORAGE.md for power loss.)
//
// Example:
//   ASSIGN_OR_RETURN(auto store, OpenStore({.url = "sqlite:data/rhip.db"}));
//   RETURN_IF_ERROR(store->Write([&](WriteTransaction& tx) -> Status {
//     ASSIGN_OR_RETURN(auto cur, tx.Current("Patient", "p1"));
//     return tx.Put({.type = "Patient", .id = "p1", .version = cur ? cur->version + 1 : 1, ...});
//   }));
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rhip/core/status.h"
#include "rhip/store/store_key.h"
#include "rhip/core/time.h"
#include "rhip/store/index_rows.h"
#include "rhip/store/search_query.h"

namespace rhip::store {

// One stored version of a resource.
struct ResourceVersion {
  std::string type;
  std::string id;
  int64_t version = 0;       // 1, 2, 3 ... per resource
  Micros last_updated = 0;
  bool deleted = false;      // a delete is a version too (json empty)
  std::string method;        // "POST", "PUT" or "DELETE": how this version was made (history)
  std::string json;          // the full resource incl. meta.versionId/lastUpdated
  // The patients whose compartment holds it, read from the store's index with the resource:
  // set by Store::Read (the current version), unset otherwise (older versions, history,
  // searches, reads inside a write). Saves the access guard parsing the JSON to find them.
  std::optional<std::vector<std::string>> compartment{};
};

// What the writer needs to know of a resource's current state.
struct CurrentState {
  int64_t version = 0;
  bool deleted = false;
  Micros last_updated = 0;
};

// A new version to write. The caller has already set meta.versionId and
// meta.lastUpdated inside `json` to `version` and `last_updated`.
struct PutRequest {
  std::string type;
  std::string id;
  int64_t version = 1;
  Micros last_updated = 0;
  std::string method;  // "POST" or "PUT"
  std::string json;
  IndexRows index;
  // Optional: Store::EncodeIndex(type, index), computed before the write on the
  // caller's thread, so that the store's single writer does not (bulk import).
  // Empty: the store encodes `index` itself.
  std::string encoded_index;
};

struct DeleteRequest {
  std::string type;
  std::string id;
  int64_t version = 0;  // the version number of the delete marker
  Micros last_updated = 0;
};

struct SearchPage {
  std::vector<ResourceVersion> resources;  // current versions, in the requested order
  std::optional<int64_t> total;            // when asked for
  bool has_more = false;                   // another page exists after this one
  int64_t snapshot_seq = 0;                // the bound this page used; pass it on for the next page
};

struct HistoryQuery {
  std::string type;  // empty = whole system
  std::string id;    // empty = the whole type
  std::optional<Micros> since;  // _since: versions written at or after
  std::optional<Micros> at;     // _at: not supported yet
  int count = 50;
  int64_t offset = 0;
  int64_t snapshot_seq = 0;     // same paging bound as SearchQuery
};

struct HistoryPage {
  std::vector<ResourceVersion> versions;  // newest first
  std::optional<int64_t> total;
  bool has_more = false;
  int64_t snapshot_seq = 0;
};

// An inbound interface message (HL7 v2 over MLLP) and what became of it: kept
// durably before it is acknowledged, so a re-sent message (same sender and
// control id) gets the same answer and changes nothing twice; a failed one is
// a dead letter that can be processed again once its cause is fixed.
struct InboundMessage {
  std::string sender;      // MSH-4, the institution
  std::string control_id;  // MSH-10
  std::string type;        // "ADT^A04"
  Micros received = 0;
  std::string raw;         // the bytes as received (any character set)
  std::string status;      // "processed" or "failed"
  std::string ack;         // the acknowledgement that was sent
  std::string error;       // why processing failed
  int attempts = 1;
};

// EMPI stewardship records (issue 5). A PersonChange is one line of the trail
// of every change to an EMPI person (the FHIR Person resource keeps the
// versions; the trail says who made each one and why). A MatchReview is a pair
// of Patient records a steward looks at: open while undecided, then the
// steward's decision, which later automatic matching honours.
struct PersonChange {
  int64_t seq = 0;              // assigned by the store, increasing
  std::string person_id;
  int64_t person_version = 0;   // the Person version this change wrote
  Micros at = 0;
  std::string action;           // "new", "auto-link", "link", "unlink", "merge", "unmerge", "source-merge", "remove", ...
  std::string actor;            // "rhip-empi" for automatic changes, else the steward
  std::string reason;
  std::string before;           // JSON: the person's links before the change ("[]" for a new person)
  std::string after;            // JSON: the links after
};

struct MatchReview {
  int64_t id = 0;               // 0 on first write: the store assigns one
  Micros created = 0;
  std::string record_a;         // the Patient record being linked
  std::string record_b;         // the stored record it resembles
  double weight = 0;            // Fellegi-Sunter log2 weight when queued
  std::string detail;           // JSON: the field-by-field explanation and any data-quality flags
  std::string status;           // "open", "link" or "no-link"
  Micros decided = 0;
  std::string steward;
  std::string reason;
};

// The view of the store inside one Write(): reads see the transaction's own
// earlier writes. Not thread-safe; valid only during the Write() callback.
class WriteTransaction {
 public:
  virtual ~WriteTransaction() = default;
  // std::nullopt when the resource never existed.
  virtual StatusOr<std::optional<CurrentState>> Current(std::string_view type,
                                                        std::string_view id) = 0;
  virtual StatusOr<ResourceVersion> Read(std::string_view type, std::string_view id) = 0;
  virtual Status Put(const PutRequest& put) = 0;
  virtual Status Delete(const DeleteRequest& del) = 0;
  // Ids of current (not deleted) resources matching; for conditional create/update/delete.
  virtual StatusOr<std::vector<std::string>> SearchIds(const SearchQuery& query, int limit) = 0;
  // Records an inbound message, replacing any earlier record of the same sender and control id.
  virtual Status PutMessage(const InboundMessage& message) = 0;
  // Records a message received for the first time. When its sender and control id are
  // already recorded it writes nothing and returns that record's ACK: a re-sent message,
  // found by the unique key the insert checks anyway (no read before the write, and two
  // copies arriving at once on two connections get one record).
  virtual StatusOr<std::optional<std::string>> AddMessage(const InboundMessage& message) = 0;
  // Sets the status, error and attempts of the recorded message of this sender and control
  // id, keeping its raw bytes and ACK (kNotFound when there is none): its holder need not
  // keep the raw bytes to record an outcome.
  virtual Status SetMessageStatus(const InboundMessage& message) = 0;
  // Appends one line to the EMPI's trail of person changes.
  virtual Status AppendPersonChange(const PersonChange& change) = 0;
  // Inserts a review (id 0; returns the new id) or replaces the one with its id.
  virtual StatusOr<int64_t> PutReview(const MatchReview& review) = 0;
};

using WriteFn = std::function<Status(WriteTransaction&)>;

struct StoreOptions {
  std::string url;  // "sqlite:/path/to/rhip.db", "sqlite::memory:"; later "postgresql://..."
  int read_connections = 8;
  bool create_if_missing = true;
  // Encryption at rest (docs/STORAGE.md): with a key, a new store is created
  // encrypted and an existing one must have been encrypted with this key; without
  // one, an encrypted store is refused. Either mismatch is kFailedPrecondition
  // and leaves the file untouched.
  std::optional<StoreKey> key{};
  // A short name for the store's threads ("inbox" -> rhip-wr-inbox); empty: rhip-writer.
  std::string name{};
  // Resources whose JSON has at least this many bytes are stored compressed (zstd),
  // and decompressed by every read; 0: none are. For stores of large records written
  // once and seldom read (the audit log's pages shrink ~20×). A store reads back rows
  // written under any setting.
  size_t compress_from_bytes = 0;
  // One process (one open) at a time: the store keeps its write sequence and callers
  // (the EMPI) keep state in memory, so two writers on one store would hand out the same
  // ids. A second exclusive open of the same store, in this process or another, is
  // kFailedPrecondition naming the file (the lock is an flock on PATH-lock). Off only for
  // read-only checks of a live store (`rhip audit verify`, `audit show`), whose Close then
  // leaves the WAL to its owner.
  bool exclusive = true;
};

class Store {
 public:
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  virtual ~Store() = default;

  // Current version; kNotFound when it never existed, kGone when the current version is a delete.
  virtual StatusOr<ResourceVersion> Read(std::string_view type, std::string_view id) = 0;
  // A specific version; kNotFound when absent. A deleted version returns deleted=true.
  virtual StatusOr<ResourceVersion> ReadVersion(std::string_view type, std::string_view id,
                                                int64_t version) = 0;
  virtual StatusOr<HistoryPage> History(const HistoryQuery& query) = 0;
  virtual StatusOr<SearchPage> Search(const SearchQuery& query) = 0;
  // Current resources in a patient's compartment (for $everything), paged by count/offset.
  virtual StatusOr<SearchPage> Compartment(std::string_view patient_id,
                                           const std::vector<std::string>& types, int count,
                                           int64_t offset) = 0;

  // Runs `fn` exactly once, atomically (all its writes or none), and returns when
  // durable. An error returned by `fn` rolls back its writes and is returned unchanged.
  virtual Status Write(WriteFn fn) = 0;
  // Runs each function exactly once, in order, each atomically on its own (a failing one
  // leaves nothing behind and does not undo the others), in as few commits as the backend
  // allows; returns when all are durable, with each one's result. One commit for many
  // small writes costs far less than one each (the HL7 appliers apply queued messages so).
  virtual std::vector<Status> WriteEach(std::vector<WriteFn> fns) = 0;

  // The record of an inbound message; std::nullopt when it was never received.
  virtual StatusOr<std::optional<InboundMessage>> ReadMessage(std::string_view sender, std::string_view control_id) = 0;
  // Inbound messages with this status ("failed": the dead letters), oldest first.
  virtual StatusOr<std::vector<InboundMessage>> Messages(std::string_view status, int limit) = 0;

  // The trail of changes to one person (every person when `person_id` is empty), oldest first.
  virtual StatusOr<std::vector<PersonChange>> PersonChanges(std::string_view person_id, int limit, int64_t offset) = 0;
  // Reviews with this status (every status when empty), oldest first; and how many there are.
  virtual StatusOr<std::vector<MatchReview>> Reviews(std::string_view status, int limit, int64_t offset) = 0;
  virtual StatusOr<int64_t> CountReviews(std::string_view status) = 0;
  // std::nullopt when no review has this id.
  virtual StatusOr<std::optional<MatchReview>> ReadReview(int64_t id) = 0;

  // Every current (not deleted) resource of a type, in id order, streamed to
  // `fn` (which may stop the scan by returning an error, returned unchanged).
  // For loading indexes and exports: unlike paging a search, cost grows linearly.
  virtual Status Scan(std::string_view type, const std::function<Status(const ResourceVersion&)>& fn) = 0;

  // Number of current (not deleted) resources of a type, for metrics and tests.
  virtual StatusOr<int64_t> Count(std::string_view type) = 0;

  // Flushes and closes; further calls fail with kUnavailable. Idempotent.
  virtual Status Close() = 0;

  // The backend's stored form of a resource's index rows (PutRequest::encoded_index).
  // Thread-safe, no store access; empty when the backend has none.
  virtual std::string EncodeIndex(std::string_view type, const IndexRows& rows) const {
    (void)type;
    (void)rows;
    return {};
  }

 protected:
  Store() = default;
};

// Opens the backend named by options.url, creating and migrating the schema as needed.
StatusOr<std::unique_ptr<Store>> OpenStore(const StoreOptions& options);

}  // namespace rhip::store
