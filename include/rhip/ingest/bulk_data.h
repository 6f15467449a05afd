// FHIR Bulk Data (HL7 Bulk Data Access IG v2): asynchronous $export at system,
// Patient and Group level, and an asynchronous $import of NDJSON.
//
//   GET  [base]/$export | Patient/$export | Group/[id]/$export   (Prefer: respond-async)
//        ?_type=Patient,Observation &_since=2024-01-01T00:00:00+08:00
//        → 202, Content-Location: [base]/$export-poll-status?_jobId=J
//   GET  [base]/$export-poll-status?_jobId=J → 202 + X-Progress while running,
//        200 + the manifest (output: one NDJSON file per type), 500 if the job failed
//   DELETE the same URL → cancels the job and deletes its files (202)
//   GET  [base]/$export-file/J/Patient.ndjson → application/fhir+ndjson
//   POST [base]/$import (Prefer: respond-async) with either an NDJSON body
//        (Content-Type: application/fhir+ndjson) or a Parameters resource naming
//        server-side files: parameter "input" with parts "type" and "url"
//        (file:///… under the import folder, nowhere else) → 202 + poll URL
//   GET  [base]/$import-poll-status?_jobId=J → 202 / 200 with counts and errors
//
// Each job runs on its own thread and writes under options.dir/J/. Jobs live as
// long as the process (a restart forgets them; their files stay until deleted).
//
// Access (issue 6): with an AccessControl on the kick-off request, the job keeps
// the caller's DisclosureRules (fhir/access.h) and passes every resource it
// writes through them — a cdc export comes out pseudonymised and de-identified,
// what the rules withhold is left out and counted (manifest `extension`
// …/bulk/deidentified, …/bulk/withheld) — and polls, downloads and cancels ask
// OnJobAccess with the job's owner first. Without one (internal callers, tests)
// everything is written as stored.
//
// Thread-safety: the handlers may be called concurrently.
//
// Example:
//   BulkData bulk(store.get(), {.dir = data + "/bulk", .import_root = data + "/import"});
//   fhir::FhirServiceOptions o;
//   o.operations = bulk.Operations();
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rhip/fhir/rest.h"
#include "rhip/store/store.h"

namespace rhip::ingest {

struct BulkDataOptions {
  std::string dir;          // where export files and uploaded import bodies go
  std::string import_root;  // the only folder $import may read server-side files from
  int max_jobs = 8;         // running at once; more get 429
  // Called after each committed batch of an $import (ImportOptions.on_written), e.g. the EMPI.
  std::function<void(const std::vector<store::ResourceVersion>&)> on_written;
};

class BulkData {
 public:
  BulkData(store::Store* store, BulkDataOptions options);
  ~BulkData();  // cancels running jobs and waits for them
  BulkData(const BulkData&) = delete;
  BulkData& operator=(const BulkData&) = delete;

  // The operation handlers to register with the FHIR service.
  std::vector<std::pair<std::string, fhir::OperationHandler>> Operations();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace rhip::ingest
