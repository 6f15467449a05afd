#include "fhir/service_util.h"

#include "rhip/core/url.h"

#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>

namespace rhip::fhir {

std::string HttpDate(Micros t) {
  static const char* kDays[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  int64_t secs = t / kMicrosPerSecond;
  int64_t days = secs / 86400;
  int64_t rem = secs % 86400;
  int y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02d:%02d:%02d GMT", kDays[((days % 7) + 7) % 7], d,
                kMonths[m - 1], y, static_cast<int>(rem / 3600), static_cast<int>(rem / 60 % 60),
                static_cast<int>(rem % 60));
  return buf;
}

// A time-ordered UUID (RFC 9562 version 7: 48 bits of Unix milliseconds, then the
// sub-millisecond fraction in rand_a, then 62 random bits). Ids created close in time
// sort close together, so a create adds to the ends of the id and reference indexes
// instead of dirtying a page at a random place in each (what a version 4 id did).
std::string NewId() {
  thread_local std::mt19937_64 rng(std::random_device{}() ^
                                   (static_cast<uint64_t>(reinterpret_cast<uintptr_t>(&rng)) << 16));
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const uint64_t us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(now).count());
  const uint64_t ms = us / 1000;
  const uint64_t fraction = (us % 1000) * 4096 / 1000;  // 12 bits
  const uint64_t a = (ms << 16) | 0x7000ULL | fraction;
  const uint64_t b = (rng() & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // variant 10
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xFFFF), static_cast<unsigned>(a & 0xFFFF),
                static_cast<unsigned>(b >> 48), static_cast<unsigned long long>(b & 0xFFFFFFFFFFFFULL));
  return buf;
}

}  // namespace rhip::fhir
