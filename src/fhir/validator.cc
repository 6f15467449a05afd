#include "rhip/fhir/validator.h"

#include <algorithm>
#include <cctype>
#include <mutex>
#include <unordered_map>

#include "rhip/core/time.h"
#include "rhip/fhir/definitions.h"

namespace rhip::fhir {
namespace {

// How a primitive's JSON value is checked (Validator::Primitive).
enum class Prim {
  kNone, kBoolean, kInteger, kPositiveInt, kUnsignedInt, kDecimal, kDate, kDateTime, kInstant, kTime,
  kId, kCode, kUri, kOid, kUuid, kBase64, kString
};

Prim PrimOf(std::string_view code) {
  static const std::pair<std::string_view, Prim> kPrims[] = {
      {"boolean", Prim::kBoolean}, {"integer", Prim::kInteger}, {"positiveInt", Prim::kPositiveInt},
      {"unsignedInt", Prim::kUnsignedInt}, {"decimal", Prim::kDecimal}, {"date", Prim::kDate},
      {"dateTime", Prim::kDateTime}, {"instant", Prim::kInstant}, {"time", Prim::kTime}, {"id", Prim::kId},
      {"code", Prim::kCode}, {"uri", Prim::kUri}, {"url", Prim::kUri}, {"canonical", Prim::kUri},
      {"oid", Prim::kOid}, {"uuid", Prim::kUuid}, {"base64Binary", Prim::kBase64}};
  for (const auto& [name, prim] : kPrims)
    if (name == code) return prim;
  return Prim::kString;
}

struct Scope;

// What a JSON member name means inside one (type, backbone path) scope, with
// everything its value's check needs looked up once, when the table is built.
struct MemberInfo {
  const ElementDef* element = nullptr;
  std::string type;  // the type this member carries ("valueQuantity" → "Quantity")
  std::string base;  // element name without [x] ("value")
  enum class Kind { kPrimitive, kObject, kResource } kind = Kind::kPrimitive;
  Prim prim = Prim::kNone;        // kPrimitive
  const Scope* scope = nullptr;   // kObject: the scope of the value's members (nullptr: not checked)
  const TypeDef* def = nullptr;   // the type named `type`, if any
};

// A required (min >= 1) element and the JSON members that satisfy it.
struct Required {
  const ElementDef* element;
  std::string name;                  // "status", or "value[x]" for a choice
  std::vector<std::string> members;  // "status", "_status"; a choice: each typed name and its "_" form
};

struct Scope {
  const TypeDef* td = nullptr;
  std::string prefix;  // backbone path inside td ("" at the type's root)
  NameMap<MemberInfo> members;
  std::vector<Required> required;
};

// Built once: "Type|prefix" → its members, for every type of the model.
class ScopeTable {
 public:
  static const ScopeTable& Get() {
    static const ScopeTable* t = new ScopeTable();  // immutable after construction, used by every thread
    return *t;
  }
  const Scope* Find(const TypeDef* td, std::string_view prefix) const {
    thread_local std::string key;  // a look-up builds no string
    key.assign(td->name);
    key += '|';
    key += prefix;
    auto it = scopes_.find(key);
    return it == scopes_.end() ? nullptr : &it->second;
  }

 private:
  static std::string Key(std::string_view type, std::string_view prefix) {
    std::string k(type);
    k += '|';
    k += prefix;
    return k;
  }
  Scope& At(const TypeDef* td, const std::string& prefix) {
    Scope& sc = scopes_[Key(td->name, prefix)];
    sc.td = td;
    sc.prefix = prefix;
    return sc;
  }
  ScopeTable() {
    const Definitions& defs = Definitions::R4();
    std::vector<std::string> names;
    for (const auto& rt : defs.ResourceTypes()) names.push_back(rt);
    for (const char* extra : {"Resource", "DomainResource", "Element"}) names.emplace_back(extra);
    // datatypes: every type referenced from an element
    std::vector<const TypeDef*> todo;
    for (const auto& n : names)
      if (const TypeDef* td = defs.Type(n)) todo.push_back(td);
    std::unordered_map<std::string, bool> seen;
    while (!todo.empty()) {
      const TypeDef* td = todo.back();
      todo.pop_back();
      if (seen[td->name]) continue;
      seen[td->name] = true;
      At(td, "");
      for (const ElementDef& e : td->elements) {
        size_t dot = e.path.rfind('.');
        std::string prefix = dot == std::string::npos ? "" : e.path.substr(0, dot);
        std::string name = dot == std::string::npos ? e.path : e.path.substr(dot + 1);
        Scope& scope = At(td, prefix);
        if (e.min >= 1) {
          Required r{&e, name, {}};
          if (e.is_choice) {
            std::string base = name.substr(0, name.size() - 3);
            for (const ElementType& t : e.types) {
              std::string n = ChoiceMemberName(base, TypeName(t));
              r.members.push_back(n);
              r.members.push_back("_" + n);
            }
            r.name = base + "[x]";
          } else {
            r.members = {name, "_" + name};
          }
          scope.required.push_back(std::move(r));
        }
        if (e.is_choice) {
          std::string base = name.substr(0, name.size() - 3);
          for (const ElementType& t : e.types) {
            std::string code = TypeName(t);
            scope.members[ChoiceMemberName(base, code)] = {&e, code, base};
            if (const TypeDef* d = defs.Type(code)) todo.push_back(d);
          }
        } else {
          std::string code = e.types.empty() ? "" : TypeName(e.types[0]);
          scope.members[name] = {&e, code, name};
          if (const TypeDef* d = defs.Type(code)) todo.push_back(d);
        }
      }
    }
    // Second pass, every scope known: what each member's value is checked as
    // (the order Validator::Value used to decide it in).
    for (auto& [key, scope] : scopes_) {
      for (auto& [name, m] : scope.members) {
        const ElementDef& e = *m.element;
        m.def = defs.Type(m.type);
        if (!e.content_reference.empty()) {
          m.kind = MemberInfo::Kind::kObject;
          m.scope = Find(scope.td, e.content_reference);
        } else if (e.path == "id" && scope.td->kind == TypeKind::kResource) {
          // Resource.id is typed System.String in the R4 snapshot but is an `id`.
          m.prim = Prim::kId;
        } else if (m.type == "Resource") {
          m.kind = MemberInfo::Kind::kResource;
        } else if ((m.type == "BackboneElement" || m.type == "Element") && Find(scope.td, e.path)) {
          m.kind = MemberInfo::Kind::kObject;
          m.scope = Find(scope.td, e.path);
        } else if (!m.def || m.def->kind == TypeKind::kPrimitive) {
          m.prim = PrimOf(m.type);
        } else {
          m.kind = MemberInfo::Kind::kObject;
          m.scope = Find(m.def, "");
        }
      }
    }
  }
  NameMap<Scope> scopes_;
};

// A place in the resource, rendered as FHIRPath text only when an issue names it.
struct Loc {
  const Loc* parent = nullptr;
  std::string_view name;  // a member, or the whole text at the root (parent == nullptr)
  int index = -1;         // >= 0: the index-th element of parent's array
  std::string str() const {
    if (!parent) return std::string(name);
    std::string s = parent->str();
    if (index >= 0) return s + "[" + std::to_string(index) + "]";
    s += '.';
    s += name;
    return s;
  }
  Loc Child(std::string_view n) const { return Loc{this, n, -1}; }
  Loc Index(int i) const { return Loc{this, {}, i}; }
};

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

class Validator {
 public:
  explicit Validator(const ValidationOptions& o) : options_(o) {}
  std::vector<Issue> issues;

  bool Full() const { return issues.size() >= options_.max_issues; }

  void Add(const char* code, std::string diagnostics, std::string expression) {
    if (Full()) return;
    issues.push_back({"error", code, std::move(diagnostics), std::move(expression)});
  }

  // `loc` is nullptr for the resource being validated, else where a contained one sits.
  void Resource(const JsonValue& v, const Loc* loc) {
    auto at = [&](const char* member) { return loc ? loc->str() + "." + member : std::string(member); };
    if (!v.IsObject()) {
      Add("structure", "a resource must be a JSON object", loc ? loc->str() : "Resource");
      return;
    }
    std::string_view rt = StringMember(v, "resourceType");
    const Definitions& defs = Definitions::R4();
    if (rt.empty()) {
      Add("required", "resourceType is missing", at("resourceType"));
      return;
    }
    if (!defs.IsResourceType(rt)) {
      Add("not-supported", "unknown resourceType '" + std::string(rt) + "'", at("resourceType"));
      return;
    }
    const Scope* scope = ScopeTable::Get().Find(defs.Type(rt), "");
    if (loc) {
      Object(v, scope, *loc, true);
    } else {
      const Loc root{nullptr, rt, -1};
      Object(v, scope, root, true);
    }
  }

 private:
  void Object(const JsonValue& v, const Scope* scope, const Loc& loc, bool resource_root) {
    if (!scope) return;
    for (auto it = v.MemberBegin(); it != v.MemberEnd() && !Full(); ++it) {
      const std::string_view name(it->name.GetString(), it->name.GetStringLength());
      if (name == "resourceType" && resource_root) continue;
      if (name == "fhir_comments") continue;
      if (!name.empty() && name[0] == '_') {
        PrimitiveExtension(it->value, *scope, name, loc);
        continue;
      }
      auto m = scope->members.find(name);
      if (m == scope->members.end()) {
        Unknown(std::string(name), *scope, loc);
        continue;
      }
      Member(it->value, m->second, loc.Child(name));
    }
    // Required elements (a primitive may be present only as its `_name` extension).
    for (const Required& r : scope->required) {
      if (Full()) return;
      bool present = false;
      for (const std::string& n : r.members) present = present || v.HasMember(n.c_str());
      if (!present) {
        const std::string l = loc.str() + "." + r.name;
        Add("required", l + " is required (minimum cardinality " + std::to_string(r.element->min) + ")", l);
      }
    }
  }

  void Unknown(const std::string& name, const Scope& scope, const Loc& loc) {
    std::string best;
    size_t best_d = 3;
    for (const auto& [n, _] : scope.members) {
      size_t d = EditDistance(n, name);
      if (d < best_d) {
        best_d = d;
        best = n;
      }
    }
    std::string where = scope.prefix.empty() ? scope.td->name : scope.td->name + "." + scope.prefix;
    std::string msg = "unknown element '" + name + "' in " + where;
    if (!best.empty()) msg += " (did you mean '" + best + "'?)";
    Add("structure", msg, loc.str() + "." + name);
  }

  void PrimitiveExtension(const JsonValue& v, const Scope& scope, std::string_view name, const Loc& loc) {
    auto m = scope.members.find(name.substr(1));
    const Definitions& defs = Definitions::R4();
    if (m == scope.members.end() || !m->second.def || m->second.def->kind != TypeKind::kPrimitive) {
      Add("structure", "'" + std::string(name) + "' extends no primitive element", loc.str() + "." + std::string(name));
      return;
    }
    static const Scope* element = ScopeTable::Get().Find(defs.Type("Element"), "");
    auto check = [&](const JsonValue& x, const Loc& l) {
      if (x.IsNull()) return;
      if (!x.IsObject()) {
        Add("structure", "'" + std::string(name) + "' must hold an object with id/extension", l.str());
        return;
      }
      Object(x, element, l, false);
    };
    const Loc here = loc.Child(name);
    if (v.IsArray()) {
      int i = 0;
      for (const auto& x : v.GetArray()) check(x, here.Index(i++));
    } else {
      check(v, here);
    }
  }

  void Member(const JsonValue& v, const MemberInfo& m, const Loc& loc) {
    const ElementDef& e = *m.element;
    const bool many = e.max == -1 || e.max > 1;
    if (v.IsArray()) {
      if (!many) {
        const std::string l = loc.str();
        Add("structure", l + " takes one value, not an array (maximum cardinality " + std::to_string(e.max) + ")", l);
        return;
      }
      if (v.Empty()) {
        const std::string l = loc.str();
        Add("structure", l + " is an empty array: leave the element out instead", l);
        return;
      }
      int i = 0;
      for (const auto& x : v.GetArray()) {
        const Loc l = loc.Index(i++);
        if (x.IsNull()) continue;  // paired with `_name` for primitives
        Value(x, m, l);
      }
      return;
    }
    if (many) {
      const std::string l = loc.str();
      Add("structure", l + " must be an array (maximum cardinality " +
                           (e.max == -1 ? std::string("*") : std::to_string(e.max)) + ")", l);
      return;
    }
    if (v.IsNull()) {
      const std::string l = loc.str();
      Add("structure", l + " is null: leave the element out instead", l);
      return;
    }
    Value(v, m, loc);
  }

  void Value(const JsonValue& v, const MemberInfo& m, const Loc& loc) {
    switch (m.kind) {
      case MemberInfo::Kind::kResource:
        return Resource(v, &loc);
      case MemberInfo::Kind::kObject:
        if (!v.IsObject()) {
          const std::string l = loc.str();
          const bool typed = m.element->content_reference.empty() && m.type != "BackboneElement" &&
                             m.type != "Element";
          return Add("structure", l + " must be an object" + (typed ? " (" + m.type + ")" : std::string()), l);
        }
        return Object(v, m.scope, loc, false);
      case MemberInfo::Kind::kPrimitive:
        return Primitive(v, m.prim, m.prim == Prim::kId ? std::string_view("id") : std::string_view(m.type), loc);
    }
  }

  void Primitive(const JsonValue& v, Prim prim, std::string_view code, const Loc& loc) {
    auto bad = [&](const std::string& why) {
      const std::string l = loc.str();
      Add("value", l + ": " + why, l);
    };
    auto show = [&]() -> std::string {
      if (v.IsString()) return "'" + std::string(v.GetString(), v.GetStringLength()) + "'";
      return v.IsNumber() ? "a number" : v.IsBool() ? "a boolean" : v.IsObject() ? "an object" : "an array";
    };
    switch (prim) {
      case Prim::kBoolean:
        if (!v.IsBool()) bad(show() + " is not a boolean (use true or false without quotes)");
        return;
      case Prim::kInteger: case Prim::kPositiveInt: case Prim::kUnsignedInt:
        if (!v.IsInt()) return bad(show() + " is not a 32-bit whole number");
        if (prim == Prim::kPositiveInt && v.GetInt() < 1) bad("must be 1 or more");
        if (prim == Prim::kUnsignedInt && v.GetInt() < 0) bad("must be 0 or more");
        return;
      case Prim::kDecimal:
        if (!v.IsNumber()) bad(show() + " is not a decimal number (no quotes)");
        return;
      default:
        break;
    }
    if (!v.IsString()) return bad(show() + " must be a JSON string (" + std::string(code) + ")");
    std::string_view s(v.GetString(), v.GetStringLength());
    if (s.empty()) return bad("empty string: leave the element out instead");
    switch (prim) {
      case Prim::kDate:
        if (!IsValidFhirDate(s)) bad("'" + std::string(s) + "' is not a valid FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)" + Why(s));
        break;
      case Prim::kDateTime:
        if (!IsValidFhirDateTime(s))
          bad("'" + std::string(s) + "' is not a valid FHIR dateTime (a date, or YYYY-MM-DDThh:mm:ss with a zone)" + Why(s));
        break;
      case Prim::kInstant:
        if (!IsValidFhirInstant(s)) bad("'" + std::string(s) + "' is not a valid FHIR instant (YYYY-MM-DDThh:mm:ss[.fff] with a zone)" + Why(s));
        break;
      case Prim::kTime:
        if (!IsValidFhirTime(s)) bad("'" + std::string(s) + "' is not a valid FHIR time (hh:mm:ss)");
        break;
      case Prim::kId: {
        bool ok = s.size() <= 64;
        for (char c : s) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.');
        if (!ok) bad("'" + std::string(s) + "' is not a valid id (1-64 of A-Z a-z 0-9 - .)");
        break;
      }
      case Prim::kCode:
        if (std::isspace(static_cast<unsigned char>(s.front())) || std::isspace(static_cast<unsigned char>(s.back())) ||
            s.find("  ") != std::string_view::npos)
          bad("'" + std::string(s) + "' is not a valid code (no leading, trailing or double spaces)");
        break;
      case Prim::kUri:
        for (char c : s)
          if (std::isspace(static_cast<unsigned char>(c)))
            return bad("'" + std::string(s) + "' is not a valid " + std::string(code) + " (contains white space)");
        break;
      case Prim::kOid:
        if (s.rfind("urn:oid:", 0) != 0) bad("'" + std::string(s) + "' is not an oid (urn:oid:...)");
        break;
      case Prim::kUuid:
        if (s.rfind("urn:uuid:", 0) != 0) bad("'" + std::string(s) + "' is not a uuid (urn:uuid:...)");
        break;
      case Prim::kBase64:
        for (char c : s)
          if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/' && c != '=' &&
              !std::isspace(static_cast<unsigned char>(c)))
            return bad("not valid base64");
        break;
      default:
        break;
    }
  }

  static std::string Why(std::string_view s) {
    auto r = ParseFhirDate(s);
    if (r.ok()) return "";
    std::string m = r.status().message();
    size_t colon = m.rfind(": ");
    return " (" + (colon == std::string::npos ? m : m.substr(colon + 2)) + ")";
  }

  const ValidationOptions& options_;
};

}  // namespace

std::vector<Issue> ValidateResource(const JsonValue& resource, const ValidationOptions& options) {
  Validator v(options);
  v.Resource(resource, nullptr);
  return std::move(v.issues);
}

bool HasErrors(const std::vector<Issue>& issues) {
  return std::any_of(issues.begin(), issues.end(),
                     [](const Issue& i) { return i.severity == "error" || i.severity == "fatal"; });
}

}  // namespace rhip::fhir
