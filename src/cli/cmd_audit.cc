// rhip audit verify: recomputes the hash chain of a data folder's audit log and
// names the first record that does not fit.
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "cli/store_key_flags.h"
#include "rhip/security/audit.h"

namespace rhip::cli {
namespace {

RunFn Setup(CLI::App& sub) {
  auto data = std::make_shared<std::string>();
  auto key_flags = std::make_shared<StoreKeyFlags>();
  sub.require_subcommand(1);
  CLI::App* verify = sub.add_subcommand("verify", "recompute the audit log's hash chain (DATA/audit.db, DATA/audit.head)");
  verify->add_option("--data", *data, "data folder")->required();
  AddStoreKeyFlags(*verify, *key_flags);
  sub.footer("Exit status: 0 intact, 2 broken (the first broken record is named), 1 error.\n"
             "Example:\n  rhip audit verify --data data/demo");
  return [data, key_flags] {
    auto key = ResolveStoreKey(*key_flags, *data);
    if (!key.ok()) return Fail("audit verify", key.status().ToString());
    auto v = security::VerifyAuditLog(*data, *key);
    if (!v.ok()) return Fail("audit verify", v.status().ToString() + " (is --data a rhip data folder with an audit log?)");
    if (v->ok) {
      std::printf("audit log intact: %lld records, chain and head verified\n", static_cast<long long>(v->records));
      return 0;
    }
    std::printf("audit log BROKEN at record %lld (of %lld): %s\n", static_cast<long long>(v->first_broken),
                static_cast<long long>(v->records), v->problem.c_str());
    return 2;
  };
}

}  // namespace

RHIP_COMMAND(audit, "audit", "audit log tools: verify the hash chain", Setup);

}  // namespace rhip::cli
