#include "rhip/ingest/bulk_data.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_set>

#include "rhip/core/log.h"
#include "rhip/core/time.h"
#include "rhip/core/url.h"
#include "rhip/fhir/definitions.h"
#include "rhip/fhir/json.h"
#include "rhip/fhir/operation_outcome.h"
#include "rhip/fhir/search.h"
#include "rhip/ingest/ndjson_import.h"

namespace rhip::ingest {
namespace {

namespace fs = std::filesystem;
using fhir::RestRequest;
using fhir::RestResponse;

RestResponse Error(const Status& s) {
  RestResponse r;
  r.status = fhir::HttpStatusFor(s.code());
  r.body = fhir::OperationOutcomeJson(s);
  return r;
}

std::string Query(const RestRequest& req, std::string_view name) {
  for (const auto& [k, v] : req.query)
    if (k == name) return v;
  return {};
}

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, ','))
    if (!part.empty()) out.push_back(part);
  return out;
}

bool WantsAsync(const RestRequest& req) {
  return req.Header("prefer").find("respond-async") != std::string_view::npos;
}

std::string NewJobId() {
  static std::atomic<uint64_t> counter{0};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%llx%04llx", static_cast<unsigned long long>(NowMicros()),
                static_cast<unsigned long long>(counter.fetch_add(1) & 0xffff));
  return buf;
}

struct Output {
  std::string type;
  std::string file;  // name inside the job folder
  int64_t count = 0;
};

struct Job {
  std::string id;
  bool is_import = false;
  std::string request;           // the kick-off URL
  std::string transaction_time;  // instant
  std::atomic<bool> cancel{false};
  std::mutex mu;                 // guards the fields below
  std::string state = "running";  // running | done | failed | cancelled
  std::string error;
  int64_t progress = 0;
  std::vector<Output> outputs;
  std::string result_json;  // $import: counts and errors
  int64_t withheld = 0;     // $export: resources the caller's rules left out
  // $export: the caller's rules, applied to every resource written; nullptr for
  // a trusted internal caller (no access control). Set before the thread starts.
  std::unique_ptr<fhir::DisclosureRules> rules;
  std::string owner;  // rules->owner(): who may poll, download, cancel
  std::thread thread;
};

}  // namespace

struct BulkData::Impl {
  store::Store* store;
  BulkDataOptions options;
  std::mutex mu;
  std::map<std::string, std::shared_ptr<Job>> jobs;

  int Running() {
    int n = 0;
    for (auto& [id, j] : jobs) {
      std::lock_guard lock(j->mu);
      n += j->state == "running";
    }
    return n;
  }

  StatusOr<std::shared_ptr<Job>> NewJob(const RestRequest& req, bool is_import) {
    std::lock_guard lock(mu);
    if (Running() >= options.max_jobs)
      return Status(StatusCode::kResourceExhausted, "too many bulk jobs are running; try again later");
    auto job = std::make_shared<Job>();
    job->id = NewJobId();
    job->is_import = is_import;
    job->request = req.base_url + "/" + req.path + (req.query.empty() ? "" : "?" + BuildQueryString(req.query));
    job->transaction_time = FormatInstant(NowMicros());
    jobs[job->id] = job;
    return job;
  }

  std::shared_ptr<Job> Find(const std::string& id) {
    std::lock_guard lock(mu);
    auto it = jobs.find(id);
    return it == jobs.end() ? nullptr : it->second;
  }

  fs::path JobDir(const std::string& id) const { return fs::path(options.dir) / id; }

  static void Finish(Job& job, const Status& st) {
    std::lock_guard lock(job.mu);
    if (job.cancel) job.state = "cancelled";
    else if (st.ok()) job.state = "done";
    else {
      job.state = "failed";
      job.error = st.ToString();
    }
  }

  // ---- $export ----

  RestResponse KickOffExport(const RestRequest& req) {
    if (req.method != "GET") return Error(Status(StatusCode::kMethodNotAllowed, "$export is started with GET"));
    if (!WantsAsync(req))
      return Error(InvalidArgument("$export is asynchronous: send the header 'Prefer: respond-async'"));
    const std::string format = Query(req, "_outputFormat");
    if (!format.empty() && format != "application/fhir+ndjson" && format != "application/ndjson" && format != "ndjson")
      return Error(InvalidArgument("_outputFormat '" + format + "' is not supported (application/fhir+ndjson)"));
    const fhir::Definitions& defs = fhir::Definitions::R4();
    std::vector<std::string> types = SplitComma(Query(req, "_type"));
    for (const auto& t : types)
      if (!defs.IsResourceType(t)) return Error(InvalidArgument("_type: '" + t + "' is not a FHIR R4 resource type"));
    std::optional<Micros> since;
    if (const std::string s = Query(req, "_since"); !s.empty()) {
      if (!IsValidFhirInstant(s)) return Error(InvalidArgument("_since must be a FHIR instant, e.g. 2024-01-01T00:00:00+08:00"));
      since = ParseFhirDate(s)->low;
    }
    // Level: system, Patient, or Group/[id].
    const std::vector<std::string> seg = SplitPath(req.path);
    std::optional<std::vector<std::string>> patients;  // nullopt: system level
    if (seg.size() == 2 && seg[0] == "Patient") {
      patients.emplace();  // all patients
    } else if (seg.size() == 3 && seg[0] == "Group") {
      auto group = store->Read("Group", seg[1]);
      if (!group.ok()) return Error(group.status());
      auto doc = fhir::ParseJson(group->json);
      if (!doc.ok()) return Error(doc.status());
      patients.emplace();
      if (const auto* members = fhir::Member(*doc, "member"); members && members->IsArray()) {
        for (const auto& m : members->GetArray()) {
          const auto* entity = fhir::Member(m, "entity");
          const std::string ref = entity ? std::string(fhir::StringMember(*entity, "reference")) : "";
          if (ref.rfind("Patient/", 0) == 0) patients->push_back(ref.substr(8));
        }
      }
      if (patients->empty()) return Error(InvalidArgument("Group/" + seg[1] + " has no Patient members to export"));
    } else if (seg.size() != 1) {
      return Error(InvalidArgument("$export runs at [base]/$export, [base]/Patient/$export or [base]/Group/[id]/$export"));
    }
    auto job = NewJob(req, false);
    if (!job.ok()) return Error(job.status());
    std::shared_ptr<Job> j = *job;
    if (req.access) {
      j->rules = req.access->RulesForJob();
      j->owner = j->rules->owner();
    }
    const bool all_patients = patients && seg[0] == "Patient";
    j->thread = std::thread([this, j, types, since, patients, all_patients]() mutable {
      Status st = RunExport(*j, types, since, patients, all_patients);
      if (!st.ok()) log::Warn("bulk export job={} failed: {}", j->id, st.ToString());
      Finish(*j, st);
    });
    RestResponse r;
    r.status = 202;
    r.headers.push_back({"Content-Location", req.base_url + "/$export-poll-status?_jobId=" + j->id});
    r.body = fhir::OperationOutcomeJson(std::vector<fhir::Issue>{{"information", "informational", "export job " + j->id + " started", ""}});
    return r;
  }

  struct Writers {
    fs::path dir;
    const fhir::DisclosureRules* rules = nullptr;
    std::map<std::string, std::unique_ptr<std::ofstream>> files;
    std::map<std::string, int64_t> counts;
    int64_t withheld = 0;
    Status Write(const store::ResourceVersion& stored) {
      const store::ResourceVersion* v = &stored;
      store::ResourceVersion disclosed;
      if (rules) {
        disclosed = stored;
        Status st = rules->Disclose(disclosed);
        if (st.code() == StatusCode::kPermissionDenied) {
          ++withheld;
          return Status::Ok();
        }
        RETURN_IF_ERROR(st);
        v = &disclosed;
      }
      auto& f = files[v->type];
      if (!f) {
        f = std::make_unique<std::ofstream>(dir / (v->type + ".ndjson"), std::ios::binary);
        if (!*f) return Status(StatusCode::kUnavailable, "cannot write " + (dir / (v->type + ".ndjson")).string());
      }
      *f << v->json << '\n';
      ++counts[v->type];
      return Status::Ok();
    }
  };

  Status RunExport(Job& job, std::vector<std::string> types, std::optional<Micros> since,
                   const std::optional<std::vector<std::string>>& patients, bool all_patients) {
    const fhir::Definitions& defs = fhir::Definitions::R4();
    Writers out;
    out.dir = JobDir(job.id);
    out.rules = job.rules.get();
    std::error_code ec;
    fs::create_directories(out.dir, ec);
    if (ec) return Status(StatusCode::kUnavailable, "cannot create " + out.dir.string() + ": " + ec.message());
    auto progress = [&] {
      std::lock_guard lock(job.mu);
      ++job.progress;
    };
    if (!patients) {
      if (types.empty()) {
        for (const auto& t : defs.ResourceTypes()) {
          auto n = store->Count(t);
          if (n.ok() && *n > 0) types.push_back(t);
        }
      }
      for (const auto& type : types) {
        Status scanned = store->Scan(type, [&](const store::ResourceVersion& v) -> Status {
          if (job.cancel) return Status(StatusCode::kUnavailable, "export cancelled");
          if (since && v.last_updated < *since) return Status::Ok();
          RETURN_IF_ERROR(out.Write(v));
          progress();
          return Status::Ok();
        });
        if (job.cancel) break;
        RETURN_IF_ERROR(scanned);
      }
    } else {
      // Patient level: each patient and the resources of their compartment, each once.
      std::vector<std::string> compartment_types;
      for (const auto& t : defs.ResourceTypes())
        if (!defs.PatientCompartmentParams(t).empty() && t != "Patient") compartment_types.push_back(t);
      if (!types.empty()) {
        std::vector<std::string> keep;
        for (const auto& t : compartment_types)
          if (std::find(types.begin(), types.end(), t) != types.end()) keep.push_back(t);
        compartment_types = keep;
      }
      const bool want_patient = types.empty() || std::find(types.begin(), types.end(), "Patient") != types.end();
      std::vector<std::string> ids = *patients;
      if (all_patients) {
        RETURN_IF_ERROR(store->Scan("Patient", [&](const store::ResourceVersion& v) {
          ids.push_back(v.id);
          return Status::Ok();
        }));
      }
      std::unordered_set<std::string> seen;
      for (const auto& pid : ids) {
        if (job.cancel) break;
        auto patient = store->Read("Patient", pid);
        if (!patient.ok()) continue;  // a Group member that no longer exists
        if (want_patient && (!since || patient->last_updated >= *since) && seen.insert("Patient/" + pid).second) {
          RETURN_IF_ERROR(out.Write(*patient));
          progress();
        }
        if (compartment_types.empty()) continue;
        for (int64_t offset = 0;;) {
          ASSIGN_OR_RETURN(auto page, store->Compartment(pid, compartment_types, 1000, offset));
          for (const auto& v : page.resources) {
            if (since && v.last_updated < *since) continue;
            if (!seen.insert(v.type + "/" + v.id).second) continue;
            RETURN_IF_ERROR(out.Write(v));
            progress();
          }
          if (!page.has_more) break;
          offset += static_cast<int64_t>(page.resources.size());
        }
      }
    }
    for (auto& [type, f] : out.files) {
      f->close();
      if (!*f) return Status(StatusCode::kUnavailable, "writing " + type + ".ndjson failed (disk full?)");
    }
    std::lock_guard lock(job.mu);
    for (const auto& [type, n] : out.counts) job.outputs.push_back({type, type + ".ndjson", n});
    job.withheld = out.withheld;
    return Status::Ok();
  }

  RestResponse Status_(const RestRequest& req, bool is_import) {
    const std::string id = Query(req, "_jobId");
    auto job = Find(id);
    if (!job || job->is_import != is_import) return Error(NotFound("no bulk job '" + id + "'"));
    if (req.access)
      if (Status st = req.access->OnJobAccess(job->owner); !st.ok()) return Error(st);
    if (req.method == "DELETE") {
      job->cancel = true;
      if (job->thread.joinable() && job->thread.get_id() != std::this_thread::get_id()) job->thread.join();
      std::error_code ec;
      fs::remove_all(JobDir(id), ec);
      {
        std::lock_guard lock(mu);
        jobs.erase(id);
      }
      RestResponse r;
      r.status = 202;
      r.body = fhir::OperationOutcomeJson(std::vector<fhir::Issue>{{"information", "informational", "job " + id + " cancelled and deleted", ""}});
      return r;
    }
    if (req.method != "GET") return Error(Status(StatusCode::kMethodNotAllowed, "poll with GET, cancel with DELETE"));
    std::lock_guard lock(job->mu);
    RestResponse r;
    if (job->state == "running") {
      r.status = 202;
      r.headers.push_back({"X-Progress", std::to_string(job->progress) + " resources"});
      r.headers.push_back({"Retry-After", "1"});
      return r;
    }
    if (job->state != "done") return Error(Status(StatusCode::kInternal, "job " + id + " " + job->state + ": " + job->error));
    r.content_type = "application/json; charset=utf-8";
    if (is_import) {
      r.body = job->result_json;
      return r;
    }
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("transactionTime");
    w.String(job->transaction_time.c_str());
    w.Key("request");
    w.String(job->request.c_str());
    w.Key("requiresAccessToken");
    w.Bool(job->rules != nullptr);  // the file URLs are behind the same token check as the kick-off
    w.Key("output");
    w.StartArray();
    for (const auto& o : job->outputs) {
      w.StartObject();
      w.Key("type");
      w.String(o.type.c_str());
      w.Key("url");
      const std::string url = req.base_url + "/$export-file/" + id + "/" + o.file;
      w.String(url.c_str());
      w.Key("count");
      w.Int64(o.count);
      w.EndObject();
    }
    w.EndArray();
    w.Key("error");
    w.StartArray();
    w.EndArray();
    if (job->rules) {
      // Bulk Data manifest extensions: what kind of export this is, and what the caller's rules left out.
      w.Key("extension");
      w.StartObject();
      w.Key("http://rhip.health/fhir/bulk/deidentified");
      w.Bool(job->rules->deidentified());
      w.Key("http://rhip.health/fhir/bulk/withheld");
      w.Int64(job->withheld);
      w.EndObject();
    }
    w.EndObject();
    r.body.assign(buf.GetString(), buf.GetSize());
    return r;
  }

  RestResponse File(const RestRequest& req) {
    // $export-file/{job}/{Type}.ndjson
    const std::string prefix = "$export-file/";
    const size_t p = req.path.find(prefix);
    const std::string rest = p == std::string::npos ? "" : req.path.substr(p + prefix.size());
    const size_t slash = rest.find('/');
    const std::string id = rest.substr(0, slash), file = slash == std::string::npos ? "" : rest.substr(slash + 1);
    auto job = Find(id);
    if (!job || job->is_import) return Error(NotFound("no export job '" + id + "'"));
    if (req.access)
      if (Status st = req.access->OnJobAccess(job->owner); !st.ok()) return Error(st);
    std::lock_guard lock(job->mu);
    for (const auto& o : job->outputs) {
      if (o.file != file) continue;  // only the files the manifest names: no other path is reachable
      std::ifstream in(JobDir(id) / o.file, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      RestResponse r;
      r.content_type = "application/fhir+ndjson";
      r.body = ss.str();
      return r;
    }
    return Error(NotFound("job " + id + " has no file '" + file + "'"));
  }

  // ---- $import ----

  RestResponse KickOffImport(const RestRequest& req) {
    if (req.method != "POST") return Error(Status(StatusCode::kMethodNotAllowed, "$import is started with POST"));
    if (!WantsAsync(req))
      return Error(InvalidArgument("$import is asynchronous: send the header 'Prefer: respond-async'"));
    const std::string_view ct = req.Header("content-type");
    std::vector<std::string> paths;
    std::shared_ptr<Job> job;
    if (ct.rfind("application/fhir+ndjson", 0) == 0 || ct.rfind("application/ndjson", 0) == 0) {
      if (req.body.empty()) return Error(InvalidArgument("the NDJSON body is empty"));
      auto j = NewJob(req, true);
      if (!j.ok()) return Error(j.status());
      job = *j;
      std::error_code ec;
      fs::create_directories(JobDir(job->id), ec);
      const fs::path file = JobDir(job->id) / "input.ndjson";
      std::ofstream out(file, std::ios::binary);
      out << req.body;
      out.close();
      if (!out) return Error(Status(StatusCode::kUnavailable, "cannot keep the uploaded NDJSON (disk full?)"));
      paths.push_back(file.string());
    } else {
      auto doc = fhir::ParseJson(req.body);
      if (!doc.ok()) return Error(doc.status());
      if (fhir::StringMember(*doc, "resourceType") != "Parameters")
        return Error(InvalidArgument("$import takes a Parameters resource (or an application/fhir+ndjson body)"));
      std::error_code ec;
      const fs::path root = fs::weakly_canonical(options.import_root, ec);
      if (const auto* params = fhir::Member(*doc, "parameter"); params && params->IsArray()) {
        for (const auto& p : params->GetArray()) {
          if (fhir::StringMember(p, "name") != "input") continue;
          std::string url;
          if (const auto* parts = fhir::Member(p, "part"); parts && parts->IsArray()) {
            for (const auto& part : parts->GetArray()) {
              if (fhir::StringMember(part, "name") != "url") continue;
              url = std::string(fhir::StringMember(part, "valueUri"));
              if (url.empty()) url = std::string(fhir::StringMember(part, "valueUrl"));
            }
          }
          if (url.rfind("file://", 0) == 0) url = url.substr(7);
          const fs::path file = fs::weakly_canonical(url, ec);
          const std::string f = file.string(), r = root.string();
          if (url.empty() || ec || r.empty() || f.compare(0, r.size(), r) != 0 || (f.size() > r.size() && f[r.size()] != '/'))
            return Error(Status(StatusCode::kPermissionDenied, "input url '" + url + "' is not under the import folder " + r));
          if (!fs::exists(file)) return Error(NotFound("input file '" + url + "' does not exist"));
          paths.push_back(f);
        }
      }
      if (paths.empty()) return Error(InvalidArgument("Parameters has no 'input' with a 'url' part"));
      auto j = NewJob(req, true);
      if (!j.ok()) return Error(j.status());
      job = *j;
    }
    job->thread = std::thread([this, job, paths] {
      ImportOptions o;
      o.threads = 2;
      o.on_written = options.on_written;
      auto s = ImportNdjson(*store, paths, o, [&](const ImportProgress& p) {
        std::lock_guard lock(job->mu);
        job->progress = p.lines_done;
      });
      if (s.ok()) {
        rapidjson::StringBuffer buf;
        rapidjson::Writer<rapidjson::StringBuffer> w(buf);
        w.StartObject();
        w.Key("transactionTime");
        w.String(job->transaction_time.c_str());
        w.Key("request");
        w.String(job->request.c_str());
        w.Key("output");
        w.StartArray();
        for (const auto& [type, n] : s->per_type) {
          w.StartObject();
          w.Key("type");
          w.String(type.c_str());
          w.Key("count");
          w.Int64(n);
          w.EndObject();
        }
        w.EndArray();
        w.Key("summary");
        w.StartObject();
        for (auto [k, v] : {std::pair{"lines", s->lines}, std::pair{"created", s->created}, std::pair{"updated", s->updated},
                            std::pair{"unchanged", s->unchanged}, std::pair{"failed", s->failed}}) {
          w.Key(k);
          w.Int64(v);
        }
        w.EndObject();
        w.Key("error");
        w.StartArray();
        for (const auto& e : s->errors) {
          w.StartObject();
          w.Key("line");
          w.Int64(e.line);
          w.Key("message");
          w.String(e.message.c_str());
          w.EndObject();
        }
        w.EndArray();
        w.EndObject();
        std::lock_guard lock(job->mu);
        job->result_json.assign(buf.GetString(), buf.GetSize());
      }
      Finish(*job, s.status());
    });
    RestResponse r;
    r.status = 202;
    r.headers.push_back({"Content-Location", req.base_url + "/$import-poll-status?_jobId=" + job->id});
    r.body = fhir::OperationOutcomeJson(std::vector<fhir::Issue>{{"information", "informational", "import job " + job->id + " started", ""}});
    return r;
  }
};

BulkData::BulkData(store::Store* store, BulkDataOptions options) : impl_(std::make_shared<Impl>()) {
  impl_->store = store;
  impl_->options = std::move(options);
}

BulkData::~BulkData() {
  std::vector<std::shared_ptr<Job>> all;
  {
    std::lock_guard lock(impl_->mu);
    for (auto& [id, j] : impl_->jobs) all.push_back(j);
  }
  for (auto& j : all) {
    j->cancel = true;
    if (j->thread.joinable()) j->thread.join();
  }
}

std::vector<std::pair<std::string, fhir::OperationHandler>> BulkData::Operations() {
  std::shared_ptr<Impl> impl = impl_;
  return {
      {"$export", [impl](const RestRequest& r) { return impl->KickOffExport(r); }},
      {"$export-poll-status", [impl](const RestRequest& r) { return impl->Status_(r, false); }},
      {"$export-file", [impl](const RestRequest& r) { return impl->File(r); }},
      {"$import", [impl](const RestRequest& r) { return impl->KickOffImport(r); }},
      {"$import-poll-status", [impl](const RestRequest& r) { return impl->Status_(r, true); }},
  };
}

}  // namespace rhip::ingest
