// Token revocation without a restart (issue 6). A revocation list lives in the
// data folder (DATA/revocations.json, mode 0600, replaced atomically; writers
// serialise on an flock of DATA/revocations.lock) and names what no longer
// authenticates:
//   - one token by its `jti`;
//   - every token of a subject (user name, client id) issued at or before a time;
//   - every token of an OAuth2 client (the `client_id` claim) issued at or before a time;
//   - every token issued at or before a time (after a breach).
// A rule naming a subject or client revokes what was issued until then, not the
// future: a user who logs in again gets a working token (lock the account to stop that).
// Gate::Authenticate asks IsRevoked after verifying a token (cached or not), so
// a cached token is refused as soon as the list names it. Another process
// (`rhip token revoke`) may change the file: IsRevoked re-reads it when its
// modification time or size changed, looking at most every `recheck` (default 1 s).
//
// Thread-safety: every method may be called from many threads.
//
// Example:
//   ASSIGN_OR_RETURN(auto list, RevocationList::Open(data + "/revocations.json"));
//   ASSIGN_OR_RETURN(RevocationRule r, list->Add({.subject = "dr-li", .reason = "laptop stolen"}));
//   if (list->IsRevoked(principal)) return Unauthenticated("token revoked");
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rhip/core/status.h"
#include "rhip/security/principal.h"

namespace rhip::security {

struct RevocationRule {
  std::string jti;      // this one token
  std::string subject;  // tokens of this subject …
  std::string client;   // … or of this OAuth2 client …
  int64_t before = 0;   // … issued at or before this time (seconds since the epoch; 0 with jti)
  int64_t at = 0;       // when the rule was made (0 = now)
  std::string by;       // who made it (operator subject, "rhip token revoke")
  std::string reason;
};

class RevocationList {
 public:
  RevocationList(const RevocationList&) = delete;
  RevocationList& operator=(const RevocationList&) = delete;
  ~RevocationList();

  // Opens (or starts) the list at `path`; kDataLoss when the file is not a revocation list.
  static StatusOr<std::unique_ptr<RevocationList>> Open(
      std::string path, std::chrono::milliseconds recheck = std::chrono::seconds(1));

  // Appends a rule (written before it returns) and returns it as stored (`at`,
  // and `before` = now for a subject or client without one, filled in).
  // kInvalidArgument unless it names one of jti, subject, client, or only `before`.
  StatusOr<RevocationRule> Add(RevocationRule rule);
  // Whether `p` (a verified token's principal: token_id, subject, client_id, issued_at) is revoked,
  // and if so the rule's reason in `*why`.
  bool IsRevoked(const Principal& p, std::string* why = nullptr) const;
  std::vector<RevocationRule> Rules() const;

 private:
  struct Impl;
  explicit RevocationList(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A revocation cut-off as an operator types it: a FHIR instant
// ("2026-12-02T15:00:00Z", "…+08:00") or seconds since the epoch; "now".
StatusOr<int64_t> ParseRevocationTime(std::string_view text);

}  // namespace rhip::security
