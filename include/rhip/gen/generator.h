// rhip gen: a synthetic prefecture-level city (嘉兴市 by default) with ground truth.
//
// Everything is drawn from one seed: the same options give byte-identical
// output. Each resident has a private random stream (seeded from the seed and
// the resident's index), so adding work for one resident never changes another.
//
// Output (DOMAIN.md part A):
//   DIR/fhir/<Type>.ndjson   Organization, Practitioner(Role), CareTeam, HealthcareService, Schedule,
//                            Slot (booked sessions and two bookable weeks after the period),
//                            Patient (one per resident per institution that registered them),
//                            Encounter, Condition (diagnoses and notifiable-disease reports),
//                            Procedure, Claim, Observation + DiagnosticReport (lab and imaging),
//                            ServiceRequest + Task (referrals up and down), Appointment,
//                            Immunization (children, DOMAIN B.3), EpisodeOfCare (family-doctor contracts)
//   DIR/hl7v2/adt.hl7, adt-gb18030.hl7, oru.hl7, vxu.hl7
//                            registrations as ADT^A04 (village and private clinics send GB18030
//                            with MSH-18 saying so), results as ORU^R01, vaccinations as VXU^V04 (v2.5)
//   DIR/truth/patients.csv   record_id,person_id,corruptions
//   DIR/truth/residents.csv  the population register: sex, birth date, county, town, arrival/departure
//   DIR/truth/indicators.csv indicator,period,org,numerator,denominator,value (DOMAIN B.6)
//   DIR/truth/immunizations.csv every scheduled dose due in the period: due and given date
//   DIR/truth/repeated-results.csv results that repeat another institution's still-valid result (B.7)
//   DIR/truth/notifiable.csv every notifiable-disease report, with the outbreak it belongs to
//   DIR/truth/outbreaks.csv  injected outbreaks (county, disease, start, end, cases) and one
//                            fixed-threshold case (cholera), for the early-warning tests (B.4)
//   DIR/truth/summary.json   counts
//
// Thread-safety: GenerateRegion is re-entrant (no shared state).
//
// Example:
//   GenOptions o; o.residents = 20000; o.years = 3; o.out = "data/demo/region";
//   ASSIGN_OR_RETURN(GenSummary s, GenerateRegion(o, nullptr));
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "rhip/core/status.h"

namespace rhip::gen {

struct GenOptions {
  int64_t residents = 20000;
  uint64_t seed = 1;
  int years = 3;
  std::string start = "2021-01-01";  // first day of care
  std::string out;
  bool force = false;  // allow writing into a non-empty folder
};

struct GenSummary {
  int64_t residents = 0;
  int64_t resources = 0;
  std::map<std::string, int64_t> per_type;
  double seconds = 0;
};

struct GenProgress {
  int64_t residents_done = 0;
  int64_t residents_total = 0;
  int64_t resources = 0;
};
using GenProgressFn = std::function<void(const GenProgress&)>;

// Errors: kInvalidArgument for bad options (residents ≤ 0, years outside 1-20,
// bad start date), kAlreadyExists for a non-empty folder without `force`,
// kUnavailable when the folder cannot be written.
StatusOr<GenSummary> GenerateRegion(const GenOptions& options, const GenProgressFn& progress);

}  // namespace rhip::gen
