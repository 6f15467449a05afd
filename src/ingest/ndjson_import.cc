#include "rhip/ingest/ndjson_import.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>

#include "rhip/core/time.h"
#include "rhip/fhir/definitions.h"
#include "rhip/fhir/index.h"
#include "rhip/fhir/json.h"
#include "rhip/fhir/validator.h"

namespace rhip::ingest {
namespace {

namespace fs = std::filesystem;

struct LineBatch {
  std::string file;
  int64_t first_line = 0;
  int64_t bytes = 0;
  std::vector<std::string> lines;
};

// One resource ready for the store: validated, indexed, serialized as version 1.
struct Prepared {
  int64_t line = 0;
  std::string type;
  std::string id;
  std::string json_v1;  // as version 1 at `now`: what the writer stores for a create (the common case)
  store::IndexRows index;
};

// Everything but the store look-ups happens here, on a worker thread, so that
// the store's single writer only writes.
StatusOr<Prepared> PrepareLine(std::string_view line, bool validate, Micros now, std::string_view now_text) {
  ASSIGN_OR_RETURN(fhir::Json doc, fhir::ParseJson(line));
  if (!doc.IsObject()) return InvalidArgument("a line must hold one JSON object (a resource)");
  std::string type(fhir::StringMember(doc, "resourceType"));
  std::string id(fhir::StringMember(doc, "id"));
  if (type.empty()) return InvalidArgument("resource has no resourceType", "resourceType");
  if (!fhir::Definitions::R4().IsResourceType(type))
    return InvalidArgument("unknown resourceType '" + type + "'", "resourceType");
  if (id.empty()) return InvalidArgument("resource has no id: bulk import keeps ids", type + ".id");
  if (validate) {
    std::vector<fhir::Issue> issues = fhir::ValidateResource(doc);
    if (fhir::HasErrors(issues)) {
      for (const auto& i : issues)
        if (i.severity == "error" || i.severity == "fatal")
          return InvalidArgument(i.diagnostics, i.expression);
    }
  }
  Prepared p;
  p.type = std::move(type);
  p.id = std::move(id);
  if (!doc.HasMember("meta")) {
    // No meta to replace (the generator's lines, most exports): version 1 is the
    // line as written with its meta appended, where SetVersionMeta would put it,
    // instead of a second rendering of the whole resource (17 % of a worker).
    p.index = fhir::ExtractIndex(doc, p.type);
    size_t end = line.find_last_not_of(" \t\r\n");
    if (end != std::string_view::npos && line[end] == '}') {
      p.json_v1.reserve(end + 80);
      p.json_v1.append(line.substr(0, end));
      p.json_v1 += R"(,"meta":{"versionId":"1","lastUpdated":")";
      p.json_v1 += now_text;
      p.json_v1 += "\"}}";
      return p;
    }
  }
  fhir::StripVersionMeta(doc);
  p.index = fhir::ExtractIndex(doc, p.type);
  fhir::SetVersionMeta(doc, 1, now);
  p.json_v1 = fhir::WriteJson(doc);
  return p;
}

std::vector<std::string> ExpandPaths(const std::vector<std::string>& paths, Status* status) {
  std::vector<std::string> files;
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> found;
      for (const auto& e : fs::directory_iterator(p, ec))
        if (e.is_regular_file() && e.path().extension() == ".ndjson") found.push_back(e.path().string());
      if (found.empty()) {
        *status = InvalidArgument("no *.ndjson files in folder " + p);
        return {};
      }
      // Reference targets first, so that a partial import is already usable.
      auto rank = [](const std::string& f) {
        std::string stem = fs::path(f).stem().string();
        if (stem == "Organization") return 0;
        if (stem == "Practitioner" || stem == "PractitionerRole") return 1;
        if (stem == "Patient" || stem == "Person") return 2;
        return 3;
      };
      std::sort(found.begin(), found.end(), [&](const auto& a, const auto& b) {
        return std::make_pair(rank(a), a) < std::make_pair(rank(b), b);
      });
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(p, ec)) {
      files.push_back(p);
    } else {
      *status = NotFound("cannot read " + p + ": no such file or folder");
      return {};
    }
  }
  return files;
}

// A bounded queue of line batches between the reader and the workers.
class BatchQueue {
 public:
  explicit BatchQueue(size_t capacity) : capacity_(capacity) {}
  void Push(LineBatch b) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return q_.size() < capacity_ || closed_; });
    q_.push_back(std::move(b));
    not_empty_.notify_one();
  }
  std::optional<LineBatch> Pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return std::nullopt;
    LineBatch b = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return b;
  }
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<LineBatch> q_;  // GUARDED_BY(mu_)
  size_t capacity_;
  bool closed_ = false;      // GUARDED_BY(mu_)
};

}  // namespace

StatusOr<ImportSummary> ImportNdjson(store::Store& store, const std::vector<std::string>& paths,
                                     const ImportOptions& options, const ProgressFn& progress) {
  Status expand_status;
  std::vector<std::string> files = ExpandPaths(paths, &expand_status);
  RETURN_IF_ERROR(expand_status);

  ImportProgress prog;
  for (const auto& f : files) {
    std::error_code ec;
    prog.bytes_total += static_cast<int64_t>(fs::file_size(f, ec));
  }

  const auto start = std::chrono::steady_clock::now();
  ImportSummary summary;
  std::mutex mu;  // guards summary, first_error
  Status first_store_error;
  std::atomic<int64_t> lines_done{0}, bytes_done{0};
  std::atomic<bool> stop{false};

  BatchQueue queue(static_cast<size_t>(std::max(2, options.threads * 2)));
  auto worker = [&] {
    while (auto batch = queue.Pop()) {
      if (stop.load()) continue;  // drain
      std::vector<Prepared> ready;
      ready.reserve(batch->lines.size());
      const Micros now = NowMicros();
      const std::string now_text = FormatInstant(now);
      std::vector<ImportError> bad;
      for (size_t i = 0; i < batch->lines.size(); ++i) {
        int64_t line_no = batch->first_line + static_cast<int64_t>(i);
        const std::string& text = batch->lines[i];
        if (text.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank line
        auto p = PrepareLine(text, options.validate, now, now_text);
        if (!p.ok()) {
          std::string msg = p.status().message();
          if (!p.status().location().empty()) msg += " (at " + p.status().location() + ")";
          bad.push_back({batch->file, line_no, std::move(msg)});
          continue;
        }
        p->line = line_no;
        ready.push_back(std::move(*p));
      }
      // The requests are built and, after the write, destroyed here on the worker:
      // the store's single writer only writes (it neither encodes index rows nor
      // frees what it wrote). The write function leaves `puts` as it found them,
      // so that the store may run it again.
      std::vector<store::PutRequest> puts(ready.size());
      for (size_t i = 0; i < ready.size(); ++i) {
        Prepared& p = ready[i];
        store::PutRequest& put = puts[i];
        put.type = std::move(p.type);
        put.id = std::move(p.id);
        put.version = 1;
        put.last_updated = now;
        put.method = "PUT";
        put.json = std::move(p.json_v1);
        put.index = std::move(p.index);
        put.encoded_index = store.EncodeIndex(put.type, put.index);
      }
      int64_t created = 0, updated = 0, unchanged = 0;
      std::map<std::string, int64_t> per_type;
      // What was written, for on_written: (request, index into `next_versions`, or -1
      // for the request itself as version 1), turned into versions after the write so
      // that the writer copies no JSON.
      std::vector<std::pair<size_t, int64_t>> written_at;
      std::vector<store::ResourceVersion> next_versions;
      Status st = store.Write([&](store::WriteTransaction& tx) -> Status {
        created = updated = unchanged = 0;
        per_type.clear();
        written_at.clear();
        next_versions.clear();
        for (size_t i = 0; i < puts.size(); ++i) {
          const store::PutRequest& put = puts[i];
          // A create, the common case: the store refuses version 1 of a resource it holds.
          Status created_now = tx.Put(put);
          if (created_now.ok()) {
            ++created;
            per_type[put.type] += 1;
            if (options.on_written) written_at.emplace_back(i, -1);
            continue;
          }
          if (created_now.code() != StatusCode::kConflict) return created_now;
          // Held already (a re-run): skip it when unchanged, else store the next version.
          // The line's content is version 1's JSON without its version meta (rendered only
          // here: a create, the common case, never needs it).
          ASSIGN_OR_RETURN(auto cur, tx.Current(put.type, put.id));
          if (!cur) return created_now;
          ASSIGN_OR_RETURN(fhir::Json doc, fhir::ParseJson(put.json));
          fhir::StripVersionMeta(doc);
          if (!cur->deleted) {
            ASSIGN_OR_RETURN(store::ResourceVersion stored, tx.Read(put.type, put.id));
            auto old = fhir::ParseJson(stored.json);
            if (old.ok()) {
              fhir::StripVersionMeta(*old);
              if (fhir::WriteJson(*old) == fhir::WriteJson(doc)) {
                ++unchanged;
                continue;
              }
            }
          }
          store::PutRequest next;
          next.type = put.type;
          next.id = put.id;
          next.version = cur->version + 1;
          next.last_updated = now;
          next.method = "PUT";
          fhir::SetVersionMeta(doc, next.version, now);
          next.json = fhir::WriteJson(doc);
          next.index = put.index;
          RETURN_IF_ERROR(tx.Put(next));
          ++updated;
          per_type[put.type] += 1;
          if (options.on_written) {
            written_at.emplace_back(i, static_cast<int64_t>(next_versions.size()));
            next_versions.push_back({next.type, next.id, next.version, now, false, "PUT", std::move(next.json)});
          }
        }
        return Status::Ok();
      });
      if (st.ok() && options.on_written && !written_at.empty()) {
        std::vector<store::ResourceVersion> written;
        written.reserve(written_at.size());
        for (const auto& [i, next] : written_at) {
          if (next >= 0) {
            written.push_back(std::move(next_versions[static_cast<size_t>(next)]));
          } else {
            store::PutRequest& put = puts[i];
            written.push_back({std::move(put.type), std::move(put.id), 1, now, false, "PUT", std::move(put.json)});
          }
        }
        options.on_written(written);
      }
      std::lock_guard lock(mu);
      if (!st.ok()) {
        if (first_store_error.ok()) first_store_error = st;
        stop = true;
        continue;
      }
      summary.created += created;
      summary.updated += updated;
      summary.unchanged += unchanged;
      for (auto& [t, n] : per_type) summary.per_type[t] += n;
      summary.failed += static_cast<int64_t>(bad.size());
      for (auto& e : bad)
        if (static_cast<int64_t>(summary.errors.size()) < options.max_errors)
          summary.errors.push_back(std::move(e));
      if (summary.failed >= options.max_errors) stop = true;
      lines_done += static_cast<int64_t>(batch->lines.size());
      bytes_done += batch->bytes;
    }
  };
  std::vector<std::thread> workers;
  for (int i = 0; i < std::max(1, options.threads); ++i) workers.emplace_back(worker);

  Status read_status;
  auto last_report = std::chrono::steady_clock::now();
  for (const auto& f : files) {
    if (stop.load()) break;
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      read_status = NotFound("cannot open " + f);
      break;
    }
    prog.current_file = f;
    LineBatch batch{f, 1, 0, {}};
    std::string line;
    int64_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      batch.bytes += static_cast<int64_t>(line.size()) + 1;
      batch.lines.push_back(std::move(line));
      if (static_cast<int>(batch.lines.size()) >= options.batch_size) {
        int64_t next = line_no + 1;
        queue.Push(std::move(batch));
        batch = LineBatch{f, next, 0, {}};
        if (stop.load()) break;
      }
      auto now = std::chrono::steady_clock::now();
      if (progress && now - last_report > std::chrono::milliseconds(500)) {
        last_report = now;
        prog.lines_done = lines_done.load();
        prog.bytes_done = bytes_done.load();
        progress(prog);
      }
    }
    if (!batch.lines.empty()) queue.Push(std::move(batch));
  }
  queue.Close();
  for (auto& t : workers) t.join();
  RETURN_IF_ERROR(read_status);
  RETURN_IF_ERROR(first_store_error);
  summary.lines = lines_done.load();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (progress) {
    prog.lines_done = summary.lines;
    prog.bytes_done = prog.bytes_total;
    progress(prog);
  }
  return summary;
}

}  // namespace rhip::ingest
