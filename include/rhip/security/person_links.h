// StorePersonDirectory: an interim mpi::PersonDirectory read from the FHIR
// Person resources in the store (Person.link.target → Patient), kept current by
// committed writes. The EMPI's own directory (issue 5) replaces it when wired;
// the security layer only ever talks to the PersonDirectory interface.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "rhip/core/status.h"
#include "rhip/mpi/person_directory.h"
#include "rhip/store/store.h"

namespace rhip::security {

class StorePersonDirectory : public mpi::PersonDirectory {
 public:
  Status Load(store::Store& store);
  void OnWritten(const store::ResourceVersion& written);
  std::optional<std::string> PersonOf(std::string_view patient_id) const override;
  std::vector<std::string> PatientsOf(std::string_view person_id) const override;

 private:
  void Apply(const store::ResourceVersion& v);  // REQUIRES(mu_)
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::vector<std::string>> patients_;  // GUARDED_BY(mu_) person → sorted patient ids
  std::unordered_map<std::string, std::string> person_of_;              // GUARDED_BY(mu_)
};

}  // namespace rhip::security
