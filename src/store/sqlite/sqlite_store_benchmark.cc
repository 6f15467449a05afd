// Store write/read throughput, with a plain SQLite insert of the same JSON rows
// (no versions, no index) as the baseline measured in the same run.
#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "rhip/store/store.h"

namespace rhip::store {
namespace {

std::string TempPath(const char* name) {
  auto p = std::filesystem::temp_directory_path() / (std::string("rhip-bm-") + name + std::to_string(getpid()) + ".db");
  for (const char* s : {"", "-wal", "-shm"}) std::filesystem::remove(p.string() + s);
  return p.string();
}

PutRequest MakePut(int64_t i) {
  PutRequest p;
  p.type = "Patient";
  p.id = "p" + std::to_string(i);
  p.version = 1;
  p.last_updated = 1700000000000000 + i;
  p.method = "POST";
  p.json = R"({"resourceType":"Patient","id":")" + p.id +
           R"(","identifier":[{"system":"http://rhip.health/id/mrn/1","value":"M)" + std::to_string(i) +
           R"("}],"name":[{"text":"张伟","family":"张","given":["伟"]}],"gender":"male","birthDate":"1990-01-01"})";
  // A Patient's typical index: ~14 rows.
  p.index.tokens = {{"identifier", "http://rhip.health/id/mrn/1", "M" + std::to_string(i)},
                    {"gender", "", "male"}, {"active", "", "true"}};
  p.index.strings = {{"name", "张伟", "张伟"}, {"name", "张", "张"}, {"name", "伟", "伟"}, {"family", "张", "张"},
                     {"given", "伟", "伟"}, {"phonetic", "张伟", "张伟"}, {"address", "330402", "330402"}};
  p.index.dates = {{"birthdate", i * 1000, i * 1000 + 86399999999}};
  p.index.references = {{"organization", "Organization", "o1"}};
  p.index.compartment_patients = {p.id};
  return p;
}

// One Write() (one group commit) per resource into `store`.
void PutOnePerCommit(benchmark::State& state, Store& store) {
  int64_t i = 0;
  for (auto _ : state) {
    PutRequest p = MakePut(i++);
    Status st = store.Write([&](WriteTransaction& tx) { return tx.Put(p); });
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_StorePutOneWritePerResource(benchmark::State& state) {
  auto store = OpenStore({.url = "sqlite:" + TempPath("put")});
  PutOnePerCommit(state, **store);
}

void BM_StorePut16Threads(benchmark::State& state) {
  static std::unique_ptr<Store> store;
  static std::atomic<int64_t> next{0};
  if (state.thread_index() == 0) store = std::move(*OpenStore({.url = "sqlite:" + TempPath("put16")}));
  for (auto _ : state) {
    PutRequest p = MakePut(next++);
    Status st = store->Write([&](WriteTransaction& tx) { return tx.Put(p); });
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    // other threads are done with their loops once thread 0 leaves the loop only
    // after the benchmark barrier; the store stays until process exit
  }
}

// 1,000 resources per transaction into `store`, for as long as the benchmark runs.
void PutBatches1000(benchmark::State& state, Store& store) {
  int64_t i = 0;
  for (auto _ : state) {
    std::vector<PutRequest> batch;
    for (int k = 0; k < 1000; ++k) batch.push_back(MakePut(i++));
    Status st = store.Write([&](WriteTransaction& tx) -> Status {
      for (auto& p : batch) RETURN_IF_ERROR(tx.Put(p));
      return Status::Ok();
    });
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}

void BM_StorePutBatch1000(benchmark::State& state) {
  auto store = OpenStore({.url = "sqlite:" + TempPath("batch")});
  PutBatches1000(state, **store);
}

// Baseline: the same JSON into a plain table, one transaction per 1000 rows, same pragmas.
void BM_RawSqliteInsertBatch1000(benchmark::State& state) {
  sqlite3* db;
  sqlite3_open(TempPath("raw").c_str(), &db);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                   "CREATE TABLE r (pk INTEGER PRIMARY KEY, type TEXT, id TEXT, json TEXT, UNIQUE(type, id));",
               nullptr, nullptr, nullptr);
  sqlite3_stmt* s;
  sqlite3_prepare_v2(db, "INSERT INTO r (type, id, json) VALUES (?, ?, ?)", -1, &s, nullptr);
  int64_t i = 0;
  for (auto _ : state) {
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    for (int k = 0; k < 1000; ++k) {
      PutRequest p = MakePut(i++);
      sqlite3_bind_text(s, 1, p.type.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(s, 2, p.id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(s, 3, p.json.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_step(s);
      sqlite3_reset(s);
    }
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  state.SetItemsProcessed(state.iterations() * 1000);
}

// Baseline for `rhip import` (bench/import.sh): the NDJSON lines of $RHIP_BENCH_NDJSON
// (a folder, e.g. rhip gen's fhir/) into a plain table — one row per resource with
// its (type, id) key, 10,000 per transaction, the store's pragmas — measured in the
// same run as the import, so their ratio is what our versions and index cost.
void BM_RawSqliteInsertNdjson(benchmark::State& state) {
  const char* dir = std::getenv("RHIP_BENCH_NDJSON");
  if (!dir) return state.SkipWithError("set RHIP_BENCH_NDJSON to a folder of *.ndjson");
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".ndjson") files.push_back(e.path());
  int64_t rows = 0;
  for (auto _ : state) {
    sqlite3* db;
    sqlite3_open(TempPath("rawndjson").c_str(), &db);
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;"
                     "CREATE TABLE r (pk INTEGER PRIMARY KEY, type TEXT, id TEXT, json TEXT, UNIQUE(type, id));",
                 nullptr, nullptr, nullptr);
    sqlite3_stmt* s;
    sqlite3_prepare_v2(db, "INSERT INTO r (type, id, json) VALUES (?, ?, ?)", -1, &s, nullptr);
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    for (const auto& f : files) {
      std::ifstream in(f);
      const std::string type = f.stem().string();
      std::string line;
      for (int64_t n = 0; std::getline(in, line); ++n) {
        const std::string id = std::to_string(n);
        sqlite3_bind_text(s, 1, type.data(), static_cast<int>(type.size()), SQLITE_STATIC);
        sqlite3_bind_text(s, 2, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
        sqlite3_bind_text(s, 3, line.data(), static_cast<int>(line.size()), SQLITE_STATIC);
        sqlite3_step(s);
        sqlite3_reset(s);
        if (++rows % 10000 == 0) sqlite3_exec(db, "COMMIT; BEGIN", nullptr, nullptr, nullptr);
      }
    }
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_finalize(s);
    sqlite3_close(db);
  }
  state.SetItemsProcessed(rows);
}

void BM_StoreReadById(benchmark::State& state) {
  static std::unique_ptr<Store> store;
  if (state.thread_index() == 0) {
    store = std::move(*OpenStore({.url = "sqlite:" + TempPath("read")}));
    (void)store->Write([](WriteTransaction& tx) -> Status {
      for (int i = 0; i < 10000; ++i) RETURN_IF_ERROR(tx.Put(MakePut(i)));
      return Status::Ok();
    });
  }
  int64_t i = state.thread_index();
  for (auto _ : state) {
    auto r = store->Read("Patient", "p" + std::to_string((i * 7919) % 10000));
    benchmark::DoNotOptimize(r);
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}

// ---- encryption at rest: the same work on a plain and an encrypted store (arg 0 / 1) ----

std::optional<StoreKey> KeyFor(const benchmark::State& state) {
  if (state.range(0) == 0) return std::nullopt;
  return *StoreKey::Parse("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
}

// One group commit per resource: each commit seals its dirty pages into the WAL.
void BM_CryptPutOneWritePerResource(benchmark::State& state) {
  auto store = OpenStore({.url = "sqlite:" + TempPath(state.range(0) ? "cput1" : "pput1"), .key = KeyFor(state)});
  PutOnePerCommit(state, **store);
}

// Bulk: 1,000 resources per transaction (checkpoints included: they decrypt WAL pages and seal them again).
void BM_CryptPutBatch1000(benchmark::State& state) {
  auto store = OpenStore({.url = "sqlite:" + TempPath(state.range(0) ? "cbatch" : "pbatch"), .key = KeyFor(state)});
  PutBatches1000(state, **store);
}

// Reads from a cold page cache: each iteration opens the store and reads 2,000 of its
// 20,000 Patients by id, so every page read from the file is decrypted once.
void BM_CryptColdReadById(benchmark::State& state) {
  const std::string path = TempPath(state.range(0) ? "cread" : "pread");
  {
    auto store = OpenStore({.url = "sqlite:" + path, .key = KeyFor(state)});
    (void)(*store)->Write([](WriteTransaction& tx) -> Status {
      for (int i = 0; i < 20000; ++i) RETURN_IF_ERROR(tx.Put(MakePut(i)));
      return Status::Ok();
    });
    (void)(*store)->Close();
  }
  for (auto _ : state) {
    auto store = OpenStore({.url = "sqlite:" + path, .read_connections = 1, .key = KeyFor(state)});
    for (int i = 0; i < 2000; ++i) {
      auto r = (*store)->Read("Patient", "p" + std::to_string((i * 7919) % 20000));
      if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
    }
  }
  state.SetItemsProcessed(state.iterations() * 2000);
}

BENCHMARK(BM_CryptPutOneWritePerResource)->ArgName("encrypted")->Arg(0)->Arg(1)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_CryptPutBatch1000)->ArgName("encrypted")->Arg(0)->Arg(1)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_CryptColdReadById)->ArgName("encrypted")->Arg(0)->Arg(1)->UseRealTime()->MinTime(1.0);

BENCHMARK(BM_StorePutOneWritePerResource)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_StorePut16Threads)->Threads(16)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_StorePutBatch1000)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_RawSqliteInsertBatch1000)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_StoreReadById)->Threads(2)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_RawSqliteInsertNdjson)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);

}  // namespace
}  // namespace rhip::store

BENCHMARK_MAIN();
