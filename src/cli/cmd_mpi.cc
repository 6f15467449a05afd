// rhip mpi: the master patient index from the command line. `link` clusters FHIR
// Patient records into persons (batch Fellegi-Sunter); `evaluate` scores a
// linkage against the generator's truth (pairwise precision, recall, F1).
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <unordered_map>

#include "cli/command.h"
#include "rhip/mpi/link.h"

namespace rhip::cli {
namespace {

struct LinkFlags {
  std::string in, out, previous;
  double threshold = 8.0;
};
struct EvalFlags {
  std::string links, truth;
};

StatusOr<std::map<std::string, std::string>> ReadPairsCsv(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read " + path);
  std::map<std::string, std::string> out;
  std::string line;
  std::getline(in, line);  // header
  int64_t n = 1;
  while (std::getline(in, line)) {
    ++n;
    std::stringstream ss(line);
    std::string a, b;
    if (!std::getline(ss, a, ',') || !std::getline(ss, b, ','))
      return InvalidArgument(path + ":" + std::to_string(n) + ": expected record_id,person_id");
    out[a] = b;
  }
  return out;
}

// Column `col` (0-based) of a CSV with a header, keyed by its first column.
StatusOr<std::map<std::string, std::string>> ReadColumn(const std::string& path, int col) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read " + path);
  std::map<std::string, std::string> out;
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::vector<std::string> cols;
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, ',')) cols.push_back(c);
    if (static_cast<int>(cols.size()) > col) out[cols[0]] = cols[static_cast<size_t>(col)];
  }
  return out;
}

int RunLink(const LinkFlags& f) {
  auto records = mpi::ReadPatientNdjson(f.in);
  if (!records.ok()) return Fail("mpi link", records.status().ToString());
  std::unordered_map<std::string, std::string> previous;
  if (!f.previous.empty()) {
    auto prev = ReadPairsCsv(f.previous);
    if (!prev.ok()) return Fail("mpi link", prev.status().ToString());
    previous.insert(prev->begin(), prev->end());
  }
  std::fprintf(stderr, "[mpi] %zu Patient records read; linking\n", records->size());
  mpi::LinkOptions o;
  o.threshold = f.threshold;
  const mpi::LinkResult r = mpi::LinkRecords(*records, o);
  std::ofstream out(f.out);
  if (!out) return Fail("mpi link", "cannot write " + f.out);
  out << "record_id,person_id\n";
  const mpi::StablePersonIds ids = mpi::AssignPersonIds(*records, r, previous);
  std::map<int64_t, int64_t> sizes;
  for (size_t i = 0; i < records->size(); ++i) {
    out << (*records)[i].id << "," << ids.person_of[i] << "\n";
    ++sizes[r.person_of[i]];
  }
  out.close();
  if (!out) return Fail("mpi link", "writing " + f.out + " failed (disk full?)");
  const auto& s = r.stats;
  std::printf("linked %lld records into %zu persons\n", static_cast<long long>(s.records), sizes.size());
  if (!f.previous.empty())
    std::printf("  person ids: %lld kept from %s, %lld new, %zu retired (split or merged: their records are in new or other persons)\n",
                static_cast<long long>(ids.kept), f.previous.c_str(), static_cast<long long>(ids.created), ids.retired.size());
  for (const auto& [rule, pairs] : s.pairs_per_rule) std::printf("  blocking %-28s %lld pairs\n", rule.c_str(), static_cast<long long>(pairs));
  std::printf("  candidate pairs %lld, linked %lld, joins refused (conflicting ID numbers) %lld, EM match share %.4f\n",
              static_cast<long long>(s.candidate_pairs), static_cast<long long>(s.linked_pairs),
              static_cast<long long>(s.refused_joins), s.lambda);
  std::printf("  time: blocking %.2f s, preparing %.2f s, scoring %.2f s on one core (%.0f pairs/s), clustering %.2f s\n",
              s.seconds_blocking, s.seconds_preparing, s.seconds_scoring,
              s.seconds_scoring > 0 ? static_cast<double>(s.candidate_pairs) / s.seconds_scoring : 0.0, s.seconds_clustering);
  return 0;
}

int RunEvaluate(const EvalFlags& f) {
  auto links = ReadPairsCsv(f.links);
  if (!links.ok()) return Fail("mpi evaluate", links.status().ToString());
  auto truth = ReadPairsCsv(f.truth);
  if (!truth.ok()) return Fail("mpi evaluate", truth.status().ToString());
  std::vector<std::string> predicted, actual;
  int64_t missing = 0;
  for (const auto& [record, person] : *links) {
    auto it = truth->find(record);
    if (it == truth->end()) {
      ++missing;
      continue;
    }
    predicted.push_back(person);
    actual.push_back(it->second);
  }
  if (missing > 0) std::fprintf(stderr, "[mpi] %lld linked records are not in the truth file (ignored)\n", static_cast<long long>(missing));
  const mpi::PairwiseQuality q = mpi::EvaluatePairs(predicted, actual);
  std::printf("records %zu; true pairs %lld, predicted pairs %lld, correct %lld\n", predicted.size(),
              static_cast<long long>(q.true_pairs), static_cast<long long>(q.predicted_pairs),
              static_cast<long long>(q.correct_pairs));
  std::printf("precision %.5f  recall %.5f  F1 %.5f\n", q.precision(), q.recall(), q.f1());
  // Records registered without an ID number (the generator's truth says "id-missing"):
  // is each one placed with exactly its own person's other records?
  auto corruptions = ReadColumn(f.truth, 2);
  if (corruptions.ok()) {
    std::map<std::string, std::vector<std::string>> by_pred, by_truth;
    for (const auto& [record, person] : *links)
      if (truth->count(record)) {
        by_pred[person].push_back(record);
        by_truth[truth->at(record)].push_back(record);
      }
    int64_t without = 0, exact = 0;
    for (const auto& [record, person] : *links) {
      auto c = corruptions->find(record);
      if (c == corruptions->end() || c->second.find("id-missing") == std::string::npos) continue;
      ++without;
      auto a = by_pred[person], b = by_truth[truth->at(record)];
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      exact += a == b;
    }
    if (without > 0)
      std::printf("records without an ID number: %lld; placed with exactly their own person's records: %.4f\n",
                  static_cast<long long>(without), static_cast<double>(exact) / static_cast<double>(without));
  }
  return 0;
}

RunFn Setup(CLI::App& sub) {
  auto link = std::make_shared<LinkFlags>();
  auto eval = std::make_shared<EvalFlags>();
  sub.require_subcommand(1);
  CLI::App* l = sub.add_subcommand("link", "cluster FHIR Patient records into persons (batch Fellegi-Sunter)");
  l->add_option("--in", link->in, "FHIR Patient NDJSON")->required()->check(CLI::ExistingFile);
  l->add_option("--out", link->out, "CSV to write: record_id,person_id")->required();
  l->add_option("--threshold", link->threshold, "match weight (log2) needed to link");
  l->add_option("--previous", link->previous,
                "links.csv of an earlier run: its person ids are kept where a cluster is the same or grew")
      ->check(CLI::ExistingFile);
  l->footer("Example:\n  rhip mpi link --in region/fhir/Patient.ndjson --out links.csv\n"
            "  rhip mpi link --in region/fhir/Patient.ndjson --previous links.csv --out links2.csv");
  CLI::App* e = sub.add_subcommand("evaluate", "pairwise precision, recall and F1 of a linkage against the truth");
  e->add_option("--links", eval->links, "record_id,person_id from `rhip mpi link`")->required()->check(CLI::ExistingFile);
  e->add_option("--truth", eval->truth, "record_id,person_id[,...] (the generator's truth/patients.csv)")->required()->check(CLI::ExistingFile);
  e->footer("Example:\n  rhip mpi evaluate --links links.csv --truth region/truth/patients.csv");
  sub.footer("Example:\n  rhip mpi link --in region/fhir/Patient.ndjson --out links.csv\n  rhip mpi evaluate --links links.csv --truth region/truth/patients.csv");
  return [link, eval, l] { return l->parsed() ? RunLink(*link) : RunEvaluate(*eval); };
}

}  // namespace

RHIP_COMMAND(mpi, "mpi", "master patient index: link Patient records into persons, evaluate a linkage", Setup);

}  // namespace rhip::cli
