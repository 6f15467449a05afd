#include "store/sqlite/search_sql.h"

#include <cstdint>
#include <limits>

namespace rhip::store::sqlite {
namespace {

std::string EscapeLike(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// Date comparison of a row range [low, high] against a search range, FHIR R4 prefixes.
Status DateCond(const SearchValue& v, const char* lo, const char* hi, std::string* sql,
                std::vector<SqlValue>* p) {
  const int64_t slo = v.range.low, shi = v.range.high;
  auto add = [&](const std::string& s, std::initializer_list<int64_t> vals) {
    *sql = s;
    for (int64_t x : vals) p->push_back(x);
  };
  std::string L(lo), H(hi);
  switch (v.prefix) {
    case Prefix::kEq: add("(" + L + " >= ? AND " + H + " <= ?)", {slo, shi}); break;
    case Prefix::kNe: add("NOT (" + L + " >= ? AND " + H + " <= ?)", {slo, shi}); break;
    // gt: the range above the search value intersects the target range.
    case Prefix::kGt: add("(" + H + " > ?)", {shi}); break;
    case Prefix::kLt: add("(" + L + " < ?)", {slo}); break;
    // ge: the range at or above the search value's start intersects (or contains) the target.
    case Prefix::kGe: add("(" + H + " >= ?)", {slo}); break;
    case Prefix::kLe: add("(" + L + " <= ?)", {shi}); break;
    case Prefix::kSa: add("(" + L + " > ?)", {shi}); break;
    case Prefix::kEb: add("(" + H + " < ?)", {slo}); break;
    case Prefix::kAp: {
      // approximately: within 10 % of the distance to now, at least a day.
      int64_t width = (shi - slo) / 10 + 86400LL * 1000000;
      add("(" + H + " >= ? AND " + L + " <= ?)", {slo - width, shi + width});
      break;
    }
  }
  return Status::Ok();
}

Status NumberCond(const SearchValue& v, const char* col, std::string* sql, std::vector<SqlValue>* p) {
  std::string c(col);
  switch (v.prefix) {
    case Prefix::kEq:
      *sql = "(" + c + " >= ? AND " + c + " < ?)";
      p->push_back(v.number_low);
      p->push_back(v.number_high);
      return Status::Ok();
    case Prefix::kNe:
      *sql = "NOT (" + c + " >= ? AND " + c + " < ?)";
      p->push_back(v.number_low);
      p->push_back(v.number_high);
      return Status::Ok();
    case Prefix::kGt: case Prefix::kSa: *sql = c + " > ?"; break;
    case Prefix::kLt: case Prefix::kEb: *sql = c + " < ?"; break;
    case Prefix::kGe: *sql = c + " >= ?"; break;
    case Prefix::kLe: *sql = c + " <= ?"; break;
    case Prefix::kAp:
      *sql = "(" + c + " >= ? AND " + c + " <= ?)";
      p->push_back(v.number * 0.9);
      p->push_back(v.number * 1.1);
      return Status::Ok();
  }
  p->push_back(v.number);
  return Status::Ok();
}

// The index table holding rows of a parameter type; false for kSpecial.
bool IndexTableOf(ParamType type, IndexTable* kind, const char** name) {
  switch (type) {
    case ParamType::kString: *kind = IndexTable::kString; *name = "idx_string"; return true;
    case ParamType::kToken: *kind = IndexTable::kToken; *name = "idx_token"; return true;
    case ParamType::kDate: *kind = IndexTable::kDate; *name = "idx_date"; return true;
    case ParamType::kReference: *kind = IndexTable::kReference; *name = "idx_reference"; return true;
    case ParamType::kNumber: *kind = IndexTable::kNumber; *name = "idx_number"; return true;
    case ParamType::kQuantity: *kind = IndexTable::kQuantity; *name = "idx_quantity"; return true;
    case ParamType::kUri: *kind = IndexTable::kUri; *name = "idx_uri"; return true;
    case ParamType::kSpecial: return false;
  }
  return false;
}

// Builds the condition "resource r matches criterion c" (for resource type `type`).
Status CriterionSql(const std::string& type, const Criterion& c, std::string* out,
                    std::vector<SqlValue>* p, bool driving = false) {
  if (c.modifier == Modifier::kText || c.modifier == Modifier::kBelow || c.modifier == Modifier::kAbove ||
      c.modifier == Modifier::kIn || c.modifier == Modifier::kNotIn || c.modifier == Modifier::kOfType ||
      c.modifier == Modifier::kIdentifier) {
    return InvalidArgument("parameter '" + c.param + "': this modifier is not supported", c.param);
  }
  // Special columns of the resource row.
  if (c.param == "_id") {
    if (c.missing) { *out = *c.missing ? "0" : "1"; return Status::Ok(); }
    std::string s = "r.id IN (";
    for (size_t i = 0; i < c.values.size(); ++i) {
      s += i ? ",?" : "?";
      p->push_back(c.values[i].code);
    }
    *out = (c.modifier == Modifier::kNot ? "NOT " : "") + s + ")";
    return Status::Ok();
  }
  if (c.param == "_lastUpdated") {
    std::string s;
    for (size_t i = 0; i < c.values.size(); ++i) {
      std::string one;
      RETURN_IF_ERROR(DateCond(c.values[i], "r.last_updated", "r.last_updated", &one, p));
      s += (i ? " OR " : "") + one;
    }
    *out = "(" + s + ")";
    return Status::Ok();
  }

  const int64_t key = ParamKey(type, c.param);
  const char* table = nullptr;
  IndexTable kind = IndexTable::kString;
  if (!IndexTableOf(c.type, &kind, &table))
    return InvalidArgument("parameter '" + c.param + "' is not supported", c.param);
  const std::string t(table);
  if (c.missing) {
    // From the resource's own index manifest: no join, O(1) per candidate.
    p->push_back(static_cast<int64_t>(kind));
    p->push_back(key);
    *out = std::string(*c.missing ? "NOT " : "") + "rhip_has_param(r.manifest, ?, ?)";
    return Status::Ok();
  }
  if (c.chain) {
    if (c.type != ParamType::kReference || !c.chain->inner)
      return InvalidArgument("parameter '" + c.param + "': only reference parameters can be chained", c.param);
    std::string inner;
    std::vector<SqlValue> inner_params;
    RETURN_IF_ERROR(CriterionSql(c.chain->target_type, *c.chain->inner, &inner, &inner_params));
    // The targets matching the inner criterion first (usually few), then the
    // resources referring to them through the value index. `r` inside `inner`
    // is the target row of the subquery's own alias.
    p->push_back(key);
    p->push_back(c.chain->target_type);
    p->push_back(c.chain->target_type);
    for (auto& v : inner_params) p->push_back(std::move(v));
    *out = "r.pk IN (SELECT x.res FROM idx_reference x WHERE x.param = ? AND x.target_type = ? "
           "AND x.target_id IN (SELECT r.id FROM resource r WHERE r.type = ? AND r.deleted = 0 AND " +
           inner + "))";
    return Status::Ok();
  }
  if (c.values.empty()) return InvalidArgument("parameter '" + c.param + "' has no value", c.param);

  // Token, reference and uri rows have no (res, param) index: their value index
  // is keyed (param, value, res, …), so a check against one candidate is a point
  // look-up per value. Values without a leading key column (`system|`) use an
  // uncorrelated set instead, computed once.
  const bool point_checked = !driving && (c.type == ParamType::kToken || c.type == ParamType::kReference ||
                                          c.type == ParamType::kUri);
  std::string ors;
  std::vector<SqlValue> vals;
  for (size_t i = 0; i < c.values.size(); ++i) {
    const SearchValue& v = c.values[i];
    std::string one;
    switch (c.type) {
      case ParamType::kString:
        if (c.modifier == Modifier::kExact) {
          one = "x.exact = ?";
          vals.push_back(v.text);
        } else if (c.modifier == Modifier::kContains) {
          one = "x.norm LIKE ? ESCAPE '\\'";
          vals.push_back("%" + EscapeLike(v.text) + "%");
        } else {
          // prefix match via a range scan on the index (text < text || U+10FFFF)
          one = "(x.norm >= ? AND x.norm < ?)";
          vals.push_back(v.text);
          vals.push_back(v.text + "\xf4\x8f\xbf\xbf");
        }
        break;
      case ParamType::kToken:
        if (v.code.empty() && v.has_system) {  // `system|` = any code in that system
          one = "x.system = ?";
          vals.push_back(v.system);
        } else {
          one = "x.code = ?";
          vals.push_back(v.code);
          if (v.has_system) {
            one += " AND x.system = ?";
            vals.push_back(v.system);
          }
        }
        one = "(" + one + ")";
        break;
      case ParamType::kDate:
        RETURN_IF_ERROR(DateCond(v, "x.low", "x.high", &one, &vals));
        break;
      case ParamType::kReference:
        one = "x.target_id = ?";
        vals.push_back(v.target_id);
        if (!v.target_type.empty()) {
          one += " AND x.target_type = ?";
          vals.push_back(v.target_type);
        }
        one = "(" + one + ")";
        break;
      case ParamType::kNumber:
        RETURN_IF_ERROR(NumberCond(v, "x.value", &one, &vals));
        break;
      case ParamType::kQuantity:
        RETURN_IF_ERROR(NumberCond(v, "x.value", &one, &vals));
        if (!v.code.empty()) {
          one += " AND x.code = ?";
          vals.push_back(v.code);
        }
        if (!v.system.empty()) {
          one += " AND x.system = ?";
          vals.push_back(v.system);
        }
        one = "(" + one + ")";
        break;
      case ParamType::kUri:
        one = "x.uri = ?";
        vals.push_back(v.text);
        break;
      case ParamType::kSpecial:
        break;
    }
    if (point_checked) {
      const bool keyed = !(c.type == ParamType::kToken && v.code.empty() && v.has_system);
      p->push_back(key);
      for (auto& x : vals) p->push_back(std::move(x));
      vals.clear();
      ors += (i ? " OR " : "") +
             (keyed ? "EXISTS (SELECT 1 FROM " + t + " x WHERE x.param = ? AND " + one + " AND x.res = r.pk)"
                    : "r.pk IN (SELECT x.res FROM " + t + " x WHERE x.param = ? AND " + one + ")");
    } else {
      ors += (i ? " OR " : "") + one;
    }
  }
  if (c.modifier == Modifier::kNot && c.type != ParamType::kToken)
    return InvalidArgument("parameter '" + c.param + "': :not applies to token parameters", c.param);
  if (point_checked) {
    *out = (c.modifier == Modifier::kNot ? "NOT (" : "(") + ors + ")";
    return Status::Ok();
  }
  p->push_back(key);
  for (auto& x : vals) p->push_back(std::move(x));
  if (driving) {
    // Drive the query from the value index: (param, value) → resource pks.
    *out = "r.pk IN (SELECT x.res FROM " + t + " x WHERE x.param = ? AND (" + ors + "))";
  } else {
    *out = "EXISTS (SELECT 1 FROM " + t + " x WHERE x.res = r.pk AND x.param = ? AND (" + ors + "))";
  }
  return Status::Ok();
}

// How well a criterion narrows the result (lower = better driver of the query).
int Selectivity(const Criterion& c) {
  if (c.missing || c.chain || c.modifier == Modifier::kNot || c.values.empty()) return 100;
  if (c.param == "_id" || c.param == "_lastUpdated") return 100;  // columns of the resource row
  switch (c.type) {
    case ParamType::kToken: return c.values[0].code.empty() ? 50 : 1;
    case ParamType::kReference: return 2;
    case ParamType::kUri: return 3;
    case ParamType::kString: return c.modifier == Modifier::kContains ? 60 : c.modifier == Modifier::kExact ? 4 : 5;
    default: return 20;
  }
}

}  // namespace

StatusOr<CompiledSql> CompileSearch(const SearchQuery& q) {
  CompiledSql out;
  out.where = "r.type = ? AND r.deleted = 0";
  out.params.push_back(q.type);
  // The most selective positive criterion drives the query through its value
  // index; the others are checked per candidate (point look-ups, or the (res,
  // param) index of string, date, number and quantity rows).
  int driver = -1, best = 50;
  for (size_t i = 0; i < q.criteria.size(); ++i) {
    int sel = Selectivity(q.criteria[i]);
    if (sel < best) {
      best = sel;
      driver = static_cast<int>(i);
    }
  }
  // A narrow compartment restriction (a resident's few records) drives the query
  // through the compartment table's (patient_id, res) key.
  const bool compartment_drives = q.compartment && q.compartment->size() <= 64 && best > 1;
  // With a driver, `+r.type` keeps SQLite from scanning the type's rows instead
  // (the unary plus disables the index on that column for this term).
  if (driver >= 0 || compartment_drives) out.where = "+r.type = ? AND r.deleted = 0";
  if (q.compartment) {
    // One JSON array parameter, however many patients (a clinician's care set can be large).
    std::string ids = "[";
    for (const std::string& id : *q.compartment) {
      if (ids.size() > 1) ids += ',';
      ids += '"';
      for (char ch : id) {
        if (ch == '"' || ch == '\\') ids += '\\';
        if (static_cast<unsigned char>(ch) >= 0x20) ids += ch;
      }
      ids += '"';
    }
    ids += "]";
    out.where += " AND r.pk IN (SELECT c.res FROM compartment c WHERE c.patient_id IN (SELECT value FROM json_each(?)))";
    out.params.push_back(ids);
    if (compartment_drives) driver = -1;
  }
  for (size_t i = 0; i < q.criteria.size(); ++i) {
    std::string cond;
    RETURN_IF_ERROR(CriterionSql(q.type, q.criteria[i], &cond, &out.params, static_cast<int>(i) == driver));
    out.where += " AND " + cond;
  }
  std::string order;
  for (const SortKey& k : q.sort) {
    std::string expr;
    const bool desc = k.descending;
    if (k.param == "_id") {
      expr = "r.id";
    } else if (k.param == "_lastUpdated") {
      expr = "r.last_updated";
    } else {
      IndexTable kind = IndexTable::kString;
      const char* table = nullptr;
      if (!IndexTableOf(k.type, &kind, &table)) return InvalidArgument("cannot sort by '" + k.param + "'", "_sort");
      // The sort key from the resource's index manifest (smallest value ascending,
      // largest descending; a date's low or high end), without a join per row.
      expr = "rhip_sort_key(r.manifest, " + std::to_string(static_cast<int>(kind)) + ", " +
             std::to_string(ParamKey(q.type, k.param)) + ", " + (desc ? "1" : "0") + ")";
      order += (order.empty() ? "" : ", ") + expr + " IS NULL";
    }
    order += (order.empty() ? "" : ", ") + expr + (desc ? " DESC" : " ASC");
  }
  order += (order.empty() ? "" : ", ") + std::string("r.pk");
  out.order_by = "ORDER BY " + order;
  return out;
}

}  // namespace rhip::store::sqlite
