// URL query strings: percent-encoding and `a=1&b=x%20y` parsing (also used for
// form bodies, If-None-Exist headers and conditional URLs).
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rhip {

std::string PercentEncode(std::string_view s);
// Decodes %XX and `+` (as a space); malformed escapes are kept as written.
std::string PercentDecode(std::string_view s);
std::vector<std::pair<std::string, std::string>> ParseQueryString(std::string_view q);
std::string BuildQueryString(const std::vector<std::pair<std::string, std::string>>& params);
// The non-empty segments of a URL path: "/Patient//1/" → {"Patient", "1"}.
std::vector<std::string> SplitPath(std::string_view path);

}  // namespace rhip
