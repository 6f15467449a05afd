// Logging: one spdlog logger for the process, key=value lines, and the privacy
// rule that resident ID numbers and mobile phone numbers never reach a log.
//
// MaskIdentifiers() is applied by every log helper here; code that logs request
// data goes through them. Thread-safety: spdlog loggers are thread-safe.
//
// Example:
//   log::Info("import done files={} resources={}", n, m);
//   MaskIdentifiers("330402199001011234 13812345678") == "330402********1234 138****5678"
#pragma once

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

namespace rhip {

// Masks 18-digit (and old 15-digit) ID-card numbers to keep the region code and
// the last 4 characters, and 11-digit mainland mobile numbers to keep 3 + 4 digits.
std::string MaskIdentifiers(std::string_view text);

namespace log {

// Sets the level ("debug", "info", "warn", "error") and the line pattern; call once at start-up.
void Init(std::string_view level = "info");
// Writes out queued lines and stops the logging thread; call before exit.
void Shutdown();

inline constexpr char kAccessLogger[] = "access";
// The logger of access lines (one per request): buffered, written out in blocks.
spdlog::logger* AccessLogger();

// One line per served request; it may reach stderr up to a second later.
template <typename... Args>
void Access(fmt::format_string<Args...> f, Args&&... args) {
  AccessLogger()->info("access {}", MaskIdentifiers(fmt::format(f, std::forward<Args>(args)...)));
}

template <typename... Args>
void Info(fmt::format_string<Args...> f, Args&&... args) {
  spdlog::info("{}", MaskIdentifiers(fmt::format(f, std::forward<Args>(args)...)));
}
template <typename... Args>
void Warn(fmt::format_string<Args...> f, Args&&... args) {
  spdlog::warn("{}", MaskIdentifiers(fmt::format(f, std::forward<Args>(args)...)));
}
template <typename... Args>
void Error(fmt::format_string<Args...> f, Args&&... args) {
  spdlog::error("{}", MaskIdentifiers(fmt::format(f, std::forward<Args>(args)...)));
}

}  // namespace log
}  // namespace rhip
