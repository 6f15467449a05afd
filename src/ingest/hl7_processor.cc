#include "rhip/ingest/hl7_processor.h"

#include <cstdio>

#include "rhip/core/log.h"
#include "rhip/core/time.h"
#include "rhip/fhir/json.h"
#include "rhip/hl7/message.h"
#include "rhip/hl7/to_fhir.h"

namespace rhip::ingest {
namespace {

// "YYYYMMDDHHMMSS" in the region's time (UTC+8), for MSH-7 of the ACK.
std::string Hl7Now() {
  const Micros local = NowMicros() + 8LL * 3600 * kMicrosPerSecond;
  const int64_t secs = local / kMicrosPerSecond;
  const int64_t days = secs / 86400;
  int y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  const int64_t s = secs % 86400;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d%02u%02u%02d%02d%02d", y, m, d, static_cast<int>(s / 3600),
                static_cast<int>(s / 60 % 60), static_cast<int>(s % 60));
  return buf;
}

// The first issue of an OperationOutcome, for the sender.
std::string OutcomeText(const std::string& body) {
  auto doc = fhir::ParseJson(body);
  if (!doc.ok() || !doc->HasMember("issue") || !(*doc)["issue"].IsArray() || (*doc)["issue"].Empty())
    return "the platform refused the message";
  const auto& issue = (*doc)["issue"][0];
  std::string text(fhir::StringMember(issue, "diagnostics"));
  if (const auto* expr = fhir::Member(issue, "expression"); expr && expr->IsArray() && !expr->Empty() && (*expr)[0].IsString())
    text += " (at " + std::string((*expr)[0].GetString()) + ")";
  return text;
}

}  // namespace

Hl7Processor::Hl7Processor(store::Store* store, fhir::FhirService* fhir) : store_(store), fhir_(fhir) {}

std::string Hl7Processor::NextControlId() {
  char buf[40];
  std::snprintf(buf, sizeof buf, "RHIP%llx%06llx", static_cast<unsigned long long>(NowMicros() / kMicrosPerSecond),
                static_cast<unsigned long long>(counter_.fetch_add(1) % 0xFFFFFF));
  return buf;
}

std::string Hl7Processor::Process(std::string_view raw) {
  const hl7::Header h = hl7::Identify(raw);
  if (h.ok && !h.sending_facility.empty() && !h.control_id.empty()) {
    auto seen = store_->ReadMessage(h.sending_facility, h.control_id);
    if (seen.ok() && seen->has_value() && !(*seen)->ack.empty()) return (*seen)->ack;  // a re-sent message
  }
  return Apply(raw, 1);
}

std::string Hl7Processor::Apply(std::string_view raw, int attempts) {
  const hl7::Header h = hl7::Identify(raw);
  const std::string now = Hl7Now();
  store::InboundMessage record{.sender = h.sending_facility, .control_id = h.control_id, .type = h.type,
                               .received = NowMicros(), .raw = std::string(raw), .status = "failed",
                               .ack = {}, .error = {}, .attempts = attempts};
  // A failure: the AE/AR, kept as a dead letter when the message can be keyed.
  auto fail = [&](const hl7::Hl7Error& e) {
    std::string ack = hl7::BuildAck(h, e.reject ? hl7::AckCode::kReject : hl7::AckCode::kError, &e, NextControlId(), now);
    if (!record.sender.empty() && !record.control_id.empty()) {
      record.ack = ack;
      record.error = e.Describe();
      Status st = store_->Write([&](store::WriteTransaction& tx) { return tx.PutMessage(record); });
      if (!st.ok()) {
        log::Error("hl7 sender={} control={} dead letter not recorded: {}", record.sender, record.control_id, st.ToString());
        hl7::Hl7Error internal;
        internal.text = "the platform could not record the message; send it again";
        return hl7::BuildAck(h, hl7::AckCode::kError, &internal, NextControlId(), now);
      }
    }
    log::Warn("hl7 sender={} control={} type={} refused: {}", record.sender, record.control_id, record.type, e.Describe());
    return ack;
  };
  hl7::Hl7Error error;
  auto message = hl7::Parse(raw, &error);
  if (!message) return fail(error);
  auto mapped = hl7::MapToFhir(*message, &error);
  if (!mapped) return fail(error);
  const std::string ack = hl7::BuildAck(h, hl7::AckCode::kAccept, nullptr, NextControlId(), now);
  fhir::RestRequest req;
  req.method = "POST";
  req.body = std::move(mapped->bundle);
  req.base_url = "urn:rhip:hl7";
  req.in_transaction = [&](store::WriteTransaction& tx) {
    store::InboundMessage done = record;
    done.status = "processed";
    done.ack = ack;
    return tx.PutMessage(done);
  };
  fhir::RestResponse resp = fhir_->Handle(req);
  if (resp.status == 200) return ack;
  hl7::Hl7Error refused;
  refused.code = hl7::ErrorCode::kApplicationInternal;
  refused.text = OutcomeText(resp.body);
  if (resp.status >= 500) {  // transient: not a dead letter, so sending it again is tried afresh
    refused.text = "the platform could not store the message (" + refused.text + "); send it again";
    log::Error("hl7 sender={} control={} not stored: {}", record.sender, record.control_id, refused.text);
    return hl7::BuildAck(h, hl7::AckCode::kError, &refused, NextControlId(), now);
  }
  return fail(refused);
}

StatusOr<ReplaySummary> Hl7Processor::Replay(int limit) {
  ASSIGN_OR_RETURN(auto dead, store_->Messages("failed", limit));
  ReplaySummary s;
  for (const auto& m : dead) {
    ++s.attempted;
    const std::string ack = Apply(m.raw, m.attempts + 1);
    const bool ok = ack.find("\rMSA|AA|") != std::string::npos;
    (ok ? s.processed : s.failed)++;
  }
  return s;
}

}  // namespace rhip::ingest
