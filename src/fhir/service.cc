// The FHIR R4 REST semantics (see include/rhip/fhir/rest.h).
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "fhir/service_util.h"
#include "rhip/core/time.h"
#include "rhip/core/url.h"
#include "rhip/fhir/definitions.h"
#include "rhip/fhir/index.h"
#include "rhip/fhir/json.h"
#include "rhip/fhir/operation_outcome.h"
#include "rhip/fhir/rest.h"
#include "rhip/fhir/search.h"
#include "rhip/fhir/validator.h"

namespace rhip::fhir {

std::string_view RestRequest::Header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return v;
  return {};
}

std::string CapabilityStatementJson(const FhirServiceOptions& options);  // capability.cc

namespace {

using store::ResourceVersion;
using store::WriteTransaction;

RestResponse ErrorResponse(const Status& st) {
  RestResponse r;
  r.status = HttpStatusFor(st.code());
  r.body = OperationOutcomeJson(st);
  return r;
}

RestResponse IssuesResponse(int status, const std::vector<Issue>& issues) {
  RestResponse r;
  r.status = status;
  r.body = OperationOutcomeJson(issues);
  return r;
}

bool ValidId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return false;
  return true;
}

// A resource made ready for the store outside the writer: parsed, validated,
// with id and meta set, serialized, and its search index extracted.
struct Prepared {
  std::string type;
  std::string id;
  Json doc;
  store::IndexRows index;
  Micros now = 0;
};

// Parses and checks a resource body for `type`. `id` empty = keep what the body has.
StatusOr<Json> ParseResource(std::string_view body, std::string_view type, std::vector<Issue>* issues) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos)
    return InvalidArgument("the request has no body: send the " + std::string(type) + " resource as JSON");
  ASSIGN_OR_RETURN(Json doc, ParseJson(body));
  if (!doc.IsObject()) return InvalidArgument("the body must be a JSON object (a FHIR resource)");
  std::string_view rt = StringMember(doc, "resourceType");
  if (rt != type) {
    return InvalidArgument("resourceType '" + std::string(rt) + "' does not match the URL's type '" +
                               std::string(type) + "'",
                           "resourceType");
  }
  *issues = ValidateResource(doc);
  if (HasErrors(*issues)) return InvalidArgument("the resource is not valid FHIR R4");
  return doc;
}

Prepared Prepare(Json doc, const std::string& type, const std::string& id, int64_t version, Micros now) {
  Prepared p;
  p.type = type;
  p.id = id;
  p.now = now;
  SetString(doc, "id", id, doc.GetAllocator());
  SetVersionMeta(doc, version, now);
  p.index = ExtractIndex(doc, type);
  p.doc = std::move(doc);
  return p;
}

store::PutRequest ToPut(Prepared& p, int64_t version, const char* method) {
  store::PutRequest put;
  put.type = p.type;
  put.id = p.id;
  put.version = version;
  put.last_updated = p.now;
  put.method = method;
  SetVersionMeta(p.doc, version, p.now);
  put.json = WriteJson(p.doc);
  put.index = std::move(p.index);
  return put;
}

// W/"3" → 3; 0 when absent; -1 when malformed.
int64_t ParseETag(std::string_view v) {
  if (v.empty()) return 0;
  if (v.rfind("W/", 0) == 0) v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  int64_t n = 0;
  if (v.empty()) return -1;
  for (char c : v) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

struct WriteOutcome {
  int status = 200;
  store::ResourceVersion stored;
  bool wrote = false;
};

class Service : public FhirService {
 public:
  Service(store::Store* store, FhirServiceOptions options) : store_(store), options_(options) {}

  RestResponse Handle(const RestRequest& req) override {
    std::vector<std::string> seg = SplitPath(req.path);
    for (const auto& s : seg) {
      if (s.empty() || s[0] != '$') continue;
      for (const auto& [name, handler] : options_.operations) {
        if (s != name) continue;
        if (req.access)
          if (Status st = req.access->OnOperation(name, req); !st.ok()) return ErrorResponse(st);
        return handler(req);
      }
    }
    const std::string& m = req.method;
    const bool get = m == "GET" || m == "HEAD";
    const Definitions& defs = Definitions::R4();
    if (seg.empty()) {
      if (m == "POST") return Bundle(req);
      return MethodNotAllowed(req);
    }
    if (seg[0] == "metadata") {
      if (!get || seg.size() != 1) return MethodNotAllowed(req);
      RestResponse r;
      r.body = Capability();
      return r;
    }
    if (seg[0] == "_history") {
      if (!get || seg.size() != 1) return MethodNotAllowed(req);
      return History(req, "", "");
    }
    const std::string& type = seg[0];
    if (!defs.IsResourceType(type)) {
      return ErrorResponse(NotFound("unknown resource type '" + type + "' (types are case-sensitive, e.g. Patient)"));
    }
    if (!get && !(seg.size() == 2 && seg[1] == "_search")) {
      if (Status st = CheckManaged(type); !st.ok()) return ErrorResponse(st);
    }
    if (seg.size() == 1) {
      if (get) return Search(req, type, req.query);
      if (m == "POST") return Create(req, type);
      if (m == "PUT") return ConditionalUpdate(req, type);
      return MethodNotAllowed(req);
    }
    const std::string& second = seg[1];
    if (seg.size() == 2 && second == "_search") {
      if (m != "POST") return MethodNotAllowed(req);
      auto params = req.query;
      std::string_view ct = req.Header("content-type");
      if (!req.body.empty()) {
        if (ct.rfind("application/x-www-form-urlencoded", 0) != 0)
          return ErrorResponse(Status(StatusCode::kUnsupportedMediaType,
                                      "POST _search takes an application/x-www-form-urlencoded body"));
        for (auto& p : ParseQueryString(req.body)) params.push_back(std::move(p));
      }
      return Search(req, type, params);
    }
    if (seg.size() == 2 && second == "_history") {
      if (!get) return MethodNotAllowed(req);
      return History(req, type, "");
    }
    if (!ValidId(second) && second[0] != '$') {
      return ErrorResponse(InvalidArgument("'" + second + "' is not a valid resource id (1-64 of A-Z a-z 0-9 - .)"));
    }
    if (seg.size() == 2) {
      if (get) return Read(req, type, second);
      if (m == "PUT") return Update(req, type, second);
      if (m == "DELETE") return Delete(req, type, second);
      return MethodNotAllowed(req);
    }
    if (seg.size() == 3 && seg[2] == "$everything" && type == "Patient") {
      if (!get) return MethodNotAllowed(req);
      return Everything(req, second);
    }
    if (seg.size() == 3 && seg[2] == "_history") {
      if (!get) return MethodNotAllowed(req);
      return History(req, type, second);
    }
    if (seg.size() == 4 && seg[2] == "_history") {
      if (!get) return MethodNotAllowed(req);
      return VRead(req, type, second, seg[3]);
    }
    return ErrorResponse(NotFound("no FHIR interaction at '" + req.path + "'"));
  }

 private:
  RestResponse MethodNotAllowed(const RestRequest& req) {
    return ErrorResponse(Status(StatusCode::kMethodNotAllowed,
                                req.method + " is not supported on '" + (req.path.empty() ? "/" : req.path) + "'"));
  }

  // Client writes of a type another layer owns are refused.
  Status CheckManaged(const std::string& type) const {
    for (const auto& [t, why] : options_.managed_types)
      if (t == type) return Status(StatusCode::kMethodNotAllowed, type + " resources cannot be written through the FHIR API: " + why);
    return Status::Ok();
  }

  const std::string& Capability() {
    std::call_once(capability_once_, [&] { capability_ = CapabilityStatementJson(options_); });
    return capability_;
  }

  Status CheckContentType(const RestRequest& req) {
    std::string_view ct = req.Header("content-type");
    if (ct.empty() || ct.rfind("application/fhir+json", 0) == 0 || ct.rfind("application/json", 0) == 0)
      return Status::Ok();
    return Status(StatusCode::kUnsupportedMediaType,
                  "content type '" + std::string(ct) + "' is not supported: send application/fhir+json");
  }

  void AddVersionHeaders(RestResponse& r, const ResourceVersion& v, const std::string& base, bool location) {
    r.headers.emplace_back("ETag", "W/\"" + std::to_string(v.version) + "\"");
    r.headers.emplace_back("Last-Modified", HttpDate(v.last_updated));
    if (location)
      r.headers.emplace_back("Location",
                             base + "/" + v.type + "/" + v.id + "/_history/" + std::to_string(v.version));
  }

  // The body for a successful write, per `Prefer: return=`.
  void PreferBody(const RestRequest& req, RestResponse& r, const ResourceVersion& v) {
    std::string_view prefer = req.Header("prefer");
    if (prefer.find("return=minimal") != std::string_view::npos) {
      r.body.clear();
      return;
    }
    if (prefer.find("return=OperationOutcome") != std::string_view::npos) {
      Issue i{"information", "informational",
              v.type + "/" + v.id + " version " + std::to_string(v.version) + " stored", ""};
      r.body = OperationOutcomeJson(std::vector<Issue>{i});
      return;
    }
    r.body = v.json;
  }

  RestResponse WriteResponse(const RestRequest& req, const WriteOutcome& w) {
    if (w.wrote || w.status == 201) Notify(w.stored);
    RestResponse r;
    r.status = w.status;
    AddVersionHeaders(r, w.stored, req.base_url, w.status == 201 || w.wrote);
    PreferBody(req, r, w.stored);
    return r;
  }

  // Asks the request's access control whether `v` may leave (and in which form).
  static Status Disclose(const RestRequest& req, ResourceVersion& v) {
    return req.access ? req.access->OnDisclose(v) : Status::Ok();
  }
  // Removes what may not leave, keeping the order of the rest.
  static void DiscloseAll(const RestRequest& req, std::vector<ResourceVersion>& list) {
    if (!req.access) return;
    std::vector<ResourceVersion> kept;
    kept.reserve(list.size());
    for (auto& v : list)
      if (req.access->OnDisclose(v).ok()) kept.push_back(std::move(v));
    list = std::move(kept);
  }
  static Status MayWrite(const RestRequest& req, const std::string& type, const std::string& id,
                         const store::IndexRows* index) {
    return req.access ? req.access->OnWrite(type, id, index) : Status::Ok();
  }

  RestResponse Read(const RestRequest& req, const std::string& type, const std::string& id) {
    auto v = store_->Read(type, id);
    if (!v.ok()) return ErrorResponse(v.status());
    if (Status st = Disclose(req, *v); !st.ok()) return ErrorResponse(st);
    RestResponse r;
    r.body = std::move(v->json);
    r.headers.emplace_back("ETag", "W/\"" + std::to_string(v->version) + "\"");
    r.headers.emplace_back("Last-Modified", HttpDate(v->last_updated));
    return r;
  }

  RestResponse VRead(const RestRequest& req, const std::string& type, const std::string& id, const std::string& vid) {
    int64_t version = ParseETag(vid);
    if (version <= 0) return ErrorResponse(NotFound("version '" + vid + "' of " + type + "/" + id + " does not exist"));
    auto v = store_->ReadVersion(type, id, version);
    if (!v.ok()) return ErrorResponse(v.status());
    if (v->deleted)
      return ErrorResponse(Status(StatusCode::kGone, type + "/" + id + " version " + vid + " is a deletion"));
    if (Status st = Disclose(req, *v); !st.ok()) return ErrorResponse(st);
    RestResponse r;
    r.body = std::move(v->json);
    r.headers.emplace_back("ETag", "W/\"" + std::to_string(v->version) + "\"");
    r.headers.emplace_back("Last-Modified", HttpDate(v->last_updated));
    return r;
  }

  // Resolves a conditional URL's query inside a transaction: the ids of matches (at most 2).
  static StatusOr<std::vector<std::string>> Matches(WriteTransaction& tx, const std::string& type,
                                                    std::string_view query) {
    auto params = ParseQueryString(query);
    if (params.empty()) return InvalidArgument("a conditional request needs search parameters");
    ASSIGN_OR_RETURN(ParsedSearch s, ParseSearch(type, params, Handling::kStrict));
    return tx.SearchIds(s.query, 2);
  }

  RestResponse Create(const RestRequest& req, const std::string& type) {
    if (auto st = CheckContentType(req); !st.ok()) return ErrorResponse(st);
    std::vector<Issue> issues;
    auto doc = ParseResource(req.body, type, &issues);
    if (!doc.ok()) return issues.empty() ? ErrorResponse(doc.status()) : IssuesResponse(400, issues);
    const Micros now = NowMicros();
    Prepared p = Prepare(std::move(*doc), type, NewId(), 1, now);
    if (Status st = MayWrite(req, type, p.id, &p.index); !st.ok()) return ErrorResponse(st);
    std::string if_none_exist(req.Header("if-none-exist"));
    if (if_none_exist.find('?') != std::string::npos) if_none_exist = if_none_exist.substr(if_none_exist.find('?') + 1);
    WriteOutcome out;
    // Rendered here, not in the callback: the store's single writer only writes.
    store::PutRequest put = ToPut(p, 1, "POST");
    Status st = store_->Write([&](WriteTransaction& tx) -> Status {
      if (!if_none_exist.empty()) {
        ASSIGN_OR_RETURN(auto ids, Matches(tx, type, if_none_exist));
        if (ids.size() > 1)
          return FailedPrecondition("If-None-Exist matches " + std::to_string(ids.size()) +
                                    " or more resources: make the criteria selective");
        if (ids.size() == 1) {
          ASSIGN_OR_RETURN(out.stored, tx.Read(type, ids[0]));
          out.status = 200;
          return Status::Ok();
        }
      }
      RETURN_IF_ERROR(tx.Put(put));
      out.status = 201;
      out.wrote = true;
      out.stored = {type, p.id, 1, now, false, "POST", std::move(put.json)};
      return Status::Ok();
    });
    if (!st.ok()) return ErrorResponse(st);
    // A conditional create that matched shows the existing resource: only if the caller may see it.
    if (!out.wrote)
      if (Status d = Disclose(req, out.stored); !d.ok()) return ErrorResponse(d);
    return WriteResponse(req, out);
  }

  // PUT Type/id: update, or create with the client's id.
  RestResponse Update(const RestRequest& req, const std::string& type, const std::string& id) {
    if (auto st = CheckContentType(req); !st.ok()) return ErrorResponse(st);
    std::vector<Issue> issues;
    auto doc = ParseResource(req.body, type, &issues);
    if (!doc.ok()) return issues.empty() ? ErrorResponse(doc.status()) : IssuesResponse(400, issues);
    std::string_view body_id = StringMember(*doc, "id");
    if (body_id != id)
      return ErrorResponse(InvalidArgument("the body's id '" + std::string(body_id) + "' must equal the URL's id '" +
                                               id + "'",
                                           type + ".id"));
    int64_t if_match = ParseETag(req.Header("if-match"));
    if (if_match < 0) return ErrorResponse(InvalidArgument("If-Match must look like W/\"3\""));
    Prepared prepared = Prepare(std::move(*doc), type, id, 1, NowMicros());
    if (Status st = MayWrite(req, type, id, &prepared.index); !st.ok()) return ErrorResponse(st);
    return DoUpdate(req, std::move(prepared), if_match);
  }

  RestResponse DoUpdate(const RestRequest& req, Prepared p, int64_t if_match) {
    WriteOutcome out;
    Status st = store_->Write([&](WriteTransaction& tx) -> Status {
      ASSIGN_OR_RETURN(out, UpdateInTx(tx, p, if_match));
      return Status::Ok();
    });
    if (!st.ok()) return ErrorResponse(st);
    return WriteResponse(req, out);
  }

  static StatusOr<WriteOutcome> UpdateInTx(WriteTransaction& tx, Prepared& p, int64_t if_match) {
    ASSIGN_OR_RETURN(auto cur, tx.Current(p.type, p.id));
    if (if_match > 0 && (!cur || cur->deleted || cur->version != if_match)) {
      return FailedPrecondition("If-Match W/\"" + std::to_string(if_match) + "\" does not match the current version" +
                                (cur ? " (" + std::to_string(cur->version) + ")" : std::string(" (none)")) +
                                ": read the resource again and retry");
    }
    const int64_t version = cur ? cur->version + 1 : 1;
    store::PutRequest put = ToPut(p, version, "PUT");
    RETURN_IF_ERROR(tx.Put(put));
    WriteOutcome out;
    out.status = (!cur || cur->deleted) ? 201 : 200;
    out.wrote = true;
    out.stored = {p.type, p.id, version, p.now, false, "PUT", std::move(put.json)};
    return out;
  }

  RestResponse ConditionalUpdate(const RestRequest& req, const std::string& type) {
    if (req.query.empty()) return MethodNotAllowed(req);
    if (auto st = CheckContentType(req); !st.ok()) return ErrorResponse(st);
    std::vector<Issue> issues;
    auto doc = ParseResource(req.body, type, &issues);
    if (!doc.ok()) return issues.empty() ? ErrorResponse(doc.status()) : IssuesResponse(400, issues);
    auto parsed = ParseSearch(type, req.query, Handling::kStrict);
    if (!parsed.ok()) return ErrorResponse(parsed.status());
    std::string body_id(StringMember(*doc, "id"));
    const Micros now = NowMicros();
    Json body = std::move(*doc);
    WriteOutcome out;
    Status st = store_->Write([&](WriteTransaction& tx) -> Status {
      ASSIGN_OR_RETURN(auto ids, tx.SearchIds(parsed->query, 2));
      if (ids.size() > 1)
        return FailedPrecondition("the conditional update matches several resources: make the criteria selective");
      std::string id = ids.empty() ? (body_id.empty() ? NewId() : body_id) : ids[0];
      if (!ids.empty() && !body_id.empty() && body_id != ids[0])
        return InvalidArgument("the body's id '" + body_id + "' differs from the matched resource " + ids[0]);
      Json copy;
      copy.CopyFrom(body, copy.GetAllocator());
      Prepared p = Prepare(std::move(copy), type, id, 1, now);
      RETURN_IF_ERROR(MayWrite(req, type, id, &p.index));
      ASSIGN_OR_RETURN(out, UpdateInTx(tx, p, 0));
      return Status::Ok();
    });
    if (!st.ok()) return ErrorResponse(st);
    return WriteResponse(req, out);
  }

  RestResponse Delete(const RestRequest& req, const std::string& type, const std::string& id) {
    int64_t if_match = ParseETag(req.Header("if-match"));
    if (if_match < 0) return ErrorResponse(InvalidArgument("If-Match must look like W/\"3\""));
    if (Status st = MayWrite(req, type, id, nullptr); !st.ok()) return ErrorResponse(st);
    const Micros now = NowMicros();
    Status st = store_->Write([&](WriteTransaction& tx) -> Status {
      ASSIGN_OR_RETURN(auto cur, tx.Current(type, id));
      if (!cur) return NotFound("resource " + type + "/" + id + " is not known");
      if (if_match > 0 && cur->version != if_match)
        return FailedPrecondition("If-Match W/\"" + std::to_string(if_match) + "\" does not match version " +
                                  std::to_string(cur->version));
      if (cur->deleted) return Status::Ok();  // deleting again is fine
      return tx.Delete({type, id, cur->version + 1, now});
    });
    if (!st.ok()) return ErrorResponse(st);
    Notify({type, id, 0, now, true, "DELETE", ""});
    RestResponse r;
    r.status = 204;
    return r;
  }

  // Tells the observer (the EMPI's index) what was committed.
  void Notify(const store::ResourceVersion& v) const {
    if (options_.on_written) options_.on_written(v);
  }

  // ---- Bundles -------------------------------------------------------------

  class BundleWriter {
   public:
    explicit BundleWriter(const char* type) : w_(buf_) {
      w_.StartObject();
      w_.Key("resourceType");
      w_.String("Bundle");
      w_.Key("id");
      w_.String(NewId().c_str());
      w_.Key("meta");
      w_.StartObject();
      w_.Key("lastUpdated");
      w_.String(FormatInstant(NowMicros()).c_str());
      w_.EndObject();
      w_.Key("type");
      w_.String(type);
    }
    void Total(int64_t n) {
      w_.Key("total");
      w_.Int64(n);
    }
    void Links(const std::vector<std::pair<std::string, std::string>>& links) {
      if (links.empty()) return;
      w_.Key("link");
      w_.StartArray();
      for (const auto& [rel, url] : links) {
        w_.StartObject();
        w_.Key("relation");
        w_.String(rel.c_str());
        w_.Key("url");
        w_.String(url.c_str(), static_cast<rapidjson::SizeType>(url.size()));
        w_.EndObject();
      }
      w_.EndArray();
    }
    void BeginEntries() {
      w_.Key("entry");
      w_.StartArray();
      open_ = true;
    }
    // Starts an entry object; the caller adds members with Raw/Key then calls EndEntry.
    rapidjson::Writer<rapidjson::StringBuffer>& w() { return w_; }
    void RawResource(std::string_view json) {
      w_.Key("resource");
      w_.RawValue(json.data(), json.size(), rapidjson::kObjectType);
    }
    std::string Finish() {
      if (open_) w_.EndArray();
      w_.EndObject();
      return std::string(buf_.GetString(), buf_.GetSize());
    }

   private:
    rapidjson::StringBuffer buf_;
    rapidjson::Writer<rapidjson::StringBuffer> w_;
    bool open_ = false;
  };

  static void StrMember(rapidjson::Writer<rapidjson::StringBuffer>& w, const char* k, std::string_view v) {
    w.Key(k);
    w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  }

  // ---- Search --------------------------------------------------------------

  // Filters a resource for _elements / _summary; returns the JSON unchanged when no filter applies.
  std::string Shape(const ResourceVersion& v, const ParsedSearch& s) {
    if (s.elements.empty() && (s.summary.empty() || s.summary == "false")) return v.json;
    auto doc = ParseJson(v.json);
    if (!doc.ok()) return v.json;
    const TypeDef* td = Definitions::R4().Type(v.type);
    std::vector<std::string> remove;
    for (auto it = doc->MemberBegin(); it != doc->MemberEnd(); ++it) {
      std::string name = it->name.GetString();
      if (name == "resourceType" || name == "id" || name == "meta") continue;
      std::string base = name[0] == '_' ? name.substr(1) : name;
      bool keep = true;
      if (!s.elements.empty()) {
        keep = std::find(s.elements.begin(), s.elements.end(), base) != s.elements.end();
      } else if (s.summary == "text") {
        keep = base == "text";
      } else if (s.summary == "data") {
        keep = base != "text";
      } else if (s.summary == "true" && td) {
        const ElementDef* e = td->Find(base);
        if (!e) {
          for (const auto& el : td->elements)
            if (el.is_choice && base.rfind(el.path.substr(0, el.path.size() - 3), 0) == 0) e = &el;
        }
        keep = e && e->is_summary;
      }
      if (!keep) remove.push_back(name);
    }
    for (const auto& n : remove) doc->RemoveMember(n.c_str());
    auto& a = doc->GetAllocator();
    if (!doc->HasMember("meta")) doc->AddMember("meta", JsonValue(rapidjson::kObjectType), a);
    JsonValue& meta = (*doc)["meta"];
    if (!meta.HasMember("tag")) meta.AddMember("tag", JsonValue(rapidjson::kArrayType), a);
    JsonValue tag(rapidjson::kObjectType);
    tag.AddMember("system", "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", a);
    tag.AddMember("code", "SUBSETTED", a);
    meta["tag"].PushBack(tag, a);
    return WriteJson(*doc);
  }

  // Resources referenced by `from` through the include specs (deduplicated against `seen`).
  void CollectIncludes(const RestRequest& req, const std::vector<ResourceVersion>& from,
                       const std::vector<IncludeSpec>& specs, bool iterate_pass, std::set<std::string>* seen,
                       std::vector<ResourceVersion>* out) {
    for (const ResourceVersion& r : from) {
      std::vector<const IncludeSpec*> mine;
      for (const auto& s : specs)
        if (s.source_type == r.type && (!iterate_pass || s.iterate)) mine.push_back(&s);
      if (mine.empty()) continue;
      auto doc = ParseJson(r.json);
      if (!doc.ok()) continue;
      store::IndexRows rows = ExtractIndex(*doc, r.type);
      for (const auto& ref : rows.references) {
        if (ref.target_type.empty()) continue;
        bool wanted = false;
        for (const IncludeSpec* s : mine)
          wanted = wanted || ((s->param == "*" || s->param == ref.param) &&
                              (s->target_type.empty() || s->target_type == ref.target_type));
        if (!wanted) continue;
        std::string key = ref.target_type + "/" + ref.target_id;
        if (!seen->insert(key).second) continue;
        auto target = store_->Read(ref.target_type, ref.target_id);
        if (target.ok() && Disclose(req, *target).ok()) out->push_back(std::move(*target));
      }
    }
  }

  void CollectRevIncludes(const RestRequest& req, const std::vector<ResourceVersion>& from,
                          const std::vector<IncludeSpec>& specs, std::set<std::string>* seen,
                          std::vector<ResourceVersion>* out) {
    for (const IncludeSpec& s : specs) {
      store::SearchQuery q;
      q.type = s.source_type;
      q.count = options_.max_page_size;
      store::Criterion c;
      c.param = s.param;
      c.type = store::ParamType::kReference;
      for (const ResourceVersion& r : from) {
        if (!s.target_type.empty() && s.target_type != r.type) continue;
        store::SearchValue v;
        v.target_type = r.type;
        v.target_id = r.id;
        c.values.push_back(std::move(v));
      }
      if (c.values.empty() || s.param == "*") continue;
      q.criteria.push_back(std::move(c));
      if (req.access && !req.access->OnSearch(q).ok()) continue;  // a type the caller may not search
      auto page = store_->Search(q);
      if (!page.ok()) continue;
      DiscloseAll(req, page->resources);
      for (auto& r : page->resources)
        if (seen->insert(r.type + "/" + r.id).second) out->push_back(std::move(r));
    }
  }

  RestResponse Search(const RestRequest& req, const std::string& type,
                      const std::vector<std::pair<std::string, std::string>>& params) {
    Handling handling = req.Header("prefer").find("handling=strict") != std::string_view::npos ? Handling::kStrict
                                                                                                  : Handling::kLenient;
    auto parsed = ParseSearch(type, params, handling, options_.default_page_size, options_.max_page_size);
    if (!parsed.ok()) return ErrorResponse(parsed.status());
    // Widen first (the EMPI: a person-level identifier finds the person's records at
    // every institution), then narrow to what the caller may see: authorization has
    // the last word on the query.
    if (options_.expand_search) {
      if (Status st = options_.expand_search(parsed->query); !st.ok()) return ErrorResponse(st);
    }
    if (req.access)
      if (Status st = req.access->OnSearch(parsed->query); !st.ok()) return ErrorResponse(st);
    auto page = store_->Search(parsed->query);
    if (!page.ok()) return ErrorResponse(page.status());
    DiscloseAll(req, page->resources);

    std::set<std::string> seen;
    for (const auto& r : page->resources) seen.insert(r.type + "/" + r.id);
    std::vector<ResourceVersion> included;
    CollectIncludes(req, page->resources, parsed->includes, false, &seen, &included);
    CollectRevIncludes(req, page->resources, parsed->revincludes, &seen, &included);
    if (!included.empty()) {
      std::vector<ResourceVersion> more;
      CollectIncludes(req, included, parsed->includes, true, &seen, &more);
      for (auto& r : more) included.push_back(std::move(r));
    }

    BundleWriter b("searchset");
    if (page->total) b.Total(*page->total);
    b.Links(PageLinks(req, type, *parsed, parsed->query.offset, parsed->query.count, page->has_more,
                      page->snapshot_seq));
    b.BeginEntries();
    for (const auto& r : page->resources) {
      b.w().StartObject();
      StrMember(b.w(), "fullUrl", req.base_url + "/" + r.type + "/" + r.id);
      b.RawResource(Shape(r, *parsed));
      b.w().Key("search");
      b.w().StartObject();
      StrMember(b.w(), "mode", "match");
      b.w().EndObject();
      b.w().EndObject();
    }
    for (const auto& r : included) {
      b.w().StartObject();
      StrMember(b.w(), "fullUrl", req.base_url + "/" + r.type + "/" + r.id);
      b.RawResource(r.json);
      b.w().Key("search");
      b.w().StartObject();
      StrMember(b.w(), "mode", "include");
      b.w().EndObject();
      b.w().EndObject();
    }
    if (!parsed->ignored.empty()) {
      std::vector<Issue> issues;
      for (const auto& [name, why] : parsed->ignored)
        issues.push_back({"warning", "not-supported", "parameter '" + name + "' was ignored: " + why, name});
      b.w().StartObject();
      b.RawResource(OperationOutcomeJson(issues));
      b.w().Key("search");
      b.w().StartObject();
      StrMember(b.w(), "mode", "outcome");
      b.w().EndObject();
      b.w().EndObject();
    }
    RestResponse r;
    r.body = b.Finish();
    return r;
  }

  std::vector<std::pair<std::string, std::string>> PageLinks(const RestRequest& req, const std::string& path,
                                                             const ParsedSearch& s, int64_t offset, int count,
                                                             bool has_more, int64_t snapshot) {
    auto url = [&](int64_t off) {
      auto params = s.canonical;
      params.emplace_back("_count", std::to_string(count));
      if (off > 0 || has_more) {
        params.emplace_back("_offset", std::to_string(off));
        params.emplace_back("_snapshot", std::to_string(snapshot));
      }
      return req.base_url + "/" + path + "?" + BuildQueryString(params);
    };
    std::vector<std::pair<std::string, std::string>> links{{"self", url(offset)}};
    if (has_more && count > 0) links.emplace_back("next", url(offset + count));
    if (offset > 0 && count > 0) links.emplace_back("previous", url(std::max<int64_t>(0, offset - count)));
    return links;
  }

  // ---- History and $everything --------------------------------------------

  RestResponse History(const RestRequest& req, const std::string& type, const std::string& id) {
    store::HistoryQuery q;
    q.type = type;
    q.id = id;
    q.count = options_.default_page_size;
    std::vector<std::pair<std::string, std::string>> canonical;
    for (const auto& [k, v] : req.query) {
      if (k == "_count") {
        auto n = std::atoll(v.c_str());
        if (n < 1 || n > options_.max_page_size)
          return ErrorResponse(InvalidArgument("_count must be 1 to " + std::to_string(options_.max_page_size), "_count"));
        q.count = static_cast<int>(n);
      } else if (k == "_offset") {
        q.offset = std::max<int64_t>(0, std::atoll(v.c_str()));
      } else if (k == "_snapshot") {
        q.snapshot_seq = std::max<int64_t>(0, std::atoll(v.c_str()));
      } else if (k == "_since") {
        auto r = ParseFhirDate(v);
        if (!r.ok()) return ErrorResponse(InvalidArgument("_since: " + r.status().message(), "_since"));
        q.since = r->low;
        canonical.emplace_back(k, v);
      } else if (k == "_at" || k == "_list") {
        return ErrorResponse(InvalidArgument(k + " is not supported on history", k));
      }
    }
    if (!id.empty()) {
      auto cur = store_->ReadVersion(type, id, 1);
      if (!cur.ok()) return ErrorResponse(NotFound("resource " + type + "/" + id + " is not known"));
    }
    if (req.access)
      if (Status st = req.access->OnHistory(type, id); !st.ok()) return ErrorResponse(st);
    auto page = store_->History(q);
    if (!page.ok()) return ErrorResponse(page.status());
    if (req.access) {
      // Each version on its own: a resource may have belonged to someone else before.
      std::vector<ResourceVersion> kept;
      for (auto& v : page->versions)
        if (v.deleted || req.access->OnDisclose(v).ok()) kept.push_back(std::move(v));
      page->versions = std::move(kept);
    }
    BundleWriter b("history");
    if (page->total) b.Total(*page->total);
    std::string path = type.empty() ? "_history" : id.empty() ? type + "/_history" : type + "/" + id + "/_history";
    ParsedSearch s;
    s.canonical = canonical;
    b.Links(PageLinks(req, path, s, q.offset, q.count, page->has_more, page->snapshot_seq));
    b.BeginEntries();
    for (const auto& v : page->versions) {
      auto& w = b.w();
      w.StartObject();
      StrMember(w, "fullUrl", req.base_url + "/" + v.type + "/" + v.id);
      if (!v.deleted) b.RawResource(v.json);
      w.Key("request");
      w.StartObject();
      StrMember(w, "method", v.method);
      StrMember(w, "url", v.method == "POST" ? v.type : v.type + "/" + v.id);
      w.EndObject();
      w.Key("response");
      w.StartObject();
      StrMember(w, "status", v.deleted ? "204" : v.version == 1 ? "201" : "200");
      StrMember(w, "etag", "W/\"" + std::to_string(v.version) + "\"");
      StrMember(w, "lastModified", FormatInstant(v.last_updated));
      w.EndObject();
      w.EndObject();
    }
    RestResponse r;
    r.body = b.Finish();
    return r;
  }

  RestResponse Everything(const RestRequest& req, const std::string& id) {
    auto patient = store_->Read("Patient", id);
    if (!patient.ok()) return ErrorResponse(patient.status());
    if (req.access)
      if (Status st = req.access->OnEverything(id); !st.ok()) return ErrorResponse(st);
    int count = options_.default_page_size * 5;
    int64_t offset = 0;
    std::vector<std::string> types;
    std::vector<std::pair<std::string, std::string>> canonical;
    for (const auto& [k, v] : req.query) {
      if (k == "_count") {
        count = std::clamp(std::atoi(v.c_str()), 1, options_.max_page_size);
      } else if (k == "_offset") {
        offset = std::max<int64_t>(0, std::atoll(v.c_str()));
      } else if (k == "_type") {
        canonical.emplace_back(k, v);
        size_t start = 0;
        while (start <= v.size()) {
          size_t comma = v.find(',', start);
          if (comma == std::string::npos) comma = v.size();
          std::string t = v.substr(start, comma - start);
          if (!Definitions::R4().IsResourceType(t))
            return ErrorResponse(InvalidArgument("_type: unknown resource type '" + t + "'", "_type"));
          types.push_back(t);
          start = comma + 1;
        }
      }
    }
    auto page = store_->Compartment(id, types, count, offset);
    if (!page.ok()) return ErrorResponse(page.status());
    DiscloseAll(req, page->resources);
    BundleWriter b("searchset");
    if (page->total) b.Total(*page->total);
    ParsedSearch s;
    s.canonical = canonical;
    b.Links(PageLinks(req, "Patient/" + id + "/$everything", s, offset, count, page->has_more, 0));
    b.BeginEntries();
    for (const auto& r : page->resources) {
      b.w().StartObject();
      StrMember(b.w(), "fullUrl", req.base_url + "/" + r.type + "/" + r.id);
      b.RawResource(r.json);
      b.w().Key("search");
      b.w().StartObject();
      StrMember(b.w(), "mode", "match");
      b.w().EndObject();
      b.w().EndObject();
    }
    RestResponse r;
    r.body = b.Finish();
    return r;
  }

  // ---- transaction / batch -------------------------------------------------

  RestResponse Bundle(const RestRequest& req);
  // The Bundle POSTed to the base, parsed and validated into *bundle; a response when refused.
  std::optional<RestResponse> ParseBundle(const RestRequest& req, Json* bundle);
  RestResponse PostedBundle(const RestRequest& req, Json& bundle);  // by its type: batch or transaction
  RestResponse Batch(const RestRequest& req, Json& bundle);
  RestResponse Transaction(const RestRequest& req, Json& bundle);
  std::vector<RestResponse> HandleTransactions(const std::vector<RestRequest>& requests) override;

  // A transaction in three steps, so that several can share one store write.
  struct TxEntry {
    size_t index = 0;
    std::string method, type, id, full_url, if_none_exist;
    std::vector<std::pair<std::string, std::string>> query;
    int64_t if_match = 0;
    JsonValue* resource = nullptr;
    // results
    int status = 0;
    ResourceVersion stored;
    bool has_body = false;
  };
  struct TxPlan {
    const RestRequest* req = nullptr;
    Json* bundle = nullptr;
    std::vector<TxEntry> entries;
    std::vector<TxEntry*> sorted;  // in FHIR processing order: DELETE, POST, PUT, GET
    Micros now = 0;
  };
  // Checks the entries; a response when the bundle is refused before any write.
  std::optional<RestResponse> PlanTransaction(const RestRequest& req, Json& bundle, TxPlan* plan);
  Status ApplyTransaction(TxPlan& plan, WriteTransaction& tx);
  RestResponse FinishTransaction(TxPlan& plan);

  store::Store* store_;
  FhirServiceOptions options_;
  std::once_flag capability_once_;
  std::string capability_;
};

// Splits "Patient/1?x=y" into path and query parameters.
void SplitUrl(std::string_view url, std::string* path, std::vector<std::pair<std::string, std::string>>* query) {
  size_t q = url.find('?');
  *path = std::string(url.substr(0, q));
  while (!path->empty() && path->front() == '/') path->erase(path->begin());
  if (q != std::string_view::npos) *query = ParseQueryString(url.substr(q + 1));
}

std::string StatusLine(int status) {
  switch (status) {
    case 200: return "200 OK";
    case 201: return "201 Created";
    case 204: return "204 No Content";
    case 400: return "400 Bad Request";
    case 404: return "404 Not Found";
    case 405: return "405 Method Not Allowed";
    case 409: return "409 Conflict";
    case 410: return "410 Gone";
    case 412: return "412 Precondition Failed";
    case 415: return "415 Unsupported Media Type";
    case 422: return "422 Unprocessable Entity";
    default: return std::to_string(status);
  }
}

std::string_view HeaderOf(const RestResponse& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return {};
}

std::optional<RestResponse> Service::ParseBundle(const RestRequest& req, Json* bundle) {
  if (auto st = CheckContentType(req); !st.ok()) return ErrorResponse(st);
  std::vector<Issue> issues;
  auto doc = ParseResource(req.body, "Bundle", &issues);
  if (!doc.ok()) return issues.empty() ? ErrorResponse(doc.status()) : IssuesResponse(400, issues);
  *bundle = std::move(*doc);
  return std::nullopt;
}

RestResponse Service::PostedBundle(const RestRequest& req, Json& bundle) {
  std::string_view type = StringMember(bundle, "type");
  if (type == "batch") return Batch(req, bundle);
  if (type == "transaction") return Transaction(req, bundle);
  return ErrorResponse(InvalidArgument("only transaction and batch Bundles can be posted to the base (got '" +
                                           std::string(type) + "')",
                                       "Bundle.type"));
}

RestResponse Service::Bundle(const RestRequest& req) {
  Json bundle;
  if (auto refused = ParseBundle(req, &bundle)) return std::move(*refused);
  return PostedBundle(req, bundle);
}

RestResponse Service::Batch(const RestRequest& req, Json& bundle) {
  BundleWriter out("batch-response");
  out.BeginEntries();
  const JsonValue* entries = Member(bundle, "entry");
  size_t i = 0;
  if (entries && entries->IsArray()) {
    for (auto& e : entries->GetArray()) {
      RestRequest sub;
      sub.base_url = req.base_url;
      sub.access = req.access;
      const JsonValue* request = Member(e, "request");
      RestResponse resp;
      if (!request) {
        resp = ErrorResponse(InvalidArgument("Bundle.entry[" + std::to_string(i) + "].request is required"));
      } else {
        sub.method = std::string(StringMember(*request, "method"));
        SplitUrl(StringMember(*request, "url"), &sub.path, &sub.query);
        if (auto v = StringMember(*request, "ifNoneExist"); !v.empty()) sub.headers.emplace_back("if-none-exist", v);
        if (auto v = StringMember(*request, "ifMatch"); !v.empty()) sub.headers.emplace_back("if-match", v);
        if (const JsonValue* res = Member(e, "resource")) sub.body = WriteJson(*res);
        if (sub.path.empty()) {
          resp = ErrorResponse(InvalidArgument("Bundle.entry[" + std::to_string(i) + "]: nested bundles are not processed"));
        } else {
          resp = Handle(sub);
        }
      }
      auto& w = out.w();
      w.StartObject();
      if (!resp.body.empty() && resp.status < 300 && sub.method != "DELETE") out.RawResource(resp.body);
      w.Key("response");
      w.StartObject();
      StrMember(w, "status", StatusLine(resp.status));
      if (auto loc = HeaderOf(resp, "Location"); !loc.empty()) StrMember(w, "location", loc);
      if (auto tag = HeaderOf(resp, "ETag"); !tag.empty()) StrMember(w, "etag", tag);
      if (resp.status >= 400) {
        w.Key("outcome");
        w.RawValue(resp.body.data(), resp.body.size(), rapidjson::kObjectType);
      }
      w.EndObject();
      w.EndObject();
      ++i;
    }
  }
  RestResponse r;
  r.body = out.Finish();
  return r;
}

// Rewrites every Reference.reference found in `v` through `map`.
// Rewrites references to entries' fullUrls (urn:uuid:…) and resolves
// conditional references ("Organization?identifier=…", FHIR R4 3.1.0.11.2) to
// the one resource they match.
Status RewriteReferences(JsonValue& v, std::unordered_map<std::string, std::string>& map, JsonAlloc& a,
                         const std::function<StatusOr<std::string>(std::string_view)>& resolve) {
  if (v.IsObject()) {
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
      if (it->value.IsString() && std::string_view(it->name.GetString()) == "reference") {
        const std::string ref = it->value.GetString();
        auto found = map.find(ref);
        if (found == map.end() && ref.find('?') != std::string::npos) {
          ASSIGN_OR_RETURN(std::string target, resolve(ref));
          found = map.emplace(ref, std::move(target)).first;
        }
        if (found != map.end()) it->value.SetString(found->second.c_str(), static_cast<rapidjson::SizeType>(found->second.size()), a);
      } else {
        RETURN_IF_ERROR(RewriteReferences(it->value, map, a, resolve));
      }
    }
  } else if (v.IsArray()) {
    for (auto& x : v.GetArray()) RETURN_IF_ERROR(RewriteReferences(x, map, a, resolve));
  }
  return Status::Ok();
}

RestResponse Service::Transaction(const RestRequest& req, Json& bundle) {
  TxPlan plan;
  if (auto refused = PlanTransaction(req, bundle, &plan)) return std::move(*refused);
  Status st = store_->Write([&](WriteTransaction& tx) { return ApplyTransaction(plan, tx); });
  if (!st.ok()) return ErrorResponse(st);
  return FinishTransaction(plan);
}

std::vector<RestResponse> Service::HandleTransactions(const std::vector<RestRequest>& requests) {
  std::vector<RestResponse> out(requests.size());
  std::vector<Json> docs(requests.size());
  std::vector<TxPlan> plans(requests.size());
  std::vector<size_t> planned;  // indexes of the requests that go into the shared write
  for (size_t i = 0; i < requests.size(); ++i) {
    const RestRequest& req = requests[i];
    if (req.method != "POST" || !SplitPath(req.path).empty()) {
      out[i] = Handle(req);
      continue;
    }
    if (auto refused = ParseBundle(req, &docs[i])) {
      out[i] = std::move(*refused);
      continue;
    }
    if (StringMember(docs[i], "type") != "transaction") {  // a batch (or refused): on its own
      out[i] = PostedBundle(req, docs[i]);
      continue;
    }
    if (auto refused = PlanTransaction(req, docs[i], &plans[i])) {
      out[i] = std::move(*refused);
      continue;
    }
    planned.push_back(i);
  }
  std::vector<store::WriteFn> fns;
  fns.reserve(planned.size());
  for (size_t i : planned) fns.push_back([this, plan = &plans[i]](WriteTransaction& tx) { return ApplyTransaction(*plan, tx); });
  std::vector<Status> written = store_->WriteEach(std::move(fns));
  for (size_t k = 0; k < planned.size(); ++k) {
    const size_t i = planned[k];
    out[i] = written[k].ok() ? FinishTransaction(plans[i]) : ErrorResponse(written[k]);
  }
  return out;
}

std::optional<RestResponse> Service::PlanTransaction(const RestRequest& req, Json& bundle, TxPlan* plan) {
  plan->req = &req;
  plan->bundle = &bundle;
  std::vector<TxEntry>& entries = plan->entries;
  const Definitions& defs = Definitions::R4();
  if (JsonValue* list = bundle.HasMember("entry") ? &bundle["entry"] : nullptr; list && list->IsArray()) {
    size_t i = 0;
    for (auto& e : list->GetArray()) {
      TxEntry en;
      en.index = i;
      std::string where = "Bundle.entry[" + std::to_string(i) + "]";
      const JsonValue* request = Member(e, "request");
      if (!request) return ErrorResponse(InvalidArgument(where + ".request is required in a transaction", where + ".request"));
      en.method = std::string(StringMember(*request, "method"));
      std::string path;
      SplitUrl(StringMember(*request, "url"), &path, &en.query);
      auto seg = SplitPath(path);
      if (seg.empty() || !defs.IsResourceType(seg[0]))
        return ErrorResponse(InvalidArgument(where + ": request.url must start with a resource type", where + ".request.url"));
      en.type = seg[0];
      if (en.method != "GET") {
        if (Status m = CheckManaged(en.type); !m.ok()) return ErrorResponse(m.WithContext(where).WithLocation(where + ".request.url"));
      }
      if (seg.size() >= 2) en.id = seg[1];
      if (seg.size() > 2)
        return ErrorResponse(InvalidArgument(where + ": only Type, Type/id and Type?query urls are supported", where + ".request.url"));
      en.full_url = std::string(StringMember(e, "fullUrl"));
      en.if_none_exist = std::string(StringMember(*request, "ifNoneExist"));
      en.if_match = ParseETag(StringMember(*request, "ifMatch"));
      if (en.if_match < 0) return ErrorResponse(InvalidArgument(where + ": bad ifMatch", where + ".request.ifMatch"));
      if (e.HasMember("resource")) en.resource = &e["resource"];
      if ((en.method == "POST" || en.method == "PUT")) {
        if (!en.resource) return ErrorResponse(InvalidArgument(where + ".resource is required for " + en.method, where));
        if (StringMember(*en.resource, "resourceType") != en.type)
          return ErrorResponse(InvalidArgument(where + ": resource type differs from request.url", where + ".resource"));
        if (en.method == "PUT" && !en.id.empty() && StringMember(*en.resource, "id") != en.id)
          return ErrorResponse(InvalidArgument(where + ": resource id must equal the id in request.url", where + ".resource.id"));
      } else if (en.method != "DELETE" && en.method != "GET") {
        return ErrorResponse(InvalidArgument(where + ": method '" + en.method + "' is not supported", where + ".request.method"));
      }
      if ((en.method == "DELETE" || en.method == "GET") && en.id.empty())
        return ErrorResponse(InvalidArgument(where + ": conditional " + en.method + " is not supported in transactions", where));
      entries.push_back(std::move(en));
      ++i;
    }
  }
  plan->now = NowMicros();
  auto order = [](const std::string& m) { return m == "DELETE" ? 0 : m == "POST" ? 1 : m == "PUT" ? 2 : 3; };
  for (auto& e : entries) plan->sorted.push_back(&e);
  std::stable_sort(plan->sorted.begin(), plan->sorted.end(),
                   [&](TxEntry* a, TxEntry* b) { return order(a->method) < order(b->method); });
  return std::nullopt;
}

// Inside the store's write: resolves the identities, rewrites references and writes the
// entries in FHIR order. Runs once per plan (a failed write is not retried here).
Status Service::ApplyTransaction(TxPlan& plan, WriteTransaction& tx) {
  const RestRequest& req = *plan.req;
  const Definitions& defs = Definitions::R4();
  const Micros now = plan.now;
  const std::vector<TxEntry*>& sorted = plan.sorted;
  auto& alloc = plan.bundle->GetAllocator();
  {
    std::unordered_map<std::string, std::string> refs;
    // 1. Resolve identities: POST (new id or the conditional match) and PUT targets.
    for (TxEntry* e : sorted) {
      std::string where = "Bundle.entry[" + std::to_string(e->index) + "]";
      if (e->method == "POST") {
        e->id.clear();
        if (!e->if_none_exist.empty()) {
          auto ids = Matches(tx, e->type, e->if_none_exist);
          if (!ids.ok()) return ids.status().WithContext(where).WithLocation(where + ".request.ifNoneExist");
          if (ids->size() > 1) return FailedPrecondition(where + ": ifNoneExist matches several resources").WithLocation(where);
          if (ids->size() == 1) {
            e->id = (*ids)[0];
            e->status = 200;
          }
        }
        if (e->id.empty()) e->id = NewId();
      } else if (e->method == "PUT" && e->id.empty()) {
        auto parsed = ParseSearch(e->type, e->query, Handling::kStrict);
        if (!parsed.ok()) return parsed.status().WithContext(where).WithLocation(where + ".request.url");
        auto ids = tx.SearchIds(parsed->query, 2);
        if (!ids.ok()) return ids.status();
        if (ids->size() > 1) return FailedPrecondition(where + ": conditional update matches several resources").WithLocation(where);
        e->id = ids->empty() ? (StringMember(*e->resource, "id").empty() ? NewId() : std::string(StringMember(*e->resource, "id")))
                             : (*ids)[0];
      }
      if (!e->full_url.empty() && (e->method == "POST" || e->method == "PUT")) refs[e->full_url] = e->type + "/" + e->id;
    }
    auto resolve_conditional = [&](std::string_view ref) -> StatusOr<std::string> {
      const size_t q = ref.find('?');
      const std::string type(ref.substr(0, q));
      if (!defs.IsResourceType(type)) return InvalidArgument("conditional reference '" + std::string(ref) + "' must start with a resource type");
      std::string path;
      std::vector<std::pair<std::string, std::string>> query;
      SplitUrl(ref, &path, &query);
      auto parsed = ParseSearch(type, query, Handling::kStrict);
      if (!parsed.ok()) return parsed.status().WithContext("conditional reference '" + std::string(ref) + "'");
      ASSIGN_OR_RETURN(auto ids, tx.SearchIds(parsed->query, 2));
      if (ids.size() != 1) {
        return FailedPrecondition("conditional reference '" + std::string(ref) + "' matches " +
                                  (ids.empty() ? std::string("no resource") : std::string("several resources")) +
                                  "; it must match exactly one");
      }
      return type + "/" + ids[0];
    };
    // 2. Apply in FHIR order.
    for (TxEntry* e : sorted) {
      std::string where = "Bundle.entry[" + std::to_string(e->index) + "]";
      auto fail = [&](const Status& s) { return s.WithContext(where).WithLocation(s.location().empty() ? where : where + "." + s.location()); };
      if (e->method == "DELETE") {
        auto cur = tx.Current(e->type, e->id);
        if (!cur.ok()) return fail(cur.status());
        if (!*cur) return fail(NotFound("resource " + e->type + "/" + e->id + " is not known"));
        if (e->if_match > 0 && (*cur)->version != e->if_match) return fail(FailedPrecondition("ifMatch does not match"));
        if (Status w = MayWrite(req, e->type, e->id, nullptr); !w.ok()) return fail(w);
        if (!(*cur)->deleted) {
          Status d = tx.Delete({e->type, e->id, (*cur)->version + 1, now});
          if (!d.ok()) return fail(d);
        }
        e->status = 204;
        continue;
      }
      if (e->method == "GET") {
        auto r = tx.Read(e->type, e->id);
        if (!r.ok()) return fail(r.status());
        if (Status d = Disclose(req, *r); !d.ok()) return fail(d);
        e->stored = std::move(*r);
        e->status = 200;
        e->has_body = true;
        continue;
      }
      if (e->method == "POST" && e->status == 200) {  // conditional create matched
        auto r = tx.Read(e->type, e->id);
        if (!r.ok()) return fail(r.status());
        if (Status d = Disclose(req, *r); !d.ok()) return fail(d);
        e->stored = std::move(*r);
        e->has_body = true;
        continue;
      }
      if (Status r = RewriteReferences(*e->resource, refs, alloc, resolve_conditional); !r.ok()) return fail(r);
      Json copy;
      copy.CopyFrom(*e->resource, copy.GetAllocator());
      Prepared p = Prepare(std::move(copy), e->type, e->id, 1, now);
      if (Status w = MayWrite(req, e->type, e->id, &p.index); !w.ok()) return fail(w);
      auto out = UpdateInTx(tx, p, e->method == "PUT" ? e->if_match : 0);
      if (!out.ok()) return fail(out.status());
      if (e->method == "POST" && out->stored.version != 1)
        return fail(Conflict("generated id collided with an existing resource; retry"));
      e->status = e->method == "POST" ? 201 : out->status;
      e->stored = std::move(out->stored);
      e->has_body = true;
    }
    return req.in_transaction ? req.in_transaction(tx) : Status::Ok();
  }
}

// After the commit: the written resources are announced, and the response written.
RestResponse Service::FinishTransaction(TxPlan& plan) {
  const RestRequest& req = *plan.req;
  const Micros now = plan.now;
  const std::vector<TxEntry>& entries = plan.entries;
  for (const TxEntry& e : entries) {
    if (e.method == "DELETE") Notify({e.type, e.id, 0, now, true, "DELETE", ""});
    else if (e.method == "PUT" || (e.method == "POST" && e.status == 201)) Notify(e.stored);  // not a conditional match
  }

  BundleWriter out("transaction-response");
  out.BeginEntries();
  for (const TxEntry& e : entries) {
    auto& w = out.w();
    w.StartObject();
    if (e.has_body) {
      StrMember(w, "fullUrl", req.base_url + "/" + e.type + "/" + e.id);
      out.RawResource(e.stored.json);
    }
    w.Key("response");
    w.StartObject();
    StrMember(w, "status", StatusLine(e.status));
    if (e.has_body) {
      StrMember(w, "location", e.type + "/" + e.id + "/_history/" + std::to_string(e.stored.version));
      StrMember(w, "etag", "W/\"" + std::to_string(e.stored.version) + "\"");
      StrMember(w, "lastModified", FormatInstant(e.stored.last_updated));
    }
    w.EndObject();
    w.EndObject();
  }
  RestResponse r;
  r.body = out.Finish();
  return r;
}

}  // namespace

std::unique_ptr<FhirService> NewFhirService(store::Store* store, FhirServiceOptions options) {
  return std::make_unique<Service>(store, options);
}

}  // namespace rhip::fhir
