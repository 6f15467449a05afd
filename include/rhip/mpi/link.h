// Batch record linkage for the EMPI: which Patient records (one per institution
// that registered a person) are the same person. Fellegi-Sunter:
//
//   1. Blocking: candidate pairs share an ID number, a health card, a phone, the
//      fuzzy pinyin name + birth date, or birth date + sex + county (several
//      rules, so a typo in one field does not hide a match).
//   2. Each candidate pair is compared field by field into levels (Level below).
//   3. u-probabilities come from random pairs, m-probabilities from EM over the
//      candidate pairs; a pair's weight is Σ log2(m/u) of its levels, with the
//      name's u replaced by that name's own frequency (term frequency: two 王伟
//      agree by chance far more often than two 欧阳娜娜).
//   4. Pairs above the threshold are joined strongest first, except that a
//      cluster never holds two different valid ID numbers: a chain of weak links
//      cannot merge two people who have their own valid IDs.
//
// Deterministic: the same records in any order give the same clusters.
//
// Example:
//   ASSIGN_OR_RETURN(auto records, ReadPatientNdjson("region/fhir/Patient.ndjson"));
//   LinkResult r = LinkRecords(records, {});
//   r.person_of[i]  // the cluster (person) of records[i]
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "rhip/core/status.h"
#include "rhip/mpi/normalize.h"

namespace rhip::mpi {

struct PatientRecord {
  std::string id;  // the FHIR Patient id
  NormalizedName name;
  NormalizedId id_number;
  std::string birth;  // YYYY-MM-DD or ""
  Sex sex = Sex::kUnknown;
  std::string phone;        // NormalizePhone
  std::string health_card;  // urn:oid:2.16.156.10011.1.19
  std::string county;       // address.district
  std::string address;      // NormalizeAddress
  uint32_t quality = 0;     // data-quality flags (person.h QualityFlag bits)
  std::string replaced_by;  // Patient.link type replaced-by: the Patient id this record was merged into
};

// Reads FHIR Patient NDJSON; errors name the file and line.
StatusOr<std::vector<PatientRecord>> ReadPatientNdjson(const std::string& path);
// One Patient resource (JSON text) as a record. A birth date that is not a full
// date between 1900 and today is flagged (kFlagBirthInvalid) and left out.
StatusOr<PatientRecord> RecordFromPatientJson(std::string_view json);

// Comparison fields and their levels (0 = missing on either side, no evidence).
enum Field { kFieldId, kFieldName, kFieldBirth, kFieldSex, kFieldPhone, kFieldCard, kFieldCounty, kFieldCount };
constexpr int kMaxLevels = 5;
// id:    1 exact valid, 2 one character apart, 3 different (both valid: conflicting), 4 other difference
// name:  1 same characters, 2 same pinyin, 3 same fuzzy pinyin, 4 different
// birth: 1 exact, 2 day and month swapped, 3 one of year/month/day differs, 4 different
// sex, phone, card, county: 1 same, 2 different
using Levels = std::array<uint8_t, kFieldCount>;
Levels Compare(const PatientRecord& a, const PatientRecord& b);

struct LinkOptions {
  double threshold = 8.0;   // log2 weight needed to link
  int em_iterations = 20;
  int64_t u_sample_pairs = 200000;
  uint64_t seed = 1;        // for the random pairs that estimate u
};

struct LinkStats {
  int64_t records = 0;
  std::vector<std::pair<std::string, int64_t>> pairs_per_rule;  // blocking rule → candidate pairs it produced
  int64_t candidate_pairs = 0;   // distinct
  int64_t linked_pairs = 0;      // above the threshold
  int64_t refused_joins = 0;     // joins refused by the conflicting-ID rule
  double seconds_blocking = 0;
  double seconds_preparing = 0;  // each record's fields as integers (interned strings), once
  double seconds_scoring = 0;    // u from random pairs, every candidate pair compared and weighed, EM
  double seconds_clustering = 0;
  double lambda = 0;             // EM's share of matches among candidate pairs
  std::array<std::array<double, kMaxLevels>, kFieldCount> m{}, u{};
};

struct LinkResult {
  std::vector<int64_t> person_of;  // cluster index per record (the smallest record index in it)
  LinkStats stats;
};

LinkResult LinkRecords(const std::vector<PatientRecord>& records, const LinkOptions& options);

// Person ids for a linkage that keep a previous run's ids stable: a cluster
// keeps a previous person id when it holds every record of that person that is
// still in the input (the cluster is the same or grew); when it holds several
// such persons, the one with most records keeps its id (then the smallest id).
// Other clusters get a new id, "person-<smallest record id>", made unique
// against every previous id, so an id never moves to another set of records.
// Deterministic: the input order does not matter.
struct StablePersonIds {
  std::vector<std::string> person_of;  // per input record
  int64_t kept = 0;      // previous ids that are kept
  int64_t created = 0;   // new ids
  std::vector<std::string> retired;  // previous ids with records in the input that no cluster keeps (split or merged)
};
StablePersonIds AssignPersonIds(const std::vector<PatientRecord>& records, const LinkResult& result,
                                const std::unordered_map<std::string, std::string>& previous);  // record id → person id

// Pairwise quality of `predicted` against `truth` (both: a cluster label per record).
struct PairwiseQuality {
  int64_t true_pairs = 0, predicted_pairs = 0, correct_pairs = 0;
  double precision() const { return predicted_pairs ? static_cast<double>(correct_pairs) / predicted_pairs : 1.0; }
  double recall() const { return true_pairs ? static_cast<double>(correct_pairs) / true_pairs : 1.0; }
  double f1() const {
    const double p = precision(), r = recall();
    return p + r > 0 ? 2 * p * r / (p + r) : 0;
  }
};
PairwiseQuality EvaluatePairs(const std::vector<std::string>& predicted, const std::vector<std::string>& truth);

}  // namespace rhip::mpi
