#include "rhip/fhir/validator.h"

#include <algorithm>
#include <cctype>
#include <mutex>
#include <unordered_map>

#include "rhip/core/time.h"
#include "rhip/fhir/definitions.h"

namespace rhip::fhir {
namespace {

// What a JSON member name means inside one (type, backbone path) scope.
struct MemberInfo {
  const ElementDef* element = nullptr;
  std::string type;  // the type this member carries ("valueQuantity" → "Quantity")
  std::string base;  // element name without [x] ("value")
};

struct Scope {
  NameMap<MemberInfo> members;
  std::vector<const ElementDef*> required;  // min >= 1 children
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
  ScopeTable() {
    const Definitions& defs = Definitions::R4();
    std::vector<std::string> names;
    for (const auto& rt : defs.ResourceTypes()) names.push_back(rt);
    for (const char* extra : {"Resource", "DomainResource"}) names.emplace_back(extra);
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
      scopes_[Key(td->name, "")];
      for (const ElementDef& e : td->elements) {
        size_t dot = e.path.rfind('.');
        std::string prefix = dot == std::string::npos ? "" : e.path.substr(0, dot);
        std::string name = dot == std::string::npos ? e.path : e.path.substr(dot + 1);
        Scope& scope = scopes_[Key(td->name, prefix)];
        if (e.min >= 1) scope.required.push_back(&e);
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
  }
  NameMap<Scope> scopes_;
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

  void Resource(const JsonValue& v, const std::string& loc) {
    if (!v.IsObject()) {
      Add("structure", "a resource must be a JSON object", loc.empty() ? "Resource" : loc);
      return;
    }
    std::string_view rt = StringMember(v, "resourceType");
    const Definitions& defs = Definitions::R4();
    if (rt.empty()) {
      Add("required", "resourceType is missing", loc.empty() ? "resourceType" : loc + ".resourceType");
      return;
    }
    if (!defs.IsResourceType(rt)) {
      Add("not-supported", "unknown resourceType '" + std::string(rt) + "'",
          loc.empty() ? "resourceType" : loc + ".resourceType");
      return;
    }
    const TypeDef* td = defs.Type(rt);
    Object(v, td, "", loc.empty() ? std::string(rt) : loc, true);
  }

 private:
  void Object(const JsonValue& v, const TypeDef* td, const std::string& prefix, const std::string& loc,
              bool resource_root) {
    const Scope* scope = ScopeTable::Get().Find(td, prefix);
    if (!scope) return;
    for (auto it = v.MemberBegin(); it != v.MemberEnd() && !Full(); ++it) {
      const std::string_view name(it->name.GetString(), it->name.GetStringLength());
      if (name == "resourceType" && resource_root) continue;
      if (name == "fhir_comments") continue;
      if (!name.empty() && name[0] == '_') {
        PrimitiveExtension(it->value, *scope, std::string(name), loc);
        continue;
      }
      auto m = scope->members.find(name);
      if (m == scope->members.end()) {
        Unknown(std::string(name), *scope, td, prefix, loc);
        continue;
      }
      std::string child;
      child.reserve(loc.size() + 1 + name.size());
      child += loc;
      child += '.';
      child += name;
      Member(it->value, m->second, td, child);
    }
    // Required elements (a primitive may be present only as its `_name` extension).
    for (const ElementDef* e : scope->required) {
      if (Full()) return;
      size_t dot = e->path.rfind('.');
      std::string name = dot == std::string::npos ? e->path : e->path.substr(dot + 1);
      bool present = false;
      if (e->is_choice) {
        std::string base = name.substr(0, name.size() - 3);
        for (const ElementType& t : e->types) {
          std::string n = ChoiceMemberName(base, TypeName(t));
          present = present || v.HasMember(n.c_str()) || v.HasMember(("_" + n).c_str());
        }
        name = base + "[x]";
      } else {
        present = v.HasMember(name.c_str()) || v.HasMember(("_" + name).c_str());
      }
      if (!present) Add("required", loc + "." + name + " is required (minimum cardinality " +
                                        std::to_string(e->min) + ")", loc + "." + name);
    }
  }

  void Unknown(const std::string& name, const Scope& scope, const TypeDef* td, const std::string& prefix,
               const std::string& loc) {
    std::string best;
    size_t best_d = 3;
    for (const auto& [n, _] : scope.members) {
      size_t d = EditDistance(n, name);
      if (d < best_d) {
        best_d = d;
        best = n;
      }
    }
    std::string where = prefix.empty() ? td->name : td->name + "." + prefix;
    std::string msg = "unknown element '" + name + "' in " + where;
    if (!best.empty()) msg += " (did you mean '" + best + "'?)";
    Add("structure", msg, loc + "." + name);
  }

  void PrimitiveExtension(const JsonValue& v, const Scope& scope, const std::string& name, const std::string& loc) {
    auto m = scope.members.find(std::string_view(name).substr(1));
    const Definitions& defs = Definitions::R4();
    if (m == scope.members.end() || !defs.Type(m->second.type) ||
        defs.Type(m->second.type)->kind != TypeKind::kPrimitive) {
      Add("structure", "'" + name + "' extends no primitive element", loc + "." + name);
      return;
    }
    auto check = [&](const JsonValue& x, const std::string& l) {
      if (x.IsNull()) return;
      if (!x.IsObject()) {
        Add("structure", "'" + name + "' must hold an object with id/extension", l);
        return;
      }
      Object(x, defs.Type("Element"), "", l, false);
    };
    if (v.IsArray()) {
      int i = 0;
      for (const auto& x : v.GetArray()) check(x, loc + "." + name + "[" + std::to_string(i++) + "]");
    } else {
      check(v, loc + "." + name);
    }
  }

  void Member(const JsonValue& v, const MemberInfo& m, const TypeDef* owner, const std::string& loc) {
    const ElementDef& e = *m.element;
    const bool many = e.max == -1 || e.max > 1;
    if (v.IsArray()) {
      if (!many) {
        Add("structure", loc + " takes one value, not an array (maximum cardinality " + std::to_string(e.max) + ")",
            loc);
        return;
      }
      if (v.Empty()) {
        Add("structure", loc + " is an empty array: leave the element out instead", loc);
        return;
      }
      int i = 0;
      for (const auto& x : v.GetArray()) {
        std::string l = loc + "[" + std::to_string(i++) + "]";
        if (x.IsNull()) continue;  // paired with `_name` for primitives
        Value(x, m, owner, l);
      }
      return;
    }
    if (many) {
      Add("structure", loc + " must be an array (maximum cardinality " +
                           (e.max == -1 ? std::string("*") : std::to_string(e.max)) + ")", loc);
      return;
    }
    if (v.IsNull()) {
      Add("structure", loc + " is null: leave the element out instead", loc);
      return;
    }
    Value(v, m, owner, loc);
  }

  void Value(const JsonValue& v, const MemberInfo& m, const TypeDef* owner, const std::string& loc) {
    const Definitions& defs = Definitions::R4();
    const ElementDef& e = *m.element;
    if (!e.content_reference.empty()) {
      if (!v.IsObject()) return Add("structure", loc + " must be an object", loc);
      return Object(v, owner, e.content_reference, loc, false);
    }
    const std::string& code = m.type;
    // Resource.id is typed System.String in the R4 snapshot but is an `id`.
    if (e.path == "id" && owner->kind == TypeKind::kResource) return Primitive(v, "id", loc);
    if (code == "Resource") return Resource(v, loc);
    if ((code == "BackboneElement" || code == "Element") && ScopeTable::Get().Find(owner, e.path)) {
      if (!v.IsObject()) return Add("structure", loc + " must be an object", loc);
      return Object(v, owner, e.path, loc, false);
    }
    const TypeDef* td = defs.Type(code);
    if (!td) return Primitive(v, code, loc);  // "string" for System.String ids
    if (td->kind == TypeKind::kPrimitive) return Primitive(v, code, loc);
    if (!v.IsObject()) return Add("structure", loc + " must be an object (" + code + ")", loc);
    Object(v, td, "", loc, false);
  }

  void Primitive(const JsonValue& v, const std::string& code, const std::string& loc) {
    auto bad = [&](const std::string& why) { Add("value", loc + ": " + why, loc); };
    auto show = [&]() -> std::string {
      if (v.IsString()) return "'" + std::string(v.GetString(), v.GetStringLength()) + "'";
      return v.IsNumber() ? "a number" : v.IsBool() ? "a boolean" : v.IsObject() ? "an object" : "an array";
    };
    if (code == "boolean") {
      if (!v.IsBool()) bad(show() + " is not a boolean (use true or false without quotes)");
      return;
    }
    if (code == "integer" || code == "positiveInt" || code == "unsignedInt") {
      if (!v.IsInt()) return bad(show() + " is not a 32-bit whole number");
      if (code == "positiveInt" && v.GetInt() < 1) bad("must be 1 or more");
      if (code == "unsignedInt" && v.GetInt() < 0) bad("must be 0 or more");
      return;
    }
    if (code == "decimal") {
      if (!v.IsNumber()) bad(show() + " is not a decimal number (no quotes)");
      return;
    }
    if (!v.IsString()) return bad(show() + " must be a JSON string (" + code + ")");
    std::string_view s(v.GetString(), v.GetStringLength());
    if (s.empty()) return bad("empty string: leave the element out instead");
    if (code == "date") {
      if (!IsValidFhirDate(s)) bad("'" + std::string(s) + "' is not a valid FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)" + Why(s));
    } else if (code == "dateTime") {
      if (!IsValidFhirDateTime(s))
        bad("'" + std::string(s) + "' is not a valid FHIR dateTime (a date, or YYYY-MM-DDThh:mm:ss with a zone)" + Why(s));
    } else if (code == "instant") {
      if (!IsValidFhirInstant(s)) bad("'" + std::string(s) + "' is not a valid FHIR instant (YYYY-MM-DDThh:mm:ss[.fff] with a zone)" + Why(s));
    } else if (code == "time") {
      if (!IsValidFhirTime(s)) bad("'" + std::string(s) + "' is not a valid FHIR time (hh:mm:ss)");
    } else if (code == "id") {
      bool ok = s.size() <= 64;
      for (char c : s) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.');
      if (!ok) bad("'" + std::string(s) + "' is not a valid id (1-64 of A-Z a-z 0-9 - .)");
    } else if (code == "code") {
      if (std::isspace(static_cast<unsigned char>(s.front())) || std::isspace(static_cast<unsigned char>(s.back())) ||
          s.find("  ") != std::string_view::npos)
        bad("'" + std::string(s) + "' is not a valid code (no leading, trailing or double spaces)");
    } else if (code == "uri" || code == "url" || code == "canonical") {
      for (char c : s)
        if (std::isspace(static_cast<unsigned char>(c))) return bad("'" + std::string(s) + "' is not a valid " + code + " (contains white space)");
    } else if (code == "oid") {
      if (s.rfind("urn:oid:", 0) != 0) bad("'" + std::string(s) + "' is not an oid (urn:oid:...)");
    } else if (code == "uuid") {
      if (s.rfind("urn:uuid:", 0) != 0) bad("'" + std::string(s) + "' is not a uuid (urn:uuid:...)");
    } else if (code == "base64Binary") {
      for (char c : s)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/' && c != '=' && !std::isspace(static_cast<unsigned char>(c)))
          return bad("not valid base64");
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
  v.Resource(resource, "");
  return std::move(v.issues);
}

bool HasErrors(const std::vector<Issue>& issues) {
  return std::any_of(issues.begin(), issues.end(),
                     [](const Issue& i) { return i.severity == "error" || i.severity == "fatal"; });
}

}  // namespace rhip::fhir
