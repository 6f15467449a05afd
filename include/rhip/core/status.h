// Status and StatusOr<T>: how every layer of rhip reports an expected failure.
//
// A Status is a value: an error code, a message a user can act on, and an
// optional location (a FHIRPath expression, an HL7 segment/field, a file:line)
// saying where the problem is. Codes map once to an HTTP status and FHIR
// OperationOutcome (fhir/operation_outcome.h) and once to an HL7 ACK code.
// Thread-safety: values; safe to copy between threads.
//
// Example:
//   StatusOr<int> ParsePort(std::string_view s);
//   ASSIGN_OR_RETURN(int port, ParsePort(flag));
//   RETURN_IF_ERROR(store.Write(...));
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace rhip {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // 400: malformed or structurally invalid input
  kUnauthenticated,     // 401
  kPermissionDenied,    // 403
  kNotFound,            // 404: unknown type, id, version
  kMethodNotAllowed,    // 405
  kAlreadyExists,       // 409: conflicting create
  kConflict,            // 409: concurrent modification
  kGone,                // 410: deleted resource
  kFailedPrecondition,  // 412: If-Match / conditional operation preconditions
  kPayloadTooLarge,     // 413
  kUnsupportedMediaType,// 415
  kUnprocessable,       // 422: well-formed but breaks a business rule
  kResourceExhausted,   // 429: rate limits, quotas
  kUnimplemented,       // 501
  kInternal,            // 500: a bug or an I/O failure we cannot explain to the user
  kUnavailable,         // 503: shutting down, store busy
  kDeadlineExceeded,    // 504
  kDataLoss,            // 500: stored data is damaged
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message, std::string location = {})
      : code_(code), message_(std::move(message)), location_(std::move(location)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // Where the problem is: a FHIRPath expression, "PID-7", "file.ndjson:12" ... or empty.
  const std::string& location() const { return location_; }

  // Returns a copy with `prefix: ` before the message (context added by a caller).
  Status WithContext(std::string_view prefix) const;
  Status WithLocation(std::string location) const;
  std::string ToString() const;
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string location_;
};

inline Status InvalidArgument(std::string m, std::string loc = {}) {
  return Status(StatusCode::kInvalidArgument, std::move(m), std::move(loc));
}
inline Status NotFound(std::string m) { return Status(StatusCode::kNotFound, std::move(m)); }
inline Status Internal(std::string m) { return Status(StatusCode::kInternal, std::move(m)); }
inline Status Unprocessable(std::string m, std::string loc = {}) {
  return Status(StatusCode::kUnprocessable, std::move(m), std::move(loc));
}
inline Status FailedPrecondition(std::string m) {
  return Status(StatusCode::kFailedPrecondition, std::move(m));
}
inline Status Conflict(std::string m) { return Status(StatusCode::kConflict, std::move(m)); }
inline Status Unimplemented(std::string m) { return Status(StatusCode::kUnimplemented, std::move(m)); }

// A T or the Status saying why there is none.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(const Status& s) : v_(s) { assert(!s.ok()); }  // NOLINT: implicit by design
  StatusOr(Status&& s) : v_(std::move(s)) { assert(!std::get<Status>(v_).ok()); }  // NOLINT
  StatusOr(const T& v) : v_(v) {}        // NOLINT
  StatusOr(T&& v) : v_(std::move(v)) {}  // NOLINT
  template <typename U, typename = std::enable_if_t<std::is_convertible_v<U&&, T> &&
                                                    !std::is_same_v<std::decay_t<U>, Status> &&
                                                    !std::is_same_v<std::decay_t<U>, T>>>
  StatusOr(U&& u) : v_(T(std::forward<U>(u))) {}  // NOLINT

  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }
  const T& value() const& { assert(ok()); return std::get<T>(v_); }
  T& value() & { assert(ok()); return std::get<T>(v_); }
  T&& value() && { assert(ok()); return std::get<T>(std::move(v_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  std::variant<Status, T> v_;
};

}  // namespace rhip

#define RHIP_CONCAT_INNER(a, b) a##b
#define RHIP_CONCAT(a, b) RHIP_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                  \
  do {                                         \
    ::rhip::Status rhip_status_ = (expr);      \
    if (!rhip_status_.ok()) return rhip_status_; \
  } while (0)

#define RHIP_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  RHIP_ASSIGN_OR_RETURN_IMPL(RHIP_CONCAT(rhip_statusor_, __LINE__), lhs, expr)
