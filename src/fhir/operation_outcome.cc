#include "rhip/fhir/operation_outcome.h"

#include "rhip/core/log.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace rhip::fhir {

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kMethodNotAllowed: return 405;
    case StatusCode::kAlreadyExists: return 409;
    case StatusCode::kConflict: return 409;
    case StatusCode::kGone: return 410;
    case StatusCode::kFailedPrecondition: return 412;
    case StatusCode::kPayloadTooLarge: return 413;
    case StatusCode::kUnsupportedMediaType: return 415;
    case StatusCode::kUnprocessable: return 422;
    case StatusCode::kResourceExhausted: return 429;
    case StatusCode::kUnimplemented: return 501;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kDeadlineExceeded: return 504;
    case StatusCode::kInternal:
    case StatusCode::kDataLoss: return 500;
  }
  return 500;
}

std::string IssueTypeFor(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument: return "invalid";
    case StatusCode::kUnauthenticated: return "login";
    case StatusCode::kPermissionDenied: return "forbidden";
    case StatusCode::kNotFound: return "not-found";
    case StatusCode::kMethodNotAllowed: return "not-supported";
    case StatusCode::kAlreadyExists: return "duplicate";
    case StatusCode::kConflict: return "conflict";
    case StatusCode::kGone: return "deleted";
    case StatusCode::kFailedPrecondition: return "conflict";
    case StatusCode::kPayloadTooLarge: return "too-costly";
    case StatusCode::kUnsupportedMediaType: return "not-supported";
    case StatusCode::kUnprocessable: return "business-rule";
    case StatusCode::kResourceExhausted: return "throttled";
    case StatusCode::kUnimplemented: return "not-supported";
    case StatusCode::kDeadlineExceeded: return "timeout";
    case StatusCode::kUnavailable: return "transient";
    default: return "exception";
  }
}

std::string OperationOutcomeJson(const std::vector<Issue>& issues) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("resourceType");
  w.String("OperationOutcome");
  w.Key("issue");
  w.StartArray();
  for (const Issue& i : issues) {
    w.StartObject();
    w.Key("severity");
    w.String(i.severity.c_str());
    w.Key("code");
    w.String(i.code.c_str());
    if (!i.diagnostics.empty()) {
      // Errors echo request data ("conditional reference 'Patient?identifier=…|3304…' matches no
      // resource"): ID numbers and phones are masked here as in the logs (issue 6).
      const std::string masked = MaskIdentifiers(i.diagnostics);
      w.Key("diagnostics");
      w.String(masked.c_str(), static_cast<rapidjson::SizeType>(masked.size()));
    }
    if (!i.expression.empty()) {
      w.Key("expression");
      w.StartArray();
      w.String(i.expression.c_str(), static_cast<rapidjson::SizeType>(i.expression.size()));
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string OperationOutcomeJson(const Status& status) {
  Issue i;
  i.severity = status.ok() ? "information" : "error";
  i.code = status.ok() ? "informational" : IssueTypeFor(status.code());
  i.diagnostics = status.ok() ? "All OK" : status.message();
  i.expression = status.location();
  return OperationOutcomeJson(std::vector<Issue>{i});
}

}  // namespace rhip::fhir
