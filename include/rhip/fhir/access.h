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
//   - RulesForJob / OnJobAccess for asynchronous operations (Bulk Data $export):
//     the rules a job applies after the request has returned, and who may poll,
//     download or cancel the job.
// A refusal's Status (kPermissionDenied, message saying why) becomes the
// response's OperationOutcome.
//
// Thread-safety: one request's calls come from that request's thread (a
// transaction's OnWrite runs on the store's writer thread while the request
// thread waits); an implementation need not lock for its own state.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "rhip/core/status.h"
#include "rhip/store/index_rows.h"
#include "rhip/store/search_query.h"
#include "rhip/store/store.h"

namespace rhip::fhir {

struct RestRequest;

// The caller's disclosure rules detached from the request, for an operation
// that keeps working after its kick-off request has returned (Bulk Data
// $export writes its files on a thread of its own): applied to every resource
// the job writes, like OnDisclose. Thread-safety: const methods, callable from
// any thread; the object owns everything it needs.
class DisclosureRules {
 public:
  virtual ~DisclosureRules() = default;
  // OK: write `version` (possibly rewritten: de-identified); kPermissionDenied: leave it out.
  virtual Status Disclose(store::ResourceVersion& version) const = 0;
  // Whether what Disclose writes is de-identified (pseudonymised ids).
  virtual bool deidentified() const = 0;
  // Who started the job, as OnJobAccess expects it.
  virtual const std::string& owner() const = 0;
};

class AccessControl {
 public:
  virtual ~AccessControl() = default;
  virtual Status OnSearch(store::SearchQuery& query) = 0;
  virtual Status OnHistory(std::string_view type, std::string_view id) = 0;
  virtual Status OnEverything(std::string_view patient_id) = 0;
  virtual Status OnOperation(std::string_view name, const RestRequest& request) = 0;
  virtual Status OnDisclose(store::ResourceVersion& version) = 0;
  virtual Status OnWrite(std::string_view type, std::string_view id, const store::IndexRows* index) = 0;
  // After OnOperation allowed an asynchronous operation ($export): the rules
  // its job applies to what it writes (see DisclosureRules).
  virtual std::unique_ptr<DisclosureRules> RulesForJob() = 0;
  // Before a job's status, files or cancellation are shown to the caller:
  // `owner` is DisclosureRules::owner() of the job. kPermissionDenied when the
  // caller may not see that job.
  virtual Status OnJobAccess(std::string_view owner) = 0;
};

}  // namespace rhip::fhir
