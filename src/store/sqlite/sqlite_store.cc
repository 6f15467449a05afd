#include "store/sqlite/sqlite_store.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include "store/sqlite/mpi_tables.h"
#include "store/sqlite/search_sql.h"
#include "store/sqlite/sqlite_util.h"

namespace rhip::store::sqlite {
namespace {

// Ordered migrations: step i brings user_version from i to i+1.
const char* const kMigrations[] = {
    // 1: resources, versions, search index, compartments.
    R"sql(
CREATE TABLE resource (
  pk INTEGER PRIMARY KEY,
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_updated INTEGER NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  json TEXT,
  first_seq INTEGER NOT NULL,
  UNIQUE (type, id)
);
CREATE INDEX resource_type_updated ON resource (type, last_updated);
CREATE TABLE resource_version (
  seq INTEGER PRIMARY KEY,
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_updated INTEGER NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  method TEXT NOT NULL,
  json TEXT,
  UNIQUE (type, id, version)
);
CREATE INDEX resource_version_type ON resource_version (type, seq);
CREATE TABLE idx_string (param TEXT NOT NULL, norm TEXT NOT NULL, exact TEXT NOT NULL, res INTEGER NOT NULL,
  PRIMARY KEY (param, norm, exact, res)) WITHOUT ROWID;
CREATE INDEX idx_string_res ON idx_string (res, param);
CREATE TABLE idx_token (param TEXT NOT NULL, code TEXT NOT NULL, system TEXT NOT NULL, res INTEGER NOT NULL,
  PRIMARY KEY (param, code, system, res)) WITHOUT ROWID;
CREATE INDEX idx_token_res ON idx_token (res, param);
CREATE TABLE idx_date (param TEXT NOT NULL, low INTEGER NOT NULL, high INTEGER NOT NULL, res INTEGER NOT NULL,
  PRIMARY KEY (param, low, high, res)) WITHOUT ROWID;
CREATE INDEX idx_date_res ON idx_date (res, param);
CREATE TABLE idx_reference (param TEXT NOT NULL, target_id TEXT NOT NULL, target_type TEXT NOT NULL, res INTEGER NOT NULL,
  PRIMARY KEY (param, target_id, target_type, res)) WITHOUT ROWID;
CREATE INDEX idx_reference_res ON idx_reference (res, param);
CREATE TABLE idx_number (param TEXT NOT NULL, value REAL NOT NULL, res INTEGER NOT NULL,
  PRIMARY KEY (param, value, res)) WITHOUT ROWID;
CREATE INDEX idx_number_res ON idx_number (res, param);
CREATE TABLE idx_quantity (param TEXT NOT NULL, value REAL NOT NULL, system TEXT NOT NULL, code TEXT NOT NULL,
  res INTEGER NOT NULL, PRIMARY KEY (param, value, system, code, res)) WITHOUT ROWID;
CREATE INDEX idx_quantity_res ON idx_quantity (res, param);
CREATE TABLE idx_uri (param TEXT NOT NULL, uri TEXT NOT NULL, res INTEGER NOT NULL,
  PRIMARY KEY (param, uri, res)) WITHOUT ROWID;
CREATE INDEX idx_uri_res ON idx_uri (res, param);
CREATE TABLE compartment (patient_id TEXT NOT NULL, res INTEGER NOT NULL, PRIMARY KEY (patient_id, res)) WITHOUT ROWID;
CREATE INDEX compartment_res ON compartment (res);
)sql",
    // 2: inbound interface messages (HL7 v2): raw bytes, outcome, the ACK sent.
    R"sql(
CREATE TABLE inbound_message (
  sender TEXT NOT NULL,
  control_id TEXT NOT NULL,
  type TEXT NOT NULL,
  received INTEGER NOT NULL,
  raw BLOB NOT NULL,
  status TEXT NOT NULL,
  ack BLOB,
  error TEXT,
  attempts INTEGER NOT NULL DEFAULT 1,
  UNIQUE (sender, control_id)
);
CREATE INDEX inbound_message_status ON inbound_message (status, received);
)sql",
    // 3: the EMPI's trail of person changes and its review queue (mpi_tables.cc).
    kMpiTablesMigration,
};
constexpr int kSchemaVersion = static_cast<int>(sizeof(kMigrations) / sizeof(kMigrations[0]));

const char* const kIndexTables[] = {"idx_string", "idx_token",    "idx_date",    "idx_reference",
                                    "idx_number", "idx_quantity", "idx_uri",     "compartment"};

Status Configure(Db& db, bool writer) {
  RETURN_IF_ERROR(db.Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;"
                          "PRAGMA temp_store=MEMORY; PRAGMA cache_size=-65536; PRAGMA mmap_size=1073741824;"));
  if (writer) RETURN_IF_ERROR(db.Exec("PRAGMA wal_autocheckpoint=4000;"));
  return Status::Ok();
}

Status Migrate(Db& db, const std::string& path) {
  ASSIGN_OR_RETURN(Stmt * v, db.Prepare("PRAGMA user_version"));
  Status st;
  int64_t version = v->Step(&st) ? v->Int(0) : 0;
  RETURN_IF_ERROR(st);
  v->Reset();
  if (version > kSchemaVersion) {
    return FailedPrecondition("store " + path + " has schema version " + std::to_string(version) +
                              ", newer than this rhip understands (" + std::to_string(kSchemaVersion) +
                              "): upgrade rhip");
  }
  for (int64_t i = version; i < kSchemaVersion; ++i) {
    RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
    Status m = db.Exec(kMigrations[i]);
    if (m.ok()) m = db.Exec("PRAGMA user_version=" + std::to_string(i + 1));
    if (!m.ok()) {
      db.Exec("ROLLBACK").IgnoreError();
      return m.WithContext("migrating store " + path + " to schema version " + std::to_string(i + 1));
    }
    RETURN_IF_ERROR(db.Exec("COMMIT"));
  }
  return Status::Ok();
}

ResourceVersion RowToVersion(Stmt* s, int first_col) {
  ResourceVersion v;
  v.type = s->Text(first_col);
  v.id = s->Text(first_col + 1);
  v.version = s->Int(first_col + 2);
  v.last_updated = s->Int(first_col + 3);
  v.deleted = s->Int(first_col + 4) != 0;
  v.json = s->Text(first_col + 5);
  return v;
}

std::string Ref(std::string_view type, std::string_view id) {
  return std::string(type) + "/" + std::string(id);
}

// Reads that both the read pool and the write transaction perform.
StatusOr<ResourceVersion> ReadCurrent(Db& db, std::string_view type, std::string_view id) {
  ASSIGN_OR_RETURN(Stmt * s, db.Prepare(
      "SELECT type, id, version, last_updated, deleted, json FROM resource WHERE type = ? AND id = ?"));
  s->BindStatic(1, type);
  s->BindStatic(2, id);
  Status st;
  if (!s->Step(&st)) {
    RETURN_IF_ERROR(st);
    return NotFound("resource " + Ref(type, id) + " is not known");
  }
  ResourceVersion v = RowToVersion(s, 0);
  s->Reset();
  if (v.deleted) return Status(StatusCode::kGone, "resource " + Ref(type, id) + " was deleted");
  return v;
}

// Runs `sql` (ending in "LIMIT ? OFFSET ?") and keeps up to `count` rows;
// `has_more` tells whether another row followed.
template <typename T, typename RowFn>
Status FetchPage(Db& db, const std::string& sql, const std::vector<SqlValue>& params, int count, int64_t offset,
                 std::vector<T>* out, bool* has_more, RowFn row) {
  ASSIGN_OR_RETURN(Stmt * s, db.Prepare(sql));
  int i = 1;
  for (const auto& p : params) s->Bind(i++, p);
  s->Bind(i++, static_cast<int64_t>(count) + 1);
  s->Bind(i++, offset);
  Status st;
  while (s->Step(&st)) {
    if (static_cast<int>(out->size()) == count) {
      *has_more = true;
      break;
    }
    out->push_back(row(s));
  }
  s->Reset();
  return st;
}

StatusOr<int64_t> CountRows(Db& db, const std::string& sql, const std::vector<SqlValue>& params) {
  ASSIGN_OR_RETURN(Stmt * t, db.Prepare(sql));
  int i = 1;
  for (const auto& p : params) t->Bind(i++, p);
  Status st;
  int64_t n = t->Step(&st) ? t->Int(0) : 0;
  t->Reset();
  RETURN_IF_ERROR(st);
  return n;
}

class SqliteStore;

constexpr const char* kMessageSelect =
    "SELECT sender, control_id, type, received, raw, status, ack, error, attempts FROM inbound_message";

InboundMessage RowToMessage(Stmt* s) {
  InboundMessage m;
  m.sender = s->Text(0);
  m.control_id = s->Text(1);
  m.type = s->Text(2);
  m.received = s->Int(3);
  m.raw = s->Blob(4);
  m.status = s->Text(5);
  m.ack = s->Blob(6);
  m.error = s->Text(7);
  m.attempts = static_cast<int>(s->Int(8));
  return m;
}

class Tx : public WriteTransaction {
 public:
  Tx(Db* db, int64_t* seq) : db_(db), seq_(seq) {}

  StatusOr<std::optional<CurrentState>> Current(std::string_view type, std::string_view id) override {
    ASSIGN_OR_RETURN(Stmt * s, db_->Prepare(
        "SELECT version, deleted, last_updated FROM resource WHERE type = ? AND id = ?"));
    s->BindStatic(1, type);
    s->BindStatic(2, id);
    Status st;
    if (!s->Step(&st)) {
      RETURN_IF_ERROR(st);
      return std::optional<CurrentState>();
    }
    CurrentState c{s->Int(0), s->Int(1) != 0, s->Int(2)};
    s->Reset();
    return std::optional<CurrentState>(c);
  }

  StatusOr<ResourceVersion> Read(std::string_view type, std::string_view id) override {
    return ReadCurrent(*db_, type, id);
  }

  Status Put(const PutRequest& put) override {
    ASSIGN_OR_RETURN(auto cur, Current(put.type, put.id));
    const int64_t expected = cur ? cur->version + 1 : 1;
    if (put.version != expected) {
      return Conflict("resource " + Ref(put.type, put.id) + " is at version " +
                      std::to_string(cur ? cur->version : 0) + "; cannot write version " +
                      std::to_string(put.version));
    }
    const int64_t seq = ++*seq_;
    RETURN_IF_ERROR(AppendVersion(put.type, put.id, put.version, put.last_updated, false, put.method,
                                  put.json, seq));
    int64_t pk = 0;
    if (cur) {
      ASSIGN_OR_RETURN(Stmt * u, db_->Prepare(
          "UPDATE resource SET version = ?, last_updated = ?, deleted = 0, json = ? WHERE type = ? AND id = ? "
          "RETURNING pk"));
      u->Bind(1, put.version);
      u->Bind(2, put.last_updated);
      u->BindStatic(3, put.json);
      u->BindStatic(4, put.type);
      u->BindStatic(5, put.id);
      Status st;
      if (u->Step(&st)) pk = u->Int(0);
      RETURN_IF_ERROR(st);
      u->Reset();
      RETURN_IF_ERROR(ClearIndex(pk));
    } else {
      ASSIGN_OR_RETURN(Stmt * ins, db_->Prepare(
          "INSERT INTO resource (type, id, version, last_updated, deleted, json, first_seq) "
          "VALUES (?, ?, ?, ?, 0, ?, ?)"));
      ins->BindStatic(1, put.type);
      ins->BindStatic(2, put.id);
      ins->Bind(3, put.version);
      ins->Bind(4, put.last_updated);
      ins->BindStatic(5, put.json);
      ins->Bind(6, seq);
      RETURN_IF_ERROR(ins->Run());
      pk = sqlite3_last_insert_rowid(db_->raw());
    }
    return WriteIndex(pk, put.type, put.index);
  }

  Status Delete(const DeleteRequest& del) override {
    ASSIGN_OR_RETURN(auto cur, Current(del.type, del.id));
    if (!cur) return NotFound("resource " + Ref(del.type, del.id) + " is not known");
    if (del.version != cur->version + 1) {
      return Conflict("resource " + Ref(del.type, del.id) + " is at version " + std::to_string(cur->version));
    }
    const int64_t seq = ++*seq_;
    RETURN_IF_ERROR(AppendVersion(del.type, del.id, del.version, del.last_updated, true, "DELETE", "", seq));
    ASSIGN_OR_RETURN(Stmt * u, db_->Prepare(
        "UPDATE resource SET version = ?, last_updated = ?, deleted = 1, json = NULL WHERE type = ? AND id = ? "
        "RETURNING pk"));
    u->Bind(1, del.version);
    u->Bind(2, del.last_updated);
    u->BindStatic(3, del.type);
    u->BindStatic(4, del.id);
    Status st;
    int64_t pk = 0;
    if (u->Step(&st)) pk = u->Int(0);
    RETURN_IF_ERROR(st);
    u->Reset();
    return ClearIndex(pk);
  }

  Status PutMessage(const InboundMessage& m) override {
    ASSIGN_OR_RETURN(Stmt * s, db_->Prepare(
        "INSERT INTO inbound_message (sender, control_id, type, received, raw, status, ack, error, attempts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sender, control_id) DO UPDATE SET type = excluded.type, "
        "received = excluded.received, raw = excluded.raw, status = excluded.status, ack = excluded.ack, "
        "error = excluded.error, attempts = excluded.attempts"));
    s->BindStatic(1, m.sender);
    s->BindStatic(2, m.control_id);
    s->BindStatic(3, m.type);
    s->Bind(4, m.received);
    s->BindBlob(5, m.raw);
    s->BindStatic(6, m.status);
    s->BindBlob(7, m.ack);
    s->BindStatic(8, m.error);
    s->Bind(9, static_cast<int64_t>(m.attempts));
    return s->Run();
  }

  Status AppendPersonChange(const PersonChange& change) override { return sqlite::AppendPersonChange(*db_, change); }
  StatusOr<int64_t> PutReview(const MatchReview& review) override { return sqlite::PutReview(*db_, review); }

  StatusOr<std::vector<std::string>> SearchIds(const SearchQuery& query, int limit) override {
    ASSIGN_OR_RETURN(CompiledSql c, CompileSearch(query));
    ASSIGN_OR_RETURN(Stmt * s, db_->Prepare("SELECT r.id FROM resource r WHERE " + c.where + " LIMIT ?"));
    int i = 1;
    for (const auto& p : c.params) s->Bind(i++, p);
    s->Bind(i, static_cast<int64_t>(limit));
    std::vector<std::string> ids;
    Status st;
    while (s->Step(&st)) ids.push_back(s->Text(0));
    RETURN_IF_ERROR(st);
    return ids;
  }

 private:
  Status AppendVersion(const std::string& type, const std::string& id, int64_t version, Micros when,
                       bool deleted, const std::string& method, const std::string& json, int64_t seq) {
    ASSIGN_OR_RETURN(Stmt * s, db_->Prepare(
        "INSERT INTO resource_version (seq, type, id, version, last_updated, deleted, method, json) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
    s->Bind(1, seq);
    s->BindStatic(2, type);
    s->BindStatic(3, id);
    s->Bind(4, version);
    s->Bind(5, when);
    s->Bind(6, static_cast<int64_t>(deleted));
    s->BindStatic(7, method);
    if (deleted) {
      s->BindNull(8);
    } else {
      s->BindStatic(8, json);
    }
    return s->Run();
  }

  Status ClearIndex(int64_t pk) {
    for (const char* t : kIndexTables) {
      ASSIGN_OR_RETURN(Stmt * s, db_->Prepare(std::string("DELETE FROM ") + t + " WHERE res = ?"));
      s->Bind(1, pk);
      RETURN_IF_ERROR(s->Run());
    }
    return Status::Ok();
  }

  // Inserts one row per element of `rows` with a cached statement; `bind` binds
  // columns 2.. (column 1 is the resource pk).
  template <typename Rows, typename Bind>
  Status InsertRows(const char* sql, int64_t pk, const Rows& rows, Bind bind) {
    if (rows.empty()) return Status::Ok();
    ASSIGN_OR_RETURN(Stmt * s, db_->Prepare(sql));
    for (const auto& r : rows) {
      s->Reset();
      s->Bind(1, pk);
      bind(s, r);
      RETURN_IF_ERROR(s->Run());
    }
    return Status::Ok();
  }

  Status WriteIndex(int64_t pk, const std::string& type, const IndexRows& rows) {
    std::string key;
    auto k = [&](const std::string& param) {
      key.assign(type).append(".").append(param);
      return std::string_view(key);
    };
    RETURN_IF_ERROR(InsertRows("INSERT OR IGNORE INTO idx_string (res, param, norm, exact) VALUES (?, ?, ?, ?)", pk,
                               rows.strings, [&](Stmt* s, const StringRow& r) {
                                 s->Bind(2, k(r.param)); s->BindStatic(3, r.normalized); s->BindStatic(4, r.exact);
                               }));
    RETURN_IF_ERROR(InsertRows("INSERT OR IGNORE INTO idx_token (res, param, system, code) VALUES (?, ?, ?, ?)", pk,
                               rows.tokens, [&](Stmt* s, const TokenRow& r) {
                                 s->Bind(2, k(r.param)); s->BindStatic(3, r.system); s->BindStatic(4, r.code);
                               }));
    RETURN_IF_ERROR(InsertRows("INSERT OR IGNORE INTO idx_date (res, param, low, high) VALUES (?, ?, ?, ?)", pk,
                               rows.dates, [&](Stmt* s, const DateRow& r) {
                                 s->Bind(2, k(r.param)); s->Bind(3, r.low); s->Bind(4, r.high);
                               }));
    RETURN_IF_ERROR(InsertRows(
        "INSERT OR IGNORE INTO idx_reference (res, param, target_type, target_id) VALUES (?, ?, ?, ?)", pk,
        rows.references, [&](Stmt* s, const ReferenceRow& r) {
          s->Bind(2, k(r.param)); s->BindStatic(3, r.target_type); s->BindStatic(4, r.target_id);
        }));
    RETURN_IF_ERROR(InsertRows("INSERT OR IGNORE INTO idx_number (res, param, value) VALUES (?, ?, ?)", pk,
                               rows.numbers, [&](Stmt* s, const NumberRow& r) {
                                 s->Bind(2, k(r.param)); s->Bind(3, r.value);
                               }));
    RETURN_IF_ERROR(InsertRows(
        "INSERT OR IGNORE INTO idx_quantity (res, param, value, system, code) VALUES (?, ?, ?, ?, ?)", pk,
        rows.quantities, [&](Stmt* s, const QuantityRow& r) {
          s->Bind(2, k(r.param)); s->Bind(3, r.value); s->BindStatic(4, r.system); s->BindStatic(5, r.code);
        }));
    RETURN_IF_ERROR(InsertRows("INSERT OR IGNORE INTO idx_uri (res, param, uri) VALUES (?, ?, ?)", pk, rows.uris,
                               [&](Stmt* s, const UriRow& r) {
                                 s->Bind(2, k(r.param)); s->BindStatic(3, r.uri);
                               }));
    return InsertRows("INSERT OR IGNORE INTO compartment (res, patient_id) VALUES (?, ?)", pk,
                      rows.compartment_patients, [&](Stmt* s, const std::string& patient) { s->BindStatic(2, patient); });
  }

  Db* db_;
  int64_t* seq_;
};

class SqliteStore : public Store {
 public:
  SqliteStore(std::string path, bool temporary) : path_(std::move(path)), temporary_(temporary) {}
  ~SqliteStore() override { Close().IgnoreError(); }

  Status Init(const StoreOptions& options) {
    ASSIGN_OR_RETURN(writer_db_, Db::Open(path_, options.create_if_missing));
    RETURN_IF_ERROR(Configure(*writer_db_, true));
    RETURN_IF_ERROR(Migrate(*writer_db_, path_));
    ASSIGN_OR_RETURN(Stmt * s, writer_db_->Prepare("SELECT COALESCE(MAX(seq), 0) FROM resource_version"));
    Status st;
    if (s->Step(&st)) seq_ = s->Int(0);
    RETURN_IF_ERROR(st);
    s->Reset();
    committed_seq_ = seq_;
    for (int i = 0; i < std::max(1, options.read_connections); ++i) {
      ASSIGN_OR_RETURN(auto db, Db::Open(path_, false));
      RETURN_IF_ERROR(Configure(*db, false));
      std::lock_guard lock(pool_mu_);
      free_.push_back(db.get());
      readers_.push_back(std::move(db));
    }
    writer_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "rhip-writer");
      WriterLoop();
    });
    return Status::Ok();
  }

  StatusOr<ResourceVersion> Read(std::string_view type, std::string_view id) override {
    ReadConn c(this);
    if (!c) return Unavailable();
    return ReadCurrent(*c, type, id);
  }

  StatusOr<ResourceVersion> ReadVersion(std::string_view type, std::string_view id, int64_t version) override {
    ReadConn c(this);
    if (!c) return Unavailable();
    ASSIGN_OR_RETURN(Stmt * s, c->Prepare(
        "SELECT type, id, version, last_updated, deleted, json, method FROM resource_version "
        "WHERE type = ? AND id = ? AND version = ?"));
    s->BindStatic(1, type);
    s->BindStatic(2, id);
    s->Bind(3, version);
    Status st;
    if (!s->Step(&st)) {
      RETURN_IF_ERROR(st);
      return NotFound("resource " + Ref(type, id) + " has no version " + std::to_string(version));
    }
    ResourceVersion v = RowToVersion(s, 0);
    v.method = s->Text(6);
    s->Reset();
    return v;
  }

  StatusOr<HistoryPage> History(const HistoryQuery& q) override {
    ReadConn c(this);
    if (!c) return Unavailable();
    HistoryPage page;
    page.snapshot_seq = q.snapshot_seq > 0 ? q.snapshot_seq : committed_seq_.load();
    std::string where = "seq <= ?";
    std::vector<SqlValue> params{page.snapshot_seq};
    if (!q.type.empty()) {
      where += " AND type = ?";
      params.emplace_back(q.type);
    }
    if (!q.id.empty()) {
      where += " AND id = ?";
      params.emplace_back(q.id);
    }
    if (q.since) {
      where += " AND last_updated >= ?";
      params.emplace_back(*q.since);
    }
    RETURN_IF_ERROR(FetchPage(*c,
                              "SELECT type, id, version, last_updated, deleted, json, method FROM resource_version "
                              "WHERE " + where + " ORDER BY seq DESC LIMIT ? OFFSET ?",
                              params, q.count, q.offset, &page.versions, &page.has_more, [](Stmt* s) {
                                ResourceVersion v = RowToVersion(s, 0);
                                v.method = s->Text(6);
                                return v;
                              }));
    ASSIGN_OR_RETURN(page.total, CountRows(*c, "SELECT COUNT(*) FROM resource_version WHERE " + where, params));
    return page;
  }

  StatusOr<SearchPage> Search(const SearchQuery& q) override {
    ReadConn c(this);
    if (!c) return Unavailable();
    ASSIGN_OR_RETURN(CompiledSql sql, CompileSearch(q));
    SearchPage page;
    page.snapshot_seq = q.snapshot_seq > 0 ? q.snapshot_seq : committed_seq_.load();
    const std::string where = sql.where + " AND r.first_seq <= ?";
    auto bind_where = [&](Stmt* s) {
      int i = 1;
      for (const auto& p : sql.params) s->Bind(i++, p);
      s->Bind(i++, page.snapshot_seq);
      return i;
    };
    if (q.count > 0) {
      ASSIGN_OR_RETURN(Stmt * s, c->Prepare(
          "SELECT r.type, r.id, r.version, r.last_updated, r.deleted, r.json FROM resource r WHERE " + where +
          " " + sql.order_by + " LIMIT ? OFFSET ?"));
      int i = bind_where(s);
      for (const auto& p : sql.order_params) s->Bind(i++, p);
      s->Bind(i++, static_cast<int64_t>(q.count) + 1);
      s->Bind(i++, q.offset);
      Status st;
      while (s->Step(&st)) {
        if (static_cast<int>(page.resources.size()) == q.count) {
          page.has_more = true;
          break;
        }
        page.resources.push_back(RowToVersion(s, 0));
      }
      RETURN_IF_ERROR(st);
      s->Reset();
    }
    if (q.total != TotalMode::kNone || q.count == 0) {
      ASSIGN_OR_RETURN(Stmt * s, c->Prepare("SELECT COUNT(*) FROM resource r WHERE " + where));
      bind_where(s);
      Status st;
      if (s->Step(&st)) page.total = s->Int(0);
      RETURN_IF_ERROR(st);
      s->Reset();
    }
    return page;
  }

  StatusOr<SearchPage> Compartment(std::string_view patient_id, const std::vector<std::string>& types,
                                   int count, int64_t offset) override {
    ReadConn c(this);
    if (!c) return Unavailable();
    std::string where =
        "r.deleted = 0 AND (r.pk IN (SELECT res FROM compartment WHERE patient_id = ?) OR "
        "(r.type = 'Patient' AND r.id = ?))";
    std::vector<SqlValue> params{std::string(patient_id), std::string(patient_id)};
    if (!types.empty()) {
      where += " AND r.type IN (";
      for (size_t i = 0; i < types.size(); ++i) {
        where += i ? ",?" : "?";
        params.emplace_back(types[i]);
      }
      where += ")";
    }
    SearchPage page;
    RETURN_IF_ERROR(FetchPage(*c,
                              "SELECT r.type, r.id, r.version, r.last_updated, r.deleted, r.json FROM resource r "
                              "WHERE " + where + " ORDER BY (r.type <> 'Patient'), r.pk LIMIT ? OFFSET ?",
                              params, count, offset, &page.resources, &page.has_more,
                              [](Stmt* s) { return RowToVersion(s, 0); }));
    ASSIGN_OR_RETURN(page.total, CountRows(*c, "SELECT COUNT(*) FROM resource r WHERE " + where, params));
    return page;
  }

  Status Write(WriteFn fn) override {
    Pending p;
    p.fn = &fn;
    {
      std::unique_lock lock(mu_);
      if (closed_) return Unavailable();
      queue_.push_back(&p);
      work_cv_.notify_one();
      done_cv_.wait(lock, [&] { return p.done; });
    }
    return p.result;
  }

  StatusOr<std::optional<InboundMessage>> ReadMessage(std::string_view sender, std::string_view control_id) override {
    ReadConn c(this);
    if (!c) return Unavailable();
    ASSIGN_OR_RETURN(Stmt * s, c->Prepare(kMessageSelect + std::string(" WHERE sender = ? AND control_id = ?")));
    s->BindStatic(1, sender);
    s->BindStatic(2, control_id);
    Status st;
    if (!s->Step(&st)) {
      RETURN_IF_ERROR(st);
      return std::optional<InboundMessage>();
    }
    InboundMessage m = RowToMessage(s);
    s->Reset();
    return std::optional<InboundMessage>(std::move(m));
  }

  StatusOr<std::vector<InboundMessage>> Messages(std::string_view status, int limit) override {
    ReadConn c(this);
    if (!c) return Unavailable();
    ASSIGN_OR_RETURN(Stmt * s, c->Prepare(kMessageSelect + std::string(" WHERE status = ? ORDER BY received, rowid LIMIT ?")));
    s->BindStatic(1, status);
    s->Bind(2, static_cast<int64_t>(limit));
    std::vector<InboundMessage> out;
    Status st;
    while (s->Step(&st)) out.push_back(RowToMessage(s));
    RETURN_IF_ERROR(st);
    return out;
  }

  StatusOr<std::vector<PersonChange>> PersonChanges(std::string_view person_id, int limit, int64_t offset) override {
    ReadConn c(this);
    if (!c) return Unavailable();
    return sqlite::PersonChanges(*c, person_id, limit, offset);
  }
  StatusOr<std::vector<MatchReview>> Reviews(std::string_view status, int limit, int64_t offset) override {
    ReadConn c(this);
    if (!c) return Unavailable();
    return sqlite::Reviews(*c, status, limit, offset);
  }
  StatusOr<int64_t> CountReviews(std::string_view status) override {
    ReadConn c(this);
    if (!c) return Unavailable();
    return sqlite::CountReviews(*c, status);
  }
  StatusOr<std::optional<MatchReview>> ReadReview(int64_t id) override {
    ReadConn c(this);
    if (!c) return Unavailable();
    return sqlite::ReadReview(*c, id);
  }

  Status Scan(std::string_view type, const std::function<Status(const ResourceVersion&)>& fn) override {
    ReadConn c(this);
    if (!c) return Unavailable();
    // A statement of its own (not the connection's cache): `fn` may read through the same store.
    sqlite3_stmt* raw = nullptr;
    const char* sql = "SELECT type, id, version, last_updated, deleted, json FROM resource WHERE type = ? AND deleted = 0 ORDER BY pk";
    if (sqlite3_prepare_v2(c->raw(), sql, -1, &raw, nullptr) != SQLITE_OK)
      return Status(StatusCode::kInternal, std::string("store: ") + sqlite3_errmsg(c->raw()));
    Stmt s(c->raw(), raw);
    s.BindStatic(1, type);
    Status st;
    while (s.Step(&st)) RETURN_IF_ERROR(fn(RowToVersion(&s, 0)));
    return st;
  }

  StatusOr<int64_t> Count(std::string_view type) override {
    ReadConn c(this);
    if (!c) return Unavailable();
    ASSIGN_OR_RETURN(Stmt * s, c->Prepare("SELECT COUNT(*) FROM resource WHERE type = ? AND deleted = 0"));
    s->BindStatic(1, type);
    Status st;
    int64_t n = s->Step(&st) ? s->Int(0) : 0;
    RETURN_IF_ERROR(st);
    s->Reset();
    return n;
  }

  Status Close() override {
    {
      std::lock_guard lock(mu_);
      if (closed_) return Status::Ok();
      closed_ = true;
      work_cv_.notify_all();
    }
    if (writer_.joinable()) writer_.join();
    {
      // Wait until no reader holds a connection.
      std::unique_lock lock(pool_mu_);
      pool_cv_.wait(lock, [&] { return in_use_ == 0; });
      free_.clear();
      readers_.clear();
      pool_cv_.notify_all();
    }
    Status st;
    if (writer_db_) {
      st = writer_db_->Exec("PRAGMA wal_checkpoint(TRUNCATE);");
      writer_db_.reset();
    }
    if (temporary_) {
      std::error_code ec;
      for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix, ec);
    }
    return st;
  }

 private:
  struct Pending {
    WriteFn* fn = nullptr;
    Status result;
    bool done = false;
  };

  static Status Unavailable() { return Status(StatusCode::kUnavailable, "store is closed"); }

  // A read connection borrowed from the pool for one call.
  class ReadConn {
   public:
    explicit ReadConn(SqliteStore* s) : s_(s) {
      std::unique_lock lock(s_->pool_mu_);
      s_->pool_cv_.wait(lock, [&] { return s_->readers_.empty() || !s_->free_.empty(); });
      if (s_->readers_.empty()) return;
      db_ = s_->free_.back();
      s_->free_.pop_back();
      ++s_->in_use_;
    }
    ~ReadConn() {
      if (!db_) return;
      std::lock_guard lock(s_->pool_mu_);
      s_->free_.push_back(db_);
      --s_->in_use_;
      s_->pool_cv_.notify_all();
    }
    explicit operator bool() const { return db_ != nullptr; }
    Db& operator*() { return *db_; }
    Db* operator->() { return db_; }

   private:
    SqliteStore* s_;
    Db* db_ = nullptr;
  };

  void WriterLoop() {
    constexpr size_t kMaxGroup = 256;
    for (;;) {
      std::vector<Pending*> group;
      {
        std::unique_lock lock(mu_);
        work_cv_.wait(lock, [&] { return closed_ || !queue_.empty(); });
        if (queue_.empty() && closed_) return;
        while (!queue_.empty() && group.size() < kMaxGroup) {
          group.push_back(queue_.front());
          queue_.pop_front();
        }
      }
      RunGroup(group);
      {
        std::lock_guard lock(mu_);
        for (Pending* p : group) p->done = true;
        done_cv_.notify_all();
      }
    }
  }

  void RunGroup(const std::vector<Pending*>& group) {
    Db& db = *writer_db_;
    const int64_t seq_before = seq_;
    Status begin = db.Exec("BEGIN IMMEDIATE");
    if (!begin.ok()) {
      for (Pending* p : group) p->result = begin;
      return;
    }
    Tx tx(&db, &seq_);
    for (Pending* p : group) {
      const int64_t seq_at_start = seq_;
      Status st = db.Exec("SAVEPOINT w");
      if (st.ok()) st = (*p->fn)(tx);
      if (st.ok()) {
        st = db.Exec("RELEASE w");
      } else {
        db.Exec("ROLLBACK TO w; RELEASE w;").IgnoreError();
        seq_ = seq_at_start;
      }
      p->result = st;
    }
    Status commit = db.Exec("COMMIT");
    if (!commit.ok()) {
      db.Exec("ROLLBACK").IgnoreError();
      seq_ = seq_before;
      for (Pending* p : group)
        if (p->result.ok()) p->result = commit;
      return;
    }
    committed_seq_ = seq_;
  }

  const std::string path_;
  const bool temporary_;
  std::unique_ptr<Db> writer_db_;   // used only by the writer thread after Init
  int64_t seq_ = 0;                 // writer thread only
  std::atomic<int64_t> committed_seq_{0};
  std::thread writer_;

  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<Pending*> queue_;  // GUARDED_BY(mu_)
  bool closed_ = false;         // GUARDED_BY(mu_)

  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<Db>> readers_;  // GUARDED_BY(pool_mu_)
  std::vector<Db*> free_;                     // GUARDED_BY(pool_mu_)
  int in_use_ = 0;                            // GUARDED_BY(pool_mu_)
};

}  // namespace

int SchemaVersion() { return kSchemaVersion; }

StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path, const StoreOptions& options) {
  std::string file = path;
  bool temporary = false;
  if (path == ":memory:") {
    static std::atomic<int> counter{0};
    file = (std::filesystem::temp_directory_path() /
            ("rhip-mem-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".db"))
               .string();
    temporary = true;
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(file + suffix, ec);
  }
  auto store = std::make_unique<SqliteStore>(file, temporary);
  RETURN_IF_ERROR(store->Init(options));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace rhip::store::sqlite
