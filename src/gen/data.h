// Curated reference data for the generator (compiled in; the product reads no
// external data set). Frequencies are approximations of published national
// and Zhejiang figures, good enough for realistic synthetic data.
#pragma once

#include <string_view>
#include <vector>

namespace rhip::gen::data {

struct Weighted {
  std::string_view value;
  double weight;
};

struct County {
  std::string_view code;
  std::string_view name;
  std::vector<std::string_view> towns;  // 乡镇 / 街道
  double population_share;
};

extern const std::vector<County> kCounties;          // 嘉兴市's 7 county-level units
extern const std::vector<Weighted> kSurnames;        // surname frequencies
extern const std::vector<std::string_view> kGivenMale;
extern const std::vector<std::string_view> kGivenFemale;
extern const std::vector<double> kAgeBands;          // weight per 5-year band from 0-4
// Characters that registration clerks confuse (DOMAIN B.2).
extern const std::vector<std::vector<std::string_view>> kHomophones;      // same pinyin
extern const std::vector<std::vector<std::string_view>> kNearHomophones;  // zh/z, en/eng, n/l, in/ing ...
extern const std::vector<std::pair<std::string_view, std::string_view>> kTraditional;  // simplified → traditional

struct Diagnosis {
  std::string_view icd10;
  std::string_view display;
  double weight;
};
extern const std::vector<Diagnosis> kOutpatientDiagnoses;
extern const std::vector<Diagnosis> kInpatientDiagnoses;

struct ProcedureDef {
  std::string_view code;  // ICD-9-CM-3
  std::string_view display;
  int level;              // 1-4
  bool minimally_invasive;
  bool day_surgery_eligible;
};
extern const std::vector<ProcedureDef> kProcedures;

// National immunization programme for children (DOMAIN B.3). Schedules are
// versioned data: a dose follows the version in force on its due date.
struct ScheduledDose {
  std::string_view vaccine;  // code in http://rhip.health/CodeSystem/vaccine
  int dose;                  // 1-based dose number
  int age_days;              // due age
};
struct ScheduleVersion {
  std::string_view name;
  std::string_view effective_from;  // YYYY-MM-DD
  std::vector<ScheduledDose> doses;
};
extern const std::vector<ScheduleVersion> kImmunizationSchedules;  // oldest first

}  // namespace rhip::gen::data
