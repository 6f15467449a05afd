// Applying HL7 v2 messages to the store: the one path every message takes,
// whether it arrived over MLLP or is replayed from the dead letters.
//
// Receiving a message (Process, on the connection's worker; returns the ACK):
//   1. MSH is read (sender MSH-4, control id MSH-10). A message already
//      received from that sender with that control id gets the ACK it got the
//      first time, and changes nothing.
//   2. It is parsed, mapped to a FHIR transaction (hl7/to_fhir.h) and every
//      resource is validated. Anything wrong: AE/AR naming the segment and
//      field, and the message is kept as a dead letter with the reason.
//   3. Otherwise the raw message is stored durably as "queued" with its AA, and
//      only then is AA returned. An acknowledged message cannot be lost.
// Applying it (background appliers, in arrival order per patient):
//   4. The transaction runs through the FHIR service (indexing, conditional
//      updates) and, in the same database transaction, the message becomes
//      "processed". A crash in between leaves it "queued": it is applied after
//      the restart (Start), exactly once.
//   5. A message the store refuses (e.g. its MRN matches two records) becomes a
//      dead letter with the reason; `rhip hl7 replay` applies the dead letters
//      again once the cause is fixed.
// With the receive log in its own store, an ACK waits for one small durable
// insert there, never behind the FHIR store's indexing work; a
// burst of messages is absorbed by the queue (bounded: beyond max_queued,
// Process waits, which slows the senders down instead of exhausting memory).
//
// Thread-safety: Process and Replay may be called from many threads at once.
//
// Example:
//   Hl7Processor p(store.get(), fhir.get());
//   RETURN_IF_ERROR(p.Start());            // re-queues what a crash left queued
//   std::string ack = p.Process(frame);    // send it back
//   p.Stop();                              // before the store closes
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "rhip/core/status.h"
#include "rhip/fhir/rest.h"
#include "rhip/store/store.h"

namespace rhip::ingest {

struct Hl7ProcessorOptions {
  int appliers = 4;            // applier threads (one per partition of sender + MRN), each up to 32 messages per commit
  int64_t max_queued = 50000;  // accepted but not yet applied, held in memory
  // The appliers' thread priority (nice). With applier_rest it is worth ~8 % of the ADT
  // burst rate (bench/RESULTS.md); alone it did nothing measurable, the appliers' work
  // running mostly on the FHIR store's writer thread.
  int applier_nice = 10;
  // While messages keep arriving (and the queue is under half full), an applier rests after
  // each batch for this fraction of the time the batch took: receiving (the senders wait
  // for their ACKs) comes first, and the queue absorbs the burst. 0: never rest.
  double applier_rest = 1.0;
};

struct Hl7Stats {
  int64_t queued = 0;     // accepted, waiting to be applied
  int64_t processed = 0;  // applied since start
  int64_t failed = 0;     // dead letters made since start (at receipt or when applied)
};

struct ReplaySummary {
  int64_t attempted = 0;
  int64_t processed = 0;  // now applied
  int64_t failed = 0;     // still failing (reason updated)
};

class Hl7Processor {
 public:
  // All must outlive the processor. `inbox` holds the receive log (raw messages,
  // ACKs, dead letters); a store of its own (`rhip serve` uses DATA/hl7-inbox.db)
  // keeps ACKs fast while the FHIR store is busy applying. nullptr: `store` holds it.
  Hl7Processor(store::Store* store, fhir::FhirService* fhir, Hl7ProcessorOptions options = {},
               store::Store* inbox = nullptr);
  ~Hl7Processor();  // Stop()
  Hl7Processor(const Hl7Processor&) = delete;
  Hl7Processor& operator=(const Hl7Processor&) = delete;

  // Starts the appliers and queues again what was accepted but not applied.
  Status Start();
  // Stops the appliers after the message each is applying; the rest stay queued in the store.
  void Stop();

  // The ACK to send for one message (the bytes inside an MLLP frame). Never throws.
  // `authenticated_sender`: the institution a client certificate proved (mutual
  // TLS on MLLP); a message whose MSH-4 names another institution gets AR and
  // is neither recorded nor applied (it must not take that institution's
  // control ids). Empty: MSH-4 is trusted as sent.
  std::string Process(std::string_view raw, std::string_view authenticated_sender = {});

  // Applies the dead letters again (oldest first, at most `limit`), synchronously.
  StatusOr<ReplaySummary> Replay(int limit);

  Hl7Stats Stats() const;
  // Waits until nothing is queued (tests, shutdown); false on timeout.
  bool WaitIdle(double seconds);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rhip::ingest
