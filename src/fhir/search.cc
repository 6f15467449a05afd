#include "rhip/fhir/search.h"

#include <cmath>
#include <cstdlib>

#include "rhip/core/time.h"
#include "rhip/fhir/definitions.h"
#include "rhip/fhir/index.h"

namespace rhip::fhir {
namespace {

using store::Criterion;
using store::Modifier;
using store::ParamType;
using store::Prefix;
using store::SearchValue;

Status ParamError(const std::string& name, const std::string& what) {
  return InvalidArgument("parameter '" + name + "': " + what, name);
}

bool Escapable(char c) { return c == ',' || c == '|' || c == '$' || c == '\\'; }

// Splits on unescaped `sep`. With `final`, every escape (\, \| \$ \\) is
// removed; otherwise only `\sep` is, and other escapes stay for a later split.
std::vector<std::string> SplitEscaped(std::string_view s, char sep, bool final = true) {
  std::vector<std::string> out(1);
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && Escapable(s[i + 1])) {
      if (!final && s[i + 1] != sep) out.back() += '\\';
      out.back() += s[++i];
      continue;
    }
    if (s[i] == sep) {
      out.emplace_back();
      continue;
    }
    out.back() += s[i];
  }
  return out;
}

Prefix TakePrefix(std::string_view* v) {
  static const std::pair<const char*, Prefix> kPrefixes[] = {
      {"eq", Prefix::kEq}, {"ne", Prefix::kNe}, {"gt", Prefix::kGt}, {"lt", Prefix::kLt}, {"ge", Prefix::kGe},
      {"le", Prefix::kLe}, {"sa", Prefix::kSa}, {"eb", Prefix::kEb}, {"ap", Prefix::kAp}};
  if (v->size() >= 2) {
    for (const auto& [p, e] : kPrefixes) {
      if (v->substr(0, 2) == p) {
        v->remove_prefix(2);
        return e;
      }
    }
  }
  return Prefix::kEq;
}

Status ParseNumber(const std::string& name, std::string_view text, SearchValue* v) {
  if (text.empty()) return ParamError(name, "empty number");
  std::string s(text);
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(d)) return ParamError(name, "'" + s + "' is not a number");
  v->number = d;
  // Implicit precision: 100 ≈ [99.5, 100.5), 1.5 ≈ [1.45, 1.55).
  size_t dot = s.find_first_of(".");
  size_t exp = s.find_first_of("eE");
  int decimals = 0;
  if (dot != std::string::npos) decimals = static_cast<int>((exp == std::string::npos ? s.size() : exp) - dot - 1);
  double half = 0.5 * std::pow(10.0, -decimals);
  v->number_low = d - half;
  v->number_high = d + half;
  return Status::Ok();
}

StatusOr<SearchValue> ParseValue(const std::string& name, const SearchParamDef* def, ParamType type,
                                 Modifier modifier, const std::string& raw) {
  SearchValue v;
  std::string_view text = raw;
  switch (type) {
    case ParamType::kString:
      v.text = SplitEscaped(raw, '\0').front();
      if (modifier != Modifier::kExact) v.text = NormalizeSearchString(v.text);
      break;
    case ParamType::kUri:
      v.text = SplitEscaped(raw, '\0').front();
      break;
    case ParamType::kToken: {
      auto parts = SplitEscaped(raw, '|');
      if (parts.size() > 2) return ParamError(name, "a token is [system]|[code], got '" + raw + "'");
      if (parts.size() == 2) {
        v.has_system = true;
        v.system = parts[0];
        v.code = parts[1];
        if (v.system.empty() && v.code.empty()) return ParamError(name, "empty token '|'");
      } else {
        v.code = parts[0];
      }
      break;
    }
    case ParamType::kDate: {
      v.prefix = TakePrefix(&text);
      auto r = ParseFhirDate(text);
      if (!r.ok()) return ParamError(name, r.status().message());
      v.range = *r;
      break;
    }
    case ParamType::kNumber:
      v.prefix = TakePrefix(&text);
      RETURN_IF_ERROR(ParseNumber(name, text, &v));
      break;
    case ParamType::kQuantity: {
      v.prefix = TakePrefix(&text);
      auto parts = SplitEscaped(text, '|');
      if (parts.size() != 1 && parts.size() != 3)
        return ParamError(name, "a quantity is [prefix]number[|system|code], got '" + raw + "'");
      RETURN_IF_ERROR(ParseNumber(name, parts[0], &v));
      if (parts.size() == 3) {
        v.system = parts[1];
        v.code = parts[2];
      }
      break;
    }
    case ParamType::kReference: {
      if (raw.empty()) return ParamError(name, "empty reference");
      std::string ref = raw;
      if (size_t h = ref.find("/_history/"); h != std::string::npos) ref.resize(h);
      size_t slash = ref.rfind('/');
      if (slash == std::string::npos) {
        v.target_id = ref;
        if (def && def->targets.size() == 1) v.target_type = def->targets[0];
      } else {
        std::string type_part = ref.substr(0, slash);
        size_t before = type_part.rfind('/');
        std::string t = before == std::string::npos ? type_part : type_part.substr(before + 1);
        if (!Definitions::R4().IsResourceType(t)) {
          v.target_id = raw;  // an absolute URL we do not resolve
        } else {
          v.target_type = t;
          v.target_id = ref.substr(slash + 1);
        }
      }
      break;
    }
    case ParamType::kSpecial:
      return ParamError(name, "not supported");
  }
  return v;
}

StatusOr<Modifier> ParseModifier(const std::string& name, const std::string& mod, ParamType type,
                                 std::string* type_modifier) {
  if (mod.empty()) return Modifier::kNone;
  if (mod == "missing") return Modifier::kMissing;
  if (mod == "exact" && type == ParamType::kString) return Modifier::kExact;
  if (mod == "contains" && type == ParamType::kString) return Modifier::kContains;
  if (mod == "not" && type == ParamType::kToken) return Modifier::kNot;
  if (type == ParamType::kReference && Definitions::R4().IsResourceType(mod)) {
    *type_modifier = mod;
    return Modifier::kType;
  }
  return ParamError(name, "modifier ':" + mod + "' is not supported for this parameter");
}

bool IsResultParam(const std::string& n) {
  return n == "_count" || n == "_offset" || n == "_snapshot" || n == "_sort" || n == "_total" || n == "_summary" ||
         n == "_elements" || n == "_include" || n == "_revinclude" || n == "_format" || n == "_pretty";
}

StatusOr<int64_t> ParseInt(const std::string& name, const std::string& v, int64_t min, int64_t max) {
  char* end = nullptr;
  long long n = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || end != v.c_str() + v.size() || n < min || n > max)
    return ParamError(name, "'" + v + "' is not a whole number from " + std::to_string(min) + " to " +
                                std::to_string(max));
  return static_cast<int64_t>(n);
}

StatusOr<IncludeSpec> ParseInclude(const std::string& name, const std::string& value, bool iterate) {
  auto parts = SplitEscaped(value, ':');
  if (parts.size() < 2 || parts.size() > 3)
    return ParamError(name, "expected Type:parameter[:TargetType], got '" + value + "'");
  IncludeSpec inc;
  inc.source_type = parts[0];
  inc.param = parts[1];
  inc.iterate = iterate;
  if (parts.size() == 3) inc.target_type = parts[2];
  const Definitions& defs = Definitions::R4();
  if (!defs.IsResourceType(inc.source_type)) return ParamError(name, "unknown resource type '" + inc.source_type + "'");
  if (inc.param != "*") {
    const SearchParamDef* d = defs.SearchParam(inc.source_type, inc.param);
    if (!d || d->type != ParamType::kReference)
      return ParamError(name, "'" + inc.param + "' is not a reference parameter of " + inc.source_type);
  }
  if (!inc.target_type.empty() && !defs.IsResourceType(inc.target_type))
    return ParamError(name, "unknown target type '" + inc.target_type + "'");
  return inc;
}

}  // namespace

StatusOr<ParsedSearch> ParseSearch(std::string_view resource_type,
                                   const std::vector<std::pair<std::string, std::string>>& params,
                                   Handling handling, int default_count, int max_count) {
  const Definitions& defs = Definitions::R4();
  if (!defs.IsResourceType(resource_type))
    return Status(StatusCode::kNotFound, "unknown resource type '" + std::string(resource_type) + "'");
  ParsedSearch out;
  out.query.type = std::string(resource_type);
  out.query.count = default_count;

  auto unsupported = [&](const std::string& name, const std::string& why) -> Status {
    if (handling == Handling::kStrict) return ParamError(name, why);
    out.ignored.emplace_back(name, why);
    return Status::Ok();
  };

  for (const auto& [full_name, value] : params) {
    std::string name = full_name, modifier;
    if (size_t colon = full_name.find(':'); colon != std::string::npos) {
      name = full_name.substr(0, colon);
      modifier = full_name.substr(colon + 1);
    }
    // Result parameters.
    if (IsResultParam(name)) {
      if (name == "_count") {
        ASSIGN_OR_RETURN(int64_t n, ParseInt(name, value, 0, max_count));
        out.query.count = static_cast<int>(n);
      } else if (name == "_offset") {
        ASSIGN_OR_RETURN(out.query.offset, ParseInt(name, value, 0, INT64_MAX));
      } else if (name == "_snapshot") {
        ASSIGN_OR_RETURN(out.query.snapshot_seq, ParseInt(name, value, 0, INT64_MAX));
      } else if (name == "_total") {
        if (value == "none") out.query.total = store::TotalMode::kNone;
        else if (value == "estimate") out.query.total = store::TotalMode::kEstimate;
        else if (value == "accurate") out.query.total = store::TotalMode::kAccurate;
        else return ParamError(name, "expected none, estimate or accurate");
      } else if (name == "_summary") {
        if (value != "true" && value != "false" && value != "count" && value != "text" && value != "data")
          return ParamError(name, "expected true, false, count, text or data");
        out.summary = value;
        if (value == "count") {
          out.query.count = 0;
          out.query.total = store::TotalMode::kAccurate;
        }
      } else if (name == "_elements") {
        for (auto& e : SplitEscaped(value, ','))
          if (!e.empty()) out.elements.push_back(e);
      } else if (name == "_sort") {
        for (auto& key : SplitEscaped(value, ',')) {
          if (key.empty()) continue;
          store::SortKey k;
          k.descending = key[0] == '-';
          k.param = k.descending ? key.substr(1) : key;
          if (k.param == "_id") {
            k.type = ParamType::kToken;
          } else if (k.param == "_lastUpdated") {
            k.type = ParamType::kDate;
          } else {
            const SearchParamDef* d = defs.SearchParam(resource_type, k.param);
            if (!d || d->type == ParamType::kSpecial)
              return ParamError(name, "cannot sort by unknown parameter '" + k.param + "'");
            k.type = d->type;
          }
          out.query.sort.push_back(k);
        }
      } else if (name == "_include" || name == "_revinclude") {
        if (!modifier.empty() && modifier != "iterate" && modifier != "recurse")
          return ParamError(name, "modifier ':" + modifier + "' is not supported");
        ASSIGN_OR_RETURN(IncludeSpec inc, ParseInclude(name, value, !modifier.empty()));
        if (name == "_include" && inc.source_type != resource_type && !inc.iterate)
          return ParamError(name, "_include must start with " + std::string(resource_type) + " (or use :iterate)");
        (name == "_include" ? out.includes : out.revincludes).push_back(std::move(inc));
      } else if (name == "_format") {
        if (value != "json" && value != "application/json" && value != "application/fhir+json")
          return ParamError(name, "only JSON is served (use _format=json)");
      }
      if (name != "_offset" && name != "_snapshot" && name != "_count") out.canonical.emplace_back(full_name, value);
      continue;
    }

    Criterion c;
    c.param = name;
    const SearchParamDef* def = nullptr;
    // Chained reference: `subject:Patient.identifier=` or `subject.name=`.
    std::string chain_rest;
    if (size_t dot = full_name.find('.'); dot != std::string::npos && name != "_id") {
      std::string head = full_name.substr(0, dot);
      chain_rest = full_name.substr(dot + 1);
      name = head;
      modifier.clear();
      if (size_t colon = head.find(':'); colon != std::string::npos) {
        name = head.substr(0, colon);
        modifier = head.substr(colon + 1);
      }
      c.param = name;
    }
    if (name == "_id") {
      c.type = ParamType::kToken;
    } else if (name == "_lastUpdated") {
      c.type = ParamType::kDate;
    } else {
      def = defs.SearchParam(resource_type, name);
      if (!def) {
        RETURN_IF_ERROR(unsupported(full_name, "unknown search parameter for " + std::string(resource_type)));
        continue;
      }
      if (def->type == ParamType::kSpecial) {
        RETURN_IF_ERROR(unsupported(full_name, "composite and special parameters are not supported"));
        continue;
      }
      c.type = def->type;
    }
    if (!chain_rest.empty()) {
      if (c.type != ParamType::kReference) return ParamError(full_name, "only reference parameters can be chained");
      std::string target = modifier;
      if (target.empty()) {
        if (def->targets.size() != 1)
          return ParamError(full_name, "the reference may point at several types: name one, e.g. " + name + ":" +
                                           (def->targets.empty() ? std::string("Patient") : def->targets[0]) + "." +
                                           chain_rest);
        target = def->targets[0];
      }
      if (!defs.IsResourceType(target)) return ParamError(full_name, "unknown resource type '" + target + "'");
      if (chain_rest.find('.') != std::string::npos)
        return ParamError(full_name, "only one level of chaining is supported");
      ASSIGN_OR_RETURN(ParsedSearch inner, ParseSearch(target, {{chain_rest, value}}, Handling::kStrict, 1, 1));
      if (inner.query.criteria.size() != 1) return ParamError(full_name, "chained parameter not understood");
      c.chain = store::Chain{target, std::make_shared<const Criterion>(std::move(inner.query.criteria[0]))};
      out.query.criteria.push_back(std::move(c));
      out.canonical.emplace_back(full_name, value);
      continue;
    }
    std::string type_modifier;
    ASSIGN_OR_RETURN(c.modifier, ParseModifier(full_name, modifier, c.type, &type_modifier));
    if (c.modifier == Modifier::kMissing) {
      if (value != "true" && value != "false") return ParamError(full_name, ":missing takes true or false");
      c.missing = value == "true";
    } else {
      for (const std::string& raw : SplitEscaped(value, ',', /*final=*/false)) {
        ASSIGN_OR_RETURN(SearchValue v, ParseValue(full_name, def, c.type, c.modifier, raw));
        if (c.modifier == Modifier::kType) {
          v.target_type = type_modifier;
          if (v.target_id.find('/') != std::string::npos) return ParamError(full_name, "give a bare id with :" + type_modifier);
        }
        c.values.push_back(std::move(v));
      }
      if (c.modifier == Modifier::kType) c.modifier = Modifier::kNone;
    }
    out.query.criteria.push_back(std::move(c));
    out.canonical.emplace_back(full_name, value);
  }
  return out;
}

}  // namespace rhip::fhir
