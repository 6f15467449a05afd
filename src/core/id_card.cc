#include "rhip/core/id_card.h"

#include <cctype>

#include "rhip/core/time.h"

namespace rhip {

char IdCardCheckChar(std::string_view first17) {
  // GB 11643-1999 check character: weights 2^(17-i) mod 11, ISO 7064 MOD 11-2.
  static const int kWeights[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
  if (first17.size() != 17) return '\0';
  int sum = 0;
  for (size_t i = 0; i < 17; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(first17[i]))) return '\0';
    sum += (first17[i] - '0') * kWeights[i];
  }
  return "10X98765432"[sum % 11];
}

std::string UpgradeIdCard15(std::string_view n) {
  if (n.size() != 15) return {};
  for (char c : n)
    if (!std::isdigit(static_cast<unsigned char>(c))) return {};
  std::string s = std::string(n.substr(0, 6)) + "19" + std::string(n.substr(6));
  return s + IdCardCheckChar(s);
}

StatusOr<IdCardInfo> ParseIdCard(std::string_view number) {
  IdCardInfo info;
  std::string n(number);
  if (n.size() == 15) {
    std::string up = UpgradeIdCard15(n);
    if (up.empty()) return InvalidArgument("15-digit ID number must be all digits: '" + n + "'");
    n = up;
    info.upgraded = true;
  }
  if (n.size() != 18)
    return InvalidArgument("ID number must have 18 characters (or 15 for old cards), got " + std::to_string(n.size()));
  if (n[17] == 'x') n[17] = 'X';
  for (size_t i = 0; i < 17; ++i)
    if (!std::isdigit(static_cast<unsigned char>(n[i])))
      return InvalidArgument("ID number character " + std::to_string(i + 1) + " must be a digit");
  if (!std::isdigit(static_cast<unsigned char>(n[17])) && n[17] != 'X')
    return InvalidArgument("ID number check character must be a digit or X");
  std::string birth = n.substr(6, 4) + "-" + n.substr(10, 2) + "-" + n.substr(12, 2);
  if (!IsValidFhirDate(birth) || birth < "1900-01-01")
    return InvalidArgument("ID number has an impossible birth date " + birth);
  char check = IdCardCheckChar(std::string_view(n).substr(0, 17));
  if (check != n[17])
    return InvalidArgument(std::string("ID number check character is '") + n[17] + "', expected '" + check +
                           "' (a typing error?)");
  info.number = n;
  info.region = n.substr(0, 6);
  info.birth = birth;
  info.sex = ((n[16] - '0') % 2 == 1) ? Sex::kMale : Sex::kFemale;
  return info;
}

}  // namespace rhip
