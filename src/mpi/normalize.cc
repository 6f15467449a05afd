#include "rhip/mpi/normalize.h"

#include <opencc/SimpleConverter.hpp>
#include <unicode/translit.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace rhip::mpi {
namespace {

std::u32string Decode(std::string_view s) {
  std::u32string out;
  int32_t i = 0;
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const auto n = static_cast<int32_t>(s.size());
  while (i < n) {
    UChar32 c;
    U8_NEXT(p, i, n, c);
    if (c >= 0) out += static_cast<char32_t>(c);
  }
  return out;
}

void Append(std::string& out, char32_t c) {
  char buf[4];
  int32_t i = 0;
  UBool err = false;
  U8_APPEND(reinterpret_cast<uint8_t*>(buf), i, 4, static_cast<UChar32>(c), err);
  if (!err) out.append(buf, static_cast<size_t>(i));
}

char32_t HalfWidth(char32_t c) {
  if (c >= 0xFF01 && c <= 0xFF5E) return c - 0xFEE0;
  if (c == 0x3000) return U' ';
  return c;
}

bool IsHan(char32_t c) { return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2FFFF); }

// Separators people and systems put inside names: spaces, middle dots (少数民族 names), hyphens.
bool IsNameSeparator(char32_t c) {
  return c == U' ' || c == U'\t' || c == U'·' || c == U'•' || c == U'.' || c == U'-' || c == 0x30FB || c == 0xB7;
}

const opencc::SimpleConverter& TraditionalToSimplified() {
  static const opencc::SimpleConverter converter("t2s.json");
  return converter;
}

// Per-thread caches: a region's names use a few thousand distinct characters.
struct CharCache {
  std::unique_ptr<icu::Transliterator> to_latin;
  std::unordered_map<char32_t, char32_t> simplified;
  std::unordered_map<char32_t, std::string> pinyin;

  CharCache() {
    UErrorCode err = U_ZERO_ERROR;
    to_latin.reset(icu::Transliterator::createInstance("Han-Latin; Latin-ASCII; Lower", UTRANS_FORWARD, err));
    if (U_FAILURE(err)) to_latin.reset();
  }

  char32_t Simplify(char32_t c) {
    auto it = simplified.find(c);
    if (it != simplified.end()) return it->second;
    std::string one;
    Append(one, c);
    std::string converted = TraditionalToSimplified().Convert(one);
    std::u32string d = Decode(converted);
    char32_t s = d.size() == 1 ? d[0] : c;
    simplified.emplace(c, s);
    return s;
  }

  const std::string& Pinyin(char32_t c) {
    auto it = pinyin.find(c);
    if (it != pinyin.end()) return it->second;
    std::string out;
    if (to_latin) {
      icu::UnicodeString u(static_cast<UChar32>(c));
      to_latin->transliterate(u);
      std::string latin;
      u.toUTF8String(latin);
      for (char ch : latin)
        if (std::isalpha(static_cast<unsigned char>(ch))) out += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    return pinyin.emplace(c, out).first->second;
  }
};

CharCache& Cache() {
  thread_local CharCache cache;
  return cache;
}

// Surnames whose reading differs from the character's most common one.
const std::unordered_map<char32_t, const char*>& SurnameReadings() {
  static const std::unordered_map<char32_t, const char*> m = {
      {U'单', "shan"}, {U'曾', "zeng"}, {U'解', "xie"},  {U'仇', "qiu"}, {U'朴', "piao"}, {U'区', "ou"},
      {U'查', "zha"},  {U'盖', "ge"},   {U'缪', "miao"}, {U'翟', "zhai"}, {U'乐', "yue"}, {U'召', "shao"},
      {U'员', "yun"},  {U'覃', "qin"},  {U'种', "chong"}, {U'秘', "bi"}, {U'繁', "po"},   {U'隗', "wei"},
      {U'重', "chong"}, {U'厍', "she"}, {U'折', "she"}, {U'尉', "yu"},  {U'长', "zhang"}, {U'贲', "ben"}};
  return m;
}

bool IsCompoundSurname(const std::u32string& first_two) {
  static const std::u32string kCompound[] = {U"欧阳", U"司马", U"诸葛", U"上官", U"东方", U"皇甫", U"尉迟", U"公孙",
                                             U"慕容", U"长孙", U"宇文", U"司徒", U"夏侯", U"令狐", U"端木", U"西门",
                                             U"南宫", U"独孤", U"澹台", U"公冶", U"万俟", U"闻人", U"申屠", U"呼延"};
  return std::find(std::begin(kCompound), std::end(kCompound), first_two) != std::end(kCompound);
}

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool EndsWith(std::string_view s, std::string_view p) { return s.size() >= p.size() && s.substr(s.size() - p.size()) == p; }

}  // namespace

std::string FuzzySyllable(std::string_view syllable) {
  std::string s(syllable);
  if (StartsWith(s, "zh") || StartsWith(s, "ch") || StartsWith(s, "sh")) s.erase(1, 1);
  else if (!s.empty() && s[0] == 'n') s[0] = 'l';
  if (EndsWith(s, "ang") || EndsWith(s, "eng") || EndsWith(s, "ing")) s.pop_back();
  return s;
}

NormalizedName NormalizeName(std::string_view raw) {
  NormalizedName n;
  std::u32string chars;
  std::vector<std::string> latin_words;
  std::string word;
  bool latin = true;
  for (char32_t c : Decode(raw)) {
    c = HalfWidth(c);
    if (IsNameSeparator(c)) {
      if (!word.empty()) latin_words.push_back(std::move(word));
      word.clear();
      continue;
    }
    if (c < 0x80) {
      if (!std::isalpha(static_cast<int>(c))) continue;  // digits and punctuation are not part of a name
      word += static_cast<char>(std::tolower(static_cast<int>(c)));
      chars += c;
      continue;
    }
    latin = false;
    chars += c;
  }
  if (!word.empty()) latin_words.push_back(std::move(word));
  if (chars.empty()) return n;
  if (latin) {  // a name in Latin letters (e.g. a foreign resident, or pinyin typed as is)
    for (const auto& w : latin_words) {
      n.simplified += w;
      n.syllables.push_back(w);
    }
  } else {
    CharCache& cache = Cache();
    std::u32string simplified;
    for (char32_t c : chars)
      if (IsHan(c) || c >= 0x80) simplified += cache.Simplify(c);
    const size_t surname_len = simplified.size() >= 3 && IsCompoundSurname(simplified.substr(0, 2)) ? 2 : 1;
    for (size_t i = 0; i < simplified.size(); ++i) {
      const char32_t c = simplified[i];
      Append(n.simplified, c);
      Append(i < surname_len ? n.surname : n.given, c);
      std::string syllable;
      if (i < surname_len) {
        auto it = SurnameReadings().find(c);
        if (it != SurnameReadings().end() && !(surname_len == 2 && c == U'长' && i == 1)) syllable = it->second;
      }
      if (syllable.empty()) syllable = cache.Pinyin(c);
      if (!syllable.empty()) n.syllables.push_back(syllable);
    }
  }
  for (size_t i = 0; i < n.syllables.size(); ++i) {
    if (i) {
      n.pinyin += ' ';
      n.fuzzy += ' ';
    }
    n.pinyin += n.syllables[i];
    n.fuzzy += FuzzySyllable(n.syllables[i]);
    n.initials += n.syllables[i][0];
  }
  return n;
}

NormalizedId NormalizeIdNumber(std::string_view raw, std::string_view birth_date, Sex sex) {
  NormalizedId out;
  std::string s;
  for (char32_t c : Decode(raw)) {
    c = HalfWidth(c);
    if (c == U' ' || c == U'-') continue;
    if (c == U'x') c = U'X';
    if (c < 0x80) s += static_cast<char>(c);
    else s += '?';
  }
  if (s.empty()) return out;
  const bool shape = (s.size() == 18 && std::all_of(s.begin(), s.begin() + 17, ::isdigit) && (std::isdigit(static_cast<unsigned char>(s[17])) || s[17] == 'X')) ||
                     (s.size() == 15 && std::all_of(s.begin(), s.end(), ::isdigit));
  if (!shape) {
    out.status = IdStatus::kMalformed;
    out.reason = "'" + s + "' is not 18 digits (the last may be X) or 15 digits";
    return out;
  }
  auto info = ParseIdCard(s);
  if (!info.ok()) {
    if (s.size() == 18 && info.status().message().find("check") != std::string::npos) {
      out.status = IdStatus::kBadCheck;
      out.number = s;
    } else {
      out.status = IdStatus::kMalformed;
    }
    out.reason = info.status().message();
    return out;
  }
  out.number = info->number;
  out.upgraded = info->upgraded;
  out.status = IdStatus::kValid;
  if (!birth_date.empty() && birth_date.size() >= 10 && info->birth != birth_date.substr(0, 10)) {
    out.status = IdStatus::kConflicting;
    out.reason = "the ID number says born " + info->birth + ", the record says " + std::string(birth_date.substr(0, 10));
  } else if (sex != Sex::kUnknown && info->sex != sex) {
    out.status = IdStatus::kConflicting;
    out.reason = std::string("the ID number's sequence is ") + (info->sex == Sex::kMale ? "male" : "female") +
                 ", the record says " + (sex == Sex::kMale ? "male" : "female");
  }
  return out;
}

std::string NormalizePhone(std::string_view raw) {
  std::string d;
  for (char32_t c : Decode(raw)) {
    c = HalfWidth(c);
    if (c >= U'0' && c <= U'9') d += static_cast<char>(c);
  }
  if (StartsWith(d, "0086")) d.erase(0, 4);
  else if (d.size() == 13 && StartsWith(d, "86")) d.erase(0, 2);
  if (d.size() < 7 || d.size() > 12) return {};
  return d;
}

bool IsMobile(std::string_view p) {
  return p.size() == 11 && p[0] == '1' && p[1] >= '3' && p[1] <= '9';
}

std::string NormalizeAddress(std::string_view raw) {
  std::string s;
  for (char32_t c : Decode(raw)) {
    c = HalfWidth(c);
    if (c == U' ' || c == U'\t' || c == U',' || c == U'，') continue;
    Append(s, c);
  }
  // The province, and a prefecture-level city when a district or county follows it.
  std::u32string u = Decode(s);
  auto unit_end = [&](size_t from, std::u32string_view suffixes) -> size_t {
    for (size_t i = from + 1; i < std::min(u.size(), from + 6); ++i)
      if (suffixes.find(u[i]) != std::u32string_view::npos) return i + 1;
    return 0;
  };
  size_t start = 0;
  if (size_t e = unit_end(0, U"省"); e) start = e;
  if (size_t e = unit_end(start, U"市"); e) {
    if (unit_end(e, U"区县市")) start = e;
  }
  std::string out;
  for (size_t i = start; i < u.size(); ++i) Append(out, u[i]);
  return out;
}

}  // namespace rhip::mpi
