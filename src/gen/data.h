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
  bool rehab = false;  // often referred down to a township centre after discharge (下转)
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

// Lab tests (LOINC) grouped in panels, and imaging exams; `valid_days` is how long a
// result stays reusable by another institution (检查检验互认, DOMAIN B.7).
struct LabItem {
  std::string_view loinc;
  std::string_view display;
  std::string_view unit;  // UCUM
  double low, high;       // reference range
  double mean, sd;        // in a healthy adult
  int decimals;
};
struct LabPanel {
  std::string_view code;  // LOINC panel (or single test) code
  std::string_view display;
  int valid_days;
  std::vector<LabItem> items;
};
extern const std::vector<LabPanel> kLabPanels;  // [0] CBC, [1] liver, [2] renal, [3] glucose, [4] HbA1c, [5] lipids
struct ImagingExam {
  std::string_view code;  // regional exam item (http://rhip.health/CodeSystem/exam-item)
  std::string_view display;
  std::string_view modality;  // OBR-24 / DICOM modality: DX, CT, MR, US
  int valid_days;
  std::vector<std::string_view> conclusions;  // first = normal
};
extern const std::vector<ImagingExam> kImagingExams;

// Notifiable infectious diseases (法定传染病) with a seasonal baseline per county:
// rate per 100,000 residents a year, peaking on `peak_day` of the year with
// relative `amplitude` (0 = flat), among residents aged [age_min, age_max].
struct NotifiableDisease {
  std::string_view icd10;
  std::string_view display;
  char klass;  // 'A', 'B', 'C' (甲/乙/丙类)
  double rate_per_100k;
  int peak_day;
  double amplitude;
  int age_min, age_max;
  bool outbreak_prone;  // injected outbreaks are drawn from these
};
extern const std::vector<NotifiableDisease> kNotifiableDiseases;
extern const NotifiableDisease kCholera;  // fixed-threshold disease: one case alerts at once (DOMAIN B.4)

}  // namespace rhip::gen::data
