// AccessControl: the questions FhirService asks at each decision point of a
// request, answered by whoever knows who is calling (the security layer
// implements it; the fhir layer knows nothing of roles — dependency inversion).
//
// One object per request (it may remember what the request touched, e.g. for
// the audit log). FhirService calls it:
//   - OnSearch before every store search it runs for the request: the matches
//     and each _revinclude query. It may narrow the query (a resident's search
//     becomes a search in their own records) — narrowing up front keeps paging
//     and totals honest — or refuse it.
//   - OnHistory before a history interaction (type and id empty = system level,
//     id empty = type level).
//   - OnEverything before Patient/[id]/$everything.
//   - OnOperation before an operation registered by another layer ($export,
//     $match …) runs.
//   - OnDisclose for every resource version about to leave the service (read,
//     vread, each history entry, search match, _include/_revinclude, each
//     $everything entry, a transaction's GET, a conditional create's match):
//     OK lets it go (possibly rewritten: redaction), kPermissionDenied withholds
//     it (a read answers 403; a Bundle leaves it out).
//   - OnWrite before a create, update or delete is written, with the new
//     version's extracted index (nullptr for a delete).
// A refusal's Status (kPermissionDenied, message saying why) becomes the
// response's OperationOutcome.
//
// Thread-safety: one request's calls come from that request's thread (a
// transaction's OnWrite runs on the store's writer thread while the request
// thread waits); an implementation need not lock for its own state.
#pragma once

#include <string_view>

#include "rhip/core/status.h"
#include "rhip/store/index_rows.h"
#include "rhip/store/search_query.h"
#include "rhip/store/store.h"

namespace rhip::fhir {

struct RestRequest;

class AccessControl {
 public:
  virtual ~AccessControl() = default;
  virtual Status OnSearch(store::SearchQuery& query) = 0;
  virtual Status OnHistory(std::string_view type, std::string_view id) = 0;
  virtual Status OnEverything(std::string_view patient_id) = 0;
  virtual Status OnOperation(std::string_view name, const RestRequest& request) = 0;
  virtual Status OnDisclose(store::ResourceVersion& version) = 0;
  virtual Status OnWrite(std::string_view type, std::string_view id, const store::IndexRows* index) = 0;
};

}  // namespace rhip::fhir
