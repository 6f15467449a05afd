// Helpers shared by the FHIR service's files (private to src/fhir).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rhip/core/time.h"

namespace rhip::fhir {

// "Tue, 05 Mar 2024 02:20:30 GMT" (RFC 7231 IMF-fixdate).
std::string HttpDate(Micros t);
std::string PercentEncode(std::string_view s);
std::string PercentDecode(std::string_view s);
// Parses "a=1&b=x%20y" (form bodies, If-None-Exist, conditional URLs).
std::vector<std::pair<std::string, std::string>> ParseQueryString(std::string_view q);
std::string BuildQueryString(const std::vector<std::pair<std::string, std::string>>& params);
// A random RFC 4122 version-4 UUID (the server-assigned resource id).
std::string NewId();

}  // namespace rhip::fhir
