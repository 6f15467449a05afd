// The FHIR REST API, independent of the HTTP transport.
//
// http/ turns a Boost.Beast request into a RestRequest, calls
// FhirService::Handle and writes the RestResponse back; tests call Handle
// directly. Everything FHIR-specific (interactions, search, bundles, Prefer,
// ETag, OperationOutcome) lives behind this interface.
//
// Thread-safety: FhirService::Handle may be called from many threads at once.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rhip/core/status.h"
#include "rhip/fhir/access.h"
#include "rhip/store/store.h"

namespace rhip::fhir {

struct RestRequest {
  std::string method;  // "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"
  // Path below the FHIR base, without the query: "Patient/123/_history/2", "metadata", "" (base).
  std::string path;
  // Decoded query parameters in order (repeats kept): {"date","ge2024"},{"date","lt2025"}.
  std::vector<std::pair<std::string, std::string>> query;
  // Request headers with lower-case names.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Absolute base URL used in links and Location: "http://127.0.0.1:8080/fhir".
  std::string base_url;
  // For a transaction Bundle only: runs inside its database transaction after
  // every entry succeeded, so what it writes commits (or rolls back) with them.
  // HL7 ingestion records the message this way, atomically with its effects.
  std::function<Status(store::WriteTransaction&)> in_transaction;
  // Who decides what this request may see and write (the security layer's
  // guard for the caller); nullptr = a trusted internal caller (HL7 appliers,
  // imports). Not owned; outlives the Handle call.
  AccessControl* access = nullptr;

  // First value of a header (name in lower case), or empty.
  std::string_view Header(std::string_view lower_name) const;
};

struct RestResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // ETag, Location, Last-Modified, Content-Location
  std::string body;                                          // JSON (may be empty, e.g. 204)
  std::string content_type = "application/fhir+json; charset=utf-8";
};

// An operation implemented outside the FHIR layer (Bulk Data $export/$import in
// ingest/): called for any request whose path has a segment "$name" (system,
// type or instance level, e.g. "$export", "Patient/$export", "Group/g1/$export",
// "$export-poll-status").
using OperationHandler = std::function<RestResponse(const RestRequest& request)>;

struct FhirServiceOptions {
  int default_page_size = 20;
  int max_page_size = 1000;
  std::vector<std::pair<std::string, OperationHandler>> operations;  // "$export" → handler
  // Called after each committed create, update or delete (the new version; a
  // delete has deleted = true and no JSON), e.g. to keep the EMPI's index current.
  // Runs on the request's thread: keep it quick.
  std::function<void(const store::ResourceVersion&)> on_written;
  // Called with every REST search (GET/POST _search; not the matching of
  // conditional writes) after parsing and before it runs; may widen or narrow
  // the query. The EMPI uses it so that Patient?identifier=<person-level
  // identifier> finds the person's records at every institution.
  std::function<Status(store::SearchQuery&)> expand_search;
  // Resource types that another layer owns (type → what to do instead): the
  // REST API reads and searches them but refuses client writes (405). The
  // EMPI owns Person.
  std::vector<std::pair<std::string, std::string>> managed_types;
};

class FhirService {
 public:
  FhirService(const FhirService&) = delete;
  FhirService& operator=(const FhirService&) = delete;
  virtual ~FhirService() = default;

  // Never throws; every failure becomes a RestResponse with an OperationOutcome.
  virtual RestResponse Handle(const RestRequest& request) = 0;
  // Several requests, answered as Handle would answer each in turn. POSTed transaction
  // Bundles among them share one store write (each still all-or-nothing on its own):
  // one durable commit for many small transactions. Requests about the same resources
  // are applied in the order given.
  virtual std::vector<RestResponse> HandleTransactions(const std::vector<RestRequest>& requests) = 0;

 protected:
  FhirService() = default;
};

// `store` must outlive the service.
std::unique_ptr<FhirService> NewFhirService(store::Store* store, FhirServiceOptions options = {});

}  // namespace rhip::fhir
