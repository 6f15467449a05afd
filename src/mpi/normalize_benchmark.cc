// Normalization cost per record, for the EMPI's batch-link budget (1,000,000 records).
#include <benchmark/benchmark.h>

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

}  // namespace

BENCHMARK_MAIN();
