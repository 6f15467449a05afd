#include "store/sqlite/mpi_tables.h"

namespace rhip::store::sqlite {

const char* const kMpiTablesMigration = R"sql(
CREATE TABLE mpi_person_change (
  seq INTEGER PRIMARY KEY,
  person_id TEXT NOT NULL,
  person_version INTEGER NOT NULL,
  at INTEGER NOT NULL,
  action TEXT NOT NULL,
  actor TEXT NOT NULL,
  reason TEXT NOT NULL,
  before TEXT NOT NULL,
  after TEXT NOT NULL
);
CREATE INDEX mpi_person_change_person ON mpi_person_change (person_id, seq);
CREATE TABLE mpi_review (
  id INTEGER PRIMARY KEY,
  created INTEGER NOT NULL,
  record_a TEXT NOT NULL,
  record_b TEXT NOT NULL,
  weight REAL NOT NULL,
  detail TEXT NOT NULL,
  status TEXT NOT NULL,
  decided INTEGER NOT NULL DEFAULT 0,
  steward TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX mpi_review_status ON mpi_review (status, id);
)sql";

namespace {

constexpr const char* kReviewSelect =
    "SELECT id, created, record_a, record_b, weight, detail, status, decided, steward, reason FROM mpi_review";

MatchReview RowToReview(Stmt* s) {
  MatchReview r;
  r.id = s->Int(0);
  r.created = s->Int(1);
  r.record_a = s->Text(2);
  r.record_b = s->Text(3);
  r.weight = s->Double(4);
  r.detail = s->Text(5);
  r.status = s->Text(6);
  r.decided = s->Int(7);
  r.steward = s->Text(8);
  r.reason = s->Text(9);
  return r;
}

}  // namespace

Status AppendPersonChange(Db& db, const PersonChange& c) {
  ASSIGN_OR_RETURN(Stmt * s, db.Prepare(
      "INSERT INTO mpi_person_change (person_id, person_version, at, action, actor, reason, before, after) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
  s->BindStatic(1, c.person_id);
  s->Bind(2, c.person_version);
  s->Bind(3, c.at);
  s->BindStatic(4, c.action);
  s->BindStatic(5, c.actor);
  s->BindStatic(6, c.reason);
  s->BindStatic(7, c.before);
  s->BindStatic(8, c.after);
  return s->Run();
}

StatusOr<int64_t> PutReview(Db& db, const MatchReview& r) {
  ASSIGN_OR_RETURN(Stmt * s, db.Prepare(
      "INSERT INTO mpi_review (id, created, record_a, record_b, weight, detail, status, decided, steward, reason) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET created = excluded.created, "
      "record_a = excluded.record_a, record_b = excluded.record_b, weight = excluded.weight, detail = excluded.detail, "
      "status = excluded.status, decided = excluded.decided, steward = excluded.steward, reason = excluded.reason "
      "RETURNING id"));
  if (r.id > 0) {
    s->Bind(1, r.id);
  } else {
    s->BindNull(1);
  }
  s->Bind(2, r.created);
  s->BindStatic(3, r.record_a);
  s->BindStatic(4, r.record_b);
  s->Bind(5, r.weight);
  s->BindStatic(6, r.detail);
  s->BindStatic(7, r.status);
  s->Bind(8, r.decided);
  s->BindStatic(9, r.steward);
  s->BindStatic(10, r.reason);
  Status st;
  int64_t id = 0;
  if (s->Step(&st)) id = s->Int(0);
  RETURN_IF_ERROR(st);
  s->Reset();
  return id;
}

StatusOr<std::vector<PersonChange>> PersonChanges(Db& db, std::string_view person_id, int limit, int64_t offset) {
  ASSIGN_OR_RETURN(Stmt * s, db.Prepare(
      "SELECT seq, person_id, person_version, at, action, actor, reason, before, after FROM mpi_person_change "
      "WHERE (?1 = '' OR person_id = ?1) ORDER BY seq LIMIT ?2 OFFSET ?3"));
  s->BindStatic(1, person_id);
  s->Bind(2, static_cast<int64_t>(limit));
  s->Bind(3, offset);
  std::vector<PersonChange> out;
  Status st;
  while (s->Step(&st)) {
    PersonChange c;
    c.seq = s->Int(0);
    c.person_id = s->Text(1);
    c.person_version = s->Int(2);
    c.at = s->Int(3);
    c.action = s->Text(4);
    c.actor = s->Text(5);
    c.reason = s->Text(6);
    c.before = s->Text(7);
    c.after = s->Text(8);
    out.push_back(std::move(c));
  }
  s->Reset();
  RETURN_IF_ERROR(st);
  return out;
}

StatusOr<std::vector<MatchReview>> Reviews(Db& db, std::string_view status, int limit, int64_t offset) {
  ASSIGN_OR_RETURN(Stmt * s, db.Prepare(std::string(kReviewSelect) +
                                        " WHERE (?1 = '' OR status = ?1) ORDER BY id LIMIT ?2 OFFSET ?3"));
  s->BindStatic(1, status);
  s->Bind(2, static_cast<int64_t>(limit));
  s->Bind(3, offset);
  std::vector<MatchReview> out;
  Status st;
  while (s->Step(&st)) out.push_back(RowToReview(s));
  s->Reset();
  RETURN_IF_ERROR(st);
  return out;
}

StatusOr<int64_t> CountReviews(Db& db, std::string_view status) {
  ASSIGN_OR_RETURN(Stmt * s, db.Prepare("SELECT COUNT(*) FROM mpi_review WHERE (?1 = '' OR status = ?1)"));
  s->BindStatic(1, status);
  Status st;
  int64_t n = s->Step(&st) ? s->Int(0) : 0;
  s->Reset();
  RETURN_IF_ERROR(st);
  return n;
}

StatusOr<std::optional<MatchReview>> ReadReview(Db& db, int64_t id) {
  ASSIGN_OR_RETURN(Stmt * s, db.Prepare(std::string(kReviewSelect) + " WHERE id = ?"));
  s->Bind(1, id);
  Status st;
  if (!s->Step(&st)) {
    s->Reset();
    RETURN_IF_ERROR(st);
    return std::optional<MatchReview>();
  }
  MatchReview r = RowToReview(s);
  s->Reset();
  return std::optional<MatchReview>(std::move(r));
}

}  // namespace rhip::store::sqlite
