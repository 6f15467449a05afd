#include "rhip/fhir/index.h"

#include <unicode/normalizer2.h>
#include <unicode/translit.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>

#include "rhip/core/time.h"
#include "rhip/fhir/definitions.h"
#include "rhip/fhir/fhirpath.h"

namespace rhip::fhir {
namespace {

using store::ParamType;

struct CompiledParam {
  const SearchParamDef* def;
  FhirPath path;
  // FhirPath::RootElements: the resource must have one of these for the
  // expression to yield anything (empty: always evaluate).
  std::vector<std::string> roots;
};

struct CompiledType {
  const TypeDef* def = nullptr;
  std::vector<CompiledParam> params;
  std::vector<std::string> compartment;  // reference params that put a resource in a Patient's compartment
};

// Every resource type's parameters, compiled once on first use and immutable
// after, so extraction takes no lock. Every R4 expression compiles (tested in
// FhirPath.CompilesEverySearchExpressionOfR4); one that did not would be a bug
// in fhirpath.cc, so it is reported rather than silently left unindexed.
const CompiledType& ForType(std::string_view type) {
  static const auto* table = [] {
    auto* t = new std::map<std::string, CompiledType, std::less<>>();  // lives until exit, read by every thread
    const Definitions& defs = Definitions::R4();
    for (const std::string& rt : defs.ResourceTypes()) {
      CompiledType& ct = (*t)[rt];
      ct.def = defs.Type(rt);
      auto add = [&](const SearchParamDef& d) {
        if (d.code == "_id" || d.code == "_lastUpdated") return;  // columns of the resource row
        if (d.type == ParamType::kSpecial) return;
        auto p = FhirPath::Compile(d.expression);
        if (!p.ok()) {
          std::fprintf(stderr, "rhip: search parameter %s.%s is not indexed: %s\n", rt.c_str(), d.code.c_str(),
                       p.status().message().c_str());
          return;
        }
        std::vector<std::string> roots = p->RootElements(rt);
        ct.params.push_back({&d, std::move(*p), std::move(roots)});
      };
      for (const auto& d : defs.SearchParams(rt)) add(d);
      for (const auto& d : defs.CommonSearchParams()) add(d);
      ct.compartment = defs.PatientCompartmentParams(rt);
    }
    return t;
  }();
  static const CompiledType kNone;
  auto it = table->find(type);
  return it == table->end() ? kNone : it->second;
}

std::string_view Str(const JsonValue* v) {
  if (!v || !v->IsString()) return {};
  return {v->GetString(), v->GetStringLength()};
}

void AddString(const std::string& param, std::string_view s, store::IndexRows* rows) {
  if (s.empty()) return;
  rows->strings.push_back({param, NormalizeSearchString(s), std::string(s)});
}

void StringsOf(const JsonValue& v, const char* name, const std::string& param, store::IndexRows* rows) {
  const JsonValue* m = Member(v, name);
  if (!m) return;
  if (m->IsArray()) {
    for (const auto& x : m->GetArray()) AddString(param, Str(&x), rows);
  } else {
    AddString(param, Str(m), rows);
  }
}

void ToString(const std::string& param, const PathNode& n, store::IndexRows* rows) {
  const JsonValue& v = *n.value;
  if (v.IsString()) {
    AddString(param, Str(&v), rows);
  } else if (n.type == "HumanName") {
    for (const char* f : {"text", "family", "given", "prefix", "suffix"}) StringsOf(v, f, param, rows);
  } else if (n.type == "Address") {
    for (const char* f : {"text", "line", "city", "district", "state", "postalCode", "country"})
      StringsOf(v, f, param, rows);
  }
}

void AddToken(const std::string& param, std::string_view system, std::string_view code, store::IndexRows* rows) {
  if (code.empty() && system.empty()) return;
  rows->tokens.push_back({param, std::string(system), std::string(code)});
}

void ToToken(const std::string& param, const PathNode& n, store::IndexRows* rows) {
  if (n.boolean >= 0) {
    AddToken(param, "", n.boolean ? "true" : "false", rows);
    return;
  }
  const JsonValue& v = *n.value;
  if (v.IsBool()) {
    AddToken(param, "", v.GetBool() ? "true" : "false", rows);
  } else if (v.IsString()) {
    AddToken(param, "", Str(&v), rows);
  } else if (n.type == "Coding") {
    AddToken(param, Str(Member(v, "system")), Str(Member(v, "code")), rows);
  } else if (n.type == "CodeableConcept") {
    if (const JsonValue* c = Member(v, "coding"); c && c->IsArray())
      for (const auto& x : c->GetArray()) AddToken(param, Str(Member(x, "system")), Str(Member(x, "code")), rows);
  } else if (n.type == "Identifier") {
    AddToken(param, Str(Member(v, "system")), Str(Member(v, "value")), rows);
  } else if (n.type == "ContactPoint") {
    AddToken(param, Str(Member(v, "system")), Str(Member(v, "value")), rows);
  } else if (v.IsNumber()) {
    AddToken(param, "", std::to_string(v.GetInt64()), rows);
  }
}

void ToDate(const std::string& param, const PathNode& n, store::IndexRows* rows) {
  const JsonValue& v = *n.value;
  if (v.IsString()) {
    auto r = ParseFhirDate(Str(&v));
    if (r.ok()) rows->dates.push_back({param, r->low, r->high});
  } else if (n.type == "Period") {
    Micros low = std::numeric_limits<Micros>::min(), high = std::numeric_limits<Micros>::max();
    if (auto s = Str(Member(v, "start")); !s.empty()) {
      auto r = ParseFhirDate(s);
      if (!r.ok()) return;
      low = r->low;
    }
    if (auto e = Str(Member(v, "end")); !e.empty()) {
      auto r = ParseFhirDate(e);
      if (!r.ok()) return;
      high = r->high;
    }
    rows->dates.push_back({param, low, high});
  } else if (n.type == "Timing") {
    if (const JsonValue* ev = Member(v, "event"); ev && ev->IsArray())
      for (const auto& x : ev->GetArray()) {
        auto r = ParseFhirDate(Str(&x));
        if (r.ok()) rows->dates.push_back({param, r->low, r->high});
      }
  }
}

void ToReference(const std::string& param, const PathNode& n, store::IndexRows* rows) {
  const JsonValue& v = *n.value;
  std::string_view ref = v.IsString() ? Str(&v) : Str(Member(v, "reference"));
  if (ref.empty() || ref[0] == '#') return;
  if (size_t h = ref.find("/_history/"); h != std::string_view::npos) ref = ref.substr(0, h);
  if (ref.rfind("urn:", 0) == 0) {
    rows->references.push_back({param, "", std::string(ref)});
    return;
  }
  size_t last = ref.rfind('/');
  if (last == std::string_view::npos || last + 1 == ref.size()) {
    rows->references.push_back({param, "", std::string(ref)});
    return;
  }
  size_t before = ref.rfind('/', last - 1);
  std::string_view type = ref.substr(before == std::string_view::npos ? 0 : before + 1,
                                     last - (before == std::string_view::npos ? 0 : before + 1));
  if (Definitions::R4().IsResourceType(type)) {
    rows->references.push_back({param, std::string(type), std::string(ref.substr(last + 1))});
  } else {
    rows->references.push_back({param, "", std::string(ref)});
  }
}

void ToQuantity(const std::string& param, const PathNode& n, store::IndexRows* rows) {
  const JsonValue& v = *n.value;
  const JsonValue* value = Member(v, "value");
  if (!value || !value->IsNumber()) return;
  std::string_view code = Str(Member(v, "code"));
  if (code.empty()) code = Str(Member(v, "unit"));
  if (code.empty()) code = Str(Member(v, "currency"));
  rows->quantities.push_back({param, value->GetDouble(), std::string(Str(Member(v, "system"))), std::string(code)});
}

template <typename Row>
void Dedup(std::vector<Row>& v, bool (*eq)(const Row&, const Row&)) {
  std::vector<Row> out;
  out.reserve(v.size());
  for (auto& r : v) {
    bool dup = false;
    for (const auto& o : out) dup = dup || eq(o, r);
    if (!dup) out.push_back(std::move(r));
  }
  v = std::move(out);
}

}  // namespace

namespace {

// True when every character is ASCII or a CJK unified ideograph (U+3400-U+4DBF,
// U+4E00-U+9FFF): none of those is changed by NFD, mark removal, NFKC or case
// folding except ASCII letters (lower-cased), so the ICU chain can be skipped.
// Chinese names and addresses are such text.
bool AsciiOrCjk(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    if (*p < 0x80) {
      ++p;
      continue;
    }
    if ((*p & 0xF0) != 0xE0 || end - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return false;
    const unsigned cp = (static_cast<unsigned>(*p & 0x0F) << 12) | (static_cast<unsigned>(p[1] & 0x3F) << 6) |
                        static_cast<unsigned>(p[2] & 0x3F);
    if (!((cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF))) return false;
    p += 3;
  }
  return true;
}

}  // namespace

std::string NormalizeSearchString(std::string_view text) {
  if (AsciiOrCjk(text)) {
    std::string out(text);
    for (char& c : out)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
  }
  thread_local std::unique_ptr<icu::Transliterator> strip = [] {
    UErrorCode status = U_ZERO_ERROR;
    std::unique_ptr<icu::Transliterator> t(icu::Transliterator::createInstance(
        "NFD; [:Nonspacing Mark:] Remove; NFKC", UTRANS_FORWARD, status));
    return U_SUCCESS(status) ? std::move(t) : nullptr;
  }();
  icu::UnicodeString u = icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  if (strip) strip->transliterate(u);
  u.foldCase();
  std::string out;
  u.toUTF8String(out);
  return out;
}

namespace {

// True when the resource has a top-level member for one of `roots` (a choice
// element's base matches its typed members: "value" matches "valueQuantity").
bool HasAnyRoot(const std::vector<std::string_view>& members, const std::vector<std::string>& roots) {
  for (const std::string& r : roots)
    for (std::string_view m : members)
      if (m.size() >= r.size() && m.compare(0, r.size(), r) == 0 &&
          (m.size() == r.size() || std::isupper(static_cast<unsigned char>(m[r.size()]))))
        return true;
  return false;
}

store::IndexRows Extract(const JsonValue& resource, std::string_view type, const std::vector<std::string>* only,
                         bool skip_absent = true) {
  store::IndexRows rows;
  const CompiledType& ct = ForType(type);
  // Most of a type's parameters read elements a given resource does not have
  // (an Observation has ~10 of the ~40 its parameters read): those are skipped
  // without evaluating their expressions.
  thread_local std::vector<std::string_view> members;
  members.clear();
  if (resource.IsObject())
    for (auto it = resource.MemberBegin(); it != resource.MemberEnd(); ++it)
      members.emplace_back(it->name.GetString(), it->name.GetStringLength());
  for (const CompiledParam& p : ct.params) {
    if (only && std::find(only->begin(), only->end(), p.def->code) == only->end()) continue;
    if (skip_absent && !p.roots.empty() && !HasAnyRoot(members, p.roots)) continue;
    std::vector<PathNode> nodes = ct.def ? p.path.Evaluate(resource, *ct.def) : p.path.Evaluate(resource, type);
    const std::string& code = p.def->code;
    for (const PathNode& n : nodes) {
      if (!n.value && n.boolean < 0) continue;
      switch (p.def->type) {
        case ParamType::kString: if (n.value) ToString(code, n, &rows); break;
        case ParamType::kToken: ToToken(code, n, &rows); break;
        case ParamType::kDate: if (n.value) ToDate(code, n, &rows); break;
        case ParamType::kReference: if (n.value) ToReference(code, n, &rows); break;
        case ParamType::kNumber:
          if (n.value && n.value->IsNumber()) rows.numbers.push_back({code, n.value->GetDouble()});
          break;
        case ParamType::kQuantity: if (n.value) ToQuantity(code, n, &rows); break;
        case ParamType::kUri:
          if (n.value && n.value->IsString()) rows.uris.push_back({code, std::string(Str(n.value))});
          break;
        case ParamType::kSpecial: break;
      }
    }
  }
  Dedup<store::StringRow>(rows.strings, [](const store::StringRow& a, const store::StringRow& b) {
    return a.param == b.param && a.exact == b.exact;
  });
  Dedup<store::TokenRow>(rows.tokens, [](const store::TokenRow& a, const store::TokenRow& b) {
    return a.param == b.param && a.system == b.system && a.code == b.code;
  });
  Dedup<store::ReferenceRow>(rows.references, [](const store::ReferenceRow& a, const store::ReferenceRow& b) {
    return a.param == b.param && a.target_type == b.target_type && a.target_id == b.target_id;
  });
  // Patient compartment.
  if (type == "Patient") {
    std::string_view id = Str(Member(resource, "id"));
    if (!id.empty()) rows.compartment_patients.emplace_back(id);
  }
  for (const auto& r : rows.references) {
    if (r.target_type != "Patient") continue;
    if (std::find(ct.compartment.begin(), ct.compartment.end(), r.param) == ct.compartment.end()) continue;
    if (std::find(rows.compartment_patients.begin(), rows.compartment_patients.end(), r.target_id) ==
        rows.compartment_patients.end())
      rows.compartment_patients.push_back(r.target_id);
  }
  return rows;
}

}  // namespace

store::IndexRows ExtractIndex(const JsonValue& resource, std::string_view type) {
  return Extract(resource, type, nullptr);
}

store::IndexRows ExtractIndexEvaluatingAll(const JsonValue& resource, std::string_view type) {
  return Extract(resource, type, nullptr, /*skip_absent=*/false);
}

store::IndexRows ExtractIndexOf(const JsonValue& resource, std::string_view type,
                                const std::vector<std::string>& params) {
  return Extract(resource, type, &params);
}

std::vector<std::string> PatientCompartmentOf(const JsonValue& resource, std::string_view type) {
  const CompiledType& ct = ForType(type);
  return Extract(resource, type, &ct.compartment).compartment_patients;
}

}  // namespace rhip::fhir
