// The key that encrypts a data folder's stores at rest (issue 6, `--encrypt`).
//
// A StoreKey is 32 random bytes (a 256-bit master key) given by the operator as
// 64 hex digits or as base64 (e.g. `openssl rand -hex 32`), in the environment
// variable RHIP_STORE_KEY or in a key file kept outside the data folder. The
// SQLite backend derives its page key from it with HKDF (docs/STORAGE.md,
// "Encryption at rest"); the master key itself never touches a page.
//
// A StoreKey never prints itself (no ToString, no operator<<) and wipes its bytes
// when destroyed. Thread-safety: a value; const methods may be called from any thread.
//
// Example:
//   ASSIGN_OR_RETURN(store::StoreKey key, store::StoreKey::Parse(std::getenv("RHIP_STORE_KEY")));
//   auto s = store::OpenStore({.url = "sqlite:data/rhip.db", .key = key});
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "rhip/core/status.h"

namespace rhip::store {

class StoreKey {
 public:
  static constexpr size_t kSize = 32;

  // 64 hex digits, or standard/URL-safe base64 of 32 bytes (padding optional);
  // surrounding whitespace (a key file's newline) is ignored. kInvalidArgument
  // names the accepted forms, never the text given.
  static StatusOr<StoreKey> Parse(std::string_view text);
  // The key in a file (the same forms). Refuses a file inside `data_dir` (the key
  // must not sit beside what it protects) and one others may read (mode & 077).
  static StatusOr<StoreKey> FromFile(const std::string& path, const std::string& data_dir);

  StoreKey(const StoreKey& other) = default;
  StoreKey& operator=(const StoreKey& other) = default;
  ~StoreKey();

  const std::array<uint8_t, kSize>& bytes() const { return bytes_; }

 private:
  StoreKey() = default;
  std::array<uint8_t, kSize> bytes_{};
};

}  // namespace rhip::store
