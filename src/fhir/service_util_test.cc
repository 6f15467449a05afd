#include "service_util.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace rhip::fhir {
namespace {

uint64_t MillisOf(const std::string& id) {
  // The first 48 bits: "xxxxxxxx-xxxx" without the dash.
  return std::stoull(id.substr(0, 8) + id.substr(9, 4), nullptr, 16);
}

TEST(NewIdTest, IsAVersion7UuidWithTheVariantBits) {
  const std::regex form("^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewId();
    ASSERT_TRUE(std::regex_match(id, form)) << id;
    ASSERT_LE(id.size(), 64u);  // a FHIR id
  }
}

TEST(NewIdTest, CarriesTheCurrentUnixMilliseconds) {
  const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const std::string id = NewId();
  const auto after = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  const uint64_t ms = MillisOf(id);
  EXPECT_GE(ms, static_cast<uint64_t>(before)) << id;
  EXPECT_LE(ms, static_cast<uint64_t>(after)) << id;
}

TEST(NewIdTest, IdsMadeInDifferentMillisecondsSortInTheOrderMade) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(NewId());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_LT(ids[i - 1], ids[i]) << i;
}

TEST(NewIdTest, IsUniqueAcrossThreadsInTheSameMillisecond) {
  constexpr int kThreads = 4, kEach = 20000;
  std::vector<std::vector<std::string>> made(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&made, t] {
      for (int i = 0; i < kEach; ++i) made[t].push_back(NewId());
    });
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (const auto& v : made) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kEach));
}

}  // namespace
}  // namespace rhip::fhir
