#include "rhip/store/store_key.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace rhip::store {
namespace {

constexpr const char* kForms =
    "a store key is 32 random bytes written as 64 hex digits or as base64 "
    "(make one with: openssl rand -hex 32)";

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

StoreKey::~StoreKey() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }

StatusOr<StoreKey> StoreKey::Parse(std::string_view text) {
  text = Trim(text);
  StoreKey key;
  if (text.size() == 2 * kSize) {
    bool hex = true;
    for (size_t i = 0; i < kSize && hex; ++i) {
      const int hi = HexDigit(text[2 * i]), lo = HexDigit(text[2 * i + 1]);
      hex = hi >= 0 && lo >= 0;
      if (hex) key.bytes_[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    if (hex) return key;
  }
  // base64 (standard or URL-safe, padding optional): 32 bytes are 43 characters + "=".
  std::string b64(text);
  for (char& c : b64) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  if (b64.size() == 43) {
    for (char c : b64) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/'))
        return InvalidArgument(std::string("the store key is neither hex nor base64: ") + kForms);
    }
    b64 += '=';
    unsigned char out[33];
    const int n = EVP_DecodeBlock(out, reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
    if (n == 33) {  // EVP_DecodeBlock counts the padding's zero byte
      std::copy(out, out + kSize, key.bytes_.begin());
      OPENSSL_cleanse(out, sizeof out);
      OPENSSL_cleanse(b64.data(), b64.size());
      return key;
    }
    OPENSSL_cleanse(out, sizeof out);
  }
  OPENSSL_cleanse(b64.data(), b64.size());
  return InvalidArgument(std::string("the store key has the wrong length or form: ") + kForms);
}

StatusOr<StoreKey> StoreKey::FromFile(const std::string& path, const std::string& data_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path file = fs::weakly_canonical(path, ec);
  if (ec) return InvalidArgument("cannot resolve key file " + path + ": " + ec.message());
  if (!data_dir.empty()) {
    const fs::path dir = fs::weakly_canonical(data_dir, ec);
    if (!ec) {
      const auto rel = file.lexically_relative(dir);
      if (!rel.empty() && *rel.begin() != "..")
        return InvalidArgument("key file " + path + " is inside the data folder " + data_dir +
                               ": keep the key elsewhere (another disk, a secrets mount), or whoever copies the "
                               "folder has the key too");
    }
  }
  struct stat st{};
  if (::stat(file.c_str(), &st) != 0) return NotFound("key file " + path + " does not exist");
  if ((st.st_mode & 077) != 0)
    return FailedPrecondition("key file " + path + " may be read by others: chmod 600 " + path);
  std::ifstream in(file, std::ios::binary);
  if (!in) return Status(StatusCode::kUnavailable, "cannot read key file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  auto key = Parse(s);
  OPENSSL_cleanse(s.data(), s.size());
  if (!key.ok()) return key.status().WithContext("key file " + path);
  return key;
}

}  // namespace rhip::store
