#include "rhip/security/token.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace rhip::security {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("rhip-token-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++))) {
    fs::remove_all(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string str() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

Principal Clinician() {
  return {.subject = "dr-li", .role = Role::kClinician, .org = "47000001", .scopes = {"user/*.read"}};
}

TEST(Base64Url, RoundTripsEveryLengthWithoutPadding) {
  for (const std::string& s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\xff\xfe\x00\x01", 4)}) {
    std::string e = Base64UrlEncode(s);
    EXPECT_EQ(e.find('='), std::string::npos);
    auto d = Base64UrlDecode(e);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_FALSE(Base64UrlDecode("ab+c").ok());
}

TEST(TokenService, IssuedTokenVerifiesToTheSamePrincipal) {
  TempDir dir;
  auto tokens = TokenService::Open(dir.str());
  ASSERT_TRUE(tokens.ok()) << tokens.status().ToString();
  auto jwt = (*tokens)->Issue(Clinician(), 60);
  ASSERT_TRUE(jwt.ok());
  auto p = (*tokens)->Verify(*jwt);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->subject, "dr-li");
  EXPECT_EQ(p->role, Role::kClinician);
  EXPECT_EQ(p->org, "47000001");
  EXPECT_EQ(p->scopes, std::vector<std::string>{"user/*.read"});
  EXPECT_FALSE(p->token_id.empty());
  EXPECT_GT(p->issued_at, 0);           // iat: what a revocation's cut-off compares
  EXPECT_TRUE(p->client_id.empty());    // a user's token names no client
  Principal client = Clinician();
  client.client_id = "his-1";
  auto client_jwt = (*tokens)->Issue(client, 60);
  ASSERT_TRUE(client_jwt.ok());
  EXPECT_EQ((*tokens)->Verify(*client_jwt)->client_id, "his-1");
  // the header names ES256 and the key
  auto header = Base64UrlDecode(jwt->substr(0, jwt->find('.')));
  EXPECT_NE(header->find("\"alg\":\"ES256\""), std::string::npos);
  EXPECT_NE(header->find((*tokens)->SigningKid()), std::string::npos);
}

TEST(TokenService, RefusesTamperedClaimsAndForeignKeys) {
  TempDir dir, other;
  auto tokens = TokenService::Open(dir.str());
  auto foreign = TokenService::Open(other.str());
  ASSERT_TRUE(tokens.ok() && foreign.ok());
  std::string jwt = *(*tokens)->Issue(Clinician(), 60);
  // claims rewritten to admin, signature kept
  const size_t d1 = jwt.find('.'), d2 = jwt.rfind('.');
  std::string claims = *Base64UrlDecode(jwt.substr(d1 + 1, d2 - d1 - 1));
  claims.replace(claims.find("clinician"), 9, "admin");
  std::string forged = jwt.substr(0, d1 + 1) + Base64UrlEncode(claims) + jwt.substr(d2);
  auto v = (*tokens)->Verify(forged);
  EXPECT_EQ(v.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(v.status().message().find("signature"), std::string::npos);
  // signed by a key this service does not have
  std::string theirs = *(*foreign)->Issue(Clinician(), 60);
  EXPECT_EQ((*tokens)->Verify(theirs).status().code(), StatusCode::kUnauthenticated);
  // alg none
  std::string none = Base64UrlEncode(R"({"alg":"none","typ":"JWT"})") + "." + Base64UrlEncode(claims) + ".";
  EXPECT_NE((*tokens)->Verify(none).status().message().find("ES256"), std::string::npos);
  EXPECT_FALSE((*tokens)->Verify("garbage").ok());
  EXPECT_FALSE((*tokens)->Verify("").ok());
}

TEST(TokenService, ExpiredTokenIsRefusedEvenWhenCached) {
  TempDir dir;
  int64_t now = 1'800'000'000;
  auto tokens = TokenService::Open(dir.str(), [&now] { return now; });
  ASSERT_TRUE(tokens.ok());
  EXPECT_FALSE((*tokens)->Issue(Clinician(), 0).ok());
  auto jwt = (*tokens)->Issue(Clinician(), 60);
  ASSERT_TRUE(jwt.ok());
  EXPECT_TRUE((*tokens)->Verify(*jwt).ok());  // now cached
  now += 59;
  EXPECT_TRUE((*tokens)->Verify(*jwt).ok());
  now += 1;
  auto v = (*tokens)->Verify(*jwt);
  EXPECT_EQ(v.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(v.status().message().find("expired"), std::string::npos);
  // a fresh service (no cache) refuses it too
  auto fresh = TokenService::Open(dir.str(), [&now] { return now; });
  EXPECT_NE((*fresh)->Verify(*jwt).status().message().find("expired"), std::string::npos);
}

TEST(TokenService, RotationKeepsOldTokensValidAndSignsWithTheNewKey) {
  TempDir dir;
  auto tokens = TokenService::Open(dir.str());
  ASSERT_TRUE(tokens.ok());
  const std::string old_kid = (*tokens)->SigningKid();
  std::string old_token = *(*tokens)->Issue(Clinician(), 60);
  auto kid = (*tokens)->Rotate();
  ASSERT_TRUE(kid.ok());
  EXPECT_NE(*kid, old_kid);
  EXPECT_EQ((*tokens)->SigningKid(), *kid);
  EXPECT_TRUE((*tokens)->Verify(old_token).ok());
  std::string new_token = *(*tokens)->Issue(Clinician(), 60);
  // another process (a server) that opened the folder before the rotation picks the new key up
  auto reopened = TokenService::Open(dir.str());
  EXPECT_TRUE((*reopened)->Verify(new_token).ok());
  // deleting the old key file revokes what it signed (for a process that loads the folder again)
  fs::remove(fs::path(dir.str()) / (old_kid + ".pem"));
  auto after = TokenService::Open(dir.str());
  EXPECT_FALSE((*after)->Verify(old_token).ok());
  EXPECT_TRUE((*after)->Verify(new_token).ok());
}

TEST(TokenService, KeyFilesAreReadableByTheOwnerOnly) {
  TempDir dir;
  auto tokens = TokenService::Open(dir.str());
  ASSERT_TRUE(tokens.ok());
  auto key = fs::path(dir.str()) / ((*tokens)->SigningKid() + ".pem");
  auto perms = fs::status(key).permissions();
  EXPECT_EQ(perms & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
}

TEST(TokenService, RoleBindingsAreRequired) {
  TempDir dir;
  auto tokens = TokenService::Open(dir.str());
  ASSERT_TRUE(tokens.ok());
  EXPECT_FALSE((*tokens)->Issue({.subject = "x", .role = Role::kSystem}, 60).ok());     // no org
  EXPECT_FALSE((*tokens)->Issue({.subject = "x", .role = Role::kResident}, 60).ok());   // no person
  EXPECT_TRUE((*tokens)->Issue({.subject = "x", .role = Role::kCdc}, 60).ok());
}

TEST(Scopes, SmartScopesGrantByTypeAndAccess) {
  EXPECT_TRUE(ScopesAllow({"user/*.read"}, "Observation", "read"));
  EXPECT_FALSE(ScopesAllow({"user/*.read"}, "Observation", "write"));
  EXPECT_TRUE(ScopesAllow({"system/Observation.*"}, "Observation", "write"));
  EXPECT_FALSE(ScopesAllow({"system/Observation.*"}, "Patient", "read"));
  EXPECT_FALSE(ScopesAllow({"garbage"}, "Patient", "read"));
  EXPECT_FALSE(ScopesAllow({}, "Patient", "read"));
}

}  // namespace
}  // namespace rhip::security
