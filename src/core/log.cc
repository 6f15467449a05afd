#include "rhip/core/log.h"

#include <spdlog/sinks/base_sink.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <mutex>

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
namespace {

// Standard error, buffered: lines of the "access" logger (one per request) wait
// in memory and go out in one write() when 64 KiB have gathered, when any other
// line is logged (so ordering holds and messages show at once) or at the
// periodic flush (every second). The request thread formats and copies its line
// under the sink's mutex: no hand-off to a logging thread, no wake-up per request.
class BufferedStderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  ~BufferedStderrSink() override { WriteOut(); }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    buffer_.append(line.data(), line.size());
    if (msg.logger_name != kAccessLogger || buffer_.size() >= kLimit) WriteOut();
  }
  void flush_() override { WriteOut(); }

 private:
  static constexpr size_t kLimit = 64 * 1024;
  void WriteOut() {
    size_t done = 0;
    while (done < buffer_.size()) {
      ssize_t n = ::write(STDERR_FILENO, buffer_.data() + done, buffer_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // nowhere to write (stderr closed): drop, never block the server
      done += static_cast<size_t>(n);
    }
    buffer_.clear();
  }
  std::string buffer_;
};

std::atomic<spdlog::logger*> g_access{nullptr};

}  // namespace

void Init(std::string_view level) {
  auto sink = std::make_shared<BufferedStderrSink>();
  auto logger = std::make_shared<spdlog::logger>("rhip", sink);
  auto access = std::make_shared<spdlog::logger>(kAccessLogger, sink);
  spdlog::drop_all();
  spdlog::register_logger(access);  // the registry keeps it alive until Shutdown
  g_access.store(access.get(), std::memory_order_release);
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z level=%l %v");
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
  spdlog::flush_every(std::chrono::seconds(1));
}

spdlog::logger* AccessLogger() {
  spdlog::logger* l = g_access.load(std::memory_order_acquire);
  return l ? l : spdlog::default_logger_raw();
}

void Shutdown() {
  g_access.store(nullptr, std::memory_order_release);
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { l->flush(); });
  spdlog::shutdown();
}

}  // namespace log
}  // namespace rhip
