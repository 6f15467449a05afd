// The EMPI behind the FHIR API: keeps the PatientIndex current from the store
// (loaded at start, then every committed Patient write) and answers
// POST [base]/Patient/$match (FHIR R4): Parameters with `resource` (a Patient),
// `onlyCertainMatches`, `count` → a searchset Bundle of the stored Patients that
// match, best first, each with search.score (0-1) and the match-grade extension.
//
// Thread-safety: OnWritten and the handler may run concurrently.
//
// Example:
//   EmpiService empi(store.get());
//   RETURN_IF_ERROR(empi.Load());
//   options.operations.push_back(empi.MatchOperation());
//   options.on_written = [&](const store::ResourceVersion& v) { empi.OnWritten(v); };
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "rhip/fhir/rest.h"
#include "rhip/mpi/index.h"
#include "rhip/store/store.h"

namespace rhip::mpi {

class EmpiService {
 public:
  explicit EmpiService(store::Store* store, MatchModel model = DefaultModel());
  // Indexes every current Patient of the store.
  Status Load();
  void OnWritten(const store::ResourceVersion& written);
  std::pair<std::string, fhir::OperationHandler> MatchOperation();
  const PatientIndex& index() const { return *index_; }

 private:
  store::Store* store_;
  std::shared_ptr<PatientIndex> index_;
};

}  // namespace rhip::mpi
