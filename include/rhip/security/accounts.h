// Accounts: the people and systems that may obtain a token.
//
// Users (clinicians, residents, CDC and commission staff, data stewards,
// operators) log in with a password (OAuth2 password grant); institutions'
// systems are OAuth2 clients with a secret (client-credentials grant). Both
// secrets are stored only as argon2id hashes (libsodium crypto_pwhash_str,
// interactive limits: 64 MiB, 2 passes). After `max_failures` consecutive
// failed attempts an account is locked for `lock_seconds`, even for the right
// password; a success resets the count.
//
// The accounts live in one JSON file (DATA/accounts.json, mode 0600), replaced
// atomically on every change and re-read when another process (`rhip user
// add`) changed it, so accounts can be added while the server runs.
//
// Thread-safety: all methods may be called from many threads; at most two
// hash computations run at once (each takes 64 MiB).
//
// Example:
//   ASSIGN_OR_RETURN(auto accounts, Accounts::Open(data + "/accounts.json"));
//   RETURN_IF_ERROR(accounts->AddUser({.name = "dr-li", .role = Role::kClinician, .org = "47000001"}, "s3cret-pass"));
//   ASSIGN_OR_RETURN(Principal p, accounts->PasswordLogin("dr-li", "s3cret-pass"));
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rhip/core/status.h"
#include "rhip/security/principal.h"

namespace rhip::security {

struct UserAccount {
  std::string name;
  Role role = Role::kResident;
  std::string org;     // system, clinician
  std::string person;  // resident
};

struct ClientAccount {
  std::string id;
  std::string org;                  // the institution the system belongs to
  std::vector<std::string> scopes;  // empty = the system role's defaults
};

struct LockoutPolicy {
  int max_failures = 5;
  int64_t lock_seconds = 15 * 60;
};

class Accounts {
 public:
  virtual ~Accounts() = default;
  Accounts(const Accounts&) = delete;
  Accounts& operator=(const Accounts&) = delete;

  // Opens (or starts) the account file.
  static StatusOr<std::unique_ptr<Accounts>> Open(const std::string& path, LockoutPolicy policy = {});

  // kAlreadyExists for a taken name; kInvalidArgument for a password shorter than 10 characters
  // or a role without its binding.
  virtual Status AddUser(const UserAccount& user, std::string_view password) = 0;
  // Registers a system client and returns its generated secret (shown once, stored hashed).
  virtual StatusOr<std::string> AddClient(const ClientAccount& client) = 0;

  // kUnauthenticated for an unknown name or a wrong password (the same message for
  // both); kPermissionDenied while the account is locked. `now` in seconds since the epoch.
  virtual StatusOr<Principal> PasswordLogin(std::string_view user, std::string_view password, int64_t now) = 0;
  virtual StatusOr<Principal> ClientLogin(std::string_view client_id, std::string_view secret, int64_t now) = 0;

 protected:
  Accounts() = default;
};

}  // namespace rhip::security
