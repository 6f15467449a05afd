// rhip import: offline bulk load of FHIR NDJSON into a data folder's store.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "cli/store_key_flags.h"
#include "rhip/ingest/ndjson_import.h"
#include "rhip/store/store.h"

namespace rhip::cli {
namespace {

struct ImportFlags {
  std::string data;
  std::vector<std::string> paths;
  int threads = 2;
  int batch = ingest::ImportOptions{}.batch_size;
  bool no_validate = false;
  StoreKeyFlags key_flags;
};

int RunImport(const ImportFlags& f) {
  auto key = ResolveStoreKey(f.key_flags, f.data);
  if (!key.ok()) return Fail("import", key.status().ToString());
  std::error_code ec;
  std::filesystem::create_directories(f.data, ec);
  if (ec) return Fail("import", "cannot create data folder " + f.data + ": " + ec.message());
  auto store = store::OpenStore({.url = "sqlite:" + f.data + "/rhip.db", .key = *key});
  if (!store.ok()) return Fail("import", store.status().ToString());
  ingest::ImportOptions opt;
  opt.threads = f.threads;
  opt.batch_size = f.batch;
  opt.validate = !f.no_validate;
  auto progress = [](const ingest::ImportProgress& p) {
    double pct = p.bytes_total ? 100.0 * static_cast<double>(p.bytes_done) / static_cast<double>(p.bytes_total) : 0;
    std::fprintf(stderr, "\r[import] %5.1f%%  %lld lines  %s        ", pct,
                 static_cast<long long>(p.lines_done), p.current_file.c_str());
  };
  auto summary = ingest::ImportNdjson(**store, f.paths, opt, progress);
  std::fprintf(stderr, "\n");
  if (!summary.ok()) return Fail("import", summary.status().ToString());
  const auto& s = *summary;
  std::printf("imported %lld lines in %.1f s (%.0f resources/s): %lld created, %lld updated, "
              "%lld unchanged, %lld failed\n",
              static_cast<long long>(s.lines), s.seconds,
              s.seconds > 0 ? static_cast<double>(s.lines) / s.seconds : 0.0,
              static_cast<long long>(s.created), static_cast<long long>(s.updated),
              static_cast<long long>(s.unchanged), static_cast<long long>(s.failed));
  for (const auto& [type, n] : s.per_type) std::printf("  %-22s %lld\n", type.c_str(), static_cast<long long>(n));
  for (const auto& e : s.errors)
    std::fprintf(stderr, "%s:%lld: %s\n", e.file.c_str(), static_cast<long long>(e.line), e.message.c_str());
  if (s.failed > 0) {
    std::fprintf(stderr, "%lld lines were rejected (listed above); fix them and run the same command again: "
                 "lines already imported are skipped.\n", static_cast<long long>(s.failed));
  }
  if (auto st = (*store)->Close(); !st.ok()) return Fail("import", st.ToString());
  return s.failed > 0 ? 2 : 0;
}

RunFn Setup(CLI::App& sub) {
  auto f = std::make_shared<ImportFlags>();
  sub.add_option("--data", f->data, "data folder holding the store (rhip.db)")->required();
  sub.add_option("paths", f->paths, "NDJSON files or folders of *.ndjson")->required();
  sub.add_option("--threads", f->threads, "parse/validate workers")->check(CLI::Range(1, 64));
  sub.add_option("--batch", f->batch, "resources per transaction")->check(CLI::Range(1, 1000000));
  sub.add_flag("--no-validate", f->no_validate, "skip structural validation (trusted input only)");
  AddStoreKeyFlags(sub, f->key_flags);
  sub.footer("Example:\n  rhip import --data data/demo out/region/fhir\n"
             "  (a re-run skips what is already stored, so an interrupted import can be repeated)");
  return [f] { return RunImport(*f); };
}

}  // namespace

RHIP_COMMAND(import, "import", "load FHIR NDJSON files (e.g. rhip gen output) into a data folder", Setup);

}  // namespace rhip::cli
