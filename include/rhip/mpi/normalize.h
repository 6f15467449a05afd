// EMPI normalization: what a Patient's identifying fields are made comparable
// as, before any two records are compared (DOMAIN B.1, B.2).
//
//   names   full-width → half-width, spaces and dots removed, traditional →
//           simplified (OpenCC t2s), toneless pinyin per character (ICU
//           "Han-Latin; Latin-ASCII", with surname readings where a character's
//           common reading differs: 单 shan, 曾 zeng, 解 xie …), initials, and a
//           fuzzy pinyin key folding the near-homophones clerks confuse
//           (zh/z, ch/c, sh/s, n/l, an/ang, en/eng, in/ing). Compound surnames
//           (欧阳, 司马 …) are split off as one surname.
//   ID      resident ID numbers checked and upgraded (15 → 18), then
//           cross-checked against the record's birth date and sex: a number
//           that disagrees is kept, flagged, and weighs less, never trusted blindly.
//   phones  digits only, +86/0086 removed; mobile (1[3-9] + 9 digits) or landline.
//   address full-width → half-width, no spaces, the region's province and city
//           prefixes removed, so "浙江省嘉兴市南湖区…" and "南湖区…" compare equal.
//
// Thread-safety: all functions may be called concurrently (per-thread caches).
//
// Example:
//   NormalizedName n = NormalizeName("陳 偉");
//   n.simplified == "陈伟"; n.pinyin == "chen wei"; n.initials == "cw"; n.surname == "陈"
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "rhip/core/id_card.h"

namespace rhip::mpi {

struct NormalizedName {
  std::string simplified;              // 陈伟 (Latin names: lower-case letters, no spaces)
  std::string surname, given;          // 陈 / 伟 (compound surnames kept whole)
  std::vector<std::string> syllables;  // {"chen", "wei"}
  std::string pinyin;                  // "chen wei"
  std::string initials;                // "cw"
  std::string fuzzy;                   // near-homophones folded: "cen wei"
  bool empty() const { return simplified.empty(); }
};

NormalizedName NormalizeName(std::string_view raw);

// B.2 near-homophone folding of one toneless syllable (zh→z, ch→c, sh→s, n→l at
// the start; ang→an, eng→en, ing→in at the end).
std::string FuzzySyllable(std::string_view syllable);

enum class IdStatus {
  kMissing,       // no number
  kMalformed,     // not 15 or 18 characters of digits (+X), or an impossible date
  kBadCheck,      // 18 digits whose check character is wrong: a typing error somewhere
  kConflicting,   // valid, but its birth date or sex disagrees with the record
  kValid,         // valid and consistent with the record
};

struct NormalizedId {
  IdStatus status = IdStatus::kMissing;
  std::string number;  // 18-character form when it could be formed (also for kBadCheck), else ""
  bool upgraded = false;
  std::string reason;  // why it is not kValid
};

// `birth_date` (YYYY-MM-DD, may be empty) and `sex` come from the same record.
NormalizedId NormalizeIdNumber(std::string_view raw, std::string_view birth_date = {}, Sex sex = Sex::kUnknown);

// Digits of a phone number: "13812345678", or a landline with area code "057382123456"; "" if unusable.
std::string NormalizePhone(std::string_view raw);
bool IsMobile(std::string_view normalized_phone);

std::string NormalizeAddress(std::string_view raw);

}  // namespace rhip::mpi
