// Normalization cost per record, for the EMPI's batch-link budget (1,000,000 records).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "rhip/mpi/index.h"
#include "rhip/mpi/normalize.h"

namespace {

void BM_NormalizeName(benchmark::State& state) {
  const char* names[] = {"张伟", "王秀英", "陳美玲", "欧阳娜娜", "李小明", "刘 德华", "单丽", "周杰"};
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(rhip::mpi::NormalizeName(names[i++ % 8]));
}
BENCHMARK(BM_NormalizeName);

void BM_NormalizeIdNumber(benchmark::State& state) {
  for (auto _ : state)
    benchmark::DoNotOptimize(rhip::mpi::NormalizeIdNumber("330402199001011235", "1990-01-01", rhip::Sex::kMale));
}
BENCHMARK(BM_NormalizeIdNumber);

void BM_NormalizeAddress(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(rhip::mpi::NormalizeAddress("浙江省嘉兴市南湖区新丰镇12村35号"));
}
BENCHMARK(BM_NormalizeAddress);

// Patient/$match against 1,000,000 indexed records: each iteration matches 10,000
// queries (another registration of an indexed person: homophone, no phone) and
// reports the per-query p50 and p99 as counters.
const rhip::mpi::PatientIndex& MillionIndex() {
  static rhip::mpi::PatientIndex* index = [] {
    auto* ix = new rhip::mpi::PatientIndex(rhip::mpi::DefaultModel());
    const char* surnames[] = {"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭"};
    const char* given[] = {"伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
                           "秀英", "桂英", "建华", "志强", "丽", "平", "刚", "辉"};
    for (int i = 0; i < 1000000; ++i) {
      rhip::mpi::PatientRecord r;
      r.id = "p" + std::to_string(i);
      r.name = rhip::mpi::NormalizeName(std::string(surnames[i % 16]) + given[(i / 16) % 24] + given[(i / 384) % 24]);
      char birth[16], first17[24];
      std::snprintf(birth, sizeof birth, "%04d-%02d-%02d", 1930 + i % 90, 1 + (i / 90) % 12, 1 + (i / 1080) % 28);
      r.birth = birth;
      r.sex = i % 2 ? rhip::Sex::kMale : rhip::Sex::kFemale;
      std::snprintf(first17, sizeof first17, "330402%04d%02d%02d%03d", 1930 + i % 90, 1 + (i / 90) % 12, 1 + (i / 1080) % 28,
                    (i / 30240 % 500) * 2 + (i % 2));
      r.id_number = rhip::mpi::NormalizeIdNumber(std::string(first17) + rhip::IdCardCheckChar(first17), r.birth, r.sex);
      r.phone = "13" + std::to_string(100000000 + i);
      r.county = "330402";
      ix->Upsert(std::move(r));
    }
    return ix;
  }();
  return *index;
}

long RssKb() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  long kb = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  std::fclose(f);
  return kb;
}

void BM_MatchOneMillion(benchmark::State& state) {
  const long rss_before = RssKb();
  const auto& index = MillionIndex();
  state.counters["index_MB"] = static_cast<double>(index.MemoryBytes()) / 1e6;
  state.counters["rss_growth_MB"] = static_cast<double>(RssKb() - rss_before) / 1e3;
  std::vector<double> us;
  for (auto _ : state) {
    for (int q = 0; q < 10000; ++q) {
      const int i = (q * 7919) % 1000000;
      rhip::mpi::PatientRecord r;
      r.id = "query";
      const char* surnames[] = {"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭"};
      const char* given[] = {"伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
                             "秀英", "桂英", "建华", "志强", "丽", "平", "刚", "辉"};
      r.name = rhip::mpi::NormalizeName(std::string(surnames[i % 16]) + given[(i / 16) % 24] + given[(i / 384) % 24]);
      char birth[16];
      std::snprintf(birth, sizeof birth, "%04d-%02d-%02d", 1930 + i % 90, 1 + (i / 90) % 12, 1 + (i / 1080) % 28);
      r.birth = birth;
      r.sex = i % 2 ? rhip::Sex::kMale : rhip::Sex::kFemale;
      r.county = "330402";
      const auto t0 = std::chrono::steady_clock::now();
      auto found = index.Match(r, 10);
      us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
      benchmark::DoNotOptimize(found);
    }
  }
  std::sort(us.begin(), us.end());
  state.counters["p50_us"] = us[us.size() / 2];
  state.counters["p99_us"] = us[us.size() * 99 / 100];
}
BENCHMARK(BM_MatchOneMillion)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
