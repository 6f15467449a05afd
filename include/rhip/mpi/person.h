// The EMPI person: its id (the regional health-record number, 健康档案编号) and
// the FHIR Person resource that holds it and links the person's Patient records.
//
// Person id: the 6-digit region code (GB/T 2260, 330400 = 嘉兴市), a 10-digit
// sequence assigned by rhip in order of creation, and an ISO 7064 MOD 11-2
// check character (the scheme GB 11643 uses for ID numbers): 17 characters,
// e.g. "33040000000000017". Never reused; a merged person keeps its id, inactive,
// pointing at the person it was merged into.
//
// Person resource (written only by the EMPI; history kept by the store):
//   identifier  urn:oid:2.16.156.10011.1.2 | <person id>
//   active      false once merged into another person (link → Person/<survivor>)
//   link[]      target Patient/<id>, assurance level1-4 (see Assurance), with
//               extensions for how the link was made (absent: auto) and the record's data-quality flags
//   meta.tag    http://rhip.health/CodeSystem/mpi-flag|data-quality when a record is flagged
//
// Thread-safety: values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rhip/core/status.h"

namespace rhip::mpi {

inline constexpr char kPersonIdSystem[] = "urn:oid:2.16.156.10011.1.2";
inline constexpr char kIdCardSystem[] = "urn:oid:2.16.156.10011.1.3";
inline constexpr char kHealthCardSystem[] = "urn:oid:2.16.156.10011.1.19";
inline constexpr char kLinkMethodUrl[] = "http://rhip.health/fhir/StructureDefinition/mpi-link-method";
inline constexpr char kRecordQualityUrl[] = "http://rhip.health/fhir/StructureDefinition/mpi-record-quality";
inline constexpr char kFlagSystem[] = "http://rhip.health/CodeSystem/mpi-flag";

// "330400" + 10-digit sequence + check character. `region` must be 6 digits.
std::string PersonIdFor(std::string_view region, int64_t sequence);
// The sequence of a person id of that form (check character verified); nullopt otherwise.
std::optional<int64_t> PersonSequence(std::string_view person_id);

// FHIR IdentityAssuranceLevel, as the EMPI uses it:
//   level4  a steward linked the record (or confirmed it in a merge)
//   level3  a certain match, or the record a person was started from
//   level2  a probable match
//   level1  a record with data-quality flags that started a person of its own
enum class Assurance { kLevel1 = 1, kLevel2, kLevel3, kLevel4 };
const char* AssuranceCode(Assurance a);

// How the link was made. Manual and source links are never moved by automatic matching.
enum class LinkMethod { kAuto, kManual, kSource };  // "auto", "manual", "source" (Patient.link replaced-by, HL7 ADT^A40)
const char* LinkMethodCode(LinkMethod m);

// Data-quality flags of a Patient record (bits). A flagged record is still
// stored and matched on what it has, but is linked automatically only on a
// certain match; anything weaker goes to the review queue.
enum QualityFlag : uint32_t {
  kFlagNoName = 1,           // no usable name
  kFlagIdMalformed = 2,      // an ID number that is not 15/18 characters of digits or has an impossible date
  kFlagIdBadCheck = 4,       // an 18-digit number whose check character is wrong (a typing error)
  kFlagIdInconsistent = 8,   // a valid number whose birth date or sex disagrees with the record
  kFlagBirthInvalid = 16,    // a birth date that is not a full date between 1900 and today (not used for matching)
};
std::vector<std::string> QualityFlagCodes(uint32_t flags);  // "no-name", "id-malformed", ...
uint32_t QualityFlagsFromCodes(const std::vector<std::string>& codes);

struct PersonLink {
  std::string patient;  // Patient id
  Assurance assurance = Assurance::kLevel3;
  LinkMethod method = LinkMethod::kAuto;
  uint32_t flags = 0;   // QualityFlag bits of the record
  bool operator==(const PersonLink&) const = default;
};

struct PersonState {
  std::string id;
  bool active = true;
  std::string merged_into;        // the surviving person when merged (then active = false, links empty)
  std::vector<PersonLink> links;  // sorted by patient id
  int64_t version = 0;            // the stored Person version (0: not stored yet)
  bool operator==(const PersonState&) const = default;
};

// The Person resource for a state (without meta.versionId/lastUpdated).
std::string PersonJson(const PersonState& person);
// Reads a Person resource written by PersonJson (version from meta.versionId).
StatusOr<PersonState> ParsePersonJson(std::string_view json);

// Links as a compact JSON array, for the trail: [{"patient":"p1","assurance":"level3","method":"auto"}].
std::string LinksJson(const std::vector<PersonLink>& links);
StatusOr<std::vector<PersonLink>> ParseLinksJson(std::string_view json);

}  // namespace rhip::mpi
