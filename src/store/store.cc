#include "rhip/store/store.h"

#include "store/sqlite/sqlite_store.h"

namespace rhip::store {

StatusOr<std::unique_ptr<Store>> OpenStore(const StoreOptions& options) {
  const std::string& url = options.url;
  if (url.rfind("sqlite:", 0) == 0) {
    std::string path = url.substr(7);
    if (path.empty()) return InvalidArgument("store URL '" + url + "' names no file: use sqlite:PATH");
    return sqlite::OpenSqliteStore(path, options);
  }
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
    return Unimplemented("the PostgreSQL backend is not built yet; use sqlite:PATH");
  }
  return InvalidArgument("unknown store URL '" + url + "': use sqlite:PATH or sqlite::memory:");
}

}  // namespace rhip::store
