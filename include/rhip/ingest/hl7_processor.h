// Applying HL7 v2 messages to the store: the one path every message takes,
// whether it arrived over MLLP or is replayed from the dead letters.
//
// For each message:
//   1. MSH is read (sender MSH-4, control id MSH-10). A message already
//      received from that sender with that control id gets the ACK it got the
//      first time, and changes nothing.
//   2. It is parsed and mapped to a FHIR transaction (hl7/to_fhir.h).
//   3. The transaction runs through the FHIR service (validation, indexing,
//      conditional updates) and, in the same database transaction, the raw
//      message and its AA are recorded. So when AA is sent the message and all
//      it changed are durable together; a crash before that leaves neither.
//   4. A message that fails (unparseable, unsupported, invalid data, refused by
//      validation) is recorded as a dead letter with its reason and the AE/AR
//      sent, and can be processed again with Replay once the cause is fixed.
//
// Thread-safety: Process and Replay may be called from many threads at once.
//
// Example:
//   Hl7Processor p(store.get(), fhir.get());
//   std::string ack = p.Process(frame);   // send it back
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "rhip/core/status.h"
#include "rhip/fhir/rest.h"
#include "rhip/store/store.h"

namespace rhip::ingest {

struct ReplaySummary {
  int64_t attempted = 0;
  int64_t processed = 0;  // now applied
  int64_t failed = 0;     // still failing (reason updated)
};

class Hl7Processor {
 public:
  // Both must outlive the processor.
  Hl7Processor(store::Store* store, fhir::FhirService* fhir);

  // The ACK to send for one message (the bytes inside an MLLP frame). Never throws.
  std::string Process(std::string_view raw);

  // Processes the dead letters again (oldest first, at most `limit`).
  StatusOr<ReplaySummary> Replay(int limit);

 private:
  std::string Apply(std::string_view raw, int attempts);
  std::string NextControlId();

  store::Store* store_;
  fhir::FhirService* fhir_;
  std::atomic<uint64_t> counter_{0};
};

}  // namespace rhip::ingest
