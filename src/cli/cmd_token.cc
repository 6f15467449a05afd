// rhip token: a signed access token for operators and tests; rhip keys rotate:
// a new signing key (tokens of the old keys stay valid until they expire).
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "rhip/core/time.h"
#include "rhip/security/principal.h"
#include "rhip/security/revocation.h"
#include "rhip/security/token.h"

namespace rhip::cli {
namespace {

struct TokenFlags {
  std::string data, role, org, person, subject, scope;
  int64_t ttl = 3600;
};

int RunToken(const TokenFlags& f) {
  auto role = security::ParseRole(f.role);
  if (!role.ok()) return Fail("token", role.status().message());
  auto tokens = security::TokenService::Open(f.data + "/keys");
  if (!tokens.ok()) return Fail("token", tokens.status().ToString());
  security::Principal p;
  p.role = *role;
  p.org = f.org;
  p.person = f.person;
  p.subject = f.subject.empty() ? "rhip-token:" + std::string(security::RoleName(*role)) : f.subject;
  if (f.scope.empty()) {
    p.scopes = security::DefaultScopes(*role, true);
  } else {
    for (size_t i = 0; i < f.scope.size();) {
      size_t sp = f.scope.find(' ', i);
      if (sp == std::string::npos) sp = f.scope.size();
      if (sp > i) p.scopes.push_back(f.scope.substr(i, sp - i));
      i = sp + 1;
    }
  }
  auto jwt = (*tokens)->Issue(p, f.ttl);
  if (!jwt.ok()) return Fail("token", jwt.status().message());
  auto issued = (*tokens)->Verify(*jwt);  // for its jti, which `rhip token revoke --jti` takes
  std::fprintf(stderr, "token for %s (role %s%s%s), valid %lld s, key %s, jti %s\n", p.subject.c_str(), f.role.c_str(),
               p.org.empty() ? "" : (", org " + p.org).c_str(), p.person.empty() ? "" : (", person " + p.person).c_str(),
               static_cast<long long>(f.ttl), (*tokens)->SigningKid().c_str(),
               issued.ok() ? issued->token_id.c_str() : "?");
  std::printf("%s\n", jwt->c_str());
  return 0;
}

struct RevokeFlags {
  std::string data, jti, subject, client, before, reason;
};

int RunRevoke(const RevokeFlags& f) {
  auto list = security::RevocationList::Open(f.data + "/revocations.json");
  if (!list.ok()) return Fail("token revoke", list.status().ToString());
  security::RevocationRule r{.jti = f.jti, .subject = f.subject, .client = f.client, .by = "rhip token revoke",
                             .reason = f.reason};
  if (!f.before.empty()) {
    auto t = security::ParseRevocationTime(f.before);
    if (!t.ok()) return Fail("token revoke", t.status().message());
    r.before = *t;
  }
  auto added = (*list)->Add(std::move(r));
  if (!added.ok()) return Fail("token revoke", added.status().message());
  const std::string what = !added->jti.empty() ? "token " + added->jti
                           : !added->subject.empty() ? "tokens of subject " + added->subject
                           : !added->client.empty() ? "tokens of client " + added->client
                                                    : std::string("every token");
  std::printf("revoked %s%s (a running server refuses them within a second)\n", what.c_str(),
              added->before ? (" issued until " + FormatInstant(added->before * kMicrosPerSecond)).c_str() : "");
  return 0;
}

RunFn SetupToken(CLI::App& sub) {
  auto f = std::make_shared<TokenFlags>();
  auto rv = std::make_shared<RevokeFlags>();
  CLI::App* revoke = sub.add_subcommand("revoke", "revoke tokens at once, without a restart (DATA/revocations.json)");
  revoke->add_option("--data", rv->data, "data folder")->required();
  auto* jti = revoke->add_option("--jti", rv->jti, "one token, by its id (printed by rhip token; the jti claim)");
  auto* subject = revoke->add_option("--subject", rv->subject, "every token of this subject (user name, client id, --sub)");
  auto* client = revoke->add_option("--client", rv->client, "every token of this OAuth2 client (client_credentials)");
  revoke->add_option("--before", rv->before,
                     "only tokens issued at or before this time (instant, epoch seconds or now; alone: every token)");
  revoke->add_option("--reason", rv->reason, "why (kept in the list)");
  jti->excludes(subject)->excludes(client);
  subject->excludes(client);
  revoke->footer("Example:\n  rhip token revoke --data data/demo --subject dr-li --reason 'laptop stolen'\n"
                 "  rhip token revoke --data data/demo --before 2026-12-02T15:00:00+08:00");
  sub.add_option("--data", f->data, "data folder (its signing keys are DATA/keys/*.pem)");
  sub.add_option("--role", f->role, "system, clinician, resident, cdc, commission, steward or admin");
  sub.add_option("--org", f->org, "institution code (system, clinician)");
  sub.add_option("--person", f->person, "EMPI person id (resident)");
  sub.add_option("--sub", f->subject, "subject named in the audit log (default rhip-token:ROLE)");
  sub.add_option("--scope", f->scope, "space-separated SMART scopes (default: the role's)");
  sub.add_option("--ttl", f->ttl, "lifetime in seconds")->check(CLI::Range(int64_t{1}, int64_t{7 * 24 * 3600}));
  sub.footer("Prints the token alone on its last line.\nExample:\n"
             "  TOKEN=$(rhip token --data data/demo --role clinician --org 47000001 | tail -1)\n"
             "  curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8080/fhir/Patient?_count=1");
  return [f, rv, revoke] {
    if (revoke->parsed()) return RunRevoke(*rv);
    if (f->data.empty() || f->role.empty()) return Fail("token", "--data and --role are required (or: rhip token revoke …)");
    return RunToken(*f);
  };
}

RunFn SetupKeys(CLI::App& sub) {
  auto data = std::make_shared<std::string>();
  sub.require_subcommand(1);
  CLI::App* rotate = sub.add_subcommand("rotate", "add a new signing key; tokens signed by older keys stay valid until they expire");
  rotate->add_option("--data", *data, "data folder")->required();
  sub.footer("Example:\n  rhip keys rotate --data data/demo\n  rm data/demo/keys/<old kid>.pem   # revokes every token it signed");
  return [data] {
    auto tokens = security::TokenService::Open(*data + "/keys");
    if (!tokens.ok()) return Fail("keys rotate", tokens.status().ToString());
    auto kid = (*tokens)->Rotate();
    if (!kid.ok()) return Fail("keys rotate", kid.status().ToString());
    std::printf("new signing key %s\n", kid->c_str());
    return 0;
  };
}

}  // namespace

RHIP_COMMAND(token, "token", "print a signed access token (JWT ES256) for a role", SetupToken);
RHIP_COMMAND(keys, "keys", "manage the token signing keys of a data folder", SetupKeys);

}  // namespace rhip::cli
