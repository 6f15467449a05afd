// Fuzz target: resident ID numbers (GB 11643-1999) — core's ParseIdCard and
// the EMPI's NormalizeIdNumber (full-width digits, spaces, x → X, 15 → 18).
// Invariants: a valid number normalizes to 18 characters with the right check
// character, and normalizing that again gives the same number (idempotent);
// the two functions agree; a "bad check" number differs from a valid one only
// in its check character.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "rhip/core/id_card.h"
#include "rhip/mpi/normalize.h"

using namespace rhip;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  auto info = ParseIdCard(raw);
  if (info.ok()) {
    const std::string& n = info->number;
    FUZZ_CHECK(n.size() == 18, "a valid number has 18 characters");
    FUZZ_CHECK(IdCardCheckChar(std::string_view(n).substr(0, 17)) == n[17], "its check character is right");
    FUZZ_CHECK(info->region == n.substr(0, 6), "region = the first 6 digits");
    FUZZ_CHECK(info->birth == n.substr(6, 4) + "-" + n.substr(10, 2) + "-" + n.substr(12, 2), "birth = digits 7-14");
    FUZZ_CHECK(info->upgraded == (raw.size() == 15), "upgraded exactly when 15 digits were given");
    auto again = ParseIdCard(n);
    FUZZ_CHECK(again.ok() && again->number == n && !again->upgraded && again->sex == info->sex &&
                   again->birth == info->birth,
               "ParseIdCard is idempotent");
    const mpi::NormalizedId norm = mpi::NormalizeIdNumber(raw);
    FUZZ_CHECK(norm.status == mpi::IdStatus::kValid && norm.number == n, "the EMPI accepts what core accepts");
    FUZZ_CHECK(mpi::NormalizeIdNumber(raw, info->birth, info->sex).status == mpi::IdStatus::kValid,
               "consistent with its own birth date and sex");
  }
  const mpi::NormalizedId norm = mpi::NormalizeIdNumber(raw);
  switch (norm.status) {
    case mpi::IdStatus::kValid: {
      FUZZ_CHECK(norm.number.size() == 18, "a normalized number has 18 characters");
      auto check = ParseIdCard(norm.number);
      FUZZ_CHECK(check.ok() && check->number == norm.number, "a normalized number is valid");
      const mpi::NormalizedId again = mpi::NormalizeIdNumber(norm.number);
      FUZZ_CHECK(again.status == mpi::IdStatus::kValid && again.number == norm.number && !again.upgraded,
                 "NormalizeIdNumber is idempotent");
      break;
    }
    case mpi::IdStatus::kBadCheck: {
      FUZZ_CHECK(norm.number.size() == 18, "a bad-check number keeps its 18 characters");
      FUZZ_CHECK(!norm.reason.empty(), "a bad-check number says why");
      const std::string fixed = norm.number.substr(0, 17) + IdCardCheckChar(std::string_view(norm.number).substr(0, 17));
      FUZZ_CHECK(ParseIdCard(fixed).ok(), "only the check character is wrong");
      break;
    }
    case mpi::IdStatus::kMalformed:
      FUZZ_CHECK(!norm.reason.empty(), "a malformed number says why");
      break;
    case mpi::IdStatus::kMissing:
      FUZZ_CHECK(norm.number.empty(), "a missing number has no number");
      break;
    case mpi::IdStatus::kConflicting:
      FUZZ_CHECK(false, "no record data given: nothing to conflict with");
  }
  return 0;
}
