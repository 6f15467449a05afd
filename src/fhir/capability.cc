// GET /fhir/metadata: the CapabilityStatement, built from what the service implements.
#include <algorithm>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "rhip/core/time.h"
#include "rhip/fhir/definitions.h"
#include "rhip/fhir/rest.h"

namespace rhip::fhir {

namespace {
const char* TypeName(store::ParamType t) {
  switch (t) {
    case store::ParamType::kString: return "string";
    case store::ParamType::kToken: return "token";
    case store::ParamType::kDate: return "date";
    case store::ParamType::kReference: return "reference";
    case store::ParamType::kNumber: return "number";
    case store::ParamType::kQuantity: return "quantity";
    case store::ParamType::kUri: return "uri";
    case store::ParamType::kSpecial: return "special";
  }
  return "special";
}
}  // namespace

std::string CapabilityStatementJson(const FhirServiceOptions& options) {
  const Definitions& defs = Definitions::R4();
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto kv = [&](const char* k, const std::string& v) {
    w.Key(k);
    w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
  };
  w.StartObject();
  kv("resourceType", "CapabilityStatement");
  kv("status", "active");
  kv("date", FormatLocalDate(NowMicros()));
  kv("publisher", "rhip");
  kv("kind", "instance");
  w.Key("software");
  w.StartObject();
  kv("name", "rhip — 区域全民健康信息平台");
  kv("version", "0.1.0");
  w.EndObject();
  kv("fhirVersion", "4.0.1");
  w.Key("format");
  w.StartArray();
  w.String("application/fhir+json");
  w.String("json");
  w.EndArray();
  w.Key("rest");
  w.StartArray();
  w.StartObject();
  kv("mode", "server");
  kv("documentation", "Paging uses _count, _offset and _snapshot (a stable view of the result set). Default page size " +
                          std::to_string(options.default_page_size) + ", at most " + std::to_string(options.max_page_size) + ". _revinclude accepts Type:param for any reference parameter of another type; _include also Type:*.");
  w.Key("resource");
  w.StartArray();
  for (const std::string& type : defs.ResourceTypes()) {
    w.StartObject();
    kv("type", type);
    w.Key("interaction");
    w.StartArray();
    const bool managed = std::any_of(options.managed_types.begin(), options.managed_types.end(),
                                     [&](const auto& m) { return m.first == type; });
    for (const char* i : {"read", "vread", "update", "delete", "history-instance", "history-type", "create", "search-type"}) {
      const std::string_view code(i);
      if (managed && (code == "update" || code == "delete" || code == "create")) continue;  // another layer writes it
      w.StartObject();
      kv("code", i);
      w.EndObject();
    }
    w.EndArray();
    if (managed) {
      for (const auto& [t, why] : options.managed_types)
        if (t == type) kv("documentation", "read-only through the FHIR API: " + why);
    }
    kv("versioning", "versioned-update");
    w.Key("readHistory");
    w.Bool(true);
    w.Key("updateCreate");
    w.Bool(!managed);
    w.Key("conditionalCreate");
    w.Bool(!managed);
    kv("conditionalRead", "not-supported");
    w.Key("conditionalUpdate");
    w.Bool(!managed);
    kv("conditionalDelete", "not-supported");
    std::vector<std::string> includes;
    w.Key("searchParam");
    w.StartArray();
    auto param = [&](const std::string& name, store::ParamType t) {
      w.StartObject();
      kv("name", name);
      kv("type", TypeName(t));
      w.EndObject();
    };
    param("_id", store::ParamType::kToken);
    param("_lastUpdated", store::ParamType::kDate);
    for (const auto& p : defs.CommonSearchParams())
      if (p.code != "_id" && p.code != "_lastUpdated" && p.type != store::ParamType::kSpecial) param(p.code, p.type);
    for (const auto& p : defs.SearchParams(type)) {
      if (p.type == store::ParamType::kSpecial) continue;
      param(p.code, p.type);
      if (p.type == store::ParamType::kReference) includes.push_back(type + ":" + p.code);
    }
    w.EndArray();
    w.Key("searchInclude");
    w.StartArray();
    for (const auto& i : includes) w.String(i.c_str());
    w.EndArray();
    const bool exports = std::any_of(options.operations.begin(), options.operations.end(),
                                     [](const auto& op) { return op.first == "$export"; });
    if (type == "Patient" || (exports && type == "Group")) {
      w.Key("operation");
      w.StartArray();
      if (type == "Patient") {
        w.StartObject();
        kv("name", "everything");
        kv("definition", "http://hl7.org/fhir/OperationDefinition/Patient-everything");
        w.EndObject();
      }
      const bool matches = std::any_of(options.operations.begin(), options.operations.end(),
                                       [](const auto& op) { return op.first == "$match"; });
      if (type == "Patient" && matches) {  // the EMPI's Patient/$match
        w.StartObject();
        kv("name", "match");
        kv("definition", "http://hl7.org/fhir/OperationDefinition/Patient-match");
        w.EndObject();
      }
      const bool pix = std::any_of(options.operations.begin(), options.operations.end(),
                                   [](const auto& op) { return op.first == "$ihe-pix"; });
      if (type == "Patient" && pix) {  // the EMPI's IHE PIXm cross-reference query (ITI-83)
        w.StartObject();
        kv("name", "ihe-pix");
        kv("definition", "https://profiles.ihe.net/ITI/PIXm/OperationDefinition/IHE.PIXm.pix");
        w.EndObject();
      }
      if (exports) {  // Bulk Data Access: Patient/$export and Group/[id]/$export
        w.StartObject();
        kv("name", "export");
        kv("definition", type == "Patient" ? "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"
                                           : "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export");
        w.EndObject();
      }
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("interaction");
  w.StartArray();
  for (const char* i : {"transaction", "batch", "history-system"}) {
    w.StartObject();
    kv("code", i);
    w.EndObject();
  }
  w.EndArray();
  // System-level operations registered by other layers (Bulk Data $export, $import).
  bool any = false;
  for (const auto& [name, handler] : options.operations) {
    if (name != "$export" && name != "$import") continue;
    if (!any) {
      w.Key("operation");
      w.StartArray();
      any = true;
    }
    w.StartObject();
    kv("name", name.substr(1));
    kv("definition", name == "$export" ? "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"
                                       : "http://rhip.health/fhir/OperationDefinition/import");
    w.EndObject();
  }
  if (any) w.EndArray();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace rhip::fhir
