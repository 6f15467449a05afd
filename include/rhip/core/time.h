// Time in rhip: instants are int64 microseconds since 1970-01-01T00:00:00Z (UTC).
// FHIR date, dateTime and instant values are partial-precision; each maps to the
// closed range of instants it covers (DateRange), which is what date search and
// date indexing compare. Thread-safety: pure functions.
//
// Example:
//   ASSIGN_OR_RETURN(DateRange r, ParseFhirDate("2024-03"));
//   // r.low = 2024-03-01T00:00:00Z, r.high = 2024-03-31T23:59:59.999999Z
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "rhip/core/status.h"

namespace rhip {

using Micros = int64_t;

struct DateRange {
  Micros low = 0;   // first instant covered
  Micros high = 0;  // last instant covered (inclusive)
};

enum class DatePrecision { kYear, kMonth, kDay, kMinute, kSecond, kFraction };

// Parses a FHIR date / dateTime / instant ("2024", "2024-03", "2024-03-05",
// "2024-03-05T10:20:30+08:00", "2024-03-05T10:20:30.123Z"). A time without a
// zone is taken as UTC+08:00 (the region's local time). Errors name the problem.
StatusOr<DateRange> ParseFhirDate(std::string_view text, DatePrecision* precision = nullptr);

// Only the strict primitive forms (used by validation): returns false when `text`
// is not a valid FHIR `date`, `dateTime`, `instant` or `time`.
bool IsValidFhirDate(std::string_view text);
bool IsValidFhirDateTime(std::string_view text);
bool IsValidFhirInstant(std::string_view text);
bool IsValidFhirTime(std::string_view text);

// "2024-03-05T02:20:30.123Z" style (always UTC, milliseconds).
std::string FormatInstant(Micros t);
// "2024-03-05" in the region's local time (UTC+08:00).
std::string FormatLocalDate(Micros t);

Micros NowMicros();

// "2024-03-05" for a day number (days since 1970-01-01).
std::string FormatCivilDate(int64_t days);

// Days since 1970-01-01 for a civil date, and back (proleptic Gregorian).
int64_t DaysFromCivil(int y, unsigned m, unsigned d);
void CivilFromDays(int64_t z, int* y, unsigned* m, unsigned* d);

constexpr Micros kMicrosPerSecond = 1'000'000;
constexpr Micros kMicrosPerDay = 86'400LL * kMicrosPerSecond;
constexpr int kRegionUtcOffsetMinutes = 8 * 60;

}  // namespace rhip
