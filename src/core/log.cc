#include "rhip/core/log.h"

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <cctype>

namespace rhip {

std::string MaskIdentifiers(std::string_view text) {
  std::string out(text);
  size_t i = 0;
  while (i < out.size()) {
    // A digit run starts a candidate after a non-alphanumeric character or after a
    // percent-escape ("%7C330402…" in a logged query string is "|330402…").
    const bool after_escape = i >= 3 && out[i - 3] == '%' && std::isxdigit(static_cast<unsigned char>(out[i - 2])) &&
                              std::isxdigit(static_cast<unsigned char>(out[i - 1]));
    if (!std::isdigit(static_cast<unsigned char>(out[i])) ||
        (i > 0 && std::isalnum(static_cast<unsigned char>(out[i - 1])) && !after_escape)) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < out.size() && std::isdigit(static_cast<unsigned char>(out[j]))) ++j;
    size_t len = j - i;
    // an 18-character ID number may end in X
    if (len == 17 && j < out.size() && (out[j] == 'X' || out[j] == 'x')) {
      ++j;
      len = 18;
    }
    const bool bounded = j == out.size() || !std::isalnum(static_cast<unsigned char>(out[j]));
    if (bounded && (len == 18 || len == 15)) {
      for (size_t k = i + 6; k < j - 4; ++k) out[k] = '*';
    } else if (bounded && len == 11 && out[i] == '1' && out[i + 1] >= '3') {  // mobile: 13x-19x
      for (size_t k = i + 3; k < i + 7; ++k) out[k] = '*';
    }
    i = j;
  }
  return out;
}

namespace log {

void Init(std::string_view level) {
  // Asynchronous: request threads queue the line; one background thread writes it.
  // Overflow blocks rather than drops, so no access line is ever lost.
  spdlog::init_thread_pool(16384, 1);
  auto logger = spdlog::stderr_color_mt<spdlog::async_factory>("rhip");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z level=%l %v");
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
  spdlog::flush_every(std::chrono::seconds(1));
}

void Shutdown() { spdlog::shutdown(); }

}  // namespace log
}  // namespace rhip
