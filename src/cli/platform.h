// The running platform: what `rhip serve` and `rhip demo` both start over a
// data folder — the store, the EMPI, Bulk Data, the optional HL7 v2 listener
// and the HTTP API — wired in one place so that every new service (auth,
// audit, domain modules) is added once.
//
// Example:
//   PlatformFlags f;  f.data = "data/demo";  f.port = 8080;
//   AddPlatformFlags(sub, f);            // --port, --bind, --threads, --static, --mllp-port …
//   return RunPlatform("serve", f, store.get());
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "cli/store_key_flags.h"
#include "rhip/store/store.h"

namespace rhip::cli {

struct PlatformFlags {
  std::string data;
  std::string bind = "127.0.0.1";
  int port = 8080;
  int threads = 0;
  std::string static_dir;
  int mllp_port = -1;  // -1: no HL7 v2 listener
  int hl7_appliers = 2;
  bool insecure_dev = false;  // no tokens, every caller is admin (development only)
  double rate_limit = 1000;   // requests/s per client; 0 = none
  std::vector<std::string> cors_origins;
  std::string tls_cert, tls_key;  // HTTPS (and TLS on MLLP) when both are set
  std::string mllp_client_ca;     // MLLP clients must present a certificate from this CA (mutual TLS)
  std::string audit_anchor;       // file the audit log's head is appended to (empty: none)
  double audit_anchor_interval = 60;  // seconds between anchors
  StoreKeyFlags key_flags;        // --encrypt, --key-file
  std::optional<store::StoreKey> store_key{};  // resolved from key_flags (ResolveStoreKey) before the store is opened
};

// Adds the serving flags (everything but --data, with --encrypt/--key-file) to a sub-command.
void AddPlatformFlags(CLI::App& sub, PlatformFlags& f);

// Serves `store` (opened on f.data/rhip.db) until SIGTERM/SIGINT, then closes it.
// Returns the process exit code; errors are printed as "rhip <command>: error: …".
int RunPlatform(const std::string& command, const PlatformFlags& f, store::Store* store);

}  // namespace rhip::cli
