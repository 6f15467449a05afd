#include "rhip/core/time.h"

#include <chrono>
#include <cstdio>

namespace rhip {
namespace {

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

struct Parsed {
  int year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0;
  int64_t frac_micros = 0;
  int frac_digits = 0;
  bool has_zone = false;
  int zone_minutes = 0;
  DatePrecision precision = DatePrecision::kYear;
};

// Parses the common grammar; returns an error message or empty.
std::string ParseParts(std::string_view s, Parsed* p) {
  if (!Digits(s, 0, 4, &p->year)) return "expected a 4-digit year";
  if (s.size() == 4) { p->precision = DatePrecision::kYear; return {}; }
  if (s[4] != '-' || !Digits(s, 5, 2, &p->month)) return "expected -MM after the year";
  if (p->month < 1 || p->month > 12) return "month must be 01-12";
  if (s.size() == 7) { p->precision = DatePrecision::kMonth; return {}; }
  if (s[7] != '-' || !Digits(s, 8, 2, &p->day)) return "expected -DD after the month";
  if (p->day < 1 || p->day > DaysInMonth(p->year, p->month)) return "day out of range for the month";
  if (s.size() == 10) { p->precision = DatePrecision::kDay; return {}; }
  if (s[10] != 'T') return "expected T between date and time";
  if (!Digits(s, 11, 2, &p->hour) || s.size() < 16 || s[13] != ':' || !Digits(s, 14, 2, &p->minute))
    return "expected hh:mm after T";
  if (p->hour > 23 || p->minute > 59) return "time out of range";
  size_t pos = 16;
  p->precision = DatePrecision::kMinute;
  if (pos < s.size() && s[pos] == ':') {
    if (!Digits(s, pos + 1, 2, &p->second) || p->second > 60) return "expected :ss seconds";
    pos += 3;
    p->precision = DatePrecision::kSecond;
    if (pos < s.size() && s[pos] == '.') {
      ++pos;
      size_t start = pos;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
        if (p->frac_digits < 6) {
          p->frac_micros = p->frac_micros * 10 + (s[pos] - '0');
          ++p->frac_digits;
        }
        ++pos;
      }
      if (pos == start) return "expected digits after the decimal point";
      for (int i = p->frac_digits; i < 6; ++i) p->frac_micros *= 10;
      p->precision = DatePrecision::kFraction;
    }
  }
  if (pos == s.size()) return {};
  if (s[pos] == 'Z' && pos + 1 == s.size()) {
    p->has_zone = true;
    return {};
  }
  if ((s[pos] == '+' || s[pos] == '-') && s.size() == pos + 6 && s[pos + 3] == ':') {
    int zh = 0, zm = 0;
    if (!Digits(s, pos + 1, 2, &zh) || !Digits(s, pos + 4, 2, &zm) || zh > 14 || zm > 59)
      return "bad time-zone offset";
    p->has_zone = true;
    p->zone_minutes = (s[pos] == '-' ? -1 : 1) * (zh * 60 + zm);
    return {};
  }
  return "unexpected characters after the time (expected Z or +hh:mm)";
}

}  // namespace

int64_t DaysFromCivil(int y, unsigned m, unsigned d) {
  // Howard Hinnant's days_from_civil.
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t yy = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int>(yy + (*m <= 2));
}

StatusOr<DateRange> ParseFhirDate(std::string_view text, DatePrecision* precision) {
  Parsed p;
  std::string err = ParseParts(text, &p);
  if (!err.empty()) {
    return InvalidArgument("invalid date/time '" + std::string(text) + "': " + err);
  }
  if (precision) *precision = p.precision;
  const int zone = p.has_zone ? p.zone_minutes : kRegionUtcOffsetMinutes;
  auto instant = [&](int y, int mo, int d, int h, int mi, int s, int64_t us) {
    return DaysFromCivil(y, mo, d) * kMicrosPerDay +
           (static_cast<int64_t>(h) * 3600 + mi * 60 + s - zone * 60) * kMicrosPerSecond + us;
  };
  DateRange r;
  switch (p.precision) {
    case DatePrecision::kYear:
      r.low = instant(p.year, 1, 1, 0, 0, 0, 0);
      r.high = instant(p.year + 1, 1, 1, 0, 0, 0, 0) - 1;
      break;
    case DatePrecision::kMonth: {
      int ny = p.month == 12 ? p.year + 1 : p.year, nm = p.month == 12 ? 1 : p.month + 1;
      r.low = instant(p.year, p.month, 1, 0, 0, 0, 0);
      r.high = instant(ny, nm, 1, 0, 0, 0, 0) - 1;
      break;
    }
    case DatePrecision::kDay:
      r.low = instant(p.year, p.month, p.day, 0, 0, 0, 0);
      r.high = r.low + kMicrosPerDay - 1;
      break;
    case DatePrecision::kMinute:
      r.low = instant(p.year, p.month, p.day, p.hour, p.minute, 0, 0);
      r.high = r.low + 60 * kMicrosPerSecond - 1;
      break;
    case DatePrecision::kSecond:
      r.low = instant(p.year, p.month, p.day, p.hour, p.minute, p.second, 0);
      r.high = r.low + kMicrosPerSecond - 1;
      break;
    case DatePrecision::kFraction: {
      r.low = instant(p.year, p.month, p.day, p.hour, p.minute, p.second, p.frac_micros);
      int64_t step = 1;
      for (int i = p.frac_digits; i < 6; ++i) step *= 10;
      r.high = r.low + step - 1;
      break;
    }
  }
  return r;
}

bool IsValidFhirDate(std::string_view t) {
  Parsed p;
  return ParseParts(t, &p).empty() && p.precision <= DatePrecision::kDay;
}

bool IsValidFhirDateTime(std::string_view t) {
  Parsed p;
  if (!ParseParts(t, &p).empty()) return false;
  if (p.precision <= DatePrecision::kDay) return true;
  // FHIR dateTime: if hours and minutes are given, seconds and a zone must be too.
  return p.precision >= DatePrecision::kSecond && p.has_zone;
}

bool IsValidFhirInstant(std::string_view t) {
  Parsed p;
  return ParseParts(t, &p).empty() && p.precision >= DatePrecision::kSecond && p.has_zone;
}

bool IsValidFhirTime(std::string_view t) {
  int h, m, s;
  if (t.size() < 8 || !Digits(t, 0, 2, &h) || t[2] != ':' || !Digits(t, 3, 2, &m) || t[5] != ':' ||
      !Digits(t, 6, 2, &s) || h > 23 || m > 59 || s > 60)
    return false;
  if (t.size() == 8) return true;
  if (t[8] != '.' || t.size() == 9) return false;
  for (size_t i = 9; i < t.size(); ++i)
    if (t[i] < '0' || t[i] > '9') return false;
  return true;
}

std::string FormatInstant(Micros t) {
  int64_t days = t >= 0 ? t / kMicrosPerDay : -((-t + kMicrosPerDay - 1) / kMicrosPerDay);
  int64_t rem = t - days * kMicrosPerDay;
  int y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  int64_t secs = rem / kMicrosPerSecond;
  int ms = static_cast<int>((rem % kMicrosPerSecond) / 1000);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", y, m, d,
                static_cast<int>(secs / 3600), static_cast<int>(secs / 60 % 60),
                static_cast<int>(secs % 60), ms);
  return buf;
}

std::string FormatCivilDate(int64_t days) {
  int y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  if (y < 0 || y > 9999) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", y, m, d);
    return buf;
  }
  // Hot in the generator and the index: digits by hand rather than snprintf.
  std::string s = "0000-00-00";
  s[0] = static_cast<char>('0' + y / 1000);
  s[1] = static_cast<char>('0' + y / 100 % 10);
  s[2] = static_cast<char>('0' + y / 10 % 10);
  s[3] = static_cast<char>('0' + y % 10);
  s[5] = static_cast<char>('0' + m / 10);
  s[6] = static_cast<char>('0' + m % 10);
  s[8] = static_cast<char>('0' + d / 10);
  s[9] = static_cast<char>('0' + d % 10);
  return s;
}

std::string FormatLocalDate(Micros t) {
  Micros local = t + kRegionUtcOffsetMinutes * 60 * kMicrosPerSecond;
  return FormatCivilDate(local >= 0 ? local / kMicrosPerDay : -((-local + kMicrosPerDay - 1) / kMicrosPerDay));
}

Micros NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace rhip
