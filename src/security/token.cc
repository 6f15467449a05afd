#include "rhip/security/token.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "rhip/core/time.h"

namespace rhip::security {
namespace {

namespace fs = std::filesystem;

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr size_t kMaxCached = 20000;

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct SigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};

std::string RandomHex(int bytes) {
  std::string raw(static_cast<size_t>(bytes), '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), bytes);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

int64_t NowSeconds() { return NowMicros() / kMicrosPerSecond; }

// kid: creation time to the microsecond (so names sort by age) and a random
// suffix; always after `newest` so that the new key is the signing one.
std::string NewKid(const std::string& newest = {}) {
  for (;;) {
    const Micros now = NowMicros();
    const std::time_t secs = static_cast<std::time_t>(now / kMicrosPerSecond);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[48];
    const size_t n = std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%S", &tm);
    std::snprintf(buf + n, sizeof buf - n, "%06lldZ", static_cast<long long>(now % kMicrosPerSecond));
    std::string kid = std::string("k") + buf + "-" + RandomHex(3);
    if (kid > newest) return kid;
  }
}

StatusOr<Pkey> GenerateKey() {
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return Internal("cannot generate an EC P-256 key (OpenSSL)");
  return key;
}

Status WriteKey(const fs::path& path, EVP_PKEY* key) {
  const std::string tmp = path.string() + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wx");
  if (!f) return Internal("cannot create key file " + tmp);
  ::chmod(tmp.c_str(), 0600);
  const bool ok = PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  const bool flushed = std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  std::fclose(f);
  if (!ok || !flushed) return Internal("cannot write key file " + tmp);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Internal("cannot rename key file into " + path.string() + ": " + ec.message());
  return Status::Ok();
}

StatusOr<Pkey> ReadKey(const fs::path& path) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return NotFound("cannot open key file " + path.string());
  Pkey key(PEM_read_PrivateKey(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC)
    return Status(StatusCode::kDataLoss, "key file " + path.string() + " is not an EC private key in PEM");
  return key;
}

std::string JsonString(const rapidjson::Value& v) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  v.Accept(w);
  return {b.GetString(), b.GetSize()};
}

Status Unauth(std::string why) { return Status(StatusCode::kUnauthenticated, "invalid token: " + std::move(why)); }

class EsTokenService : public TokenService {
 public:
  EsTokenService(fs::path dir, Clock clock) : dir_(std::move(dir)), clock_(std::move(clock)) {}

  Status Load() {
    std::unique_lock lock(mu_);
    return LoadLocked();
  }

  StatusOr<std::string> Issue(const Principal& p, int64_t ttl_seconds) const override {
    RETURN_IF_ERROR(ValidatePrincipal(p));
    if (ttl_seconds <= 0) return InvalidArgument("a token's lifetime must be positive");
    std::string kid;
    EVP_PKEY* key = nullptr;
    {
      std::shared_lock lock(mu_);
      if (keys_.empty()) return Internal("no signing key");
      kid = keys_.rbegin()->first;
      key = keys_.rbegin()->second.get();
      EVP_PKEY_up_ref(key);  // keeps it alive outside the lock
    }
    Pkey hold(key);
    rapidjson::Document h(rapidjson::kObjectType);
    auto& ha = h.GetAllocator();
    h.AddMember("alg", "ES256", ha);
    h.AddMember("typ", "JWT", ha);
    h.AddMember("kid", rapidjson::Value(kid.c_str(), ha), ha);
    rapidjson::Document c(rapidjson::kObjectType);
    auto& a = c.GetAllocator();
    const int64_t now = Now();
    c.AddMember("iss", "rhip", a);
    c.AddMember("sub", rapidjson::Value(p.subject.c_str(), a), a);
    c.AddMember("role", rapidjson::Value(std::string(RoleName(p.role)).c_str(), a), a);
    if (!p.org.empty()) c.AddMember("org", rapidjson::Value(p.org.c_str(), a), a);
    if (!p.person.empty()) c.AddMember("person", rapidjson::Value(p.person.c_str(), a), a);
    std::string scope;
    for (const auto& s : p.scopes) scope += (scope.empty() ? "" : " ") + s;
    if (!scope.empty()) c.AddMember("scope", rapidjson::Value(scope.c_str(), a), a);
    if (!p.client_id.empty()) c.AddMember("client_id", rapidjson::Value(p.client_id.c_str(), a), a);
    c.AddMember("iat", now, a);
    c.AddMember("exp", now + ttl_seconds, a);
    c.AddMember("jti", rapidjson::Value(RandomHex(12).c_str(), a), a);
    const std::string signing_input = Base64UrlEncode(JsonString(h)) + "." + Base64UrlEncode(JsonString(c));
    ASSIGN_OR_RETURN(std::string sig, Sign(key, signing_input));
    return signing_input + "." + Base64UrlEncode(sig);
  }

  StatusOr<Principal> Verify(std::string_view token) const override {
    {
      std::shared_lock lock(cache_mu_);
      auto it = cache_.find(std::string(token));
      if (it != cache_.end()) {
        if (it->second.expires <= Now()) return Unauth("expired");
        return it->second;
      }
    }
    ASSIGN_OR_RETURN(Principal p, VerifyUncached(token));
    std::unique_lock lock(cache_mu_);
    if (cache_.size() >= kMaxCached) cache_.clear();  // bounded; expired tokens leave with the sweep
    cache_.emplace(std::string(token), p);
    return p;
  }

  StatusOr<std::string> Rotate() override {
    std::unique_lock lock(mu_);
    ASSIGN_OR_RETURN(Pkey key, GenerateKey());
    std::string kid = NewKid(keys_.empty() ? std::string() : keys_.rbegin()->first);
    RETURN_IF_ERROR(WriteKey(dir_ / (kid + ".pem"), key.get()));
    keys_[kid] = std::move(key);
    return kid;
  }

  std::string SigningKid() const override {
    std::shared_lock lock(mu_);
    return keys_.empty() ? std::string() : keys_.rbegin()->first;
  }

 private:
  Status LoadLocked() {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) return Internal("cannot create key folder " + dir_.string() + ": " + ec.message());
    ::chmod(dir_.c_str(), 0700);
    std::map<std::string, Pkey> found;
    for (const auto& e : fs::directory_iterator(dir_, ec)) {
      if (e.path().extension() != ".pem") continue;
      ASSIGN_OR_RETURN(Pkey k, ReadKey(e.path()));
      found[e.path().stem().string()] = std::move(k);
    }
    if (ec) return Internal("cannot list key folder " + dir_.string() + ": " + ec.message());
    if (found.empty()) {
      ASSIGN_OR_RETURN(Pkey key, GenerateKey());
      std::string kid = NewKid();
      RETURN_IF_ERROR(WriteKey(dir_ / (kid + ".pem"), key.get()));
      found[kid] = std::move(key);
    }
    keys_ = std::move(found);
    return Status::Ok();
  }

  static StatusOr<std::string> Sign(EVP_PKEY* key, std::string_view input) {
    std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
    size_t len = 0;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1)
      return Internal("ES256 signing failed (OpenSSL)");
    std::string der(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &len,
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1)
      return Internal("ES256 signing failed (OpenSSL)");
    // JWS wants r || s, 32 bytes each, not DER.
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
    std::unique_ptr<ECDSA_SIG, SigFree> sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)));
    if (!sig) return Internal("ES256 signature is not DER (OpenSSL)");
    std::string out(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), reinterpret_cast<unsigned char*>(out.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), reinterpret_cast<unsigned char*>(out.data()) + 32, 32);
    return out;
  }

  static bool VerifySig(EVP_PKEY* key, std::string_view input, std::string_view rs) {
    if (rs.size() != 64) return false;
    std::unique_ptr<ECDSA_SIG, SigFree> sig(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(rs.data()), 32, nullptr);
    BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(rs.data()) + 32, 32, nullptr);
    if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
      BN_free(r);
      BN_free(s);
      return false;
    }
    unsigned char* der = nullptr;
    const int der_len = i2d_ECDSA_SIG(sig.get(), &der);
    if (der_len <= 0) return false;
    std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
    const bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
                    EVP_DigestVerify(ctx.get(), der, static_cast<size_t>(der_len),
                                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    OPENSSL_free(der);
    return ok;
  }

  StatusOr<Principal> VerifyUncached(std::string_view token) const {
    const size_t d1 = token.find('.');
    const size_t d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
    if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
      return Unauth("not a JWT (three base64url parts)");
    auto header = Base64UrlDecode(token.substr(0, d1));
    auto claims = Base64UrlDecode(token.substr(d1 + 1, d2 - d1 - 1));
    auto sig = Base64UrlDecode(token.substr(d2 + 1));
    if (!header.ok() || !claims.ok() || !sig.ok()) return Unauth("not base64url");
    rapidjson::Document h, c;
    h.Parse(header->data(), header->size());
    c.Parse(claims->data(), claims->size());
    if (h.HasParseError() || c.HasParseError() || !h.IsObject() || !c.IsObject()) return Unauth("not JSON");
    auto str = [](const rapidjson::Value& o, const char* k) -> std::string {
      auto it = o.FindMember(k);
      return it != o.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString(), it->value.GetStringLength())
                                                          : std::string();
    };
    auto num = [](const rapidjson::Value& o, const char* k) -> int64_t {
      auto it = o.FindMember(k);
      return it != o.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : 0;
    };
    if (str(h, "alg") != "ES256") return Unauth("alg must be ES256");
    const std::string kid = str(h, "kid");
    Pkey key = KeyFor(kid);
    if (!key) return Unauth("unknown signing key '" + kid + "'");
    if (!VerifySig(key.get(), token.substr(0, d2), *sig)) return Unauth("bad signature");
    if (str(c, "iss") != "rhip") return Unauth("issuer is not rhip");
    Principal p;
    p.expires = num(c, "exp");
    if (p.expires <= Now()) return Unauth("expired");
    auto role = ParseRole(str(c, "role"));
    if (!role.ok()) return Unauth(role.status().message());
    p.role = *role;
    p.subject = str(c, "sub");
    p.org = str(c, "org");
    p.person = str(c, "person");
    p.token_id = str(c, "jti");
    p.issued_at = num(c, "iat");
    p.client_id = str(c, "client_id");
    const std::string scope = str(c, "scope");
    for (size_t i = 0; i < scope.size();) {
      size_t sp = scope.find(' ', i);
      if (sp == std::string::npos) sp = scope.size();
      if (sp > i) p.scopes.push_back(scope.substr(i, sp - i));
      i = sp + 1;
    }
    if (Status st = ValidatePrincipal(p); !st.ok()) return Unauth(st.message());
    return p;
  }

  // The key for `kid`, re-reading the folder (at most once a second) when it is unknown.
  Pkey KeyFor(const std::string& kid) const {
    auto find = [&]() -> Pkey {
      auto it = keys_.find(kid);
      if (it == keys_.end()) return nullptr;
      EVP_PKEY_up_ref(it->second.get());
      return Pkey(it->second.get());
    };
    {
      std::shared_lock lock(mu_);
      if (Pkey k = find()) return k;
    }
    const int64_t now = NowMicros();
    if (now - last_reload_.load() < kMicrosPerSecond) return nullptr;
    std::unique_lock lock(mu_);
    last_reload_ = now;
    if (!const_cast<EsTokenService*>(this)->LoadLocked().ok()) return nullptr;
    return find();
  }

  int64_t Now() const { return clock_ ? clock_() : NowSeconds(); }

  const fs::path dir_;
  const Clock clock_;
  mutable std::shared_mutex mu_;
  std::map<std::string, Pkey> keys_;  // GUARDED_BY(mu_); kid → key, oldest first
  mutable std::atomic<int64_t> last_reload_{0};
  mutable std::shared_mutex cache_mu_;
  mutable std::unordered_map<std::string, Principal> cache_;  // GUARDED_BY(cache_mu_)
};

}  // namespace

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t n = (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                       static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t n = static_cast<uint8_t>(bytes[i]) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
  } else if (i + 2 == bytes.size()) {
    const uint32_t n = (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
  }
  return out;
}

StatusOr<std::string> Base64UrlDecode(std::string_view text) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : text) {
    int v;
    if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
    else if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
    else if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
    else if (ch == '-') v = 62;
    else if (ch == '_') v = 63;
    else return InvalidArgument("not base64url");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  if (text.size() % 4 == 1) return InvalidArgument("not base64url");
  return out;
}

StatusOr<std::unique_ptr<TokenService>> TokenService::Open(const std::string& keys_dir, Clock clock) {
  auto s = std::make_unique<EsTokenService>(keys_dir, std::move(clock));
  RETURN_IF_ERROR(s->Load());
  return std::unique_ptr<TokenService>(std::move(s));
}

}  // namespace rhip::security
