// rhip user add / rhip client add: accounts that may obtain tokens from POST /auth/token.
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "rhip/security/accounts.h"

namespace rhip::cli {
namespace {

struct UserFlags {
  std::string data, name, role, org, person, password;
  bool password_stdin = false;
};

int RunUserAdd(const UserFlags& f) {
  auto role = security::ParseRole(f.role);
  if (!role.ok()) return Fail("user add", role.status().message());
  std::string password = f.password;
  if (f.password_stdin && !std::getline(std::cin, password)) return Fail("user add", "no password on standard input");
  if (password.empty()) return Fail("user add", "give the password with --password-stdin (or --password)");
  auto accounts = security::Accounts::Open(f.data + "/accounts.json");
  if (!accounts.ok()) return Fail("user add", accounts.status().ToString());
  Status st = (*accounts)->AddUser({.name = f.name, .role = *role, .org = f.org, .person = f.person}, password);
  if (!st.ok()) return Fail("user add", st.message());
  std::printf("user %s added (role %s)\n", f.name.c_str(), f.role.c_str());
  return 0;
}

struct ClientFlags {
  std::string data, id, org;
  std::vector<std::string> scopes;
};

int RunClientAdd(const ClientFlags& f) {
  auto accounts = security::Accounts::Open(f.data + "/accounts.json");
  if (!accounts.ok()) return Fail("client add", accounts.status().ToString());
  auto secret = (*accounts)->AddClient({.id = f.id, .org = f.org, .scopes = f.scopes});
  if (!secret.ok()) return Fail("client add", secret.status().message());
  std::fprintf(stderr, "client %s added for institution %s; the secret is shown only now:\n", f.id.c_str(), f.org.c_str());
  std::printf("%s\n", secret->c_str());
  return 0;
}

RunFn SetupUser(CLI::App& sub) {
  auto f = std::make_shared<UserFlags>();
  sub.require_subcommand(1);
  CLI::App* add = sub.add_subcommand("add", "add a user who logs in with a password (OAuth2 password grant)");
  add->add_option("--data", f->data, "data folder (accounts are DATA/accounts.json)")->required();
  add->add_option("--name", f->name, "user name")->required();
  add->add_option("--role", f->role, "clinician, resident, cdc, commission, steward or admin")->required();
  add->add_option("--org", f->org, "institution code (clinician)");
  add->add_option("--person", f->person, "EMPI person id (resident)");
  add->add_flag("--password-stdin", f->password_stdin, "read the password from standard input");
  add->add_option("--password", f->password, "the password (visible to other local users in ps: prefer --password-stdin)");
  sub.footer("Example:\n  echo 'long enough secret' | rhip user add --data data/demo --name dr-li --role clinician --org 47000001 --password-stdin");
  return [f] { return RunUserAdd(*f); };
}

RunFn SetupClient(CLI::App& sub) {
  auto f = std::make_shared<ClientFlags>();
  sub.require_subcommand(1);
  CLI::App* add = sub.add_subcommand("add", "register an institution's system (OAuth2 client credentials); prints its secret");
  add->add_option("--data", f->data, "data folder")->required();
  add->add_option("--id", f->id, "client id")->required();
  add->add_option("--org", f->org, "the institution code the system writes for")->required();
  add->add_option("--scope", f->scopes, "SMART scopes it may ask for (default system/*.read system/*.write)");
  sub.footer("Example:\n  rhip client add --data data/demo --id his-47000001 --org 47000001");
  return [f] { return RunClientAdd(*f); };
}

}  // namespace

RHIP_COMMAND(user, "user", "manage user accounts (clinicians, residents, staff, operators)", SetupUser);
RHIP_COMMAND(client, "client", "manage OAuth2 clients (institutions' systems)", SetupClient);

}  // namespace rhip::cli
