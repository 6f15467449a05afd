// The SQLite backend of store::Store (see include/rhip/store/store.h for the contract).
//
// One writer thread owns the write connection and commits groups of callers'
// functions in one transaction (a savepoint each); readers take a connection
// from a pool. WAL mode lets readers run while the writer commits.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "rhip/store/store.h"

namespace rhip::store::sqlite {

// `path` is a file name, or ":memory:" for a private temporary database (a
// temp file that is deleted on close, so that the pool's connections share it).
StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path, const StoreOptions& options);

// The page size of a new unencrypted store. A resource row of 1.5-2.5 KB (a Claim, an
// Observation with its index manifest) leaves half of a 4 KiB page unused: 8 KiB pages
// made the bulk import 12-29 % faster and its store 17 % smaller (2.9 → 2.4 GB), with
// reads and searches no slower (bench/RESULTS.md). An encrypted store keeps kEncryptedPageSize;
// an existing store keeps the page size it was made with.
inline constexpr int kPlainPageSize = 8192;

// The schema version this build writes (PRAGMA user_version).
int SchemaVersion();

// Creates or upgrades the schema of the database at `path` to `version` only
// (not further), without opening a store: for tests of the migrations, which
// fill an old schema and then open it with OpenSqliteStore.
Status MigrateForTest(const std::string& path, int version);

// The WAL frames not yet copied into the database, after a commit left the WAL
// `frames` long; `copied` holds what the last checkpoint copied. A WAL shorter than
// that has started over (SQLite rewinds it once a checkpoint copied everything):
// `copied` becomes 0, so that the next checkpoint is not put off by a stale count.
// The writer asks for a background checkpoint when this reaches its threshold.
inline int UncopiedWalFrames(int frames, std::atomic<int>& copied) {
  const int c = copied.load(std::memory_order_relaxed);
  if (frames >= c) return frames - c;
  copied.store(0, std::memory_order_relaxed);
  return frames;
}

}  // namespace rhip::store::sqlite
