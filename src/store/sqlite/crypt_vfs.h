// Encryption at rest for the SQLite backend: a VFS that encrypts every page the
// store writes to its database file and its WAL, stacked on rhip-wal (wal_vfs.h).
//
// Each 4,096-byte page is sealed with AES-256-GCM (OpenSSL EVP): the first 4,068
// bytes are encrypted, the last 28 — SQLite's per-page reserved bytes, which the
// store sets aside when it creates an encrypted database — hold the page's random
// 12-byte nonce and its 16-byte tag. The associated data binds a page to its
// place: its page number, and in the WAL also the frame's salts, so pages cannot
// be swapped or moved between files without failing their tag. Page 1 keeps a
// plaintext marker in the 16 bytes of SQLite's "SQLite format 3" string: "rhip-gcm"
// and 8 bytes of key check, so that a store can say "encrypted", "plain" or
// "wrong key" before SQLite reads it. WAL headers (32 bytes) and frame headers
// (24 bytes: page number, size, salts, checksums over the plaintext) stay as
// SQLite wrote them; SQLite's checksums keep working because this VFS decrypts
// before SQLite sees a byte. The page key and the key check are derived from the
// operator's StoreKey with HKDF-SHA256; the master key itself is not kept.
//
// What never reaches the disk in plaintext: pages of the database and its WAL.
// Rollback journals and temporary files are refused (SQLITE_CANTOPEN) instead of
// written: the store runs in WAL mode with temp_store=MEMORY, so it needs none.
// The -shm file (the WAL index: page numbers and frame positions) is not encrypted.
//
// Thread-safety: the VFS of a key is registered once per process and never
// unregistered; each file handle is used by one connection at a time, as SQLite
// requires; cipher contexts are per thread.
#pragma once

#include <string>

#include "rhip/core/status.h"
#include "rhip/store/store_key.h"

namespace rhip::store::sqlite {

inline constexpr int kEncryptedPageSize = 4096;
inline constexpr int kEncryptedReserve = 28;  // 12-byte nonce + 16-byte GCM tag per page

// Registers (once per distinct key) the encrypting VFS for `key` and returns its
// name, for sqlite3_open_v2. kInternal when OpenSSL cannot derive the keys.
StatusOr<std::string> EncryptingVfs(const StoreKey& key);

enum class StoreFileState { kNew, kPlain, kEncrypted };

// What is stored at `path` (its first page; while the database file is still
// empty, the first frame of its WAL) checked against the key the caller has
// (null: none). kNew when nothing is stored yet. Errors, each saying what to do:
// an encrypted store without a key, a plain store with a key, the wrong key
// (kFailedPrecondition), a file that is no store at all (kDataLoss). Reads only.
StatusOr<StoreFileState> CheckStoreFile(const std::string& path, const StoreKey* key);

// The reason of the last page that failed its authentication on this thread
// (which file, which page), or "" — and forgets it. For error messages.
std::string TakePageFailure();

}  // namespace rhip::store::sqlite
