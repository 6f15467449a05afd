#include "rhip/security/revocation.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "rhip/core/time.h"

namespace rhip::security {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

class Revocations : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("rhip-revoke-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "revocations.json").string();
  }
  void TearDown() override { fs::remove_all(dir_); }
  static Principal Token(std::string subject, std::string jti, int64_t iat,
                         std::string client = "") {
    Principal p{.subject = std::move(subject), .role = Role::kCdc};
    p.token_id = std::move(jti);
    p.issued_at = iat;
    p.client_id = std::move(client);
    return p;
  }
  fs::path dir_;
  std::string path_;
};

TEST_F(Revocations, EachKindOfRuleRevokesWhatItNamesAndNothingElse) {
  auto list = RevocationList::Open(path_);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  const int64_t now = NowMicros() / kMicrosPerSecond;
  EXPECT_FALSE((*list)->IsRevoked(Token("a", "j1", now)));
  ASSERT_TRUE((*list)->Add({.jti = "j1", .reason = "leaked in a log"}).ok());
  std::string why;
  EXPECT_TRUE((*list)->IsRevoked(Token("a", "j1", now), &why));
  EXPECT_NE(why.find("leaked in a log"), std::string::npos) << why;
  EXPECT_FALSE((*list)->IsRevoked(Token("a", "j2", now)));  // the same subject's other token

  auto subject = (*list)->Add({.subject = "dr-li"});
  ASSERT_TRUE(subject.ok());
  EXPECT_GE(subject->before, now);  // a subject without a time: what was issued until now
  EXPECT_TRUE((*list)->IsRevoked(Token("dr-li", "j3", now - 100)));
  EXPECT_FALSE(
      (*list)->IsRevoked(Token("dr-li", "j4", subject->before + 1)));  // a later login works
  EXPECT_FALSE((*list)->IsRevoked(Token("dr-wang", "j5", now)));

  ASSERT_TRUE((*list)->Add({.client = "his-1", .before = now - 50}).ok());
  EXPECT_TRUE((*list)->IsRevoked(Token("his-1", "j6", now - 60, "his-1")));
  EXPECT_FALSE((*list)->IsRevoked(Token("his-1", "j7", now - 40, "his-1")));
  EXPECT_FALSE((*list)->IsRevoked(Token("x", "j8", now - 60, "his-2")));

  ASSERT_TRUE((*list)->Add({.before = now - 1000}).ok());
  EXPECT_TRUE((*list)->IsRevoked(Token("anyone", "j9", now - 1001), &why));
  EXPECT_NE(why.find("every token issued before"), std::string::npos) << why;
  EXPECT_FALSE((*list)->IsRevoked(Token("anyone", "j10", now - 999)));
}

TEST_F(Revocations, BadRulesAreRefusedWithWhatToSay) {
  auto list = RevocationList::Open(path_);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ((*list)->Add({}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*list)->Add({.jti = "j", .subject = "s"}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ((*list)->Add({.jti = "j", .before = 5}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE((*list)->Rules().empty());
  EXPECT_FALSE(ParseRevocationTime("yesterday").ok());
  EXPECT_NE(ParseRevocationTime("yesterday").status().message().find("instant"), std::string::npos);
  EXPECT_EQ(*ParseRevocationTime("1700000000"), 1700000000);
  EXPECT_EQ(*ParseRevocationTime("2023-11-14T22:13:20Z"), 1700000000);
}

TEST_F(Revocations, AnotherProcessesRuleIsSeenWithoutARestartAndSurvivesReopening) {
  auto server =
      RevocationList::Open(path_, milliseconds(0));  // the running server (re-checks every call)
  auto cli = RevocationList::Open(path_);            // `rhip token revoke` beside it
  ASSERT_TRUE(server.ok() && cli.ok());
  const Principal t = Token("a", "j1", 1);
  EXPECT_FALSE((*server)->IsRevoked(t));
  ASSERT_TRUE((*cli)->Add({.jti = "j1"}).ok());
  EXPECT_TRUE((*server)->IsRevoked(t));
  server->reset();
  auto reopened = RevocationList::Open(path_);
  ASSERT_TRUE(reopened.ok());
  EXPECT_TRUE((*reopened)->IsRevoked(t));
  EXPECT_EQ((fs::status(path_).permissions() & fs::perms::all),
            fs::perms::owner_read | fs::perms::owner_write);
}

TEST_F(Revocations, ADamagedListIsAnErrorAtOpenAndKeepsTheLastGoodOneWhileRunning) {
  auto list = RevocationList::Open(path_, milliseconds(0));
  ASSERT_TRUE(list.ok());
  ASSERT_TRUE((*list)->Add({.jti = "j1"}).ok());
  std::ofstream(path_, std::ios::trunc) << "{not json";
  EXPECT_TRUE(
      (*list)->IsRevoked(Token("a", "j1", 1)));  // never "nothing is revoked" because of a bad file
  auto reopened = RevocationList::Open(path_);
  EXPECT_EQ(reopened.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(reopened.status().message().find("not a revocation list"), std::string::npos);
}

}  // namespace
}  // namespace rhip::security
