#include "store/sqlite/sqlite_util.h"

#include "store/sqlite/crypt_vfs.h"
#include "store/sqlite/wal_vfs.h"

namespace rhip::store::sqlite {

Status SqliteError(sqlite3* db, std::string_view what) {
  const std::string prefix = what.empty() ? std::string("store: ") : "store: " + std::string(what) + ": ";
  const int ext = sqlite3_extended_errcode(db);
  if (ext == SQLITE_IOERR_DATA) {
    std::string page = TakePageFailure();
    return Status(StatusCode::kDataLoss,
                  prefix + (page.empty() ? std::string("a page failed its authentication check") : page) +
                      ": the file was changed outside rhip or is damaged; restore it from a backup");
  }
  const int rc = ext & 0xff;
  if (rc == SQLITE_CANTOPEN) {
    if (std::string why = TakePageFailure(); !why.empty()) return Internal(prefix + why);
  }
  const StatusCode code = rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? StatusCode::kUnavailable
                          : rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB ? StatusCode::kDataLoss
                          : rc == SQLITE_CONSTRAINT                  ? StatusCode::kConflict
                                                                     : StatusCode::kInternal;
  return Status(code, prefix + sqlite3_errmsg(db));
}

void Stmt::Bind(int i, const SqlValue& v) {
  if (std::holds_alternative<int64_t>(v)) {
    Bind(i, std::get<int64_t>(v));
  } else if (std::holds_alternative<double>(v)) {
    Bind(i, std::get<double>(v));
  } else if (std::holds_alternative<std::string>(v)) {
    Bind(i, std::string_view(std::get<std::string>(v)));
  } else {
    BindNull(i);
  }
}

bool Stmt::Step(Status* status) {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) *status = SqliteError(db_, "");
  return false;
}

Status Stmt::Run() {
  Status st;
  while (Step(&st)) {
  }
  return st;
}

Db::~Db() {
  cache_.clear();
  sqlite3_close_v2(db_);
}

StatusOr<std::unique_ptr<Db>> Db::Open(const std::string& path, bool create, const char* vfs) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
  if (create) flags |= SQLITE_OPEN_CREATE;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, vfs ? vfs : CombiningWalVfs());
  if (rc != SQLITE_OK) {
    if (raw && sqlite3_extended_errcode(raw) == SQLITE_IOERR_DATA) {  // page 1 of an encrypted store changed
      Status st = SqliteError(raw, "cannot open store " + path);
      sqlite3_close_v2(raw);
      return st;
    }
    std::string msg = raw ? sqlite3_errmsg(raw) : "out of memory";
    sqlite3_close_v2(raw);
    return Status(StatusCode::kUnavailable, "cannot open store " + path + ": " + msg);
  }
  auto db = std::unique_ptr<Db>(new Db(raw));
  sqlite3_busy_timeout(raw, 10000);
  sqlite3_extended_result_codes(raw, 0);
  return db;
}

Status Db::Exec(std::string_view sql) {
  char* err = nullptr;
  std::string s(sql);
  if (sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    sqlite3_free(err);
    return SqliteError(db_, "");
  }
  return Status::Ok();
}

Status Db::Run(const std::string& sql) {
  ASSIGN_OR_RETURN(Stmt * s, Prepare(sql));
  Status st = s->Run();
  s->Reset();
  return st;
}

StatusOr<Stmt*> Db::Prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) {
    it->second->Reset();
    return it->second.get();
  }
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &s,
                         nullptr) != SQLITE_OK) {
    return SqliteError(db_, "cannot prepare query");
  }
  // Search queries are built from a bounded set of shapes with bound values, so
  // the cache stays small; statements live as long as the connection.
  auto [pos, _] = cache_.emplace(sql, std::make_unique<Stmt>(db_, s));
  return pos->second.get();
}

Status Db::Error(std::string_view what) const {
  return SqliteError(db_, what);
}

}  // namespace rhip::store::sqlite
