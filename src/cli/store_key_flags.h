// `--encrypt` and `--key-file` for every sub-command that opens a data folder's
// stores (serve, demo, import, hl7 replay, audit verify, bench empi-match).
//
// With --encrypt the key comes from --key-file PATH (outside the data folder,
// mode 0600) or else from the environment variable RHIP_STORE_KEY (64 hex
// digits or base64 of 32 bytes: `openssl rand -hex 32`). The key is never
// printed or logged. Without --encrypt the stores are plain, and an encrypted
// store is refused with a message saying to pass --encrypt.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

#include "rhip/core/status.h"
#include "rhip/store/store_key.h"

namespace rhip::cli {

struct StoreKeyFlags {
  bool encrypt = false;
  std::string key_file;
};

void AddStoreKeyFlags(CLI::App& sub, StoreKeyFlags& f);

// The key of the data folder `data_dir`'s stores, or none without --encrypt.
StatusOr<std::optional<store::StoreKey>> ResolveStoreKey(const StoreKeyFlags& f, const std::string& data_dir);

}  // namespace rhip::cli
