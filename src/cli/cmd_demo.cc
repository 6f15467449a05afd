// rhip demo: what `make run` starts — a demo region served on an embedded store.
//
// The data folder keeps the store between runs. The first run generates a demo
// region (rhip gen, 20,000 residents × 3 years) into DATA/region and imports it;
// later runs serve what is stored. The API (and the web UI when built) is served.
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "rhip/core/log.h"
#include "rhip/gen/generator.h"
#include "cli/platform.h"
#include "rhip/ingest/ndjson_import.h"
#include "rhip/store/store.h"

namespace rhip::cli {
namespace {

PlatformFlags DemoPlatform() {
  PlatformFlags p;
  p.data = "data/demo";
  return p;
}

struct DemoFlags {
  PlatformFlags platform = DemoPlatform();
  int64_t residents = 20000;
  int years = 3;
};

int RunDemo(DemoFlags f) {
  const std::string& data = f.platform.data;
  namespace fs = std::filesystem;
  log::Init();
  auto key = ResolveStoreKey(f.platform.key_flags, data);
  if (!key.ok()) return Fail("demo", key.status().ToString());
  f.platform.store_key = *key;
  std::error_code ec;
  fs::create_directories(data, ec);
  if (ec) return Fail("demo", "cannot create data folder " + data + ": " + ec.message());
  auto store = store::OpenStore({.url = "sqlite:" + data + "/rhip.db", .key = f.platform.store_key});
  if (!store.ok()) return Fail("demo", store.status().ToString());
  const fs::path region = fs::path(data) / "region" / "fhir";
  const fs::path marker = fs::path(data) / ".imported";
  if (!fs::exists(marker, ec) && !fs::is_directory(region, ec)) {
    gen::GenOptions g;
    g.residents = f.residents;
    g.years = f.years;
    g.seed = 1;
    g.out = (fs::path(data) / "region").string();
    g.force = true;
    std::fprintf(stderr, "[demo] generating a demo region: %lld residents, %d years (rhip gen)\n",
                 static_cast<long long>(g.residents), g.years);
    auto s = gen::GenerateRegion(g, [](const gen::GenProgress& p) {
      std::fprintf(stderr, "\r[demo] gen %lld / %lld residents", static_cast<long long>(p.residents_done),
                   static_cast<long long>(p.residents_total));
    });
    std::fprintf(stderr, "\n");
    if (!s.ok()) return Fail("demo", s.status().ToString());
    std::fprintf(stderr, "[demo] generated %lld resources in %.1f s\n", static_cast<long long>(s->resources), s->seconds);
  }
  if (fs::is_directory(region, ec) && !fs::exists(marker, ec)) {
    std::fprintf(stderr, "[demo] importing %s\n", region.c_str());
    auto s = ingest::ImportNdjson(**store, {region.string()}, {}, [](const ingest::ImportProgress& p) {
      std::fprintf(stderr, "\r[demo] import %5.1f%%  %lld resources", p.bytes_total ? 100.0 * p.bytes_done / p.bytes_total : 0.0,
                   static_cast<long long>(p.lines_done));
    });
    std::fprintf(stderr, "\n");
    if (!s.ok()) return Fail("demo", s.status().ToString());
    std::fprintf(stderr, "[demo] imported %lld resources (%lld rejected)\n",
                 static_cast<long long>(s->created + s->updated), static_cast<long long>(s->failed));
    std::FILE* m = std::fopen(marker.c_str(), "w");
    if (m) std::fclose(m);
  }
  if (f.platform.static_dir.empty() && fs::is_directory("web/dist", ec)) f.platform.static_dir = "web/dist";
  return RunPlatform("demo", f.platform, store->get());
}

RunFn Setup(CLI::App& sub) {
  auto f = std::make_shared<DemoFlags>();
  sub.add_option("--data", f->platform.data, "data folder of the demo (kept between runs)");
  AddPlatformFlags(sub, f->platform);
  sub.add_option("--residents", f->residents, "residents of the generated region (first run only)")
      ->check(CLI::Range(int64_t{1}, int64_t{10000000}));
  sub.add_option("--years", f->years, "years of care to generate (first run only)")->check(CLI::Range(1, 20));
  sub.footer("Example:\n  rhip demo --data data/demo --port 8080      # what `make run` does");
  return [f] { return RunDemo(*f); };
}

}  // namespace

RHIP_COMMAND(demo, "demo", "import the demo region if needed and serve it (make run)", Setup);

}  // namespace rhip::cli
