// rhip gen: write a synthetic region (FHIR NDJSON + ground truth).
#include <cstdio>

#include "cli/command.h"
#include "rhip/gen/generator.h"

namespace rhip::cli {
namespace {

int RunGen(const gen::GenOptions& o) {
  auto s = gen::GenerateRegion(o, [](const gen::GenProgress& p) {
    std::fprintf(stderr, "\r[gen] %lld / %lld residents", static_cast<long long>(p.residents_done),
                 static_cast<long long>(p.residents_total));
  });
  std::fprintf(stderr, "\n");
  if (!s.ok()) return Fail("gen", s.status().message());
  std::printf("generated %lld residents, %lld resources in %.1f s (%.0f resources/s) into %s\n",
              static_cast<long long>(s->residents), static_cast<long long>(s->resources), s->seconds,
              s->seconds > 0 ? static_cast<double>(s->resources) / s->seconds : 0.0, o.out.c_str());
  for (const auto& [t, n] : s->per_type) std::printf("  %-18s %lld\n", t.c_str(), static_cast<long long>(n));
  std::printf("  truth: %s/truth/ (patients, residents, indicators, immunizations, repeated-results, notifiable, outbreaks)\n  hl7v2: %s/hl7v2/ (adt, adt-gb18030, oru, vxu)\n", o.out.c_str(), o.out.c_str());
  return 0;
}

RunFn Setup(CLI::App& sub) {
  auto o = std::make_shared<gen::GenOptions>();
  sub.add_option("--residents", o->residents, "number of residents")->required();
  sub.add_option("--seed", o->seed, "random seed (same seed = same bytes)");
  sub.add_option("--years", o->years, "years of care to simulate (1-20)");
  sub.add_option("--start", o->start, "first day of care, YYYY-MM-DD");
  sub.add_option("--out", o->out, "output folder")->required();
  sub.add_flag("--force", o->force, "write into a non-empty folder (replaces its fhir/ and truth/)");
  sub.footer("Example:\n  rhip gen --residents 20000 --seed 7 --years 3 --out data/demo/region\n"
             "  rhip import --data data/demo data/demo/region/fhir");
  return [o] { return RunGen(*o); };
}

}  // namespace

RHIP_COMMAND(gen, "gen", "generate a synthetic region (嘉兴市) with ground truth", Setup);

}  // namespace rhip::cli
