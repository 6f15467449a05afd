// SearchQuery: a backend-neutral, already-parsed FHIR search.
//
// The fhir layer parses a URL query (`Observation?subject=Patient/1&date=ge2024`)
// against the SearchParameter definitions into this tree; each store backend
// compiles it to its own query language (SQL for SQLite and PostgreSQL).
// Criteria are ANDed; the values inside one criterion are ORed (FHIR's `,`).
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rhip/core/time.h"

namespace rhip::store {

enum class ParamType { kString, kToken, kDate, kReference, kNumber, kQuantity, kUri, kSpecial };

// FHIR search prefixes (eq is the default).
enum class Prefix { kEq, kNe, kGt, kLt, kGe, kLe, kSa, kEb, kAp };

enum class Modifier {
  kNone,
  kExact,     // string
  kContains,  // string
  kNot,       // token
  kMissing,   // any: value "true"/"false" in `missing`
  kText,      // token (matched against display text; not indexed yet → rejected)
  kType,      // reference  `subject:Patient=`
  kIdentifier,// reference  `subject:identifier=` (not supported yet)
  kBelow, kAbove, kIn, kNotIn, kOfType,
};

struct SearchValue {
  Prefix prefix = Prefix::kEq;
  // string: `text` (already normalized for the default match; raw for :exact)
  std::string text;
  // token: system|code; has_system distinguishes `|code` (no system) from `code` (any system)
  std::string system;
  std::string code;
  bool has_system = false;
  // date: the range the search value covers
  DateRange range;
  // reference: target type (may be empty = any) and id (or absolute URL)
  std::string target_type;
  std::string target_id;
  // number / quantity: value and the implicit range from its precision (FHIR: 100 ≈ [99.5, 100.5))
  double number = 0;
  double number_low = 0;
  double number_high = 0;
  // quantity unit (system may be empty; code may be empty = any unit)
};

struct Criterion;

// `subject:Patient.identifier=x|y`: resources whose reference `param` points at a
// `target_type` resource matching `inner`.
struct Chain {
  std::string target_type;
  // shared_ptr to const: the inner criterion is immutable once parsed, and
  // sharing it keeps Criterion (and so SearchQuery) a copyable value.
  std::shared_ptr<const Criterion> inner;
};

struct Criterion {
  std::string param;            // "subject", "_id", "_lastUpdated", ...
  ParamType type = ParamType::kString;
  Modifier modifier = Modifier::kNone;
  std::optional<bool> missing;  // for :missing
  std::vector<SearchValue> values;  // ORed
  std::optional<Chain> chain;       // when set, `values` is empty
  // `_has:Observation:subject:code=x` reverse chains are not supported yet.
};

struct SortKey {
  std::string param;  // a search parameter name or "_id" / "_lastUpdated"
  ParamType type = ParamType::kString;
  bool descending = false;
};

enum class TotalMode { kNone, kEstimate, kAccurate };

struct SearchQuery {
  std::string type;  // resource type; required
  std::vector<Criterion> criteria;
  std::vector<SortKey> sort;
  int count = 20;       // page size (0 = only the total)
  int64_t offset = 0;   // rows to skip (paging)
  // Paging stability: only resources whose first version was written at or
  // before this store sequence number are returned (0 = no bound; the store
  // reports the bound it used so that later pages reuse it).
  int64_t snapshot_seq = 0;
  TotalMode total = TotalMode::kNone;
  // Authorization's narrowing (issue 6): when set, only resources in the Patient
  // compartment of one of these Patient ids (a Patient is in its own) match;
  // an empty list matches nothing. Applied in the query itself, so paging and
  // totals count only what the caller may see.
  std::optional<std::vector<std::string>> compartment;
};

}  // namespace rhip::store
