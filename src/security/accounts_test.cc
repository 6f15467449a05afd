#include "rhip/security/accounts.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace rhip::security {
namespace {

namespace fs = std::filesystem;

std::string TempFile(const std::string& name) {
  auto p = fs::temp_directory_path() / ("rhip-accounts-" + std::to_string(::getpid()) + "-" + name + ".json");
  fs::remove(p);
  return p.string();
}

TEST(Accounts, PasswordLoginGivesTheUsersRoleAndBindings) {
  const std::string path = TempFile("login");
  auto a = Accounts::Open(path);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE((*a)->AddUser({.name = "dr-li", .role = Role::kClinician, .org = "47000001"}, "correct horse battery").ok());
  auto p = (*a)->PasswordLogin("dr-li", "correct horse battery", 1000);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->role, Role::kClinician);
  EXPECT_EQ(p->org, "47000001");
  EXPECT_EQ(p->scopes, std::vector<std::string>{"user/*.read"});
  EXPECT_EQ((*a)->PasswordLogin("dr-li", "wrong password!", 1000).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ((*a)->PasswordLogin("nobody", "correct horse battery", 1000).status().code(), StatusCode::kUnauthenticated);
  fs::remove(path);
}

TEST(Accounts, StoresOnlyArgon2idHashes) {
  const std::string path = TempFile("hash");
  auto a = Accounts::Open(path);
  ASSERT_TRUE((*a)->AddUser({.name = "steward1", .role = Role::kSteward}, "a very secret phrase").ok());
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str().find("a very secret phrase"), std::string::npos);
  EXPECT_NE(ss.str().find("$argon2id$"), std::string::npos);
  EXPECT_EQ(fs::status(path).permissions() & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
  fs::remove(path);
}

TEST(Accounts, RefusesDuplicatesShortPasswordsAndMissingBindings) {
  const std::string path = TempFile("refuse");
  auto a = Accounts::Open(path);
  ASSERT_TRUE((*a)->AddUser({.name = "u1", .role = Role::kCdc}, "long enough pw").ok());
  EXPECT_EQ((*a)->AddUser({.name = "u1", .role = Role::kCdc}, "long enough pw").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ((*a)->AddUser({.name = "u2", .role = Role::kCdc}, "short").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*a)->AddUser({.name = "u3", .role = Role::kResident}, "long enough pw").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*a)->AddUser({.name = "u4", .role = Role::kClinician}, "long enough pw").code(), StatusCode::kInvalidArgument);
  fs::remove(path);
}

TEST(Accounts, LocksAfterRepeatedFailuresEvenForTheRightPasswordUntilTheLockEnds) {
  const std::string path = TempFile("lock");
  auto a = Accounts::Open(path, {.max_failures = 3, .lock_seconds = 600});
  ASSERT_TRUE((*a)->AddUser({.name = "r1", .role = Role::kResident, .person = "P1"}, "the right password").ok());
  EXPECT_EQ((*a)->PasswordLogin("r1", "wrong one 1", 1000).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ((*a)->PasswordLogin("r1", "wrong one 2", 1001).status().code(), StatusCode::kUnauthenticated);
  auto third = (*a)->PasswordLogin("r1", "wrong one 3", 1002);
  EXPECT_EQ(third.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(third.status().message().find("locked"), std::string::npos);
  EXPECT_EQ((*a)->PasswordLogin("r1", "the right password", 1100).status().code(), StatusCode::kPermissionDenied);
  // the lock survives a restart (it is in the file)
  auto reopened = Accounts::Open(path, {.max_failures = 3, .lock_seconds = 600});
  EXPECT_EQ((*reopened)->PasswordLogin("r1", "the right password", 1500).status().code(), StatusCode::kPermissionDenied);
  // after the lock: the right password works and the count starts again
  auto p = (*reopened)->PasswordLogin("r1", "the right password", 1603);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->person, "P1");
  fs::remove(path);
}

TEST(Accounts, SuccessResetsTheFailureCount) {
  const std::string path = TempFile("reset");
  auto a = Accounts::Open(path, {.max_failures = 2, .lock_seconds = 600});
  ASSERT_TRUE((*a)->AddUser({.name = "c1", .role = Role::kCommission}, "the right password").ok());
  EXPECT_FALSE((*a)->PasswordLogin("c1", "wrong", 1).ok());
  EXPECT_TRUE((*a)->PasswordLogin("c1", "the right password", 2).ok());
  EXPECT_EQ((*a)->PasswordLogin("c1", "wrong", 3).status().code(), StatusCode::kUnauthenticated);  // 1 of 2 again
  fs::remove(path);
}

TEST(Accounts, ClientCredentialsWithGeneratedSecret) {
  const std::string path = TempFile("client");
  auto a = Accounts::Open(path);
  auto secret = (*a)->AddClient({.id = "his-47000001", .org = "47000001"});
  ASSERT_TRUE(secret.ok());
  EXPECT_GE(secret->size(), 30u);
  auto p = (*a)->ClientLogin("his-47000001", *secret, 10);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->role, Role::kSystem);
  EXPECT_EQ(p->org, "47000001");
  EXPECT_EQ(p->client_id, "his-47000001");  // what `rhip token revoke --client` matches
  EXPECT_EQ(p->scopes, (std::vector<std::string>{"system/*.read", "system/*.write"}));
  EXPECT_FALSE((*a)->ClientLogin("his-47000001", "guess", 10).ok());
  EXPECT_FALSE((*a)->AddClient({.id = "no-org"}).ok());
  fs::remove(path);
}

TEST(Accounts, SeesAccountsAddedByAnotherProcess) {
  const std::string path = TempFile("reload");
  auto server = Accounts::Open(path);
  auto cli = Accounts::Open(path);
  ASSERT_TRUE((*cli)->AddUser({.name = "late", .role = Role::kAdmin}, "added while serving").ok());
  EXPECT_TRUE((*server)->PasswordLogin("late", "added while serving", 1).ok());
  fs::remove(path);
}

}  // namespace
}  // namespace rhip::security
