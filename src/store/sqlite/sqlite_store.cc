#include "store/sqlite/sqlite_store.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <cstdio>
#include <algorithm>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include "rhip/core/log.h"
#include "rhip/core/notification.h"
#include "store/sqlite/compression.h"
#include "store/sqlite/crypt_vfs.h"
#include "store/sqlite/index_manifest.h"
#include "store/sqlite/mpi_tables.h"
#include "store/sqlite/search_sql.h"
#include "store/sqlite/sqlite_util.h"

namespace rhip::store::sqlite {
namespace {

Status MigrateToIndexManifests(Db& db);

// Ordered migrations: step i brings user_version from i to i+1 (SQL, then C++
// when the step needs it). Steps are never edited once released: a store at
// any version upgrades through the same path as a fresh one.
struct Migration {
  const char* sql;
  Status (*code)(Db&);
};
const Migration kMigrations[] = {
    // 1: resources, versions, search index, compartments.
    {R"sql(
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
)sql", nullptr},
    // 2: inbound interface messages (HL7 v2): raw bytes, outcome, the ACK sent.
    {R"sql(
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
)sql", nullptr},
    // 3: cheaper writes. Search parameters are integer keys (ParamKey) instead of
    // "Type.code" text; token, reference, uri and compartment rows live only in
    // their value index (found again through the resource's index manifest, not
    // a second (res, param) b-tree); a version row holds its JSON only once it
    // is superseded (the current JSON is on the resource row, written once).
    {R"sql(
ALTER TABLE resource ADD COLUMN cur_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE resource ADD COLUMN manifest BLOB;
UPDATE resource SET cur_seq = (SELECT v.seq FROM resource_version v
  WHERE v.type = resource.type AND v.id = resource.id AND v.version = resource.version);
CREATE TABLE version3 (
  seq INTEGER PRIMARY KEY,
  res INTEGER NOT NULL,
  type TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_updated INTEGER NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  method TEXT NOT NULL,
  json TEXT
);
INSERT INTO version3 SELECT v.seq, r.pk, v.type, v.version, v.last_updated, v.deleted, v.method,
  CASE WHEN v.seq = r.cur_seq THEN NULL ELSE v.json END
  FROM resource_version v JOIN resource r ON r.type = v.type AND r.id = v.id;
DROP TABLE resource_version;
ALTER TABLE version3 RENAME TO resource_version;
CREATE INDEX resource_version_res ON resource_version (res, version);
CREATE INDEX resource_version_type ON resource_version (type, seq);
CREATE TABLE string3 (param INTEGER NOT NULL, norm TEXT NOT NULL, exact TEXT NOT NULL, res INTEGER NOT NULL,
  PRIMARY KEY (param, norm, exact, res)) WITHOUT ROWID;
INSERT OR IGNORE INTO string3 SELECT rhip_param_key(param), norm, exact, res FROM idx_string;
CREATE TABLE token3 (param INTEGER NOT NULL, code TEXT NOT NULL, res INTEGER NOT NULL, system TEXT NOT NULL,
  PRIMARY KEY (param, code, res, system)) WITHOUT ROWID;
INSERT OR IGNORE INTO token3 SELECT rhip_param_key(param), code, res, system FROM idx_token;
CREATE TABLE date3 (param INTEGER NOT NULL, low INTEGER NOT NULL, high INTEGER NOT NULL, res INTEGER NOT NULL,
  PRIMARY KEY (param, low, high, res)) WITHOUT ROWID;
INSERT OR IGNORE INTO date3 SELECT rhip_param_key(param), low, high, res FROM idx_date;
CREATE TABLE reference3 (param INTEGER NOT NULL, target_id TEXT NOT NULL, res INTEGER NOT NULL,
  target_type TEXT NOT NULL, PRIMARY KEY (param, target_id, res, target_type)) WITHOUT ROWID;
INSERT OR IGNORE INTO reference3 SELECT rhip_param_key(param), target_id, res, target_type FROM idx_reference;
CREATE TABLE number3 (param INTEGER NOT NULL, value REAL NOT NULL, res INTEGER NOT NULL,
  PRIMARY KEY (param, value, res)) WITHOUT ROWID;
INSERT OR IGNORE INTO number3 SELECT rhip_param_key(param), value, res FROM idx_number;
CREATE TABLE quantity3 (param INTEGER NOT NULL, value REAL NOT NULL, system TEXT NOT NULL, code TEXT NOT NULL,
  res INTEGER NOT NULL, PRIMARY KEY (param, value, system, code, res)) WITHOUT ROWID;
INSERT OR IGNORE INTO quantity3 SELECT rhip_param_key(param), value, system, code, res FROM idx_quantity;
CREATE TABLE uri3 (param INTEGER NOT NULL, uri TEXT NOT NULL, res INTEGER NOT NULL,
  PRIMARY KEY (param, uri, res)) WITHOUT ROWID;
INSERT OR IGNORE INTO uri3 SELECT rhip_param_key(param), uri, res FROM idx_uri;
)sql", MigrateToIndexManifests},
    // 4: the EMPI's trail of person changes and its review queue (mpi_tables.cc).
    {kMpiTablesMigration, nullptr},
};
constexpr int kSchemaVersion = static_cast<int>(sizeof(kMigrations) / sizeof(kMigrations[0]));

// ---- SQL functions over index manifests (registered on every connection) ----

std::string_view ArgBlob(sqlite3_value* v) {
  const void* p = sqlite3_value_blob(v);
  return p ? std::string_view(static_cast<const char*>(p), static_cast<size_t>(sqlite3_value_bytes(v)))
           : std::string_view();
}

// rhip_sort_key(manifest, table, param, descending): the resource's sort key for
// a parameter — its smallest value ascending, its largest descending (a date's
// low or high end) — or NULL when it has none.
void SqlSortKey(sqlite3_context* ctx, int, sqlite3_value** argv) {
  std::vector<IndexEntry> entries;
  DecodeManifest(ArgBlob(argv[0]), &entries);
  const auto table = static_cast<IndexTable>(sqlite3_value_int(argv[1]));
  const int64_t param = sqlite3_value_int64(argv[2]);
  const bool desc = sqlite3_value_int(argv[3]) != 0;
  const IndexEntry* best = nullptr;
  auto better = [&](const IndexEntry& a, const IndexEntry& b) {  // a before b in the wanted direction
    switch (table) {
      case IndexTable::kDate: return desc ? a.i2 > b.i2 : a.i1 < b.i1;
      case IndexTable::kNumber: case IndexTable::kQuantity: return desc ? a.d > b.d : a.d < b.d;
      default: return desc ? a.s1 > b.s1 : a.s1 < b.s1;
    }
  };
  for (const auto& e : entries)
    if (e.table == table && e.param == param && (!best || better(e, *best))) best = &e;
  if (!best) return sqlite3_result_null(ctx);
  switch (table) {
    case IndexTable::kDate: return sqlite3_result_int64(ctx, desc ? best->i2 : best->i1);
    case IndexTable::kNumber: case IndexTable::kQuantity: return sqlite3_result_double(ctx, best->d);
    default:
      return sqlite3_result_text(ctx, best->s1.data(), static_cast<int>(best->s1.size()), SQLITE_TRANSIENT);
  }
}

// rhip_has_param(manifest, table, param): 1 when the resource has a row for it (:missing).
void SqlHasParam(sqlite3_context* ctx, int, sqlite3_value** argv) {
  std::vector<IndexEntry> entries;
  DecodeManifest(ArgBlob(argv[0]), &entries);
  const auto table = static_cast<IndexTable>(sqlite3_value_int(argv[1]));
  const int64_t param = sqlite3_value_int64(argv[2]);
  for (const auto& e : entries)
    if (e.table == table && e.param == param) return sqlite3_result_int(ctx, 1);
  sqlite3_result_int(ctx, 0);
}

// rhip_param_key('Type.code'): ParamKey, for migrating text keys.
void SqlParamKey(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const auto* t = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
  std::string_view full = t ? std::string_view(t, static_cast<size_t>(sqlite3_value_bytes(argv[0]))) : "";
  const size_t dot = full.find('.');
  sqlite3_result_int64(ctx, dot == std::string_view::npos ? ParamKey(full, "")
                                                          : ParamKey(full.substr(0, dot), full.substr(dot + 1)));
}

Status Configure(Db& db, bool writer) {
  // No memory maps: a store that grows (every write) makes SQLite unmap and map its
  // file again on every connection, and those page-table changes cost more than the
  // copies a map saves (bench/RESULTS.md: HL7 ACK rate +70 % without, reads no slower).
  // temp_store=MEMORY first: nothing a connection does may need a temporary file
  // (an encrypted store refuses them, crypt_vfs.h).
  RETURN_IF_ERROR(db.Exec("PRAGMA temp_store=MEMORY; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                          "PRAGMA foreign_keys=OFF; PRAGMA cache_size=-65536; PRAGMA mmap_size=0;"));
  // The writer never checkpoints on its own: a background checkpointer does (below).
  if (writer) RETURN_IF_ERROR(db.Exec("PRAGMA wal_autocheckpoint=0;"));
  constexpr int kFlags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
  struct Fn {
    const char* name;
    int args;
    void (*fn)(sqlite3_context*, int, sqlite3_value**);
  };
  for (const Fn& f : {Fn{"rhip_sort_key", 4, SqlSortKey}, Fn{"rhip_has_param", 3, SqlHasParam},
                      Fn{"rhip_param_key", 1, SqlParamKey}}) {
    if (sqlite3_create_function_v2(db.raw(), f.name, f.args, kFlags, nullptr, f.fn, nullptr, nullptr, nullptr) !=
        SQLITE_OK)
      return db.Error(std::string("registering ") + f.name);
  }
  return Status::Ok();
}

// Migration 3, after its SQL: index manifests of every resource from the old
// (res, param) indexes (each index table streamed in res order and merged), then
// the new tables replace the old ones.
Status MigrateToIndexManifests(Db& db) {
  struct Stream {
    Stream(IndexTable t, const char* q) : table(t), sql(q) {}
    IndexTable table;
    const char* sql;  // res first, then the fields in manifest order
    std::unique_ptr<Stmt> stmt;
    bool has = false;
  };
  Stream streams[] = {
      {IndexTable::kString, "SELECT res, param, norm, exact FROM idx_string ORDER BY res"},
      {IndexTable::kToken, "SELECT res, param, code, system FROM idx_token ORDER BY res"},
      {IndexTable::kDate, "SELECT res, param, low, high FROM idx_date ORDER BY res"},
      {IndexTable::kReference, "SELECT res, param, target_id, target_type FROM idx_reference ORDER BY res"},
      {IndexTable::kNumber, "SELECT res, param, value FROM idx_number ORDER BY res"},
      {IndexTable::kQuantity, "SELECT res, param, value, system, code FROM idx_quantity ORDER BY res"},
      {IndexTable::kUri, "SELECT res, param, uri FROM idx_uri ORDER BY res"},
      {IndexTable::kCompartment, "SELECT res, '', patient_id FROM compartment ORDER BY res"},
  };
  Status st;
  for (Stream& m : streams) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db.raw(), m.sql, -1, &raw, nullptr) != SQLITE_OK) return db.Error("migrating manifests");
    m.stmt = std::make_unique<Stmt>(db.raw(), raw);
    m.has = m.stmt->Step(&st);
    RETURN_IF_ERROR(st);
  }
  ASSIGN_OR_RETURN(Stmt * update, db.Prepare("UPDATE resource SET manifest = ? WHERE pk = ?"));
  ManifestBuilder b;
  for (;;) {
    int64_t res = INT64_MAX;
    for (const Stream& m : streams)
      if (m.has) res = std::min(res, m.stmt->Int(0));
    if (res == INT64_MAX) break;
    for (Stream& m : streams) {
      while (m.has && m.stmt->Int(0) == res) {
        Stmt& r = *m.stmt;
        const std::string key = r.Text(1);
        const size_t dot = key.find('.');
        const int64_t param = dot == std::string::npos ? 0 : ParamKey(key.substr(0, dot), key.substr(dot + 1));
        switch (m.table) {
          case IndexTable::kString: b.String(param, r.Text(2), r.Text(3)); break;
          case IndexTable::kToken: b.Token(param, r.Text(2), r.Text(3)); break;
          case IndexTable::kDate: b.Date(param, r.Int(2), r.Int(3)); break;
          case IndexTable::kReference: b.Reference(param, r.Text(2), r.Text(3)); break;
          case IndexTable::kNumber: b.Number(param, r.Double(2)); break;
          case IndexTable::kQuantity: b.Quantity(param, r.Double(2), r.Text(3), r.Text(4)); break;
          case IndexTable::kUri: b.Uri(param, r.Text(2)); break;
          case IndexTable::kCompartment: b.Compartment(r.Text(2)); break;
          case IndexTable::kCount: break;
        }
        m.has = r.Step(&st);
        RETURN_IF_ERROR(st);
      }
    }
    const std::string manifest = b.Finish();
    update->Reset();
    update->BindBlob(1, manifest);
    update->Bind(2, res);
    RETURN_IF_ERROR(update->Run());
  }
  for (Stream& m : streams) m.stmt.reset();
  return db.Exec(R"sql(
DROP TABLE idx_string; ALTER TABLE string3 RENAME TO idx_string;
CREATE INDEX idx_string_res ON idx_string (res, param);
DROP TABLE idx_token; ALTER TABLE token3 RENAME TO idx_token;
DROP TABLE idx_date; ALTER TABLE date3 RENAME TO idx_date;
CREATE INDEX idx_date_res ON idx_date (res, param);
DROP TABLE idx_reference; ALTER TABLE reference3 RENAME TO idx_reference;
DROP TABLE idx_number; ALTER TABLE number3 RENAME TO idx_number;
CREATE INDEX idx_number_res ON idx_number (res, param);
DROP TABLE idx_quantity; ALTER TABLE quantity3 RENAME TO idx_quantity;
CREATE INDEX idx_quantity_res ON idx_quantity (res, param);
DROP TABLE idx_uri; ALTER TABLE uri3 RENAME TO idx_uri;
DROP INDEX compartment_res;
)sql");
}

Status Migrate(Db& db, const std::string& path, int target = kSchemaVersion) {
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
  for (int64_t i = version; i < target; ++i) {
    RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
    Status m = db.Exec(kMigrations[i].sql);
    if (m.ok() && kMigrations[i].code) m = kMigrations[i].code(db);
    if (m.ok()) m = db.Exec("PRAGMA user_version=" + std::to_string(i + 1));
    if (!m.ok()) {
      db.Exec("ROLLBACK").IgnoreError();
      return m.WithContext("migrating store " + path + " to schema version " + std::to_string(i + 1));
    }
    RETURN_IF_ERROR(db.Exec("COMMIT"));
  }
  return Status::Ok();
}

// kDataLoss when the row's JSON is compressed (compression.h) and damaged.
StatusOr<ResourceVersion> RowToVersion(Stmt* s, int first_col) {
  ResourceVersion v;
  v.type = s->Text(first_col);
  v.id = s->Text(first_col + 1);
  v.version = s->Int(first_col + 2);
  v.last_updated = s->Int(first_col + 3);
  v.deleted = s->Int(first_col + 4) != 0;
  const std::string_view stored = s->BlobView(first_col + 5);
  if (IsCompressed(stored)) {
    ASSIGN_OR_RETURN(v.json, DecompressJson(stored, v.type + "/" + v.id + " version " + std::to_string(v.version)));
  } else {
    v.json.assign(stored);
  }
  return v;
}

// A version row (alias v) with its resource (alias r) in RowToVersion's order,
// then the method. The current version's JSON lives on the resource row.
constexpr const char* kVersionColumns =
    "v.type, r.id, v.version, v.last_updated, v.deleted, "
    "COALESCE(v.json, CASE WHEN v.deleted = 0 AND v.seq = r.cur_seq THEN r.json END), v.method";

std::string Ref(std::string_view type, std::string_view id) {
  return std::string(type) + "/" + std::string(id);
}

// Reads that both the read pool and the write transaction perform. `with_compartment`:
// also the compartment patients, from the index manifest on the same row (for the access
// guard of a read; the writer's own reads need not decode it).
StatusOr<ResourceVersion> ReadCurrent(Db& db, std::string_view type, std::string_view id, bool with_compartment) {
  ASSIGN_OR_RETURN(Stmt * s, db.Prepare(
      "SELECT type, id, version, last_updated, deleted, json, manifest FROM resource WHERE type = ? AND id = ?"));
  s->BindStatic(1, type);
  s->BindStatic(2, id);
  Status st;
  if (!s->Step(&st)) {
    RETURN_IF_ERROR(st);
    return NotFound("resource " + Ref(type, id) + " is not known");
  }
  StatusOr<ResourceVersion> row = RowToVersion(s, 0);
  if (!row.ok()) {
    s->Reset();
    return row.status();
  }
  ResourceVersion& v = *row;
  thread_local std::vector<IndexEntry> entries;  // views into the row: used before Reset
  entries.clear();
  if (with_compartment && !v.deleted && DecodeManifest(s->BlobView(6), &entries)) {
    std::vector<std::string> patients;
    for (const IndexEntry& e : entries)
      if (e.table == IndexTable::kCompartment) patients.emplace_back(e.s1);
    v.compartment = std::move(patients);
  }
  s->Reset();
  if (v.deleted) return Status(StatusCode::kGone, "resource " + Ref(type, id) + " was deleted");
  return row;
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
    auto r = row(s);
    if (!r.ok()) {
      st = r.status();
      break;
    }
    out->push_back(std::move(*r));
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

// The nine values of an INSERT INTO inbound_message (sender, control_id, type, received,
// raw, status, ack, error, attempts).
void BindMessage(Stmt* s, const InboundMessage& m) {
  s->BindStatic(1, m.sender);
  s->BindStatic(2, m.control_id);
  s->BindStatic(3, m.type);
  s->Bind(4, m.received);
  s->BindBlob(5, m.raw);
  s->BindStatic(6, m.status);
  s->BindBlob(7, m.ack);
  s->BindStatic(8, m.error);
  s->Bind(9, static_cast<int64_t>(m.attempts));
}

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

// The writer's prepared statements: looked up once per group, not per row.
struct WriterStatements {
  Stmt* current = nullptr;
  Stmt* insert_resource = nullptr;
  Stmt* update_resource = nullptr;
  Stmt* delete_resource = nullptr;
  Stmt* insert_version = nullptr;
  Stmt* archive_json = nullptr;  // the superseded version's row gets its JSON
  Stmt* insert_row[static_cast<int>(IndexTable::kCount)] = {};
  // kInsertChunk rows per statement: a sorted run of inserts costs one statement
  // execution per chunk instead of one per row.
  static constexpr int kInsertChunk = 32;
  Stmt* insert_many[static_cast<int>(IndexTable::kCount)] = {};
  Stmt* delete_row[static_cast<int>(IndexTable::kCount)] = {};

  Status Prepare(Db& db) {
    ASSIGN_OR_RETURN(current, db.Prepare(
        "SELECT pk, version, deleted, last_updated, cur_seq, manifest FROM resource WHERE type = ? AND id = ?"));
    ASSIGN_OR_RETURN(insert_resource, db.Prepare(
        "INSERT INTO resource (type, id, version, last_updated, deleted, json, first_seq, cur_seq, manifest) "
        "VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?) ON CONFLICT (type, id) DO NOTHING"));
    ASSIGN_OR_RETURN(update_resource, db.Prepare(
        "UPDATE resource SET version = ?, last_updated = ?, deleted = 0, json = ?, cur_seq = ?, manifest = ? "
        "WHERE pk = ?"));
    ASSIGN_OR_RETURN(delete_resource, db.Prepare(
        "UPDATE resource SET version = ?, last_updated = ?, deleted = 1, json = NULL, cur_seq = ?, manifest = NULL "
        "WHERE pk = ?"));
    ASSIGN_OR_RETURN(insert_version, db.Prepare(
        "INSERT INTO resource_version (seq, res, type, version, last_updated, deleted, method, json) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, NULL)"));
    ASSIGN_OR_RETURN(archive_json, db.Prepare(
        "UPDATE resource_version SET json = (SELECT json FROM resource WHERE pk = ?) WHERE seq = ?"));
    // Column order of each table's key: (param, leading value…, res, trailing value…).
    static const char* const kInsert[] = {
        "INSERT OR IGNORE INTO idx_string (param, norm, exact, res) VALUES (?, ?, ?, ?)",
        "INSERT OR IGNORE INTO idx_token (param, code, system, res) VALUES (?, ?, ?, ?)",
        "INSERT OR IGNORE INTO idx_date (param, low, high, res) VALUES (?, ?, ?, ?)",
        "INSERT OR IGNORE INTO idx_reference (param, target_id, target_type, res) VALUES (?, ?, ?, ?)",
        "INSERT OR IGNORE INTO idx_number (param, value, res) VALUES (?, ?, ?)",
        "INSERT OR IGNORE INTO idx_quantity (param, value, system, code, res) VALUES (?, ?, ?, ?, ?)",
        "INSERT OR IGNORE INTO idx_uri (param, uri, res) VALUES (?, ?, ?)",
        "INSERT OR IGNORE INTO compartment (patient_id, res) VALUES (?, ?)",
    };
    static const char* const kDelete[] = {
        "DELETE FROM idx_string WHERE param = ? AND norm = ? AND exact = ? AND res = ?",
        "DELETE FROM idx_token WHERE param = ? AND code = ? AND system = ? AND res = ?",
        "DELETE FROM idx_date WHERE param = ? AND low = ? AND high = ? AND res = ?",
        "DELETE FROM idx_reference WHERE param = ? AND target_id = ? AND target_type = ? AND res = ?",
        "DELETE FROM idx_number WHERE param = ? AND value = ? AND res = ?",
        "DELETE FROM idx_quantity WHERE param = ? AND value = ? AND system = ? AND code = ? AND res = ?",
        "DELETE FROM idx_uri WHERE param = ? AND uri = ? AND res = ?",
        "DELETE FROM compartment WHERE patient_id = ? AND res = ?",
    };
    for (int i = 0; i < static_cast<int>(IndexTable::kCount); ++i) {
      ASSIGN_OR_RETURN(insert_row[i], db.Prepare(kInsert[i]));
      ASSIGN_OR_RETURN(delete_row[i], db.Prepare(kDelete[i]));
      std::string many = kInsert[i];
      const std::string tuple = many.substr(many.find("VALUES ") + 7);
      for (int k = 1; k < kInsertChunk; ++k) many += ", " + tuple;
      ASSIGN_OR_RETURN(insert_many[i], db.Prepare(many));
    }
    return Status::Ok();
  }
};

// Binds an index entry to statement parameters from *i on (the column orders of
// kInsert and kDelete), advancing *i.
Status BindEntry(Stmt* s, int* i, const IndexEntry& e, int64_t res) {
  if (e.table != IndexTable::kCompartment) s->Bind((*i)++, e.param);
  switch (e.table) {
    case IndexTable::kString: case IndexTable::kToken: case IndexTable::kReference:
      s->BindStatic((*i)++, e.s1);
      s->BindStatic((*i)++, e.s2);
      break;
    case IndexTable::kDate:
      s->Bind((*i)++, e.i1);
      s->Bind((*i)++, e.i2);
      break;
    case IndexTable::kNumber:
      s->Bind((*i)++, e.d);
      break;
    case IndexTable::kQuantity:
      s->Bind((*i)++, e.d);
      s->BindStatic((*i)++, e.s1);
      s->BindStatic((*i)++, e.s2);
      break;
    case IndexTable::kUri: case IndexTable::kCompartment:
      s->BindStatic((*i)++, e.s1);
      break;
    case IndexTable::kCount:
      return Internal("store: bad index entry");
  }
  s->Bind((*i)++, res);
  return Status::Ok();
}

// Runs one insert or delete of an index entry.
Status RunEntry(Stmt* s, const IndexEntry& e, int64_t res) {
  s->Reset();
  int i = 1;
  RETURN_IF_ERROR(BindEntry(s, &i, e, res));
  return s->Run();
}

class Tx : public WriteTransaction {
 public:
  Tx(Db* db, int64_t* seq, const WriterStatements* stmts, size_t compress_from)
      : db_(db), seq_(seq), q_(stmts), compress_from_(compress_from) {}

  StatusOr<std::optional<CurrentState>> Current(std::string_view type, std::string_view id) override {
    ASSIGN_OR_RETURN(auto row, Row(type, id));
    if (!row) return std::optional<CurrentState>();
    return std::optional<CurrentState>(CurrentState{row->version, row->deleted, row->last_updated});
  }

  StatusOr<ResourceVersion> Read(std::string_view type, std::string_view id) override {
    return ReadCurrent(*db_, type, id, /*with_compartment=*/false);
  }

  Status Put(const PutRequest& put) override {
    auto conflict = [&](int64_t held) {
      return Conflict("resource " + Ref(put.type, put.id) + " is at version " + std::to_string(held) +
                      "; cannot write version " + std::to_string(put.version));
    };
    // Version 1 is a create: its insert finds a held row itself (ON CONFLICT),
    // so the row is looked up only for later versions.
    std::optional<CurrentRow> cur;
    if (put.version != 1) {
      ASSIGN_OR_RETURN(cur, Row(put.type, put.id));
      if (!cur || put.version != cur->version + 1) return conflict(cur ? cur->version : 0);
    }
    // Compressed JSON is bound as a BLOB, plain JSON as TEXT (compression.h).
    std::string_view stored = put.json;
    const bool compress = compress_from_ > 0 && put.json.size() >= compress_from_;
    if (compress) {
      RETURN_IF_ERROR(CompressJson(put.json, &compressed_));
      stored = compressed_;
    }
    auto bind_json = [&](Stmt* st, int i) { compress ? st->BindBlob(i, stored) : st->BindStatic(i, stored); };
    const int64_t seq = ++*seq_;
    std::string manifest = put.encoded_index.empty() ? EncodeManifest(put.type, put.index) : put.encoded_index;
    int64_t pk = 0;
    if (cur) {
      pk = cur->pk;
      RETURN_IF_ERROR(ArchiveCurrent(*cur));
      Stmt* u = q_->update_resource;
      u->Reset();
      u->Bind(1, put.version);
      u->Bind(2, put.last_updated);
      bind_json(u, 3);
      u->Bind(4, seq);
      u->BindBlob(5, manifest);
      u->Bind(6, pk);
      RETURN_IF_ERROR(u->Run());
    } else {
      Stmt* ins = q_->insert_resource;
      ins->Reset();
      ins->BindStatic(1, put.type);
      ins->BindStatic(2, put.id);
      ins->Bind(3, put.version);
      ins->Bind(4, put.last_updated);
      bind_json(ins, 5);
      ins->Bind(6, seq);
      ins->Bind(7, seq);
      ins->BindBlob(8, manifest);
      RETURN_IF_ERROR(ins->Run());
      if (sqlite3_changes(db_->raw()) == 0) {  // held already (perhaps deleted)
        --*seq_;
        ASSIGN_OR_RETURN(auto held, Row(put.type, put.id));
        return conflict(held ? held->version : 0);
      }
      pk = sqlite3_last_insert_rowid(db_->raw());
    }
    RETURN_IF_ERROR(AppendVersion(seq, pk, put.type, put.version, put.last_updated, false, put.method));
    // Only the rows that changed: none for an unchanged index, all for a create.
    // They are written in key order at the end of the caller's function (Flush).
    const std::string& old_manifest = Keep(cur ? std::move(cur->manifest) : std::string());
    const std::string& new_manifest = Keep(std::move(manifest));
    removed_.clear();
    added_.clear();
    if (!DiffManifests(old_manifest, new_manifest, &removed_, &added_)) return DamagedManifest(put.type, put.id);
    for (const IndexEntry& e : removed_) Defer(e, pk, false);
    for (const IndexEntry& e : added_) Defer(e, pk, true);
    return Status::Ok();
  }

  // Writes the deferred index rows, sorted by table and key so that consecutive
  // inserts land on the same b-tree pages (a batch of creates dirties each page
  // once, and its descents stay in the CPU cache). Operations on the same row
  // keep their order. Called before anything reads the index inside the
  // transaction and at the end of each caller's function.
  Status Flush() {
    // The order: by entry bytes, equal entries in the order they were deferred
    // (what operations on one row need; for creates that is also the order of
    // their resource keys, so each value's rows are appended in b-tree order).
    // Many entries are equal (every final Observation's status), so identical
    // entries are grouped first (a hash table), only the distinct ones are
    // sorted, and the rows are then placed by a counting sort. (A comparison
    // sort over all rows was 15-19 % of the writer's instructions in a bulk import.)
    const size_t n = pending_.size();
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    slots_.assign(cap, UINT32_MAX);
    distinct_.clear();
    group_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const std::string_view b = pending_[i].entry.bytes;
      size_t h = std::hash<std::string_view>{}(b) & (cap - 1);
      while (slots_[h] != UINT32_MAX && pending_[distinct_[slots_[h]].i].entry.bytes != b) h = (h + 1) & (cap - 1);
      if (slots_[h] == UINT32_MAX) {
        slots_[h] = static_cast<uint32_t>(distinct_.size());
        SortKey k{};
        unsigned char head[24] = {};
        std::memcpy(head, b.data(), std::min<size_t>(b.size(), sizeof head));
        for (int w = 0; w < 3; ++w)
          for (int j = 0; j < 8; ++j) k.k[w] = (k.k[w] << 8) | head[w * 8 + j];
        k.size = static_cast<uint32_t>(b.size());
        k.i = static_cast<uint32_t>(i);
        distinct_.push_back(k);
      }
      group_[i] = slots_[h];
    }
    // Distinct entries by bytes: their first 24 bytes as big-endian integers, then the rest.
    ranked_.resize(distinct_.size());
    for (uint32_t g = 0; g < ranked_.size(); ++g) ranked_[g] = g;
    std::sort(ranked_.begin(), ranked_.end(), [this](uint32_t gx, uint32_t gy) {
      const SortKey& x = distinct_[gx];
      const SortKey& y = distinct_[gy];
      for (int w = 0; w < 3; ++w)
        if (x.k[w] != y.k[w]) return x.k[w] < y.k[w];
      if (x.size <= 24 && y.size <= 24) return x.size < y.size;
      return pending_[x.i].entry.bytes.substr(std::min<uint32_t>(24, x.size)) <
             pending_[y.i].entry.bytes.substr(std::min<uint32_t>(24, y.size));
    });
    // Rows by their entry's rank, each rank's rows in deferral order.
    start_.assign(distinct_.size() + 1, 0);
    for (uint32_t r = 0; r < ranked_.size(); ++r) distinct_[ranked_[r]].rank = r;
    for (size_t i = 0; i < n; ++i) ++start_[distinct_[group_[i]].rank + 1];
    for (size_t r = 1; r < start_.size(); ++r) start_[r] += start_[r - 1];
    order_.resize(n);
    for (size_t i = 0; i < n; ++i) order_[start_[distinct_[group_[i]].rank]++] = static_cast<uint32_t>(i);
    auto row = [this](size_t k) -> const PendingRow& { return pending_[order_[k]]; };
    Status st;
    for (size_t k = 0; k < n && st.ok();) {
      const PendingRow& r = row(k);
      const int t = static_cast<int>(r.entry.table);
      // A run of kInsertChunk inserts into one table (nothing else on those rows between them).
      size_t run = 0;
      while (r.insert && run < WriterStatements::kInsertChunk && k + run < n && row(k + run).insert &&
             row(k + run).entry.table == r.entry.table)
        ++run;
      if (run == WriterStatements::kInsertChunk) {
        Stmt* many = q_->insert_many[t];
        many->Reset();
        int i = 1;
        for (size_t j = k; j < k + run && st.ok(); ++j) st = BindEntry(many, &i, row(j).entry, row(j).res);
        if (st.ok()) st = many->Run();
        k += run;
        continue;
      }
      st = RunEntry(r.insert ? q_->insert_row[t] : q_->delete_row[t], r.entry, r.res);
      ++k;
    }
    Discard();
    return st;
  }

  // Forgets deferred rows (the caller's function failed and is rolled back).
  void Discard() {
    pending_.clear();
    kept_.clear();
  }

  Status Delete(const DeleteRequest& del) override {
    ASSIGN_OR_RETURN(auto cur, Row(del.type, del.id));
    if (!cur) return NotFound("resource " + Ref(del.type, del.id) + " is not known");
    if (del.version != cur->version + 1) {
      return Conflict("resource " + Ref(del.type, del.id) + " is at version " + std::to_string(cur->version));
    }
    const int64_t seq = ++*seq_;
    RETURN_IF_ERROR(ArchiveCurrent(*cur));
    RETURN_IF_ERROR(AppendVersion(seq, cur->pk, del.type, del.version, del.last_updated, true, "DELETE"));
    Stmt* u = q_->delete_resource;
    u->Reset();
    u->Bind(1, del.version);
    u->Bind(2, del.last_updated);
    u->Bind(3, seq);
    u->Bind(4, cur->pk);
    RETURN_IF_ERROR(u->Run());
    removed_.clear();
    if (!DecodeManifest(Keep(std::move(cur->manifest)), &removed_)) return DamagedManifest(del.type, del.id);
    for (const IndexEntry& e : removed_) Defer(e, cur->pk, false);
    return Status::Ok();
  }

  Status PutMessage(const InboundMessage& m) override {
    ASSIGN_OR_RETURN(Stmt * s, db_->Prepare(
        "INSERT INTO inbound_message (sender, control_id, type, received, raw, status, ack, error, attempts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sender, control_id) DO UPDATE SET type = excluded.type, "
        "received = excluded.received, raw = excluded.raw, status = excluded.status, ack = excluded.ack, "
        "error = excluded.error, attempts = excluded.attempts"));
    BindMessage(s, m);
    return s->Run();
  }

  StatusOr<std::optional<std::string>> AddMessage(const InboundMessage& m) override {
    ASSIGN_OR_RETURN(Stmt * s, db_->Prepare(
        "INSERT INTO inbound_message (sender, control_id, type, received, raw, status, ack, error, attempts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sender, control_id) DO NOTHING RETURNING 1"));
    BindMessage(s, m);
    Status st;
    const bool inserted = s->Step(&st);  // RETURNING: the insert is done by the first step
    s->Reset();
    RETURN_IF_ERROR(st);
    if (inserted) return std::optional<std::string>();
    ASSIGN_OR_RETURN(Stmt * q, db_->Prepare("SELECT ack FROM inbound_message WHERE sender = ? AND control_id = ?"));
    q->BindStatic(1, m.sender);
    q->BindStatic(2, m.control_id);
    std::optional<std::string> ack;
    if (q->Step(&st)) ack = q->Blob(0);
    q->Reset();
    RETURN_IF_ERROR(st);
    if (!ack) return Internal("inbound message " + m.sender + "/" + m.control_id + " conflicts but cannot be read");
    return ack;
  }

  Status SetMessageStatus(const InboundMessage& m) override {
    ASSIGN_OR_RETURN(Stmt * s, db_->Prepare(
        "UPDATE inbound_message SET status = ?, error = ?, attempts = ? WHERE sender = ? AND control_id = ?"));
    s->BindStatic(1, m.status);
    s->BindStatic(2, m.error);
    s->Bind(3, static_cast<int64_t>(m.attempts));
    s->BindStatic(4, m.sender);
    s->BindStatic(5, m.control_id);
    RETURN_IF_ERROR(s->Run());
    if (sqlite3_changes(db_->raw()) == 0)
      return NotFound("no inbound message " + m.sender + "/" + m.control_id + " is recorded");
    return Status::Ok();
  }

  Status AppendPersonChange(const PersonChange& change) override { return sqlite::AppendPersonChange(*db_, change); }
  StatusOr<int64_t> PutReview(const MatchReview& review) override { return sqlite::PutReview(*db_, review); }

  StatusOr<std::vector<std::string>> SearchIds(const SearchQuery& query, int limit) override {
    RETURN_IF_ERROR(Flush());
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
  struct CurrentRow {
    int64_t pk = 0, version = 0, last_updated = 0, cur_seq = 0;
    bool deleted = false;
    std::string manifest;
  };

  StatusOr<std::optional<CurrentRow>> Row(std::string_view type, std::string_view id) {
    Stmt* s = q_->current;
    s->Reset();
    s->BindStatic(1, type);
    s->BindStatic(2, id);
    Status st;
    if (!s->Step(&st)) {
      RETURN_IF_ERROR(st);
      return std::optional<CurrentRow>();
    }
    CurrentRow r{s->Int(0), s->Int(1), s->Int(3), s->Int(4), s->Int(2) != 0, s->Blob(5)};
    s->Reset();
    return std::optional<CurrentRow>(std::move(r));
  }

  // The version being superseded keeps its JSON in its own row from now on.
  Status ArchiveCurrent(const CurrentRow& cur) {
    if (cur.deleted) return Status::Ok();
    Stmt* a = q_->archive_json;
    a->Reset();
    a->Bind(1, cur.pk);
    a->Bind(2, cur.cur_seq);
    return a->Run();
  }

  Status AppendVersion(int64_t seq, int64_t pk, const std::string& type, int64_t version, Micros when, bool deleted,
                       const std::string& method) {
    Stmt* s = q_->insert_version;
    s->Reset();
    s->Bind(1, seq);
    s->Bind(2, pk);
    s->BindStatic(3, type);
    s->Bind(4, version);
    s->Bind(5, when);
    s->Bind(6, static_cast<int64_t>(deleted));
    s->BindStatic(7, method);
    return s->Run();
  }

  struct PendingRow {
    IndexEntry entry;  // views into kept_
    int64_t res;
    int64_t order;
    bool insert;
  };

  // Keeps a manifest alive until Flush (deferred entries point into it).
  const std::string& Keep(std::string manifest) { return kept_.emplace_back(std::move(manifest)); }
  void Defer(const IndexEntry& e, int64_t res, bool insert) {
    pending_.push_back({e, res, static_cast<int64_t>(pending_.size()), insert});
  }

  static Status DamagedManifest(std::string_view type, std::string_view id) {
    return Status(StatusCode::kDataLoss, "store: the index manifest of " + Ref(type, id) +
                                             " is damaged; restore the store from a backup");
  }

  Db* db_;
  int64_t* seq_;
  const WriterStatements* q_;
  size_t compress_from_;    // StoreOptions::compress_from_bytes
  std::string compressed_;  // the last compressed JSON, bound until its statement ran
  std::vector<IndexEntry> removed_, added_;  // reused between Puts
  std::vector<PendingRow> pending_;
  // Flush's ordering, reused between calls.
  struct SortKey {  // one distinct entry
    uint64_t k[3];  // its first 24 bytes, big-endian (zero-padded)
    uint32_t size;  // its length
    uint32_t i;     // its first row in pending_
    uint32_t rank;  // its place among the distinct entries
  };
  std::vector<uint32_t> slots_;    // open-addressing table: entry bytes → index into distinct_
  std::vector<SortKey> distinct_;
  std::vector<uint32_t> group_;    // row → index into distinct_
  std::vector<uint32_t> ranked_;   // distinct_ indexes in byte order
  std::vector<uint32_t> start_;    // counting sort: first place of each rank
  std::vector<uint32_t> order_;    // rows in write order
  std::deque<std::string> kept_;  // a deque: growing it never moves what entries point into
};

class SqliteStore : public Store {
 public:
  SqliteStore(std::string path, bool temporary) : path_(std::move(path)), temporary_(temporary) {}
  ~SqliteStore() override { Close().IgnoreError(); }

  Status Init(const StoreOptions& options) {
    exclusive_ = options.exclusive;
    if (options.exclusive && !temporary_) RETURN_IF_ERROR(LockFile(options.create_if_missing));
    // What is stored must match the key the caller has (or has not) before SQLite
    // touches the file: never a new empty store over an encrypted one, never a write
    // with the wrong key.
    ASSIGN_OR_RETURN(StoreFileState state, CheckStoreFile(path_, options.key ? &*options.key : nullptr));
    if (options.key) {
      ASSIGN_OR_RETURN(vfs_, EncryptingVfs(*options.key));
    }
    compress_from_ = options.compress_from_bytes;
    const char* vfs = vfs_.empty() ? nullptr : vfs_.c_str();
    ASSIGN_OR_RETURN(writer_db_, Db::Open(path_, options.create_if_missing, vfs));
    if (options.key && state == StoreFileState::kNew) {
      // A new encrypted database: 4,096-byte pages with 28 reserved bytes (each page's
      // nonce and tag), and its first page written with no rollback journal (MEMORY
      // becomes OFF on the way to WAL), which would hold plaintext.
      int reserve = kEncryptedReserve;
      if (sqlite3_file_control(writer_db_->raw(), "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve) != SQLITE_OK)
        return writer_db_->Error("reserving bytes for page encryption");
      RETURN_IF_ERROR(writer_db_->Exec("PRAGMA temp_store=MEMORY; PRAGMA page_size=" +
                                       std::to_string(kEncryptedPageSize) + "; PRAGMA journal_mode=MEMORY;"));
    }
    if (!options.key && state == StoreFileState::kNew) {
      // A new plain store: 8 KiB pages (kPlainPageSize). Set before WAL is, the only
      // time SQLite lets a database's page size change without a VACUUM.
      RETURN_IF_ERROR(writer_db_->Exec("PRAGMA page_size=" + std::to_string(kPlainPageSize) + ";"));
    }
    RETURN_IF_ERROR(Configure(*writer_db_, true));
    RETURN_IF_ERROR(Migrate(*writer_db_, path_));
    RETURN_IF_ERROR(writer_stmts_.Prepare(*writer_db_));
    {
      ASSIGN_OR_RETURN(Stmt * ps, writer_db_->Prepare("PRAGMA page_size"));
      Status pst;
      const int64_t page = ps->Step(&pst) ? ps->Int(0) : 4096;
      RETURN_IF_ERROR(pst);
      ps->Reset();
      if (page >= 512) {
        checkpoint_frames_ = static_cast<int>(kCheckpointBytes / page);
        restart_frames_ = static_cast<int>(kRestartBytes / page);
      }
    }
    ASSIGN_OR_RETURN(Stmt * s, writer_db_->Prepare("SELECT COALESCE(MAX(seq), 0) FROM resource_version"));
    Status st;
    if (s->Step(&st)) seq_ = s->Int(0);
    RETURN_IF_ERROR(st);
    s->Reset();
    committed_seq_ = seq_;
    for (int i = 0; i < std::max(1, options.read_connections); ++i) {
      ASSIGN_OR_RETURN(auto db, Db::Open(path_, false, vfs));
      RETURN_IF_ERROR(Configure(*db, false));
      std::lock_guard lock(pool_mu_);
      free_.push_back(db.get());
      readers_.push_back(std::move(db));
    }
    // Checkpoints run beside the writer, on a connection of their own, so a commit
    // never waits for WAL pages to be copied into the database file.
    ASSIGN_OR_RETURN(checkpoint_db_, Db::Open(path_, false, vfs));
    RETURN_IF_ERROR(Configure(*checkpoint_db_, false));
    sqlite3_wal_hook(writer_db_->raw(), &SqliteStore::OnWalCommit, this);
    // Thread names (15 bytes at most) say which store a thread serves, for top and perf.
    const std::string checkpoint_name = options.name.empty() ? "rhip-checkpoint" : ("rhip-ckpt-" + options.name).substr(0, 15);
    const std::string writer_name = options.name.empty() ? "rhip-writer" : ("rhip-wr-" + options.name).substr(0, 15);
    checkpointer_ = std::thread([this, checkpoint_name] {
      pthread_setname_np(pthread_self(), checkpoint_name.c_str());
      CheckpointLoop();
    });
    writer_ = std::thread([this, writer_name] {
      pthread_setname_np(pthread_self(), writer_name.c_str());
      WriterLoop();
    });
    return Status::Ok();
  }

  StatusOr<ResourceVersion> Read(std::string_view type, std::string_view id) override {
    ReadConn c(this);
    if (!c) return Unavailable();
    return ReadCurrent(*c, type, id, /*with_compartment=*/true);
  }

  StatusOr<ResourceVersion> ReadVersion(std::string_view type, std::string_view id, int64_t version) override {
    ReadConn c(this);
    if (!c) return Unavailable();
    ASSIGN_OR_RETURN(Stmt * s, c->Prepare(std::string("SELECT ") + kVersionColumns +
                                          " FROM resource r JOIN resource_version v ON v.res = r.pk "
                                          "WHERE r.type = ? AND r.id = ? AND v.version = ?"));
    s->BindStatic(1, type);
    s->BindStatic(2, id);
    s->Bind(3, version);
    Status st;
    if (!s->Step(&st)) {
      RETURN_IF_ERROR(st);
      return NotFound("resource " + Ref(type, id) + " has no version " + std::to_string(version));
    }
    StatusOr<ResourceVersion> v = RowToVersion(s, 0);
    if (v.ok()) v->method = s->Text(6);
    s->Reset();
    return v;
  }

  StatusOr<HistoryPage> History(const HistoryQuery& q) override {
    ReadConn c(this);
    if (!c) return Unavailable();
    HistoryPage page;
    page.snapshot_seq = q.snapshot_seq > 0 ? q.snapshot_seq : committed_seq_.load();
    std::string where = "v.seq <= ?";
    std::vector<SqlValue> params{page.snapshot_seq};
    if (!q.type.empty()) {
      where += q.id.empty() ? " AND v.type = ?" : " AND r.type = ?";
      params.emplace_back(q.type);
    }
    if (!q.id.empty()) {
      where += " AND r.id = ?";
      params.emplace_back(q.id);
    }
    if (q.since) {
      where += " AND v.last_updated >= ?";
      params.emplace_back(*q.since);
    }
    const std::string from = " FROM resource_version v JOIN resource r ON r.pk = v.res WHERE ";
    RETURN_IF_ERROR(FetchPage(*c,
                              std::string("SELECT ") + kVersionColumns + from + where +
                                  " ORDER BY v.seq DESC LIMIT ? OFFSET ?",
                              params, q.count, q.offset, &page.versions, &page.has_more, [](Stmt* s) {
                                StatusOr<ResourceVersion> v = RowToVersion(s, 0);
                                if (v.ok()) v->method = s->Text(6);
                                return v;
                              }));
    ASSIGN_OR_RETURN(page.total, CountRows(*c, "SELECT COUNT(*)" + (q.id.empty() ? std::string(" FROM resource_version v WHERE ") : from) + where, params));
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
        StatusOr<ResourceVersion> v = RowToVersion(s, 0);
        if (!v.ok()) {
          st = v.status();
          break;
        }
        page.resources.push_back(std::move(*v));
      }
      s->Reset();
      RETURN_IF_ERROR(st);
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
    }
    p.done.Wait();  // only this caller wakes: no thundering herd of a whole group
    return p.result;
  }

  std::vector<Status> WriteEach(std::vector<WriteFn> fns) override {
    std::vector<Pending> pending(fns.size());
    for (size_t i = 0; i < fns.size(); ++i) pending[i].fn = &fns[i];
    {
      std::unique_lock lock(mu_);
      if (closed_) return std::vector<Status>(fns.size(), Unavailable());
      // Queued together, so the writer takes them into one group (up to kMaxGroup): each
      // in its own savepoint, one commit for all.
      for (Pending& p : pending) queue_.push_back(&p);
      work_cv_.notify_one();
    }
    std::vector<Status> results;
    results.reserve(pending.size());
    for (Pending& p : pending) {
      p.done.Wait();
      results.push_back(std::move(p.result));
    }
    return results;
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
    const char* sql = "SELECT type, id, version, last_updated, deleted, json FROM resource WHERE type = ? AND deleted = 0 ORDER BY id";  // the (type, id) key: no sort
    if (sqlite3_prepare_v2(c->raw(), sql, -1, &raw, nullptr) != SQLITE_OK)
      return Status(StatusCode::kInternal, std::string("store: ") + sqlite3_errmsg(c->raw()));
    Stmt s(c->raw(), raw);
    s.BindStatic(1, type);
    Status st;
    while (s.Step(&st)) {
      ASSIGN_OR_RETURN(ResourceVersion v, RowToVersion(&s, 0));
      RETURN_IF_ERROR(fn(v));
    }
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

  std::string EncodeIndex(std::string_view type, const IndexRows& rows) const override {
    return EncodeManifest(type, rows);
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
      std::lock_guard lock(checkpoint_mu_);
      checkpoint_stop_ = true;
      checkpoint_cv_.notify_all();
    }
    if (checkpointer_.joinable()) checkpointer_.join();
    checkpoint_db_.reset();
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
      // Only the store's owner folds the WAL back: a read-only check of a live store
      // (exclusive = false) must not make the owner's writer wait for a checkpoint.
      if (exclusive_) st = writer_db_->Exec("PRAGMA wal_checkpoint(TRUNCATE);");
      writer_db_.reset();
    }
    if (temporary_) {
      std::error_code ec;
      for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix, ec);
    }
    if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
    lock_fd_ = -1;
    return st;
  }

 private:
  // StoreOptions::exclusive: an flock on PATH-lock, held until Close. A file of its own,
  // not the database: closing any descriptor of the database file drops every POSIX lock
  // this process holds on it, SQLite's included, so a refused second open closing its
  // descriptor would have unlocked the first store's connections. A store that does not
  // exist is left to SQLite to create or refuse.
  Status LockFile(bool create) {
    if (!create && !std::filesystem::exists(path_)) return Status::Ok();
    const std::string lock_path = path_ + "-lock";
    lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CLOEXEC | O_CREAT, 0644);
    if (lock_fd_ < 0)
      return Status(StatusCode::kUnavailable, "store lock " + lock_path + " cannot be opened: " + std::strerror(errno));
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) == 0) return Status::Ok();
    const int err = errno;
    ::close(lock_fd_);
    lock_fd_ = -1;
    if (err == EWOULDBLOCK)
      return FailedPrecondition("store " + path_ + " is in use by another rhip process (`fuser " + path_ +
                                "` names it): stop that process first, or use another data folder");
    return Status(StatusCode::kUnavailable, "store " + path_ + " cannot be locked: " + std::strerror(err));
  }

  struct Pending {
    WriteFn* fn = nullptr;
    Status result;
    Notification done;  // notified by the writer once `result` is set
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

  // sqlite3_wal_hook: after each commit, on the writer thread, with the WAL's size.
  static int OnWalCommit(void* self, sqlite3*, const char*, int frames) {
    auto* store = static_cast<SqliteStore*>(self);
    // Frames not yet copied into the database: a checkpoint asked for every commit
    // beyond a total would copy each commit's pages on its own (the tails of the
    // append-only b-trees again and again, a sync each time).
    if (UncopiedWalFrames(frames, store->checkpointed_frames_) >= store->checkpoint_frames_) {
      std::lock_guard lock(store->checkpoint_mu_);
      store->checkpoint_wanted_ = true;
      store->checkpoint_cv_.notify_one();
    }
    // The WAL starts over only when it was copied completely between two commits;
    // under a steady stream of writes that may not happen, so beyond a bound the
    // writer restarts it itself (waiting for readers of old frames).
    store->restart_wal_ = frames >= store->restart_frames_;
    return SQLITE_OK;
  }

  void CheckpointLoop() {
    for (;;) {
      {
        std::unique_lock lock(checkpoint_mu_);
        checkpoint_cv_.wait(lock, [&] { return checkpoint_wanted_ || checkpoint_stop_; });
        if (checkpoint_stop_) return;
        checkpoint_wanted_ = false;
      }
      int log = 0, done = 0;
      const int rc = sqlite3_wal_checkpoint_v2(checkpoint_db_->raw(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
      if (rc != SQLITE_OK && rc != SQLITE_BUSY) log::Warn("store {}: checkpoint failed: {}", path_, sqlite3_errstr(rc));
      if (rc == SQLITE_OK && done >= 0) checkpointed_frames_.store(done, std::memory_order_relaxed);
    }
  }

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
      for (Pending* p : group) p->done.Notify();
      if (restart_wal_) {
        restart_wal_ = false;
        const int rc = sqlite3_wal_checkpoint_v2(writer_db_->raw(), nullptr, SQLITE_CHECKPOINT_RESTART, nullptr, nullptr);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY) log::Warn("store {}: WAL restart failed: {}", path_, sqlite3_errstr(rc));
        if (rc == SQLITE_OK) checkpointed_frames_.store(0, std::memory_order_relaxed);
      }
    }
  }

  void RunGroup(const std::vector<Pending*>& group) {
    Db& db = *writer_db_;
    const int64_t seq_before = seq_;
    Status begin = db.Run("BEGIN IMMEDIATE");
    if (!begin.ok()) {
      for (Pending* p : group) p->result = begin;
      return;
    }
    Tx tx(&db, &seq_, &writer_stmts_, compress_from_);
    for (Pending* p : group) {
      const int64_t seq_at_start = seq_;
      Status st = db.Run("SAVEPOINT w");
      if (st.ok()) st = (*p->fn)(tx);
      if (st.ok()) st = tx.Flush();
      tx.Discard();
      if (st.ok()) {
        st = db.Run("RELEASE w");
      } else {
        db.Run("ROLLBACK TO w").IgnoreError();
        db.Run("RELEASE w").IgnoreError();
        seq_ = seq_at_start;
      }
      p->result = st;
    }
    Status commit = db.Run("COMMIT");
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
  WriterStatements writer_stmts_;   // statements of writer_db_
  int64_t seq_ = 0;                 // writer thread only
  std::atomic<int64_t> committed_seq_{0};
  std::thread writer_;
  bool restart_wal_ = false;  // writer thread only (set by OnWalCommit)

  // Background checkpoints: wanted once kCheckpointBytes of WAL frames are not yet
  // copied; the writer restarts the WAL itself beyond kRestartBytes (64 MB chunks
  // made read p99 worse in an A/B, bench/RESULTS.md). In frames of the store's page
  // size (set by Init).
  static constexpr int kCheckpointBytes = 16 << 20;
  static constexpr int kRestartBytes = 256 << 20;
  int checkpoint_frames_ = kCheckpointBytes / 4096;
  int restart_frames_ = kRestartBytes / 4096;
  std::unique_ptr<Db> checkpoint_db_;  // checkpointer thread only
  std::thread checkpointer_;
  std::mutex checkpoint_mu_;
  std::condition_variable checkpoint_cv_;
  size_t compress_from_ = 0;  // StoreOptions::compress_from_bytes
  int lock_fd_ = -1;          // StoreOptions::exclusive: holds the flock
  bool exclusive_ = true;     // StoreOptions::exclusive
  std::string vfs_;  // the encrypting VFS of the store's key; empty for a plain store
  bool checkpoint_wanted_ = false;  // GUARDED_BY(checkpoint_mu_)
  std::atomic<int> checkpointed_frames_{0};  // WAL frames the last checkpoint had copied
  bool checkpoint_stop_ = false;    // GUARDED_BY(checkpoint_mu_)

  std::mutex mu_;
  std::condition_variable work_cv_;
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

Status MigrateForTest(const std::string& path, int version) {
  ASSIGN_OR_RETURN(auto db, Db::Open(path, true));
  RETURN_IF_ERROR(Configure(*db, true));
  return Migrate(*db, path, version);
}

StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path, const StoreOptions& options) {
  // No global allocation statistics: they take a process-wide mutex on every
  // SQLite malloc. Must precede SQLite's initialization (a no-op afterwards).
  static std::once_flag configured;
  std::call_once(configured, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
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
