// Pseudonymisation for analysis exports (issue 6: "exports for analysis
// pseudonymised with a keyed hash"). A Pseudonymizer holds the deployment's
// secret (DATA/keys/pseudonym.key: 32 random bytes, hex, mode 0600, made on
// first use) and turns
//   - a Patient or Person id (and the id of any other personal record) into
//     its pseudonym: HMAC-SHA256(key, "Patient/" + id),
//     the first 128 bits in lower-case hex (32 characters, a valid FHIR id).
//     The same id gives the same pseudonym in every file of every export of the
//     deployment (analysts can join exports); without the key it cannot be
//     reversed or recomputed from a known id;
//   - a resource into its de-identified form (Deidentify below; the table of
//     what happens to each element is in docs/SECURITY.md).
//
// Thread-safety: immutable after Open; every method may be called from many threads.
//
// Example:
//   ASSIGN_OR_RETURN(Pseudonymizer p, Pseudonymizer::Open(data + "/keys"));
//   p.Pseudonym("Patient", "pa1");   // "3f9c…" (32 hex characters)
//   p.Deidentify(doc);               // doc is now fit for an analysis export
#pragma once

#include <string>
#include <string_view>

#include "rhip/core/status.h"
#include "rhip/fhir/json.h"

namespace rhip::security {

class Pseudonymizer {
 public:
  // Reads KEYS_DIR/pseudonym.key, creating it when missing (two processes
  // creating it at once agree on one key). kDataLoss when the file is not a
  // 64-hex-character key.
  static StatusOr<Pseudonymizer> Open(const std::string& keys_dir);
  // For tests: a key given directly (any non-empty bytes).
  explicit Pseudonymizer(std::string key) : key_(std::move(key)) {}

  // The pseudonym of `type`/`id`.
  std::string Pseudonym(std::string_view type, std::string_view id) const;

  // Rewrites `doc` (any resource) for an analysis export: ids of personal
  // records (Patient, Person, every type of the Patient compartment) and every
  // reference to them pseudonymised; in personal records direct identifiers and free text removed,
  // addresses cut to region codes, birth and death dates to the month; ID
  // numbers and mobile numbers left in any other text masked.
  void Deidentify(fhir::Json& doc) const;

  // The identifier system of the one identifier a pseudonymised Patient/Person keeps.
  static constexpr char kSystem[] = "http://rhip.health/id/pseudonym";

 private:
  std::string key_;
};

}  // namespace rhip::security
