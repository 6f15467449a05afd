#include "rhip/security/accounts.h"

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <semaphore>
#include <sstream>

namespace rhip::security {
namespace {

namespace fs = std::filesystem;

struct Record {
  bool is_client = false;
  std::string name;  // user name or client id
  Role role = Role::kResident;
  std::string org, person;
  std::vector<std::string> scopes;
  std::string hash;  // argon2id, crypto_pwhash_str format
  int failures = 0;
  int64_t locked_until = 0;
};

// At most two 64 MiB argon2id computations at once, whatever the number of logins.
std::counting_semaphore<2> hash_slots(2);

class HashSlot {
 public:
  HashSlot() { hash_slots.acquire(); }
  ~HashSlot() { hash_slots.release(); }
  HashSlot(const HashSlot&) = delete;
  HashSlot& operator=(const HashSlot&) = delete;
};

StatusOr<std::string> HashSecret(std::string_view secret) {
  HashSlot slot;
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, secret.data(), secret.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
    return Internal("argon2id hashing failed (out of memory?)");
  return std::string(out);
}

bool CheckSecret(const std::string& hash, std::string_view secret) {
  HashSlot slot;
  return crypto_pwhash_str_verify(hash.c_str(), secret.data(), secret.size()) == 0;
}

std::string RandomSecret() {
  unsigned char raw[24];
  randombytes_buf(raw, sizeof raw);
  char out[sodium_base64_ENCODED_LEN(sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  sodium_bin2base64(out, sizeof out, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return out;
}

class FileAccounts : public Accounts {
 public:
  FileAccounts(std::string path, LockoutPolicy policy) : path_(std::move(path)), policy_(policy) {}

  Status Init() {
    if (sodium_init() < 0) return Internal("libsodium failed to initialize");
    std::lock_guard lock(mu_);
    return ReloadIfChanged();
  }

  Status AddUser(const UserAccount& user, std::string_view password) override {
    Principal p{.subject = user.name, .role = user.role, .org = user.org, .person = user.person};
    RETURN_IF_ERROR(ValidatePrincipal(p));
    if (password.size() < 10) return InvalidArgument("a password needs at least 10 characters");
    ASSIGN_OR_RETURN(std::string hash, HashSecret(password));
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(ReloadIfChanged());
    if (records_.count(Key(false, user.name)))
      return Status(StatusCode::kAlreadyExists, "user '" + user.name + "' already exists");
    Record r;
    r.name = user.name;
    r.role = user.role;
    r.org = user.org;
    r.person = user.person;
    r.hash = std::move(hash);
    records_[Key(false, user.name)] = std::move(r);
    return Save();
  }

  StatusOr<std::string> AddClient(const ClientAccount& client) override {
    if (client.id.empty()) return InvalidArgument("a client needs an id");
    if (client.org.empty()) return InvalidArgument("a system client needs its institution code (--org)");
    std::string secret = RandomSecret();
    ASSIGN_OR_RETURN(std::string hash, HashSecret(secret));
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(ReloadIfChanged());
    if (records_.count(Key(true, client.id)))
      return Status(StatusCode::kAlreadyExists, "client '" + client.id + "' already exists");
    Record r;
    r.is_client = true;
    r.name = client.id;
    r.role = Role::kSystem;
    r.org = client.org;
    r.scopes = client.scopes;
    r.hash = std::move(hash);
    records_[Key(true, client.id)] = std::move(r);
    RETURN_IF_ERROR(Save());
    return secret;
  }

  StatusOr<Principal> PasswordLogin(std::string_view user, std::string_view password, int64_t now) override {
    return Login(false, user, password, now);
  }
  StatusOr<Principal> ClientLogin(std::string_view client_id, std::string_view secret, int64_t now) override {
    return Login(true, client_id, secret, now);
  }

 private:
  static std::string Key(bool client, std::string_view name) { return (client ? "c:" : "u:") + std::string(name); }

  StatusOr<Principal> Login(bool client, std::string_view name, std::string_view secret, int64_t now) {
    const Status bad(StatusCode::kUnauthenticated, client ? "unknown client or wrong secret" : "unknown user or wrong password");
    std::string hash;
    {
      std::lock_guard lock(mu_);
      RETURN_IF_ERROR(ReloadIfChanged());
      auto it = records_.find(Key(client, name));
      if (it == records_.end()) {
        // Spend the same time as a real check so that timing does not tell which names exist.
        hash = dummy_hash_;
      } else {
        if (it->second.locked_until > now)
          return Status(StatusCode::kPermissionDenied,
                        std::string(client ? "client" : "account") + " locked after " +
                            std::to_string(policy_.max_failures) + " failed attempts; try again in " +
                            std::to_string(it->second.locked_until - now) + " s or ask an operator");
        hash = it->second.hash;
      }
    }
    if (hash.empty()) {
      auto h = HashSecret("no-such-account-dummy");
      std::lock_guard lock(mu_);
      if (h.ok()) dummy_hash_ = *h;
      return bad;
    }
    const bool ok = CheckSecret(hash, secret);
    std::lock_guard lock(mu_);
    auto it = records_.find(Key(client, name));
    if (it == records_.end() || it->second.hash != hash) return bad;
    Record& r = it->second;
    if (!ok) {
      if (++r.failures >= policy_.max_failures) {
        r.locked_until = now + policy_.lock_seconds;
        r.failures = 0;
        Save().IgnoreError();  // the lock must survive a restart; a failed save leaves it in memory
        return Status(StatusCode::kPermissionDenied,
                      std::string(client ? "client" : "account") + " locked after " +
                          std::to_string(policy_.max_failures) + " failed attempts");
      }
      return bad;
    }
    if (r.failures != 0 || r.locked_until != 0) {
      r.failures = 0;
      r.locked_until = 0;
      Save().IgnoreError();
    }
    Principal p;
    p.subject = r.name;
    p.role = r.role;
    p.org = r.org;
    p.person = r.person;
    p.scopes = r.scopes.empty() ? DefaultScopes(r.role, !client) : r.scopes;
    if (client) p.client_id = r.name;
    return p;
  }

  // REQUIRES(mu_)
  Status ReloadIfChanged() {
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) {
      records_.clear();
      return Status::Ok();
    }
    const int64_t stamp = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    if (stamp == loaded_stamp_ && static_cast<int64_t>(st.st_size) == loaded_size_) return Status::Ok();
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    rapidjson::Document d;
    d.Parse(text.data(), text.size());
    if (d.HasParseError() || !d.IsObject())
      return Status(StatusCode::kDataLoss, "account file " + path_ + " is not valid JSON");
    std::map<std::string, Record> loaded;
    auto str = [](const rapidjson::Value& o, const char* k) {
      auto it = o.FindMember(k);
      return it != o.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString()) : std::string();
    };
    auto num = [](const rapidjson::Value& o, const char* k) -> int64_t {
      auto it = o.FindMember(k);
      return it != o.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : 0;
    };
    for (const char* list : {"users", "clients"}) {
      auto it = d.FindMember(list);
      if (it == d.MemberEnd() || !it->value.IsArray()) continue;
      for (const auto& v : it->value.GetArray()) {
        if (!v.IsObject()) continue;
        Record r;
        r.is_client = std::string_view(list) == "clients";
        r.name = str(v, r.is_client ? "id" : "name");
        auto role = ParseRole(r.is_client ? "system" : str(v, "role"));
        if (!role.ok()) return Status(StatusCode::kDataLoss, "account file " + path_ + ": " + role.status().message());
        r.role = *role;
        r.org = str(v, "org");
        r.person = str(v, "person");
        r.hash = str(v, "hash");
        r.failures = static_cast<int>(num(v, "failures"));
        r.locked_until = num(v, "lockedUntil");
        if (auto s = v.FindMember("scopes"); s != v.MemberEnd() && s->value.IsArray())
          for (const auto& x : s->value.GetArray())
            if (x.IsString()) r.scopes.emplace_back(x.GetString());
        loaded[Key(r.is_client, r.name)] = std::move(r);
      }
    }
    records_ = std::move(loaded);
    loaded_stamp_ = stamp;
    loaded_size_ = static_cast<int64_t>(st.st_size);
    return Status::Ok();
  }

  // REQUIRES(mu_): writes a temporary file and renames it over the old one.
  Status Save() {
    rapidjson::StringBuffer b;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> w(b);
    w.StartObject();
    for (bool clients : {false, true}) {
      w.Key(clients ? "clients" : "users");
      w.StartArray();
      for (const auto& [k, r] : records_) {
        if (r.is_client != clients) continue;
        w.StartObject();
        w.Key(clients ? "id" : "name");
        w.String(r.name.c_str());
        if (!clients) {
          w.Key("role");
          w.String(std::string(RoleName(r.role)).c_str());
        }
        if (!r.org.empty()) { w.Key("org"); w.String(r.org.c_str()); }
        if (!r.person.empty()) { w.Key("person"); w.String(r.person.c_str()); }
        if (!r.scopes.empty()) {
          w.Key("scopes");
          w.StartArray();
          for (const auto& s : r.scopes) w.String(s.c_str());
          w.EndArray();
        }
        w.Key("hash");
        w.String(r.hash.c_str());
        w.Key("failures");
        w.Int(r.failures);
        w.Key("lockedUntil");
        w.Int64(r.locked_until);
        w.EndObject();
      }
      w.EndArray();
    }
    w.EndObject();
    std::error_code ec;
    if (auto parent = fs::path(path_).parent_path(); !parent.empty()) fs::create_directories(parent, ec);
    const std::string tmp = path_ + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    if (!f) return Internal("cannot write account file " + tmp);
    ::chmod(tmp.c_str(), 0600);
    const bool ok = std::fwrite(b.GetString(), 1, b.GetSize(), f) == b.GetSize() && std::fflush(f) == 0 &&
                    ::fsync(fileno(f)) == 0;
    std::fclose(f);
    if (!ok) return Internal("cannot write account file " + tmp);
    fs::rename(tmp, path_, ec);
    if (ec) return Internal("cannot replace account file " + path_ + ": " + ec.message());
    struct stat st {};
    if (::stat(path_.c_str(), &st) == 0) {
      loaded_stamp_ = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
      loaded_size_ = static_cast<int64_t>(st.st_size);
    }
    return Status::Ok();
  }

  const std::string path_;
  const LockoutPolicy policy_;
  std::mutex mu_;
  std::map<std::string, Record> records_;  // GUARDED_BY(mu_)
  int64_t loaded_stamp_ = -1;              // GUARDED_BY(mu_)
  int64_t loaded_size_ = -1;               // GUARDED_BY(mu_)
  std::string dummy_hash_;                 // GUARDED_BY(mu_)
};

}  // namespace

StatusOr<std::unique_ptr<Accounts>> Accounts::Open(const std::string& path, LockoutPolicy policy) {
  auto a = std::make_unique<FileAccounts>(path, policy);
  RETURN_IF_ERROR(a->Init());
  return std::unique_ptr<Accounts>(std::move(a));
}

}  // namespace rhip::security
