// Fuzz target: the EMPI's name normalization (full-width → half-width,
// OpenCC traditional → simplified, ICU Han-Latin pinyin with surname readings,
// initials, near-homophone key), plus phone and address normalization, on
// arbitrary bytes (invalid UTF-8 included).
// Invariants: pinyin is the syllables joined by spaces, in lower-case ASCII;
// one initial per syllable; the fuzzy key has as many syllables; surname +
// given = simplified; normalizing the simplified form again gives the same
// simplified form (so a name typed in simplified or traditional characters
// meets itself); a normalized phone is 7-12 digits or empty.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "rhip/mpi/normalize.h"

using namespace rhip::mpi;

// Loads OpenCC's dictionaries and ICU's transliterator once, before the clock
// of the first input starts.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)NormalizeName("張偉");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  const NormalizedName n = NormalizeName(raw);
  std::string joined;
  size_t fuzzy_spaces = 0;
  for (size_t i = 0; i < n.syllables.size(); ++i) {
    FUZZ_CHECK(!n.syllables[i].empty(), "no empty syllable");
    if (i) joined += ' ';
    joined += n.syllables[i];
  }
  for (char c : n.fuzzy) fuzzy_spaces += c == ' ';
  FUZZ_CHECK(n.pinyin == joined, "pinyin = syllables joined by spaces");
  for (char c : n.pinyin) FUZZ_CHECK(c == ' ' || (c >= 'a' && c <= 'z'), "pinyin is lower-case ASCII");
  FUZZ_CHECK(n.initials.size() == n.syllables.size(), "one initial per syllable");
  FUZZ_CHECK(n.syllables.empty() ? n.fuzzy.empty() : fuzzy_spaces + 1 == n.syllables.size(),
             "the fuzzy key has one part per syllable");
  if (!n.surname.empty() || !n.given.empty())
    FUZZ_CHECK(n.surname + n.given == n.simplified, "surname + given = simplified");
  if (!n.empty()) {
    const NormalizedName again = NormalizeName(n.simplified);
    FUZZ_CHECK(again.simplified == n.simplified, "normalizing the simplified form is idempotent");
    const bool han = std::any_of(n.simplified.begin(), n.simplified.end(), [](char c) { return c & 0x80; });
    if (han) FUZZ_CHECK(again.pinyin == n.pinyin, "the simplified form reads the same");
  }
  const std::string phone = NormalizePhone(raw);
  FUZZ_CHECK(phone.empty() || (phone.size() >= 7 && phone.size() <= 12), "a phone has 7-12 digits");
  for (char c : phone) FUZZ_CHECK(c >= '0' && c <= '9', "a phone is digits only");
  if (IsMobile(phone)) FUZZ_CHECK(phone.size() == 11, "a mobile has 11 digits");
  (void)NormalizeAddress(raw);
  return 0;
}
