// rhip serve: the platform's HTTP API over a data folder.
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "rhip/core/log.h"
#include "cli/platform.h"
#include "rhip/store/store.h"

namespace rhip::cli {
namespace {

int RunServe(PlatformFlags f) {
  log::Init();
  auto key = ResolveStoreKey(f.key_flags, f.data);
  if (!key.ok()) return Fail("serve", key.status().ToString());
  f.store_key = *key;
  std::error_code ec;
  std::filesystem::create_directories(f.data, ec);
  if (ec) return Fail("serve", "cannot create data folder " + f.data + ": " + ec.message());
  auto store = store::OpenStore({.url = "sqlite:" + f.data + "/rhip.db", .key = f.store_key});
  if (!store.ok()) return Fail("serve", store.status().ToString());
  return RunPlatform("serve", f, store->get());
}

RunFn Setup(CLI::App& sub) {
  auto f = std::make_shared<PlatformFlags>();
  sub.add_option("--data", f->data, "data folder (created if missing); the store is DATA/rhip.db")->required();
  AddPlatformFlags(sub, *f);
  sub.footer("Example:\n  rhip serve --data data/demo --port 8080 --mllp-port 2575\n"
             "  RHIP_STORE_KEY=$(cat /secrets/rhip.key) rhip serve --data data/secure --encrypt\n"
             "  curl http://127.0.0.1:8080/fhir/metadata\n"
             "  rhip hl7 send --to 127.0.0.1:2575 region/hl7v2/adt.hl7");
  return [f] { return RunServe(*f); };
}

}  // namespace

RHIP_COMMAND(serve, "serve", "serve the FHIR R4 API (and the web UI) over a data folder", Setup);

}  // namespace rhip::cli
