#include "rhip/core/status.h"

namespace rhip {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case StatusCode::kUnauthenticated: return "UNAUTHENTICATED";
    case StatusCode::kPermissionDenied: return "PERMISSION_DENIED";
    case StatusCode::kNotFound: return "NOT_FOUND";
    case StatusCode::kMethodNotAllowed: return "METHOD_NOT_ALLOWED";
    case StatusCode::kAlreadyExists: return "ALREADY_EXISTS";
    case StatusCode::kConflict: return "CONFLICT";
    case StatusCode::kGone: return "GONE";
    case StatusCode::kFailedPrecondition: return "FAILED_PRECONDITION";
    case StatusCode::kPayloadTooLarge: return "PAYLOAD_TOO_LARGE";
    case StatusCode::kUnsupportedMediaType: return "UNSUPPORTED_MEDIA_TYPE";
    case StatusCode::kUnprocessable: return "UNPROCESSABLE";
    case StatusCode::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case StatusCode::kUnimplemented: return "UNIMPLEMENTED";
    case StatusCode::kInternal: return "INTERNAL";
    case StatusCode::kUnavailable: return "UNAVAILABLE";
    case StatusCode::kDeadlineExceeded: return "DEADLINE_EXCEEDED";
    case StatusCode::kDataLoss: return "DATA_LOSS";
  }
  return "UNKNOWN";
}

Status Status::WithContext(std::string_view prefix) const {
  if (ok()) return *this;
  return Status(code_, std::string(prefix) + ": " + message_, location_);
}

Status Status::WithLocation(std::string location) const {
  if (ok()) return *this;
  return Status(code_, message_, std::move(location));
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s(StatusCodeName(code_));
  s += ": ";
  s += message_;
  if (!location_.empty()) {
    s += " (at ";
    s += location_;
    s += ")";
  }
  return s;
}

}  // namespace rhip
