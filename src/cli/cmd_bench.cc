// rhip bench: data and drivers for the macro benchmarks in bench/.
//
// `rhip bench fhir-data` writes a deterministic NDJSON load of Patients,
// Encounters and Observations (1 : 3 : 6) whose ids and identifiers the wrk
// scripts in bench/ can compute, so a 1,000,000-resource store can be built
// with `rhip import` and then read, created into and searched under load.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <vector>

#include "cli/command.h"
#include "cli/store_key_flags.h"
#include "rhip/core/id_card.h"
#include "rhip/fhir/json.h"
#include "rhip/fhir/rest.h"
#include "rhip/mpi/empi_service.h"

namespace rhip::cli {
namespace {

struct BenchDataFlags {
  std::string out;
  int64_t patients = 100000;
};

std::string IdNumber(int64_t i) {
  char buf[32];
  int year = 1940 + static_cast<int>(i % 80), month = 1 + static_cast<int>(i / 80 % 12),
      day = 1 + static_cast<int>(i / 960 % 28);
  std::snprintf(buf, sizeof buf, "330402%04d%02d%02d%03d", year, month, day, static_cast<int>(i % 1000));
  std::string s(buf);
  return s + IdCardCheckChar(s);
}

class NdjsonFile {
 public:
  explicit NdjsonFile(const std::string& path) : f_(std::fopen(path.c_str(), "wb")) {}
  ~NdjsonFile() {
    if (f_) std::fclose(f_);
  }
  bool ok() const { return f_ != nullptr; }
  void Write(const rapidjson::StringBuffer& b) {
    std::fwrite(b.GetString(), 1, b.GetSize(), f_);
    std::fputc('\n', f_);
  }

 private:
  std::FILE* f_;
};

int RunFhirData(const BenchDataFlags& f) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(f.out, ec);
  if (ec) return Fail("bench fhir-data", "cannot create " + f.out + ": " + ec.message());
  NdjsonFile pf(f.out + "/Patient.ndjson"), ef(f.out + "/Encounter.ndjson"), of(f.out + "/Observation.ndjson");
  if (!pf.ok() || !ef.ok() || !of.ok()) return Fail("bench fhir-data", "cannot write into " + f.out);
  std::mt19937_64 rng(42);
  rapidjson::StringBuffer b;
  for (int64_t i = 0; i < f.patients; ++i) {
    std::string pid = "bp" + std::to_string(i);
    b.Clear();
    {
      rapidjson::Writer<rapidjson::StringBuffer> w(b);
      w.StartObject();
      w.Key("resourceType"); w.String("Patient");
      w.Key("id"); w.String(pid.c_str());
      w.Key("identifier"); w.StartArray();
      w.StartObject(); w.Key("system"); w.String("urn:oid:2.16.156.10011.1.3");
      w.Key("value"); w.String(IdNumber(i).c_str()); w.EndObject();
      w.StartObject(); w.Key("system"); w.String("http://rhip.health/id/mrn/47000001");
      w.Key("value"); w.String(("M" + std::to_string(i)).c_str()); w.EndObject();
      w.EndArray();
      w.Key("name"); w.StartArray(); w.StartObject();
      w.Key("text"); w.String("张伟"); w.Key("family"); w.String("张");
      w.Key("given"); w.StartArray(); w.String("伟"); w.EndArray();
      w.EndObject(); w.EndArray();
      w.Key("gender"); w.String(i % 2 ? "male" : "female");
      w.Key("birthDate"); w.String(IdNumber(i).substr(6, 4).append("-01-01").c_str());
      w.EndObject();
    }
    pf.Write(b);
    for (int e = 0; e < 3; ++e) {
      std::string eid = pid + "-e" + std::to_string(e);
      int day = static_cast<int>(rng() % 28) + 1, month = static_cast<int>(rng() % 12) + 1;
      char start[40];
      std::snprintf(start, sizeof start, "2023-%02d-%02dT09:00:00+08:00", month, day);
      b.Clear();
      {
        rapidjson::Writer<rapidjson::StringBuffer> w(b);
        w.StartObject();
        w.Key("resourceType"); w.String("Encounter");
        w.Key("id"); w.String(eid.c_str());
        w.Key("status"); w.String("finished");
        w.Key("class"); w.StartObject();
        w.Key("system"); w.String("http://terminology.hl7.org/CodeSystem/v3-ActCode");
        w.Key("code"); w.String("AMB"); w.EndObject();
        w.Key("subject"); w.StartObject(); w.Key("reference"); w.String(("Patient/" + pid).c_str()); w.EndObject();
        w.Key("period"); w.StartObject(); w.Key("start"); w.String(start); w.EndObject();
        w.EndObject();
      }
      ef.Write(b);
      for (int o = 0; o < 2; ++o) {
        char when[40];
        std::snprintf(when, sizeof when, "2023-%02d-%02dT09:%02d:00+08:00", month, day, 10 + o);
        b.Clear();
        rapidjson::Writer<rapidjson::StringBuffer> w(b);
        w.StartObject();
        w.Key("resourceType"); w.String("Observation");
        w.Key("id"); w.String((eid + "-o" + std::to_string(o)).c_str());
        w.Key("status"); w.String("final");
        w.Key("code"); w.StartObject(); w.Key("coding"); w.StartArray(); w.StartObject();
        w.Key("system"); w.String("http://loinc.org");
        w.Key("code"); w.String(o ? "2345-7" : "718-7"); w.EndObject(); w.EndArray(); w.EndObject();
        w.Key("subject"); w.StartObject(); w.Key("reference"); w.String(("Patient/" + pid).c_str()); w.EndObject();
        w.Key("encounter"); w.StartObject(); w.Key("reference"); w.String(("Encounter/" + eid).c_str()); w.EndObject();
        w.Key("effectiveDateTime"); w.String(when);
        w.Key("valueQuantity"); w.StartObject();
        w.Key("value"); w.Double(static_cast<double>(rng() % 1000) / 10.0 + 50);
        w.Key("unit"); w.String(o ? "mmol/L" : "g/L");
        w.Key("system"); w.String("http://unitsofmeasure.org");
        w.Key("code"); w.String(o ? "mmol/L" : "g/L"); w.EndObject();
        w.EndObject();
        of.Write(b);
      }
    }
    if (i % 20000 == 0) std::fprintf(stderr, "\r[bench fhir-data] %" PRId64 " / %" PRId64 " patients", i, f.patients);
  }
  std::fprintf(stderr, "\r[bench fhir-data] %" PRId64 " patients, %" PRId64 " encounters, %" PRId64
               " observations in %s\n", f.patients, f.patients * 3, f.patients * 6, f.out.c_str());
  return 0;
}

struct EmpiMatchFlags {
  std::string data, queries;
  int rounds = 3;
  StoreKeyFlags key_flags;
};

// Patient/$match through the FHIR service (parse, match, read the matched
// Patients from the store, write the Bundle) over a data folder's store with the
// EMPI loaded: the service time of each request, without HTTP or queueing.
int RunEmpiMatch(const EmpiMatchFlags& f) {
  auto key = ResolveStoreKey(f.key_flags, f.data);
  if (!key.ok()) return Fail("bench empi-match", key.status().ToString());
  auto store = store::OpenStore({.url = "sqlite:" + f.data + "/rhip.db", .read_connections = 2, .create_if_missing = false,
                                 .key = *key});
  if (!store.ok()) return Fail("bench empi-match", store.status().ToString());
  const auto t0 = std::chrono::steady_clock::now();
  mpi::EmpiService empi(store->get());
  if (Status st = empi.Load(); !st.ok()) return Fail("bench empi-match", st.ToString());
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fhir::FhirServiceOptions o;
  o.operations.push_back(empi.MatchOperation());
  auto svc = fhir::NewFhirService(store->get(), o);
  std::ifstream in(f.queries);
  if (!in) return Fail("bench empi-match", "cannot read " + f.queries);
  std::vector<std::string> bodies;
  for (std::string line; std::getline(in, line);) {
    auto doc = fhir::ParseJson(line);
    if (!doc.ok() || !doc->IsObject()) continue;
    // Another institution's registration of the person: name, sex, birth date, address; no identifier, no phone.
    for (const char* k : {"id", "identifier", "telecom", "meta"}) doc->RemoveMember(k);
    bodies.push_back(R"({"resourceType":"Parameters","parameter":[{"name":"resource","resource":)" + fhir::WriteJson(*doc) +
                     R"(},{"name":"count","valueInteger":10}]})");
  }
  if (bodies.empty()) return Fail("bench empi-match", f.queries + " holds no Patient");
  std::vector<double> ms;
  int64_t found = 0;
  for (int round = 0; round < f.rounds; ++round) {
    for (const auto& body : bodies) {
      fhir::RestRequest r;
      r.method = "POST";
      r.path = "Patient/$match";
      r.body = body;
      r.base_url = "http://bench/fhir";
      const auto a = std::chrono::steady_clock::now();
      fhir::RestResponse resp = svc->Handle(r);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
      if (resp.status != 200) return Fail("bench empi-match", "$match answered " + std::to_string(resp.status) + ": " + resp.body);
      found += resp.body.find("\"certain\"") != std::string::npos;
    }
  }
  std::sort(ms.begin(), ms.end());
  std::printf("EMPI loaded in %.1f s: %zu Patient records indexed, index %.0f MB\n", load_s, empi.index().size(),
              static_cast<double>(empi.index().MemoryBytes()) / 1e6);
  std::printf("$match through the FHIR service, %zu requests (%zu queries x %d): p50 %.3f ms, p99 %.3f ms, max %.3f ms; "
              "a certain match in %.1f %%\n",
              ms.size(), bodies.size(), f.rounds, ms[ms.size() / 2], ms[ms.size() * 99 / 100], ms.back(),
              100.0 * static_cast<double>(found) / static_cast<double>(ms.size()));
  empi.Stop();
  return (*store)->Close().ok() ? 0 : 1;
}

RunFn Setup(CLI::App& sub) {
  sub.require_subcommand(1);
  auto* em = sub.add_subcommand("empi-match", "Patient/$match service time over a data folder's store (EMPI loaded)");
  auto ef = std::make_shared<EmpiMatchFlags>();
  em->add_option("--data", ef->data, "data folder holding rhip.db")->required()->check(CLI::ExistingDirectory);
  AddStoreKeyFlags(*em, ef->key_flags);
  em->add_option("--queries", ef->queries, "FHIR Patient NDJSON: each line becomes a query (identifiers and phones removed)")
      ->required()
      ->check(CLI::ExistingFile);
  em->add_option("--rounds", ef->rounds, "times each query is sent")->check(CLI::Range(1, 100));
  em->footer("Example:\n  shuf -n 2000 region/fhir/Patient.ndjson > q.ndjson\n  rhip bench empi-match --data data/region --queries q.ndjson");
  auto* data = sub.add_subcommand("fhir-data", "write a deterministic NDJSON load (Patient:Encounter:Observation = 1:3:6)");
  auto f = std::make_shared<BenchDataFlags>();
  data->add_option("--out", f->out, "output folder")->required();
  data->add_option("--patients", f->patients, "number of patients (resources = 10 x this)")
      ->check(CLI::Range(int64_t{1}, int64_t{100000000}));
  data->footer("Example:\n  rhip bench fhir-data --out /tmp/load --patients 100000   # 1,000,000 resources");
  sub.footer("Example:\n  rhip bench fhir-data --out /tmp/load --patients 100000\n  see bench/README.md");
  return [f, data, ef, em] {
    if (data->parsed()) return RunFhirData(*f);
    if (em->parsed()) return RunEmpiMatch(*ef);
    return 1;
  };
}

}  // namespace

RHIP_COMMAND(bench, "bench", "benchmark data and drivers (see bench/README.md)", Setup);

}  // namespace rhip::cli
