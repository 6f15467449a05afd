// rhip audit verify: recomputes the hash chain of a data folder's audit log and
// names the first record that does not fit.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/store_key_flags.h"
#include "rhip/security/audit.h"

namespace rhip::cli {
namespace {

RunFn Setup(CLI::App& sub) {
  auto data = std::make_shared<std::string>();
  auto anchor_specs = std::make_shared<std::vector<std::string>>();
  auto key_flags = std::make_shared<StoreKeyFlags>();
  sub.require_subcommand(1);
  CLI::App* verify = sub.add_subcommand("verify", "recompute the audit log's hash chain (DATA/audit.db, DATA/audit.head)");
  verify->add_option("--data", *data, "data folder")->required();
  verify->add_option("--anchor", *anchor_specs,
                     "a head recorded elsewhere: an anchor file (rhip serve --audit-anchor) or SEQ:HASH as printed here "
                     "(repeatable); fails when the chain is shorter or differs there");
  AddStoreKeyFlags(*verify, *key_flags);
  sub.footer("Prints the chain's head (record it outside the machine, then pass it to --anchor later).\n"
             "Exit status: 0 intact, 2 broken (the first broken record is named), 1 error.\n"
             "Example:\n  rhip audit verify --data data/demo --anchor /mnt/worm/rhip-audit.anchors --anchor 1200:5f3a…");
  return [data, anchor_specs, key_flags] {
    std::vector<security::AuditAnchor> anchors;
    for (const std::string& spec : *anchor_specs) {
      auto parsed = security::ParseAuditAnchors(spec);
      if (!parsed.ok()) return Fail("audit verify", parsed.status().message());
      anchors.insert(anchors.end(), parsed->begin(), parsed->end());
    }
    auto key = ResolveStoreKey(*key_flags, *data);
    if (!key.ok()) return Fail("audit verify", key.status().ToString());
    auto v = security::VerifyAuditLog(*data, anchors, *key);
    if (!v.ok()) return Fail("audit verify", v.status().ToString() + " (is --data a rhip data folder with an audit log?)");
    if (v->ok) {
      std::printf("audit log intact: %lld records, chain and head verified", static_cast<long long>(v->records));
      if (!anchors.empty()) std::printf(", %d anchor(s) match", v->anchors_checked);
      std::printf("\n");
    } else {
      std::printf("audit log BROKEN at record %lld (of %lld): %s\n", static_cast<long long>(v->first_broken),
                  static_cast<long long>(v->records), v->problem.c_str());
    }
    std::printf("chain head: %lld:%s\n", static_cast<long long>(v->head_seq), v->head_hash.c_str());
    return v->ok ? 0 : 2;
  };
}

}  // namespace

RHIP_COMMAND(audit, "audit", "audit log tools: verify the hash chain", Setup);

}  // namespace rhip::cli
