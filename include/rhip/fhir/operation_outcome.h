// OperationOutcome: how every FHIR error is reported, and the one place a
// StatusCode becomes an HTTP status.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "rhip/core/status.h"

namespace rhip::fhir {

// One issue of an OperationOutcome.
struct Issue {
  std::string severity = "error";  // fatal | error | warning | information
  std::string code = "invalid";    // FHIR issue-type: invalid, structure, required, value, not-found, ...
  std::string diagnostics;
  std::string expression;          // FHIRPath location, e.g. "Patient.birthDate"
};

// 400, 404, 409, 410, 412, 413, 415, 422, 500 ... for each StatusCode.
int HttpStatusFor(StatusCode code);
// The FHIR issue-type code that fits a StatusCode ("not-found", "conflict", "invalid" ...).
std::string IssueTypeFor(StatusCode code);

std::string OperationOutcomeJson(const std::vector<Issue>& issues);
std::string OperationOutcomeJson(const Status& status);

}  // namespace rhip::fhir
