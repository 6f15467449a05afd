#include "rhip/fhir/fhirpath.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <unordered_map>

namespace rhip::fhir {

enum class Op { kPath, kChild, kIndex, kUnion, kAnd, kOr, kEq, kNe, kIs, kAs, kFunc, kString, kBool, kNumber };

struct PathExpr {
  Op op = Op::kPath;
  std::string name;  // identifier, function name, type name, literal text
  std::vector<std::unique_ptr<PathExpr>> args;  // children / operands / function arguments
};

namespace {

// ---- Parser ---------------------------------------------------------------

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  StatusOr<std::unique_ptr<PathExpr>> Parse() {
    auto e = ParseUnion();
    if (!e.ok()) return e;
    SkipWs();
    if (pos_ != s_.size()) return Error("unexpected '" + std::string(s_.substr(pos_, 10)) + "'");
    return e;
  }

 private:
  Status Error(const std::string& what) const {
    return InvalidArgument("FHIRPath '" + std::string(s_) + "' at " + std::to_string(pos_) + ": " + what);
  }
  void SkipWs() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool Eat(std::string_view tok) {
    SkipWs();
    if (s_.substr(pos_, tok.size()) != tok) return false;
    // keywords must not run into an identifier
    if (std::isalpha(static_cast<unsigned char>(tok[0]))) {
      size_t end = pos_ + tok.size();
      if (end < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[end])) || s_[end] == '_')) return false;
    }
    pos_ += tok.size();
    return true;
  }
  static std::unique_ptr<PathExpr> Make(Op op, std::string name = {}) {
    auto e = std::make_unique<PathExpr>();
    e->op = op;
    e->name = std::move(name);
    return e;
  }
  static std::unique_ptr<PathExpr> Binary(Op op, std::unique_ptr<PathExpr> a, std::unique_ptr<PathExpr> b) {
    auto e = Make(op);
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return e;
  }

  StatusOr<std::unique_ptr<PathExpr>> ParseUnion() {
    ASSIGN_OR_RETURN(auto left, ParseOr());
    while (Eat("|")) {
      ASSIGN_OR_RETURN(auto right, ParseOr());
      left = Binary(Op::kUnion, std::move(left), std::move(right));
    }
    return left;
  }
  StatusOr<std::unique_ptr<PathExpr>> ParseOr() {
    ASSIGN_OR_RETURN(auto left, ParseAnd());
    while (Eat("or")) {
      ASSIGN_OR_RETURN(auto right, ParseAnd());
      left = Binary(Op::kOr, std::move(left), std::move(right));
    }
    return left;
  }
  StatusOr<std::unique_ptr<PathExpr>> ParseAnd() {
    ASSIGN_OR_RETURN(auto left, ParseCompare());
    while (Eat("and")) {
      ASSIGN_OR_RETURN(auto right, ParseCompare());
      left = Binary(Op::kAnd, std::move(left), std::move(right));
    }
    return left;
  }
  StatusOr<std::unique_ptr<PathExpr>> ParseCompare() {
    ASSIGN_OR_RETURN(auto left, ParsePostfix());
    for (;;) {
      if (Eat("!=")) {
        ASSIGN_OR_RETURN(auto right, ParsePostfix());
        left = Binary(Op::kNe, std::move(left), std::move(right));
      } else if (Eat("=")) {
        ASSIGN_OR_RETURN(auto right, ParsePostfix());
        left = Binary(Op::kEq, std::move(left), std::move(right));
      } else if (Eat("is")) {
        ASSIGN_OR_RETURN(std::string t, Identifier());
        auto e = Make(Op::kIs, t);
        e->args.push_back(std::move(left));
        left = std::move(e);
      } else if (Eat("as")) {
        ASSIGN_OR_RETURN(std::string t, Identifier());
        auto e = Make(Op::kAs, t);
        e->args.push_back(std::move(left));
        left = std::move(e);
      } else {
        return left;
      }
    }
  }
  StatusOr<std::string> Identifier() {
    SkipWs();
    size_t start = pos_;
    if (pos_ < s_.size() && s_[pos_] == '`') {  // delimited identifier
      size_t end = s_.find('`', pos_ + 1);
      if (end == std::string_view::npos) return Error("unterminated `identifier`");
      pos_ = end + 1;
      return std::string(s_.substr(start + 1, end - start - 1));
    }
    while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_')) ++pos_;
    if (start == pos_) return Error("expected a name");
    return std::string(s_.substr(start, pos_ - start));
  }
  // A function call's name and arguments, after the name was read.
  StatusOr<std::unique_ptr<PathExpr>> FuncCall(std::string name) {
    static const char* const kKnown[] = {"where", "exists", "empty", "first", "resolve", "ofType",
                                         "as", "is", "not", "extension", "hasValue"};
    bool known = false;
    for (const char* k : kKnown) known = known || name == k;
    if (!known) return Error("function '" + name + "()' is not supported");
    auto f = Make(Op::kFunc, std::move(name));
    if (!Eat(")")) {
      for (;;) {
        if (f->name == "ofType" || f->name == "as" || f->name == "is") {
          ASSIGN_OR_RETURN(std::string t, Identifier());
          f->args.push_back(Make(Op::kString, t));
        } else {
          ASSIGN_OR_RETURN(auto a, ParseUnion());
          f->args.push_back(std::move(a));
        }
        if (Eat(")")) break;
        if (!Eat(",")) return Error("expected ',' or ')'");
      }
    }
    return f;
  }
  StatusOr<std::unique_ptr<PathExpr>> ParsePrimary() {
    SkipWs();
    if (Eat("(")) {
      ASSIGN_OR_RETURN(auto e, ParseUnion());
      if (!Eat(")")) return Error("expected ')'");
      return e;
    }
    if (pos_ < s_.size() && s_[pos_] == '\'') {
      std::string lit;
      ++pos_;
      while (pos_ < s_.size() && s_[pos_] != '\'') {
        if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;
        lit += s_[pos_++];
      }
      if (pos_ >= s_.size()) return Error("unterminated string");
      ++pos_;
      return Make(Op::kString, lit);
    }
    if (pos_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[pos_])))) {
      size_t start = pos_;
      while (pos_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '.')) ++pos_;
      return Make(Op::kNumber, std::string(s_.substr(start, pos_ - start)));
    }
    if (Eat("true")) return Make(Op::kBool, "true");
    if (Eat("false")) return Make(Op::kBool, "false");
    if (Eat("$this")) return Make(Op::kPath, "$this");
    ASSIGN_OR_RETURN(std::string id, Identifier());
    if (Eat("(")) {
      // A bare call applies to the focus: give it the same shape as `$this.f(...)`.
      ASSIGN_OR_RETURN(auto f, FuncCall(std::move(id)));
      f->args.insert(f->args.begin(), Make(Op::kPath, "$this"));
      return f;
    }
    return Make(Op::kPath, id);
  }
  StatusOr<std::unique_ptr<PathExpr>> ParsePostfix() {
    ASSIGN_OR_RETURN(auto e, ParsePrimary());
    for (;;) {
      SkipWs();
      if (pos_ < s_.size() && s_[pos_] == '.') {
        ++pos_;
        ASSIGN_OR_RETURN(std::string id, Identifier());
        std::unique_ptr<PathExpr> step;
        if (Eat("(")) {
          ASSIGN_OR_RETURN(step, FuncCall(std::move(id)));
        } else {
          step = Make(Op::kChild, id);
        }
        step->args.insert(step->args.begin(), std::move(e));
        e = std::move(step);
      } else if (pos_ < s_.size() && s_[pos_] == '[') {
        ++pos_;
        SkipWs();
        size_t start = pos_;
        while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
        std::string digits(s_.substr(start, pos_ - start));
        if (digits.empty() || !Eat("]")) return Error("expected [number]");
        auto idx = Make(Op::kIndex, digits);
        idx->args.push_back(std::move(e));
        e = std::move(idx);
      } else {
        return e;
      }
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
};

// ---- Evaluation -----------------------------------------------------------

using Nodes = std::vector<PathNode>;

void AddValues(const JsonValue& v, const TypeDef* owner, std::string_view prefix, std::string_view type, Nodes* out) {
  auto add = [&](const JsonValue& x) {
    if (x.IsNull()) return;
    PathNode n;
    n.value = &x;
    n.owner = owner;
    n.prefix = prefix;
    n.type = type;
    out->push_back(n);
  };
  if (v.IsArray()) {
    for (const auto& x : v.GetArray()) add(x);
  } else {
    add(v);
  }
}

// The element `name` of (owner, prefix), or of `name[x]` (*choice). Looked up
// once per thread and step: the key is pointers (no path string is built or
// hashed). `owner` and `prefix` are the model's, which is never freed; `name`
// is the expression's, so a hit is checked against a copy of it: a freed
// expression whose memory is reused cannot alias an entry.
const ElementDef* FindElement(const TypeDef* owner, std::string_view prefix, std::string_view name, bool* choice) {
  struct Key {
    const TypeDef* owner;
    const char* prefix;
    size_t prefix_size;
    const char* name;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      size_t h = std::hash<const void*>{}(k.owner);
      h = h * 31 + std::hash<const void*>{}(k.prefix) + k.prefix_size;
      return h * 31 + std::hash<const void*>{}(k.name);
    }
  };
  struct Entry {
    std::string name;
    const ElementDef* element;
    bool choice;
  };
  thread_local std::unordered_map<Key, Entry, KeyHash> cache;
  const Key key{owner, prefix.data(), prefix.size(), name.data()};
  auto it = cache.find(key);
  if (it != cache.end() && it->second.name == name) {
    *choice = it->second.choice;
    return it->second.element;
  }
  std::string path(prefix);
  if (!path.empty()) path += '.';
  path += name;
  const ElementDef* ed = owner->Find(path);
  *choice = false;
  if (!ed) {
    path += "[x]";
    ed = owner->Find(path);
    *choice = ed != nullptr;
  }
  if (cache.size() > 65536) cache.clear();  // ad-hoc expressions cannot grow it without bound
  cache.insert_or_assign(key, Entry{std::string(name), ed, *choice});
  return ed;
}

// Navigation builds no strings: the types, member names and paths a node
// carries are the model's (ElementType).
void Child(const PathNode& n, std::string_view name, Nodes* out) {
  if (!n.value || !n.value->IsObject() || !n.owner) return;
  const Definitions& defs = Definitions::R4();
  bool choice = false;
  const ElementDef* ed = FindElement(n.owner, n.prefix, name, &choice);
  if (!ed) return;
  if (choice) {
    for (const ElementType& t : ed->types) {
      const JsonValue* v = Member(*n.value, t.member);
      if (!v) continue;
      AddValues(*v, t.def, "", t.name, out);
    }
    return;
  }
  const JsonValue* v = Member(*n.value, name);
  if (!v) return;
  if (!ed->content_reference.empty()) {
    AddValues(*v, n.owner, ed->content_reference, "BackboneElement", out);
    return;
  }
  if (ed->types.empty()) return;
  const ElementType& t = ed->types[0];
  if (t.backbone && ed->nested) {
    AddValues(*v, n.owner, ed->path, "BackboneElement", out);
    return;
  }
  if (t.resource) {  // contained / Bundle.entry.resource: typed by their resourceType
    auto add_res = [&](const JsonValue& x) {
      std::string_view rt = StringMember(x, "resourceType");
      const TypeDef* td = defs.Type(rt);
      AddValues(x, td, "", td ? std::string_view(td->name) : rt, out);
    };
    if (v->IsArray()) {
      for (const auto& x : v->GetArray()) add_res(x);
    } else {
      add_res(*v);
    }
    return;
  }
  AddValues(*v, t.def, "", t.name, out);
}

bool IsTrue(const Nodes& r) { return r.size() == 1 && r[0].boolean == 1; }

PathNode Bool(bool b) {
  PathNode n;
  n.boolean = b ? 1 : 0;
  n.type = "boolean";
  return n;
}

// Compares two singleton collections for equality (primitive values only).
int Equal(const Nodes& a, const Nodes& b) {
  if (a.size() != 1 || b.size() != 1) return -1;  // empty → empty result
  auto text = [](const PathNode& n, std::string* out) -> bool {
    if (n.boolean >= 0) { *out = n.boolean ? "true" : "false"; return true; }
    if (!n.value) { *out = n.literal; return true; }
    if (n.value->IsString()) { out->assign(n.value->GetString(), n.value->GetStringLength()); return true; }
    if (n.value->IsBool()) { *out = n.value->GetBool() ? "true" : "false"; return true; }
    if (n.value->IsNumber()) { *out = std::to_string(n.value->GetDouble()); return true; }
    return false;
  };
  std::string x, y;
  if (!text(a[0], &x) || !text(b[0], &y)) return 0;
  return x == y ? 1 : 0;
}

std::string_view ReferenceType(const JsonValue& ref) {
  std::string_view r = StringMember(ref, "reference");
  size_t slash = r.find('/');
  if (r.empty() || slash == std::string_view::npos) return {};
  // absolute URL: take the segment before the last id
  size_t hist = r.find("/_history/");
  if (hist != std::string_view::npos) r = r.substr(0, hist);
  size_t last = r.rfind('/');
  size_t before = r.rfind('/', last - 1);
  std::string_view type = r.substr(before == std::string_view::npos ? 0 : before + 1,
                                   last - (before == std::string_view::npos ? 0 : before + 1));
  return type;
}

Nodes Eval(const PathExpr& e, const Nodes& focus, const PathNode& root);

Nodes EvalFunc(const PathExpr& e, const Nodes& in, const PathNode& root) {
  const std::string& f = e.name;
  Nodes out;
  if (f == "where") {
    if (e.args.size() < 2) return out;
    for (const PathNode& n : in)
      if (IsTrue(Eval(*e.args[1], {n}, root))) out.push_back(n);
  } else if (f == "exists") {
    if (e.args.size() >= 2) {
      for (const PathNode& n : in)
        if (IsTrue(Eval(*e.args[1], {n}, root))) return {Bool(true)};
      return {Bool(false)};
    }
    out.push_back(Bool(!in.empty()));
  } else if (f == "empty") {
    out.push_back(Bool(in.empty()));
  } else if (f == "hasValue") {
    out.push_back(Bool(in.size() == 1 && in[0].value && !in[0].value->IsObject()));
  } else if (f == "first") {
    if (!in.empty()) out.push_back(in[0]);
  } else if (f == "not") {
    if (in.size() == 1 && in[0].boolean >= 0) out.push_back(Bool(in[0].boolean == 0));
  } else if (f == "resolve") {
    // No store access here: the result only carries the referenced type, which
    // is all that `resolve() is Type` needs.
    for (const PathNode& n : in) {
      if (!n.value || !n.value->IsObject()) continue;
      PathNode r;
      r.value = n.value;
      r.type = ReferenceType(*n.value);
      out.push_back(std::move(r));
    }
  } else if (f == "ofType" || f == "as") {
    const std::string& t = e.args.size() > 1 ? e.args[1]->name : std::string();
    for (const PathNode& n : in)
      if (n.type == t) out.push_back(n);
  } else if (f == "is") {
    const std::string& t = e.args.size() > 1 ? e.args[1]->name : std::string();
    if (in.size() == 1) out.push_back(Bool(in[0].type == t));
  } else if (f == "extension") {
    std::string url;
    if (e.args.size() > 1 && e.args[1]->op == Op::kString) url = e.args[1]->name;
    for (const PathNode& n : in) {
      Nodes exts;
      Child(n, "extension", &exts);
      for (auto& x : exts)
        if (StringMember(*x.value, "url") == url) out.push_back(std::move(x));
    }
  }
  return out;
}

Nodes Eval(const PathExpr& e, const Nodes& focus, const PathNode& root) {
  switch (e.op) {
    case Op::kPath: {
      if (e.name == "$this") return focus;
      // A leading type name selects the root when it names the resource's type.
      if (!e.name.empty() && std::isupper(static_cast<unsigned char>(e.name[0]))) {
        if (e.name == root.type || e.name == "Resource" || e.name == "DomainResource") return {root};
        if (Definitions::R4().Type(e.name)) return {};
      }
      Nodes out;
      for (const PathNode& n : focus) Child(n, e.name, &out);
      return out;
    }
    case Op::kChild: {
      Nodes in = Eval(*e.args[0], focus, root);
      Nodes out;
      for (const PathNode& n : in) Child(n, e.name, &out);
      return out;
    }
    case Op::kIndex: {
      Nodes in = Eval(*e.args[0], focus, root);
      size_t i = static_cast<size_t>(std::stoul(e.name));
      if (i >= in.size()) return {};
      return {in[i]};
    }
    case Op::kFunc: {
      Nodes in = Eval(*e.args[0], focus, root);
      return EvalFunc(e, in, root);
    }
    case Op::kUnion: {
      Nodes a = Eval(*e.args[0], focus, root);
      Nodes b = Eval(*e.args[1], focus, root);
      for (auto& n : b) {
        bool dup = false;
        for (const auto& m : a) dup = dup || (n.value && m.value == n.value);
        if (!dup) a.push_back(std::move(n));
      }
      return a;
    }
    case Op::kAnd:
    case Op::kOr: {
      Nodes a = Eval(*e.args[0], focus, root);
      Nodes b = Eval(*e.args[1], focus, root);
      auto truth = [](const Nodes& r) { return r.size() == 1 && r[0].boolean >= 0 ? r[0].boolean : -1; };
      int x = truth(a), y = truth(b);
      if (e.op == Op::kAnd) {
        if (x == 0 || y == 0) return {Bool(false)};
        if (x == 1 && y == 1) return {Bool(true)};
      } else {
        if (x == 1 || y == 1) return {Bool(true)};
        if (x == 0 && y == 0) return {Bool(false)};
      }
      return {};
    }
    case Op::kEq:
    case Op::kNe: {
      int eq = Equal(Eval(*e.args[0], focus, root), Eval(*e.args[1], focus, root));
      if (eq < 0) return {};
      return {Bool(e.op == Op::kEq ? eq == 1 : eq == 0)};
    }
    case Op::kIs: {
      Nodes in = Eval(*e.args[0], focus, root);
      if (in.size() != 1) return {};
      return {Bool(in[0].type == e.name)};
    }
    case Op::kAs: {
      Nodes in = Eval(*e.args[0], focus, root);
      Nodes out;
      for (auto& n : in)
        if (n.type == e.name) out.push_back(std::move(n));
      return out;
    }
    case Op::kString:
    case Op::kNumber: {
      PathNode n;
      n.literal = e.name;
      n.type = e.op == Op::kString ? "string" : "decimal";
      return {n};
    }
    case Op::kBool:
      return {Bool(e.name == "true")};
  }
  return {};
}

// What an expression's result needs from the resource root (RootElements).
struct Roots {
  enum Kind { kRoot, kElements, kUnknown } kind = kUnknown;
  std::vector<std::string> names;  // kElements: one of these top-level elements must be present
};

Roots RootsOf(const PathExpr& e, std::string_view resource_type) {
  auto unknown = [] { return Roots{}; };
  auto child_of = [&](const PathExpr& parent, const std::string& name) {
    Roots r = RootsOf(parent, resource_type);
    if (r.kind == Roots::kRoot) return Roots{Roots::kElements, {name}};
    return r;
  };
  switch (e.op) {
    case Op::kPath:
      if (e.name == resource_type || e.name == "Resource" || e.name == "DomainResource")
        return Roots{Roots::kRoot, {}};
      // A lower-case name at the top is a child of the root (Eval, kPath).
      if (!e.name.empty() && std::islower(static_cast<unsigned char>(e.name[0])))
        return Roots{Roots::kElements, {e.name}};
      return unknown();
    case Op::kChild:
      return child_of(*e.args[0], e.name);
    case Op::kIndex: case Op::kAs: {
      Roots r = RootsOf(*e.args[0], resource_type);
      return r.kind == Roots::kElements ? r : unknown();
    }
    case Op::kFunc: {
      // These keep a subset of their input (or what it references): nothing in, nothing out.
      static const char* const kSubset[] = {"where", "first", "resolve", "ofType", "as"};
      bool subset = false;
      for (const char* f : kSubset) subset = subset || e.name == f;
      if (!subset) return unknown();
      Roots r = RootsOf(*e.args[0], resource_type);
      return r.kind == Roots::kElements ? r : unknown();
    }
    case Op::kUnion: {
      Roots a = RootsOf(*e.args[0], resource_type), b = RootsOf(*e.args[1], resource_type);
      if (a.kind != Roots::kElements || b.kind != Roots::kElements) return unknown();
      for (auto& n : b.names)
        if (std::find(a.names.begin(), a.names.end(), n) == a.names.end()) a.names.push_back(std::move(n));
      return a;
    }
    default:
      return unknown();
  }
}

}  // namespace

std::vector<std::string> FhirPath::RootElements(std::string_view resource_type) const {
  Roots r = RootsOf(*root_, resource_type);
  return r.kind == Roots::kElements ? std::move(r.names) : std::vector<std::string>();
}

StatusOr<FhirPath> FhirPath::Compile(std::string_view expression) {
  Parser p(expression);
  ASSIGN_OR_RETURN(auto tree, p.Parse());
  FhirPath f;
  f.expression_ = std::string(expression);
  f.root_ = std::shared_ptr<const PathExpr>(std::move(tree));
  return f;
}

std::vector<PathNode> FhirPath::Evaluate(const JsonValue& resource, std::string_view resource_type) const {
  const TypeDef* td = Definitions::R4().Type(resource_type);
  return td ? Evaluate(resource, *td) : Evaluate(resource, resource_type, nullptr);
}

std::vector<PathNode> FhirPath::Evaluate(const JsonValue& resource, const TypeDef& resource_type) const {
  return Evaluate(resource, resource_type.name, &resource_type);
}

std::vector<PathNode> FhirPath::Evaluate(const JsonValue& resource, std::string_view type, const TypeDef* td) const {
  PathNode root;
  root.value = &resource;
  root.owner = td;
  root.type = type;
  return Eval(*root_, {root}, root);
}

}  // namespace rhip::fhir
