// Resident ID card numbers (居民身份证号码), GB 11643-1999: DOMAIN.md B.1.
//
// 18 characters: 6-digit address code (GB/T 2260, where the number was first
// issued), 8-digit birth date YYYYMMDD, 3-digit sequence (odd = male, even =
// female), 1 check character. Old 15-digit numbers (YYMMDD, no check) are
// upgraded by inserting "19" and appending the check character.
//
// A number that fails its check is evidence of a typing error, not proof of a
// different person: callers decide what to do with the precise reason returned.
// Thread-safety: pure functions.
//
// Example:
//   ASSIGN_OR_RETURN(IdCardInfo info, ParseIdCard("330402199001011234"));
//   info.sex == Sex::kMale; info.birth == "1990-01-01"; info.region == "330402"
#pragma once

#include <string>
#include <string_view>

#include "rhip/core/status.h"

namespace rhip {

enum class Sex { kUnknown, kMale, kFemale };

struct IdCardInfo {
  std::string number;   // normalized 18-character form (upper-case X)
  std::string region;   // 6-digit issuing address code
  std::string birth;    // YYYY-MM-DD
  Sex sex = Sex::kUnknown;
  bool upgraded = false;  // was a 15-digit number
};

// The check character for the first 17 digits ('0'-'9' or 'X'); '\0' when
// `first17` is not 17 digits.
char IdCardCheckChar(std::string_view first17);

// Validates an 18-digit number (or upgrades a 15-digit one). Errors
// (kInvalidArgument) say which rule failed: length, non-digit, impossible birth
// date, wrong check character (with the expected one).
StatusOr<IdCardInfo> ParseIdCard(std::string_view number);

// 15 → 18 digits without other checks; empty when not 15 digits.
std::string UpgradeIdCard15(std::string_view number15);

}  // namespace rhip
