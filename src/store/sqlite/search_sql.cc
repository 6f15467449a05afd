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

  const std::string key = ParamKey(type, c.param);
  const char* table = nullptr;
  switch (c.type) {
    case ParamType::kString: table = "idx_string"; break;
    case ParamType::kToken: table = "idx_token"; break;
    case ParamType::kDate: table = "idx_date"; break;
    case ParamType::kReference: table = "idx_reference"; break;
    case ParamType::kNumber: table = "idx_number"; break;
    case ParamType::kQuantity: table = "idx_quantity"; break;
    case ParamType::kUri: table = "idx_uri"; break;
    case ParamType::kSpecial:
      return InvalidArgument("parameter '" + c.param + "' is not supported", c.param);
  }
  const std::string t(table);
  if (c.missing) {
    p->push_back(key);
    *out = std::string(*c.missing ? "NOT " : "") + "EXISTS (SELECT 1 FROM " + t +
           " x WHERE x.res = r.pk AND x.param = ?)";
    return Status::Ok();
  }
  if (c.chain) {
    if (c.type != ParamType::kReference || !c.chain->inner)
      return InvalidArgument("parameter '" + c.param + "': only reference parameters can be chained", c.param);
    std::string inner;
    std::vector<SqlValue> inner_params;
    RETURN_IF_ERROR(CriterionSql(c.chain->target_type, *c.chain->inner, &inner, &inner_params));
    // Note: `r` inside `inner` must refer to the target row: wrap with a fresh alias.
    p->push_back(key);
    p->push_back(c.chain->target_type);
    p->push_back(c.chain->target_type);
    for (auto& v : inner_params) p->push_back(std::move(v));
    *out = "EXISTS (SELECT 1 FROM idx_reference x WHERE x.res = r.pk AND x.param = ? AND x.target_type = ? "
           "AND x.target_id IN (SELECT r.id FROM resource r WHERE r.type = ? AND r.deleted = 0 AND " +
           inner + "))";
    return Status::Ok();
  }
  if (c.values.empty()) return InvalidArgument("parameter '" + c.param + "' has no value", c.param);

  std::string ors;
  p->push_back(key);
  for (size_t i = 0; i < c.values.size(); ++i) {
    const SearchValue& v = c.values[i];
    std::string one;
    switch (c.type) {
      case ParamType::kString:
        if (c.modifier == Modifier::kExact) {
          one = "x.exact = ?";
          p->push_back(v.text);
        } else if (c.modifier == Modifier::kContains) {
          one = "x.norm LIKE ? ESCAPE '\\'";
          p->push_back("%" + EscapeLike(v.text) + "%");
        } else {
          // prefix match via a range scan on the index (text < text || U+10FFFF)
          one = "(x.norm >= ? AND x.norm < ?)";
          p->push_back(v.text);
          p->push_back(v.text + "\xf4\x8f\xbf\xbf");
        }
        break;
      case ParamType::kToken:
        one = "x.code = ?";
        p->push_back(v.code);
        if (v.has_system) {
          one += " AND x.system = ?";
          p->push_back(v.system);
        }
        if (v.code.empty() && v.has_system) {  // `system|` = any code in that system
          p->pop_back();
          p->pop_back();
          one = "x.system = ?";
          p->push_back(v.system);
        }
        one = "(" + one + ")";
        break;
      case ParamType::kDate:
        RETURN_IF_ERROR(DateCond(v, "x.low", "x.high", &one, p));
        break;
      case ParamType::kReference:
        one = "x.target_id = ?";
        p->push_back(v.target_id);
        if (!v.target_type.empty()) {
          one += " AND x.target_type = ?";
          p->push_back(v.target_type);
        }
        one = "(" + one + ")";
        break;
      case ParamType::kNumber:
        RETURN_IF_ERROR(NumberCond(v, "x.value", &one, p));
        break;
      case ParamType::kQuantity:
        RETURN_IF_ERROR(NumberCond(v, "x.value", &one, p));
        if (!v.code.empty()) {
          one += " AND x.code = ?";
          p->push_back(v.code);
        }
        if (!v.system.empty()) {
          one += " AND x.system = ?";
          p->push_back(v.system);
        }
        one = "(" + one + ")";
        break;
      case ParamType::kUri:
        one = "x.uri = ?";
        p->push_back(v.text);
        break;
      case ParamType::kSpecial:
        break;
    }
    ors += (i ? " OR " : "") + one;
  }
  if (c.modifier == Modifier::kNot) {
    if (c.type != ParamType::kToken)
      return InvalidArgument("parameter '" + c.param + "': :not applies to token parameters", c.param);
    *out = "NOT EXISTS (SELECT 1 FROM " + t + " x WHERE x.res = r.pk AND x.param = ? AND (" + ors + "))";
  } else if (driving) {
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
  // index; the others are checked per candidate through the (res, param) index.
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
      const char* agg = desc ? "MAX" : "MIN";
      std::string col, table;
      switch (k.type) {
        case ParamType::kString: table = "idx_string"; col = "norm"; break;
        case ParamType::kToken: table = "idx_token"; col = "code"; break;
        case ParamType::kDate: table = "idx_date"; col = desc ? "high" : "low"; break;
        case ParamType::kReference: table = "idx_reference"; col = "target_id"; break;
        case ParamType::kNumber: table = "idx_number"; col = "value"; break;
        case ParamType::kQuantity: table = "idx_quantity"; col = "value"; break;
        case ParamType::kUri: table = "idx_uri"; col = "uri"; break;
        case ParamType::kSpecial:
          return InvalidArgument("cannot sort by '" + k.param + "'", "_sort");
      }
      expr = std::string("(SELECT ") + agg + "(s." + col + ") FROM " + table +
             " s WHERE s.res = r.pk AND s.param = ?)";
      // Resources without a value sort last in both directions.
      out.order_params.push_back(ParamKey(q.type, k.param));
      out.order_params.push_back(ParamKey(q.type, k.param));
      order += (order.empty() ? "" : ", ") + expr + " IS NULL";
    }
    order += (order.empty() ? "" : ", ") + expr + (desc ? " DESC" : " ASC");
  }
  order += (order.empty() ? "" : ", ") + std::string("r.pk");
  out.order_by = "ORDER BY " + order;
  return out;
}

}  // namespace rhip::store::sqlite
