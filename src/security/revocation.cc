#include "rhip/security/revocation.h"

#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <sstream>
#include <unordered_map>

#include "rhip/core/time.h"

namespace rhip::security {
namespace {

int64_t NowSeconds() { return NowMicros() / kMicrosPerSecond; }

struct FileStamp {
  bool exists = false;
  int64_t mtime_ns = 0;
  int64_t size = 0;
  bool operator==(const FileStamp&) const = default;
};

FileStamp StampOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {true, static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
          static_cast<int64_t>(st.st_size)};
}

StatusOr<std::vector<RevocationRule>> ReadRules(const std::string& path) {
  std::vector<RevocationRule> out;
  std::ifstream in(path, std::ios::binary);
  if (!in) return out;  // no file: nothing revoked
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("rules") || !d["rules"].IsArray())
    return Status(StatusCode::kDataLoss,
                  path + " is not a revocation list ({\"rules\":[…]}): fix or remove it");
  for (const auto& r : d["rules"].GetArray()) {
    if (!r.IsObject()) return Status(StatusCode::kDataLoss, path + ": a rule is not an object");
    auto str = [&](const char* k) {
      return r.HasMember(k) && r[k].IsString() ? std::string(r[k].GetString()) : std::string();
    };
    auto num = [&](const char* k) {
      return r.HasMember(k) && r[k].IsInt64() ? r[k].GetInt64() : int64_t{0};
    };
    out.push_back({.jti = str("jti"),
                   .subject = str("subject"),
                   .client = str("client"),
                   .before = num("before"),
                   .at = num("at"),
                   .by = str("by"),
                   .reason = str("reason")});
  }
  return out;
}

std::string RulesJson(const std::vector<RevocationRule>& rules) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartObject();
  w.Key("rules");
  w.StartArray();
  for (const auto& r : rules) {
    w.StartObject();
    for (auto [k, v] : {std::pair{"jti", &r.jti}, std::pair{"subject", &r.subject},
                        std::pair{"client", &r.client}}) {
      if (v->empty()) continue;
      w.Key(k);
      w.String(v->c_str());
    }
    if (r.before) {
      w.Key("before");
      w.Int64(r.before);
    }
    w.Key("at");
    w.Int64(r.at);
    if (!r.by.empty()) {
      w.Key("by");
      w.String(r.by.c_str());
    }
    if (!r.reason.empty()) {
      w.Key("reason");
      w.String(r.reason.c_str());
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return {b.GetString(), b.GetSize()};
}

}  // namespace

struct RevocationList::Impl {
  std::string path;
  std::chrono::milliseconds recheck;
  mutable std::shared_mutex mu;
  // The rules, indexed: jti → rule; subject/client → latest cut-off; global cut-off.
  std::vector<RevocationRule> rules;               // GUARDED_BY(mu)
  std::unordered_map<std::string, size_t> by_jti;  // GUARDED_BY(mu): index into rules
  std::unordered_map<std::string, size_t>
      by_subject;  // GUARDED_BY(mu): the rule with the latest `before`
  std::unordered_map<std::string, size_t> by_client;  // GUARDED_BY(mu)
  std::optional<size_t> global;                       // GUARDED_BY(mu)
  FileStamp stamp;                                    // GUARDED_BY(mu)
  mutable std::atomic<int64_t> next_check{0};         // micros

  void Index(std::vector<RevocationRule> next, FileStamp s) {
    rules = std::move(next);
    by_jti.clear();
    by_subject.clear();
    by_client.clear();
    global.reset();
    auto later = [&](std::unordered_map<std::string, size_t>& m, const std::string& k, size_t i) {
      auto [it, fresh] = m.emplace(k, i);
      if (!fresh && rules[it->second].before < rules[i].before) it->second = i;
    };
    for (size_t i = 0; i < rules.size(); ++i) {
      const RevocationRule& r = rules[i];
      if (!r.jti.empty())
        by_jti[r.jti] = i;
      else if (!r.subject.empty())
        later(by_subject, r.subject, i);
      else if (!r.client.empty())
        later(by_client, r.client, i);
      else if (!global || rules[*global].before < r.before)
        global = i;
    }
    stamp = s;
  }

  // Re-reads the file when it changed (at most every `recheck`).
  void Refresh() const {
    const int64_t now = NowMicros();
    if (now < next_check.load(std::memory_order_relaxed)) return;
    next_check.store(now + std::chrono::duration_cast<std::chrono::microseconds>(recheck).count(),
                     std::memory_order_relaxed);
    const FileStamp s = StampOf(path);
    {
      std::shared_lock lock(mu);
      if (s == stamp) return;
    }
    auto next = ReadRules(path);
    // A damaged file keeps the last good list in force (never "nothing revoked").
    if (!next.ok()) return;
    std::unique_lock lock(mu);
    const_cast<Impl*>(this)->Index(std::move(*next), s);
  }
};

RevocationList::RevocationList(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RevocationList::~RevocationList() = default;

StatusOr<std::unique_ptr<RevocationList>> RevocationList::Open(std::string path,
                                                               std::chrono::milliseconds recheck) {
  auto impl = std::make_unique<Impl>();
  impl->path = std::move(path);
  impl->recheck = recheck;
  const FileStamp s = StampOf(impl->path);
  ASSIGN_OR_RETURN(auto rules, ReadRules(impl->path));
  impl->Index(std::move(rules), s);
  impl->next_check =
      NowMicros() + std::chrono::duration_cast<std::chrono::microseconds>(recheck).count();
  return std::unique_ptr<RevocationList>(new RevocationList(std::move(impl)));
}

StatusOr<RevocationRule> RevocationList::Add(RevocationRule rule) {
  const int named = !rule.jti.empty() + !rule.subject.empty() + !rule.client.empty();
  if (named > 1)
    return InvalidArgument("a revocation names one of jti, subject or client (or only a time)");
  if (named == 0 && rule.before <= 0)
    return InvalidArgument(
        "say what to revoke: a token id (jti), a subject, a client, or a time before which every "
        "token is revoked");
  if (!rule.jti.empty() && rule.before != 0)
    return InvalidArgument("a revocation by token id (jti) takes no time");
  if (rule.at == 0) rule.at = NowSeconds();
  if (named == 1 && rule.jti.empty() && rule.before == 0) rule.before = rule.at;
  // Serialise writers (this process and `rhip token revoke` beside a running server).
  const std::string lock_path = impl_->path.substr(0, impl_->path.rfind('.')) + ".lock";
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT, 0600);
  if (lock_fd < 0) return Internal("cannot open " + lock_path);
  ::flock(lock_fd, LOCK_EX);
  Status result = [&]() -> Status {
    ASSIGN_OR_RETURN(auto rules, ReadRules(impl_->path));
    rules.push_back(rule);
    const std::string tmp = impl_->path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return Internal("cannot write " + tmp);
    const std::string text = RulesJson(rules) + "\n";
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                    ::fsync(fd) == 0;
    ::close(fd);
    if (!ok || std::rename(tmp.c_str(), impl_->path.c_str()) != 0)
      return Internal("cannot replace " + impl_->path);
    std::unique_lock lock(impl_->mu);
    impl_->Index(std::move(rules), StampOf(impl_->path));
    return Status::Ok();
  }();
  ::flock(lock_fd, LOCK_UN);
  ::close(lock_fd);
  if (!result.ok()) return result;
  return rule;
}

bool RevocationList::IsRevoked(const Principal& p, std::string* why) const {
  impl_->Refresh();
  std::shared_lock lock(impl_->mu);
  const RevocationRule* hit = nullptr;
  if (auto it = impl_->by_jti.find(p.token_id); !p.token_id.empty() && it != impl_->by_jti.end())
    hit = &impl_->rules[it->second];
  auto cut = [&](const std::unordered_map<std::string, size_t>& m, const std::string& k) {
    if (hit || k.empty()) return;
    if (auto it = m.find(k); it != m.end() && p.issued_at <= impl_->rules[it->second].before)
      hit = &impl_->rules[it->second];
  };
  cut(impl_->by_subject, p.subject);
  cut(impl_->by_client, p.client_id);
  if (!hit && impl_->global && p.issued_at <= impl_->rules[*impl_->global].before)
    hit = &impl_->rules[*impl_->global];
  if (hit && why) {
    *why = !hit->jti.empty()       ? "this token was revoked"
           : !hit->subject.empty() ? "the tokens of " + hit->subject + " were revoked"
           : !hit->client.empty()
               ? "the tokens of client " + hit->client + " were revoked"
               : "every token issued before " + FormatInstant(hit->before * kMicrosPerSecond) +
                     " was revoked";
    if (!hit->reason.empty()) *why += " (" + hit->reason + ")";
  }
  return hit != nullptr;
}

std::vector<RevocationRule> RevocationList::Rules() const {
  impl_->Refresh();
  std::shared_lock lock(impl_->mu);
  return impl_->rules;
}

StatusOr<int64_t> ParseRevocationTime(std::string_view text) {
  if (text == "now") return NowSeconds();
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos &&
      text.size() <= 12)
    return std::stoll(std::string(text));
  if (!IsValidFhirInstant(text))
    return InvalidArgument("'" + std::string(text) +
                           "' is not a time: give an instant (2026-12-02T15:00:00+08:00), seconds "
                           "since the epoch, or now");
  return ParseFhirDate(text)->low / kMicrosPerSecond;
}

}  // namespace rhip::security
