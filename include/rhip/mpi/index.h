// The online side of the EMPI: an in-memory index of every Patient record,
// kept current as Patients are written, answering "who is this?" for one
// record at a time (Patient/$match, and later incremental linking).
//
// Candidates come from the same blocking keys as the batch linkage (ID number,
// health card, mobile phone, fuzzy name + birth date, …) and are scored with
// the same Fellegi-Sunter weights (a MatchModel: m and u per comparison level,
// estimated by the batch linkage's EM on the region's data).
//
// Thread-safety: Upsert/Remove and Match may be called concurrently (a
// reader-writer lock; matching only reads).
//
// Example:
//   PatientIndex index(DefaultModel());
//   index.Upsert(record);
//   for (const auto& c : index.Match(query, 5)) ... c.id, c.weight, c.grade
#pragma once

#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "rhip/mpi/link.h"

namespace rhip::mpi {

enum class Grade { kCertain, kProbable, kPossible, kNone };
const char* GradeCode(Grade g);  // FHIR match-grade: certain, probable, possible, certainly-not

struct MatchModel {
  std::array<std::array<double, kMaxLevels>, kFieldCount> m{}, u{};
  double certain = 16;   // weight (log2) at or above which a match is certain
  double probable = 8;   // … probable (the batch linkage's default threshold)
  double possible = 3;   // … possible; below: not a match
  // Σ log2(m/u) over the fields compared; `name_u` (> 0) replaces u for an exact name.
  double Weight(const Levels& levels, double name_u = 0) const;
  // One field's log2(m/u) (0 when the field is missing on either side).
  double Contribution(int field, int level, double name_u = 0) const;
  Grade GradeOf(double weight) const;
};

// m and u as the batch linkage's EM estimated them on a generated region
// (bench/RESULTS.md); `rhip mpi link` prints the ones of your data.
MatchModel DefaultModel();

struct MatchCandidate {
  std::string id;  // Patient id
  double weight = 0;
  Grade grade = Grade::kNone;
  Levels levels{};
  double name_u = 0;  // the name's own frequency when the names agree exactly (term-frequency u), else 0
};

// Memory: each record is kept compact (about 70 bytes: interned names, phones,
// health cards and counties; the ID number as 18 characters; the birth date as
// numbers), and blocking keys are 64-bit hashes in one open-addressing table
// whose postings are a pooled linked list; no per-record strings or maps.
class PatientIndex {
 public:
  explicit PatientIndex(MatchModel model);
  ~PatientIndex();
  PatientIndex(const PatientIndex&) = delete;
  PatientIndex& operator=(const PatientIndex&) = delete;

  void Upsert(const PatientRecord& record);  // replaces the record with the same id
  void Remove(const std::string& id);
  // Candidates graded possible or better, best first (ties by id); at most `count`.
  std::vector<MatchCandidate> Match(const PatientRecord& query, int count) const;
  // The comparison of `query` with one indexed record; nullopt when `id` is not indexed.
  std::optional<MatchCandidate> Score(const PatientRecord& query, const std::string& id) const;
  // The indexed fields of a record (names without syllables, surname and given name).
  std::optional<PatientRecord> Find(const std::string& id) const;
  // Ids of the indexed records whose normalized ID number is `number` (18 characters).
  std::vector<std::string> WithIdNumber(const std::string& number) const;
  size_t size() const;
  // Bytes held by the index's own structures (records, strings, keys, postings).
  size_t MemoryBytes() const;

 private:
  struct Impl;
  MatchModel model_;
  mutable std::shared_mutex mu_;
  std::unique_ptr<Impl> impl_;  // GUARDED_BY(mu_)
};

}  // namespace rhip::mpi
