#include "rhip/fhir/definitions.h"

#include <rapidjson/document.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>

namespace rhip::fhir {
namespace generated {
std::string ModelJson();
}

namespace {

store::ParamType ParamTypeFromName(std::string_view t) {
  if (t == "string") return store::ParamType::kString;
  if (t == "token") return store::ParamType::kToken;
  if (t == "date") return store::ParamType::kDate;
  if (t == "reference") return store::ParamType::kReference;
  if (t == "number") return store::ParamType::kNumber;
  if (t == "quantity") return store::ParamType::kQuantity;
  if (t == "uri") return store::ParamType::kUri;
  return store::ParamType::kSpecial;
}

const std::vector<SearchParamDef> kNoParams;
const std::vector<std::string> kNoStrings;

}  // namespace

std::string TypeName(const ElementType& t) {
  std::string_view c = t.code;
  if (c.rfind("System.", 0) == 0) c.remove_prefix(7);
  return std::string(c);
}

std::string ChoiceMemberName(std::string_view base, std::string_view type) {
  std::string out(base);
  out += type;
  if (out.size() > base.size()) out[base.size()] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[base.size()])));
  return out;
}

const ElementDef* TypeDef::Find(std::string_view path) const {
  auto it = by_path.find(path);
  return it == by_path.end() ? nullptr : &elements[it->second];
}

const Definitions& Definitions::R4() {
  static const Definitions* defs = [] {
    auto* d = new Definitions();  // never destroyed: used until exit by every thread
    rapidjson::Document doc;
    std::string json = generated::ModelJson();
    doc.Parse(json.data(), json.size());
    if (doc.HasParseError()) {
      std::fprintf(stderr, "rhip: the generated FHIR model is damaged; rebuild\n");
      std::abort();
    }
    for (auto& t : doc["types"].GetObject()) {
      TypeDef td;
      td.name = t.name.GetString();
      std::string_view kind = t.value["kind"].GetString();
      td.kind = kind == "resource"    ? TypeKind::kResource
                : kind == "primitive" ? TypeKind::kPrimitive
                                      : TypeKind::kComplex;
      td.is_abstract = t.value["abstract"].GetBool();
      td.base = t.value["base"].GetString();
      for (auto& e : t.value["e"].GetArray()) {
        ElementDef el;
        el.path = e["p"].GetString();
        el.min = e["min"].GetInt();
        el.max = e["max"].GetInt();
        if (e.HasMember("t")) {
          for (auto& ty : e["t"].GetArray()) {
            ElementType et;
            et.code = ty["code"].GetString();
            if (ty.HasMember("targets"))
              for (auto& tg : ty["targets"].GetArray()) et.targets.emplace_back(tg.GetString());
            el.types.push_back(std::move(et));
          }
        }
        if (e.HasMember("ref")) el.content_reference = e["ref"].GetString();
        el.is_choice = e.HasMember("choice");
        el.is_summary = e.HasMember("s");
        td.by_path.emplace(el.path, td.elements.size());
        td.elements.push_back(std::move(el));
      }
      d->types_.emplace(td.name, std::move(td));
    }
    for (auto& s : doc["search"].GetObject()) {
      auto& list = d->search_[s.name.GetString()];
      for (auto& p : s.value.GetArray()) {
        SearchParamDef def;
        def.code = p["c"].GetString();
        def.type = ParamTypeFromName(p["t"].GetString());
        def.expression = p["x"].GetString();
        for (auto& tg : p["tg"].GetArray()) def.targets.emplace_back(tg.GetString());
        list.push_back(std::move(def));
      }
    }
    for (auto& c : doc["compartment"].GetObject()) {
      auto& list = d->compartment_[c.name.GetString()];
      for (auto& p : c.value.GetArray()) list.emplace_back(p.GetString());
    }
    // What navigation needs, derived once (node pointers of an unordered_map are stable).
    for (auto& [name, td] : d->types_) {
      for (ElementDef& el : td.elements) {
        el.nested = td.by_path.count(el.path + ".id") > 0 || td.by_path.count(el.path + ".extension") > 0;
        const size_t dot = el.path.rfind('.');
        std::string base = dot == std::string::npos ? el.path : el.path.substr(dot + 1);
        if (el.is_choice && base.size() > 3) base.resize(base.size() - 3);
        for (ElementType& et : el.types) {
          et.name = TypeName(et);
          et.backbone = et.name == "BackboneElement" || et.name == "Element";
          et.resource = et.name == "Resource";
          if (el.is_choice) et.member = ChoiceMemberName(base, et.name);
          auto it = d->types_.find(et.name);  // every type is loaded by now
          et.def = it == d->types_.end() ? nullptr : &it->second;
        }
      }
    }
    for (auto& r : doc["resourceTypes"].GetArray()) d->resource_types_.emplace_back(r.GetString());
    return d;
  }();
  return *defs;
}

const TypeDef* Definitions::Type(std::string_view name) const {
  auto it = types_.find(name);
  return it == types_.end() ? nullptr : &it->second;
}

bool Definitions::IsResourceType(std::string_view name) const {
  const TypeDef* t = Type(name);
  return t && t->kind == TypeKind::kResource && !t->is_abstract;
}

const SearchParamDef* Definitions::SearchParam(std::string_view resource_type,
                                               std::string_view code) const {
  for (const auto& p : SearchParams(resource_type))
    if (p.code == code) return &p;
  for (const auto& p : CommonSearchParams())
    if (p.code == code) return &p;
  return nullptr;
}

const std::vector<SearchParamDef>& Definitions::SearchParams(std::string_view resource_type) const {
  auto it = search_.find(resource_type);
  return it == search_.end() ? kNoParams : it->second;
}

const std::vector<SearchParamDef>& Definitions::CommonSearchParams() const {
  return SearchParams("Resource");
}

const std::vector<std::string>& Definitions::PatientCompartmentParams(
    std::string_view resource_type) const {
  auto it = compartment_.find(resource_type);
  return it == compartment_.end() ? kNoStrings : it->second;
}

}  // namespace rhip::fhir
