#include "cli/store_key_flags.h"

#include <cstdlib>

namespace rhip::cli {

void AddStoreKeyFlags(CLI::App& sub, StoreKeyFlags& f) {
  sub.add_flag("--encrypt", f.encrypt,
               "the data folder's stores are encrypted at rest (AES-256-GCM pages); the key comes from --key-file "
               "or RHIP_STORE_KEY (64 hex digits or base64 of 32 bytes: openssl rand -hex 32)");
  sub.add_option("--key-file", f.key_file, "file holding the store key (mode 0600, outside the data folder); needs --encrypt");
}

StatusOr<std::optional<store::StoreKey>> ResolveStoreKey(const StoreKeyFlags& f, const std::string& data_dir) {
  if (!f.encrypt) {
    if (!f.key_file.empty()) return InvalidArgument("--key-file is only used with --encrypt");
    return std::optional<store::StoreKey>();
  }
  if (!f.key_file.empty()) {
    ASSIGN_OR_RETURN(store::StoreKey key, store::StoreKey::FromFile(f.key_file, data_dir));
    return std::optional<store::StoreKey>(key);
  }
  const char* env = std::getenv("RHIP_STORE_KEY");
  if (!env || !*env)
    return InvalidArgument("--encrypt needs the store key: set RHIP_STORE_KEY (64 hex digits or base64 of 32 bytes; "
                           "make one with: openssl rand -hex 32) or pass --key-file FILE");
  auto key = store::StoreKey::Parse(env);
  if (!key.ok()) return key.status().WithContext("RHIP_STORE_KEY");
  return std::optional<store::StoreKey>(*key);
}

}  // namespace rhip::cli
