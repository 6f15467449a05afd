// Offline bulk import of FHIR NDJSON (one resource per line), as written by
// `rhip gen` (DIR/fhir/<Type>.ndjson) or by a FHIR Bulk Data export.
//
// Each line goes through the same checks as the REST API (JSON, structural
// validation, search-index extraction) and keeps its id. Lines are written in
// large transactions; a re-run is idempotent: a resource whose stored content
// is identical is skipped, a changed one gets a new version, so an interrupted
// import can simply be run again. A bad line is reported with file:line and the
// reason and does not stop the rest (up to `max_errors`).
//
// Thread-safety: one ImportNdjson call at a time per store is the intended use;
// it uses `threads` workers internally.
//
// Example:
//   ImportOptions opt; opt.threads = 2;
//   ASSIGN_OR_RETURN(ImportSummary s, ImportNdjson(store, {"data/demo/fhir"}, opt, progress));
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "rhip/core/status.h"
#include "rhip/store/store.h"

namespace rhip::ingest {

struct ImportOptions {
  int threads = 2;            // parse/validate/index workers
  int batch_size = 10000;     // resources per transaction (larger: fewer index pages rewritten per row)
  int64_t max_errors = 1000;  // stop after this many bad lines
  bool validate = true;
  // Called after each committed batch with the versions it wrote (not the unchanged
  // ones), e.g. so that the EMPI links imported Patients at once.
  std::function<void(const std::vector<store::ResourceVersion>&)> on_written;
};

struct ImportError {
  std::string file;
  int64_t line = 0;
  std::string message;
};

struct ImportSummary {
  int64_t lines = 0;
  int64_t created = 0;
  int64_t updated = 0;
  int64_t unchanged = 0;
  int64_t failed = 0;
  double seconds = 0;
  std::map<std::string, int64_t> per_type;  // created+updated per resource type
  std::vector<ImportError> errors;          // the first max_errors
};

struct ImportProgress {
  int64_t lines_done = 0;
  int64_t bytes_done = 0;
  int64_t bytes_total = 0;
  std::string current_file;
};
using ProgressFn = std::function<void(const ImportProgress&)>;

// `paths`: NDJSON files or folders (every *.ndjson inside, sorted by name;
// Organization, Practitioner, Patient first so that a partial import is usable).
// Fails only for unreadable paths or a store failure; bad lines are counted.
StatusOr<ImportSummary> ImportNdjson(store::Store& store, const std::vector<std::string>& paths,
                                     const ImportOptions& options, const ProgressFn& progress = {});

}  // namespace rhip::ingest
