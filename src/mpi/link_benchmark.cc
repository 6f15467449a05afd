// The batch linkage's scoring loop: candidate pairs compared field by field and
// weighed, per second on one core (issue 5 goal: ≥ 2,000,000).
#include <benchmark/benchmark.h>

#include <cstdio>

#include "rhip/mpi/link.h"

namespace {

// 400,000 records: 100,000 people registered four times, the later ones with a
// homophone and, for a third of them, without the ID number or the phone.
const std::vector<rhip::mpi::PatientRecord>& Records() {
  static const auto* records = [] {
    auto* out = new std::vector<rhip::mpi::PatientRecord>();
    const char* surnames[] = {"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭"};
    const char* given[] = {"伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
                           "秀英", "桂英", "建华", "志强", "丽", "平", "刚", "辉"};
    const char* homophone[] = {"玮", "方", "那", "民", "晶", "墙", "垒", "君", "阳", "涌", "燕", "洁", "捐", "滔", "鸣", "钞",
                               "秀瑛", "贵英", "建化", "智强", "莉", "萍", "钢", "晖"};
    for (int i = 0; i < 100000; ++i) {
      char birth[16], first17[24];
      const int y = 1930 + i % 90, m = 1 + (i / 90) % 12, d = 1 + (i / 1080) % 28;
      std::snprintf(birth, sizeof birth, "%04d-%02d-%02d", y, m, d);
      std::snprintf(first17, sizeof first17, "330402%04d%02d%02d%03d", y, m, d, (i / 30240 % 500) * 2 + (i % 2));
      for (int copy = 0; copy < 4; ++copy) {
        rhip::mpi::PatientRecord r;
        r.id = "p" + std::to_string(i) + "-" + std::to_string(copy);
        r.name = rhip::mpi::NormalizeName(std::string(surnames[i % 16]) + given[(i / 16) % 24] +
                                          (copy % 2 ? homophone : given)[(i / 384) % 24]);
        r.birth = birth;
        r.sex = i % 2 ? rhip::Sex::kMale : rhip::Sex::kFemale;
        if (copy == 0 || i % 3 != 0) {
          r.id_number = rhip::mpi::NormalizeIdNumber(std::string(first17) + rhip::IdCardCheckChar(first17), r.birth, r.sex);
          r.phone = "13" + std::to_string(100000000 + i);
        }
        r.county = "330402";
        out->push_back(std::move(r));
      }
    }
    return out;
  }();
  return *records;
}

void BM_LinkScoring(benchmark::State& state) {
  const auto& records = Records();
  double pairs = 0, seconds = 0;
  const rhip::mpi::LinkOptions o;
  for (auto _ : state) {
    auto r = rhip::mpi::LinkRecords(records, o);
    // Scored: every candidate pair and the random pairs that estimate u.
    pairs += static_cast<double>(r.stats.candidate_pairs + o.u_sample_pairs);
    seconds += r.stats.seconds_scoring;
    benchmark::DoNotOptimize(r);
  }
  state.counters["pairs_per_s_one_core"] = pairs / seconds;
  state.counters["candidate_pairs"] = pairs / static_cast<double>(state.iterations());
}
BENCHMARK(BM_LinkScoring)->Unit(benchmark::kMillisecond);

}  // namespace
