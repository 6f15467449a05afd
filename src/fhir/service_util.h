// Helpers shared by the FHIR service's files (private to src/fhir).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rhip/core/time.h"
#include "rhip/core/url.h"

namespace rhip::fhir {

// "Tue, 05 Mar 2024 02:20:30 GMT" (RFC 7231 IMF-fixdate).
std::string HttpDate(Micros t);
// A time-ordered RFC 9562 version-7 UUID (the server-assigned resource id).
std::string NewId();

}  // namespace rhip::fhir
