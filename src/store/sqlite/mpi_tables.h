// The SQLite side of the EMPI's stewardship records (store.h: PersonChange,
// MatchReview): the trail of person changes and the review queue. Kept apart
// from sqlite_store.cc so that the EMPI's tables are one self-contained piece.
// Thread-safety: as Db (one thread per connection).
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "rhip/store/store.h"
#include "store/sqlite/sqlite_util.h"

namespace rhip::store::sqlite {

// The migration that creates the tables (one step of kMigrations).
extern const char* const kMpiTablesMigration;

Status AppendPersonChange(Db& db, const PersonChange& change);
StatusOr<int64_t> PutReview(Db& db, const MatchReview& review);
StatusOr<std::vector<PersonChange>> PersonChanges(Db& db, std::string_view person_id, int limit, int64_t offset);
StatusOr<std::vector<MatchReview>> Reviews(Db& db, std::string_view status, int limit, int64_t offset);
StatusOr<int64_t> CountReviews(Db& db, std::string_view status);
StatusOr<std::optional<MatchReview>> ReadReview(Db& db, int64_t id);

}  // namespace rhip::store::sqlite
