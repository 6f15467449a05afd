#include "rhip/mpi/empi_service.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>

#include "rhip/core/log.h"
#include "rhip/fhir/json.h"
#include "rhip/fhir/operation_outcome.h"

namespace rhip::mpi {
namespace {

fhir::RestResponse Error(const Status& s) {
  fhir::RestResponse r;
  r.status = fhir::HttpStatusFor(s.code());
  r.body = fhir::OperationOutcomeJson(s);
  return r;
}

// Weight → a probability-like score in (0, 1): 0.5 at the probable threshold.
double Score(double weight, double probable) { return 1.0 / (1.0 + std::exp2(probable - weight)); }

}  // namespace

EmpiService::EmpiService(store::Store* store, MatchModel model)
    : store_(store), index_(std::make_shared<PatientIndex>(std::move(model))) {}

Status EmpiService::Load() {
  int64_t loaded = 0, skipped = 0;
  RETURN_IF_ERROR(store_->Scan("Patient", [&](const store::ResourceVersion& v) {
    auto r = RecordFromPatientJson(v.json);
    if (!r.ok()) {
      ++skipped;
      return Status::Ok();
    }
    index_->Upsert(std::move(*r));
    ++loaded;
    return Status::Ok();
  }));
  log::Info("empi indexed {} Patient records ({} unreadable)", loaded, skipped);
  return Status::Ok();
}

void EmpiService::OnWritten(const store::ResourceVersion& v) {
  if (v.type != "Patient") return;
  if (v.deleted) {
    index_->Remove(v.id);
    return;
  }
  auto r = RecordFromPatientJson(v.json);
  if (r.ok()) index_->Upsert(std::move(*r));
}

std::pair<std::string, fhir::OperationHandler> EmpiService::MatchOperation() {
  std::shared_ptr<PatientIndex> index = index_;
  store::Store* store = store_;
  return {"$match", [index, store](const fhir::RestRequest& req) -> fhir::RestResponse {
            if (req.path != "Patient/$match") return Error(NotFound("$match is defined on Patient: POST [base]/Patient/$match"));
            if (req.method != "POST") return Error(Status(StatusCode::kMethodNotAllowed, "$match takes POST with a Parameters resource"));
            auto doc = fhir::ParseJson(req.body);
            if (!doc.ok()) return Error(doc.status());
            if (fhir::StringMember(*doc, "resourceType") != "Parameters")
              return Error(InvalidArgument("$match takes a Parameters resource with a 'resource' parameter"));
            const fhir::JsonValue* patient = nullptr;
            bool only_certain = false;
            int count = 10;
            if (const auto* params = fhir::Member(*doc, "parameter"); params && params->IsArray()) {
              for (const auto& p : params->GetArray()) {
                const auto name = fhir::StringMember(p, "name");
                if (name == "resource") patient = fhir::Member(p, "resource");
                if (name == "onlyCertainMatches") {
                  const auto* b = fhir::Member(p, "valueBoolean");
                  if (!b || !b->IsBool()) return Error(InvalidArgument("onlyCertainMatches must be a valueBoolean").WithLocation("Parameters.parameter"));
                  only_certain = b->GetBool();
                }
                if (name == "count") {
                  const auto* c = fhir::Member(p, "valueInteger");
                  if (!c || !c->IsInt() || c->GetInt() < 1 || c->GetInt() > 100)
                    return Error(InvalidArgument("count must be a valueInteger from 1 to 100").WithLocation("Parameters.parameter"));
                  count = c->GetInt();
                }
              }
            }
            if (!patient || !patient->IsObject() || fhir::StringMember(*patient, "resourceType") != "Patient")
              return Error(InvalidArgument("the 'resource' parameter must hold a Patient").WithLocation("Parameters.parameter"));
            // The query Patient needs no id: give it one that matches nothing.
            fhir::Json copy;
            copy.CopyFrom(*patient, copy.GetAllocator());
            if (fhir::StringMember(copy, "id").empty()) fhir::SetString(copy, "id", "$match-query", copy.GetAllocator());
            auto query = RecordFromPatientJson(fhir::WriteJson(copy));
            if (!query.ok()) return Error(query.status());
            auto found = index->Match(*query, count);
            rapidjson::StringBuffer buf;
            rapidjson::Writer<rapidjson::StringBuffer> w(buf);
            w.StartObject();
            w.Key("resourceType");
            w.String("Bundle");
            w.Key("type");
            w.String("searchset");
            w.Key("entry");
            w.StartArray();
            int total = 0;
            const MatchModel model = DefaultModel();
            for (const auto& c : found) {
              if (only_certain && c.grade != Grade::kCertain) continue;
              auto stored = store->Read("Patient", c.id);
              if (!stored.ok()) continue;  // deleted since it was indexed
              ++total;
              w.StartObject();
              w.Key("fullUrl");
              const std::string url = req.base_url + "/Patient/" + c.id;
              w.String(url.c_str());
              w.Key("resource");
              w.RawValue(stored->json.c_str(), stored->json.size(), rapidjson::kObjectType);
              w.Key("search");
              w.StartObject();
              w.Key("extension");
              w.StartArray();
              w.StartObject();
              w.Key("url");
              w.String("http://hl7.org/fhir/StructureDefinition/match-grade");
              w.Key("valueCode");
              w.String(GradeCode(c.grade));
              w.EndObject();
              w.EndArray();
              w.Key("mode");
              w.String("match");
              w.Key("score");
              w.Double(std::round(Score(c.weight, model.probable) * 10000) / 10000);
              w.EndObject();
              w.EndObject();
            }
            w.EndArray();
            w.Key("total");
            w.Int(total);
            w.EndObject();
            fhir::RestResponse r;
            r.body.assign(buf.GetString(), buf.GetSize());
            return r;
          }};
}

}  // namespace rhip::mpi
