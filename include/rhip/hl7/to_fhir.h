// HL7 v2 → FHIR R4, per the regional implementation guide (DOMAIN A, HL7 v2 conventions).
//
// One message becomes one FHIR transaction Bundle. Every entry is keyed on the
// sending institution's own identifiers (MRN, visit number, report number …)
// with a conditional update, so processing a message twice (a replay) updates
// what it made the first time instead of duplicating it. Results and
// vaccinations only create the Patient when the institution has none yet
// (conditional create), so a lab system's thinner PID never overwrites the
// registration's demographics.
//
//   ADT^A01/A03/A04/A08/A28/A31  PID → Patient (+ PV1 with a visit number → Encounter)
//   ADT^A40                      PID survives; MRG-1 names the record it replaces
//   ORU^R01                      OBR → DiagnosticReport, OBX → Observation
//   VXU^V04                      RXA → Immunization
//
// Thread-safety: re-entrant.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "rhip/hl7/message.h"

namespace rhip::hl7 {

struct Mapped {
  std::string bundle;              // a FHIR transaction Bundle, JSON
  std::vector<std::string> types;  // resource type of each entry, in order
  rapidjson::Document doc;         // the same Bundle as a document (no need to parse `bundle`)
};

// nullopt with `error` set (segment, field, HL7 table 0357 code) when the
// message cannot be mapped: unsupported type or event (AR), a required field
// missing or malformed (AE).
std::optional<Mapped> MapToFhir(const Message& message, Hl7Error* error);

}  // namespace rhip::hl7
