// PersonDirectory: which EMPI person a Patient record belongs to, and the
// reverse. The person id is the regional health-record number (健康档案编号,
// identifier system urn:oid:2.16.156.10011.1.2) and the id of the FHIR Person
// resource that links the person's Patient records (one per institution).
//
// Everything that reasons about "the same resident" across institutions asks
// this interface instead of the EMPI's internals: authorization (a resident
// reads only their own person; a clinician needs a care relationship with the
// person), the cross-institution record, result recognition, indicators.
//
// Thread-safety: implementations are safe to call from many threads at once.
// Answers reflect every Patient write that has been committed and reported
// to the EMPI; a Patient record belongs to exactly one person at any time.
//
// Example:
//   if (auto person = directory.PersonOf("p-330402-000123")) {
//     for (const auto& patient_id : directory.PatientsOf(*person)) ...
//   }
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rhip::mpi {

class PersonDirectory {
 public:
  virtual ~PersonDirectory() = default;
  // The person a Patient record (its FHIR id) is linked to; std::nullopt when the
  // record is unknown to the EMPI.
  virtual std::optional<std::string> PersonOf(std::string_view patient_id) const = 0;
  // The FHIR ids of every Patient record linked to the person, sorted; empty
  // when the person is unknown.
  virtual std::vector<std::string> PatientsOf(std::string_view person_id) const = 0;
};

}  // namespace rhip::mpi
