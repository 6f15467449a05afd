// A FHIRPath subset: enough to evaluate the official R4 SearchParameter
// expressions (path navigation with choice types, `|`, `where()`, `ofType()`,
// `exists()`, `empty()`, `first()`, `resolve() is Type`, `is`, `as`, `=`, `!=`,
// `and`, `or`, `not()`, `extension('url')`, string/boolean/number literals).
//
// Navigation is typed by the generated R4 model (definitions.h): every result
// node knows its FHIR type ("HumanName", "Reference", "dateTime" ...), which is
// what search-index extraction converts by.
//
// Thread-safety: a compiled FhirPath is immutable and may be evaluated from many
// threads at once.
//
// Example:
//   ASSIGN_OR_RETURN(FhirPath p, FhirPath::Compile("Patient.telecom.where(system='phone')"));
//   for (const PathNode& n : p.Evaluate(doc, "Patient")) ...  // n.type == "ContactPoint"
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rhip/core/status.h"
#include "rhip/fhir/definitions.h"
#include "rhip/fhir/json.h"

namespace rhip::fhir {

// `prefix`, `type` and `literal` view the model (Definitions::R4(), immutable until
// exit), the evaluated resource or the compiled expression: a node is valid while
// that resource and that FhirPath are.
struct PathNode {
  const JsonValue* value = nullptr;  // nullptr for computed booleans and literals
  const TypeDef* owner = nullptr;    // the type whose elements `prefix` is relative to
  std::string_view prefix;           // backbone path inside `owner` ("" at a datatype or resource root)
  std::string_view type;             // FHIR type of this node: "HumanName", "string", "Patient" ...
  int boolean = -1;                  // 0/1 for boolean results, -1 otherwise
  std::string_view literal;          // string/number literal value (value == nullptr), from the expression
};

struct PathExpr;  // the compiled syntax tree (fhirpath.cc)

class FhirPath {
 public:
  // Errors: kInvalidArgument naming the unsupported function or the syntax error.
  static StatusOr<FhirPath> Compile(std::string_view expression);

  std::vector<PathNode> Evaluate(const JsonValue& resource, std::string_view resource_type) const;
  // The same with the resource type's definition at hand (no look-up by name).
  std::vector<PathNode> Evaluate(const JsonValue& resource, const TypeDef& resource_type) const;
  // The top-level elements of a `resource_type` resource that the expression's
  // result comes from: when the resource has none of them, Evaluate returns
  // nothing, so a caller may skip it. A choice element is named by its base
  // ("value" for value[x]). Empty when that cannot be told from the expression
  // (e.g. `Patient.deceased.exists()`, which is true or false either way).
  std::vector<std::string> RootElements(std::string_view resource_type) const;
  const std::string& expression() const { return expression_; }

 private:
  std::vector<PathNode> Evaluate(const JsonValue& resource, std::string_view type, const TypeDef* td) const;

  std::string expression_;
  // shared_ptr to const: the tree is immutable and shared by copies of this handle.
  std::shared_ptr<const PathExpr> root_;
};

}  // namespace rhip::fhir
