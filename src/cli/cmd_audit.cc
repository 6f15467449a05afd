// rhip audit verify: recomputes the hash chain of a data folder's audit log and
// names the first record that does not fit.
// rhip audit show: prints the newest AuditEvents (of some patients) as NDJSON.
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
  auto show_data = std::make_shared<std::string>();
  auto show_patients = std::make_shared<std::vector<std::string>>();
  auto show_count = std::make_shared<int>(100);
  auto show_key = std::make_shared<StoreKeyFlags>();
  CLI::App* show = sub.add_subcommand("show", "print the newest AuditEvents, one JSON per line, newest first");
  show->add_option("--data", *show_data, "data folder")->required();
  show->add_option("--patient", *show_patients, "only events naming this Patient id (repeatable: any of them)");
  show->add_option("--count", *show_count, "at most this many events (default 100)")->check(CLI::Range(1, 10000000));
  AddStoreKeyFlags(*show, *show_key);
  show->footer("Reads the log without writing to it, also while the server runs (events queued in the\n"
               "last 200 ms may not be written yet). ID numbers and phones are masked as recorded.\n"
               "Example:\n  rhip audit show --data data/demo --patient 01a23c8d-152a-7f70-84a4-e3971fb6beb7 --count 20");
  return [data, anchor_specs, key_flags, show, show_data, show_patients, show_count, show_key] {
    if (show->parsed()) {
      auto key = ResolveStoreKey(*show_key, *show_data);
      if (!key.ok()) return Fail("audit show", key.status().ToString());
      auto events = security::ReadAuditEvents(*show_data, *show_patients, *show_count, *key);
      if (!events.ok())
        return Fail("audit show", events.status().ToString() + " (is --data a rhip data folder with an audit log?)");
      for (const std::string& e : *events) std::printf("%s\n", e.c_str());
      return 0;
    }
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

RHIP_COMMAND(audit, "audit", "audit log tools: verify the hash chain, show events", Setup);

}  // namespace rhip::cli
