// Test support only (no library code includes it): a self-signed P-256
// certificate for localhost, made with the openssl tool in a temporary folder
// that is removed again.
//
// Example:
//   rhip::testing::TestCert tc("https");
//   options.tls_cert = tc.cert;
//   options.tls_key = tc.key;
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace rhip::testing {

struct TestCert {
  std::filesystem::path dir;
  std::string cert, key;
  explicit TestCert(const std::string& tag)
      : dir(std::filesystem::temp_directory_path() / ("rhip-" + tag + "-" + std::to_string(::getpid()))),
        cert((dir / "cert.pem").string()),
        key((dir / "key.pem").string()) {
    std::filesystem::create_directories(dir);
    const std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
                            "-subj /CN=localhost -keyout " + key + " -out " + cert + " 2>/dev/null";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << "openssl could not make a test certificate";
  }
  ~TestCert() { std::filesystem::remove_all(dir); }
  TestCert(const TestCert&) = delete;
  TestCert& operator=(const TestCert&) = delete;
};

}  // namespace rhip::testing
