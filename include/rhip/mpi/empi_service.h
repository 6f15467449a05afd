// The EMPI behind the FHIR API: every Patient record is linked to exactly one
// FHIR Person (person.h), incrementally, as it is written through REST or HL7.
//
//   Load()      indexes every stored Patient, reads the Persons and the
//               steward's decisions, and links any Patient that has no Person
//               yet (recovery after a crash, or after `rhip import`).
//   OnWritten() (FhirServiceOptions.on_written) updates the match index and
//               returns once the Patient's Person is durable.
//   Operations  POST Patient/$match, GET Patient/$ihe-pix (IHE PIXm);
//               ExpandSearch (FhirServiceOptions.expand_search) makes
//               Patient?identifier=<ID card | health card | person id> return
//               every record of the person, at every institution.
//   Stewardship the review queue of gray-zone pairs, manual link/unlink,
//               merge/unmerge (HandleApi: /api/mpi/...), each change to a person
//               recorded in the trail (store PersonChange) beside the Person's history.
//
// Linking (one linker thread makes every decision, in order, so decisions never race):
//   - candidates from the PatientIndex, grouped by person; a person is eligible
//     unless it holds a different valid ID number, a steward said no-link
//     between the record and one of its records, or it was merged away;
//   - the best eligible person at or above `probable` gets the record
//     (assurance level3 if certain, level2 if probable); a record with
//     data-quality flags, or one whose best candidate has them, needs `certain`;
//   - otherwise the record starts a new person; candidates in the gray zone
//     (possible ≤ weight < the threshold it needed, or a second person above
//     it) become open reviews;
//   - a record linked by a steward (manual) or by its source system
//     (Patient.link replaced-by, HL7 ADT^A40) is never moved automatically;
//     an automatically linked record that is updated stays with its person
//     while it still matches one of the person's other records, else it leaves
//     (the person keeps its id and its remaining records).
//
// Person writes happen right after the Patient's commit, not in the same
// transaction: the linker batches the Person changes of many Patient writes
// into one store transaction (with their trail lines and reviews). A crash
// between the two commits leaves a Patient without a Person; Load() finds it
// and links it. See docs/ARCHITECTURE.md, "How a Patient gets its Person".
//
// Thread-safety: every public method may be called from many threads at once.
//
// Example:
//   EmpiService empi(store.get());
//   RETURN_IF_ERROR(empi.Load());
//   options.operations.push_back(empi.MatchOperation());
//   options.operations.push_back(empi.PixOperation());
//   options.on_written = [&](const store::ResourceVersion& v) { empi.OnWritten(v); };
//   options.expand_search = [&](store::SearchQuery& q) { return empi.ExpandSearch(q); };
//   authz.Use(empi.directory());
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rhip/fhir/rest.h"
#include "rhip/mpi/index.h"
#include "rhip/mpi/person.h"
#include "rhip/mpi/person_directory.h"
#include "rhip/store/store.h"

namespace rhip::mpi {

struct EmpiOptions {
  MatchModel model = DefaultModel();
  std::string region = "330400";  // GB/T 2260 code that starts every person id (嘉兴市)
  int max_batch = 256;            // Patient writes whose Person changes share one store transaction
  int reviews_per_record = 3;     // gray-zone candidates queued for one record at most
  // OnWritten returns once the Patient's Person is durable (true), or once its
  // person is decided and visible to PersonOf/PatientsOf/$ihe-pix, the Person
  // resource following in the next commit (false; Flush() waits for it).
  bool wait_for_person_write = true;
};

// What a steward asks for; `actor` is who (the authenticated user once auth
// exists), `reason` why. Both are kept in the trail.
struct StewardRequest {
  std::string actor;
  std::string reason;
};

class EmpiService {
 public:
  explicit EmpiService(store::Store* store, EmpiOptions options = {});
  ~EmpiService();  // Stop()
  EmpiService(const EmpiService&) = delete;
  EmpiService& operator=(const EmpiService&) = delete;

  // Indexes and links everything in the store, then starts the linker. Call once.
  Status Load();
  // Stops the linker (later writes are linked at the next Load). Idempotent.
  void Stop();

  void OnWritten(const store::ResourceVersion& written);
  // The same, choosing whether to wait for the Person write (background writers,
  // such as the HL7 appliers, need not: nobody waits for their answer).
  void OnWritten(const store::ResourceVersion& written, bool wait_for_person_write);
  // The same for a committed batch (an $import's), waiting once for all of them.
  void OnWrittenBatch(const std::vector<store::ResourceVersion>& written);
  // Returns once every decision made so far is durable (the Person resources written).
  Status Flush();
  Status ExpandSearch(store::SearchQuery& query) const;
  std::pair<std::string, fhir::OperationHandler> MatchOperation();
  std::pair<std::string, fhir::OperationHandler> PixOperation();
  // The JSON stewardship API; `request.path` is below /api/mpi ("review", "review/12", "link", ...).
  fhir::RestResponse HandleApi(const fhir::RestRequest& request);

  const PersonDirectory& directory() const;
  const PatientIndex& index() const { return *index_; }
  std::optional<PersonState> Person(std::string_view person_id) const;

  // Stewardship; each returns the person the records end up in. Errors:
  // kNotFound (unknown record, person or review), kUnprocessable (two different
  // valid ID numbers, or the operation does not apply), kConflict (review already decided).
  StatusOr<std::string> Link(const std::string& patient_id, const std::string& person_id, const StewardRequest& who);
  StatusOr<std::string> Unlink(const std::string& patient_id, const StewardRequest& who);
  StatusOr<std::string> Merge(const std::string& source_person, const std::string& target_person, const StewardRequest& who);
  StatusOr<std::string> Unmerge(const std::string& person_id, const StewardRequest& who);
  StatusOr<std::string> DecideReview(int64_t review_id, bool same_person, const StewardRequest& who);

  struct Impl;  // the state and the linker (src/mpi/empi_internal.h); opaque to callers

 private:
  store::Store* store_;
  std::shared_ptr<PatientIndex> index_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rhip::mpi
