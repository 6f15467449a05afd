// Compiles a store::SearchQuery into SQLite SQL over the index tables.
// Private to the SQLite backend. Thread-safety: pure function.
#pragma once

#include <string>
#include <vector>

#include "rhip/core/status.h"
#include "rhip/store/search_query.h"
#include "store/sqlite/index_manifest.h"
#include "store/sqlite/sqlite_util.h"

namespace rhip::store::sqlite {

struct CompiledSql {
  std::string where;  // conditions on alias `r` (table resource), ANDed; never empty
  std::vector<SqlValue> params;
  std::string order_by;  // "ORDER BY ..." with its own params appended to `params` order:
  std::vector<SqlValue> order_params;
};

StatusOr<CompiledSql> CompileSearch(const SearchQuery& q);

}  // namespace rhip::store::sqlite
