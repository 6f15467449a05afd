// Thin RAII helpers over the SQLite C API, private to the SQLite backend.
// Thread-safety: a Db (connection) and its statements are used by one thread at a time.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "rhip/core/status.h"

namespace rhip::store::sqlite {

// The Status for SQLite's last error on `db`: a page that failed its authentication
// (encrypted stores) is kDataLoss and names the page; busy is kUnavailable.
Status SqliteError(sqlite3* db, std::string_view what);

// A value bound to a statement parameter.
using SqlValue = std::variant<std::monostate, int64_t, double, std::string>;

class Stmt {
 public:
  Stmt(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { sqlite3_finalize(s_); }

  void Reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  void Bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void Bind(int i, double v) { sqlite3_bind_double(s_, i, v); }
  void Bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void BindStatic(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }
  void BindNull(int i) { sqlite3_bind_null(s_, i); }
  void BindBlob(int i, std::string_view v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  std::string Blob(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, col))) : std::string();
  }
  // The column's bytes without a copy: valid until the next Step or Reset.
  std::string_view BlobView(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(s_, col))) : std::string_view();
  }
  void Bind(int i, const SqlValue& v);
  // SQLITE_ROW → true, SQLITE_DONE → false; errors in *status.
  bool Step(Status* status);
  Status Run();  // steps to completion
  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  double Double(int col) const { return sqlite3_column_double(s_, col); }
  std::string Text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, col))) : std::string();
  }
  bool IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_;
};

// One connection with a cache of prepared statements keyed by SQL text.
class Db {
 public:
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db();
  // Opens `path` through `vfs` (null: rhip-wal, plain; crypt_vfs.h for an encrypted store).
  static StatusOr<std::unique_ptr<Db>> Open(const std::string& path, bool create, const char* vfs = nullptr);

  Status Exec(std::string_view sql);
  // Runs one statement from the cache (no parse after the first call): for the
  // writer's BEGIN / SAVEPOINT / RELEASE / COMMIT on every group.
  Status Run(const std::string& sql);
  // A cached statement, reset and ready to bind. Valid until the Db is destroyed.
  StatusOr<Stmt*> Prepare(const std::string& sql);
  sqlite3* raw() { return db_; }
  Status Error(std::string_view what) const;

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<std::string, std::unique_ptr<Stmt>> cache_;
};

}  // namespace rhip::store::sqlite
