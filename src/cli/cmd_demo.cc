// rhip demo: what `make run` starts — a demo region served on an embedded store.
//
// The data folder keeps the store between runs. When the folder holds a
// generated region (DATA/region/fhir/*.ndjson) that is not imported yet, it is
// imported first; then the API (and the web UI when built) is served.
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "rhip/core/log.h"
#include "rhip/http/serve.h"
#include "rhip/ingest/ndjson_import.h"
#include "rhip/store/store.h"

namespace rhip::cli {
namespace {

struct DemoFlags {
  std::string data = "data/demo";
  std::string bind = "127.0.0.1";
  int port = 8080;
};

int RunDemo(const DemoFlags& f) {
  namespace fs = std::filesystem;
  log::Init();
  std::error_code ec;
  fs::create_directories(f.data, ec);
  if (ec) return Fail("demo", "cannot create data folder " + f.data + ": " + ec.message());
  auto store = store::OpenStore({.url = "sqlite:" + f.data + "/rhip.db"});
  if (!store.ok()) return Fail("demo", store.status().ToString());
  const fs::path region = fs::path(f.data) / "region" / "fhir";
  const fs::path marker = fs::path(f.data) / ".imported";
  if (fs::is_directory(region, ec) && !fs::exists(marker, ec)) {
    std::fprintf(stderr, "[demo] importing %s\n", region.c_str());
    auto s = ingest::ImportNdjson(**store, {region.string()}, {}, [](const ingest::ImportProgress& p) {
      std::fprintf(stderr, "\r[demo] import %lld lines", static_cast<long long>(p.lines_done));
    });
    std::fprintf(stderr, "\n");
    if (!s.ok()) return Fail("demo", s.status().ToString());
    std::fprintf(stderr, "[demo] imported %lld resources (%lld rejected)\n",
                 static_cast<long long>(s->created + s->updated), static_cast<long long>(s->failed));
    std::FILE* m = std::fopen(marker.c_str(), "w");
    if (m) std::fclose(m);
  } else if (!fs::is_directory(region, ec)) {
    std::fprintf(stderr, "[demo] no generated region in %s yet: serving the store as it is\n", region.c_str());
  }
  http::ServeOptions o;
  o.server.bind = f.bind;
  o.server.port = f.port;
  if (fs::is_directory("web/dist", ec)) o.static_dir = "web/dist";
  Status st = http::Serve(o, **store, [&](int port) {
    std::printf("rhip serving http://%s:%d/fhir (data: %s)\n", f.bind.c_str(), port, f.data.c_str());
    std::printf("  try: curl http://%s:%d/fhir/metadata\n", f.bind.c_str(), port);
    std::fflush(stdout);
  });
  Status closed = (*store)->Close();
  if (!st.ok()) return Fail("demo", st.ToString());
  return closed.ok() ? 0 : Fail("demo", closed.ToString());
}

RunFn Setup(CLI::App& sub) {
  auto f = std::make_shared<DemoFlags>();
  sub.add_option("--data", f->data, "data folder of the demo (kept between runs)");
  sub.add_option("--port", f->port, "TCP port")->check(CLI::Range(0, 65535));
  sub.add_option("--bind", f->bind, "address to listen on");
  sub.footer("Example:\n  rhip demo --data data/demo --port 8080      # what `make run` does");
  return [f] { return RunDemo(*f); };
}

}  // namespace

RHIP_COMMAND(demo, "demo", "import the demo region if needed and serve it (make run)", Setup);

}  // namespace rhip::cli
