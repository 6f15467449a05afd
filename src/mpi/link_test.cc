#include "rhip/mpi/link.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <unordered_map>
#include <sstream>

#include "rhip/gen/generator.h"

namespace rhip::mpi {
namespace {

namespace fs = std::filesystem;

std::string ValidId(const std::string& first17) { return first17 + IdCardCheckChar(first17); }

PatientRecord Rec(const std::string& id, const std::string& name, const std::string& birth, Sex sex,
                  const std::string& id_number = "", const std::string& phone = "") {
  PatientRecord r;
  r.id = id;
  r.name = NormalizeName(name);
  r.birth = birth;
  r.sex = sex;
  r.id_number = NormalizeIdNumber(id_number, birth, sex);
  r.phone = NormalizePhone(phone);
  r.county = "330402";
  return r;
}

TEST(Compare, EachFieldHasItsLevels) {
  const std::string id = ValidId("33040219900101123");
  std::string typo = id;
  typo[12] = typo[12] == '9' ? '0' : static_cast<char>(typo[12] + 1);
  const std::string other = ValidId("33040219900101125");
  PatientRecord a = Rec("a", "张伟", "1990-01-01", Sex::kMale, id, "13812345678");
  EXPECT_EQ(Compare(a, Rec("b", "张伟", "1990-01-01", Sex::kMale, id, "13812345678")),
            (Levels{1, 1, 1, 1, 1, 0, 1}));
  Levels l = Compare(a, Rec("b", "张玮", "1990-01-10", Sex::kMale, typo, "13900000000"));
  EXPECT_EQ(l[kFieldId], 2) << "one character apart";
  EXPECT_EQ(l[kFieldName], 2) << "same pinyin";
  EXPECT_EQ(l[kFieldBirth], 3) << "one part differs";
  EXPECT_EQ(l[kFieldPhone], 2);
  l = Compare(a, Rec("b", "臧伟", "1990-01-01", Sex::kFemale, other));
  EXPECT_EQ(l[kFieldId], 3) << "two valid, different numbers conflict";
  EXPECT_EQ(l[kFieldName], 3) << "same fuzzy pinyin";
  EXPECT_EQ(l[kFieldSex], 2);
  EXPECT_EQ(l[kFieldPhone], 0) << "missing on one side: no evidence";
  l = Compare(Rec("x", "李娜", "1990-03-04", Sex::kFemale), Rec("y", "王芳", "1990-04-03", Sex::kFemale));
  EXPECT_EQ(l[kFieldId], 0);
  EXPECT_EQ(l[kFieldName], 4);
  EXPECT_EQ(l[kFieldBirth], 2) << "day and month swapped";
  EXPECT_EQ(Compare(Rec("x", "李娜", "1990-03-04", Sex::kFemale), Rec("y", "李娜", "1985-07-09", Sex::kFemale))[kFieldBirth], 4);
}

// Three records of one name and birth date: A and C hold two different valid ID
// numbers (two people); B has none and resembles both. A chain A-B-C must not
// put A and C together.
TEST(LinkRecords, AChainOfLinksNeverJoinsTwoValidIdNumbers) {
  std::vector<PatientRecord> records;
  const std::string id_a = ValidId("33040219900101123"), id_c = ValidId("33040219900101135");
  // Background records so that u and the name frequencies mean something.
  const char* names[] = {"王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄勇", "周杰"};
  for (int i = 0; i < 400; ++i) {
    char birth[16];
    std::snprintf(birth, sizeof birth, "19%02d-%02d-%02d", 40 + i % 60, 1 + i % 12, 1 + i % 28);
    records.push_back(Rec("bg" + std::to_string(1000 + i), names[i % 8], birth, i % 2 ? Sex::kMale : Sex::kFemale, "",
                          "139" + std::to_string(10000000 + i)));
  }
  // Each real person registered twice, so EM sees matches.
  records.push_back(Rec("a1", "张伟", "1990-01-01", Sex::kMale, id_a, "13812345678"));
  records.push_back(Rec("a2", "张伟", "1990-01-01", Sex::kMale, id_a, "13812345678"));
  records.push_back(Rec("b1", "张伟", "1990-01-01", Sex::kMale, "", "13812345678"));
  records.push_back(Rec("c1", "张伟", "1990-01-01", Sex::kMale, id_c, "13812345678"));
  records.push_back(Rec("c2", "张伟", "1990-01-01", Sex::kMale, id_c, "13812345678"));
  LinkOptions o;
  o.threshold = 4;
  LinkResult r = LinkRecords(records, o);
  auto person = [&](const std::string& id) {
    for (size_t i = 0; i < records.size(); ++i)
      if (records[i].id == id) return r.person_of[i];
    return int64_t{-1};
  };
  EXPECT_EQ(person("a1"), person("a2"));
  EXPECT_EQ(person("c1"), person("c2"));
  EXPECT_NE(person("a1"), person("c1"));
  EXPECT_GT(r.stats.refused_joins, 0);
}

TEST(EvaluatePairs, CountsPairsNotRecords) {
  // truth: {1,2,3} {4}; predicted: {1,2} {3,4}
  PairwiseQuality q = EvaluatePairs({"x", "x", "y", "y"}, {"A", "A", "A", "B"});
  EXPECT_EQ(q.true_pairs, 3);
  EXPECT_EQ(q.predicted_pairs, 2);
  EXPECT_EQ(q.correct_pairs, 1);
  EXPECT_DOUBLE_EQ(q.precision(), 0.5);
  EXPECT_DOUBLE_EQ(q.recall(), 1.0 / 3);
}

// On a generated region (with its registration errors): accurate, EM converged to
// sensible m and u, and the clusters do not depend on the input order.
TEST(LinkRecords, GeneratedRegionIsLinkedAccuratelyWhateverTheOrder) {
  const fs::path dir = fs::temp_directory_path() / ("rhip-mpi-gen-" + std::to_string(::getpid()));
  gen::GenOptions g;
  g.residents = 3000;
  g.years = 1;
  g.seed = 17;
  g.out = dir.string();
  g.force = true;
  ASSERT_TRUE(gen::GenerateRegion(g, nullptr).ok());
  auto records = ReadPatientNdjson((dir / "fhir" / "Patient.ndjson").string());
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  std::map<std::string, std::string> truth;
  std::ifstream in(dir / "truth" / "patients.csv");
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) truth[line.substr(0, line.find(','))] = line.substr(line.find(',') + 1, 9);
  LinkResult r = LinkRecords(*records, {});
  std::vector<std::string> predicted, actual;
  for (size_t i = 0; i < records->size(); ++i) {
    predicted.push_back((*records)[static_cast<size_t>(r.person_of[i])].id);
    actual.push_back(truth.at((*records)[i].id));
  }
  const PairwiseQuality q = EvaluatePairs(predicted, actual);
  EXPECT_GE(q.precision(), 0.999);
  EXPECT_GE(q.recall(), 0.99);
  // EM: an agreeing ID number is far likelier among matches than among random pairs.
  EXPECT_GT(r.stats.m[kFieldId][1], 0.5);
  EXPECT_LT(r.stats.u[kFieldId][1], 0.01);
  EXPECT_GT(r.stats.lambda, 0.0);
  EXPECT_LE(r.stats.lambda, 1.0);
  for (const auto& [rule, pairs] : r.stats.pairs_per_rule) EXPECT_GT(pairs, 0) << rule;
  // Shuffled: the same clusters (labelled by their smallest record id).
  std::vector<PatientRecord> shuffled = *records;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(7));
  LinkResult s = LinkRecords(shuffled, {});
  std::map<std::string, std::string> a, b;
  for (size_t i = 0; i < records->size(); ++i) a[(*records)[i].id] = (*records)[static_cast<size_t>(r.person_of[i])].id;
  for (size_t i = 0; i < shuffled.size(); ++i) b[shuffled[i].id] = shuffled[static_cast<size_t>(s.person_of[i])].id;
  EXPECT_EQ(a, b);

  // Re-running with the previous links keeps every person id, whatever the order.
  const StablePersonIds first = AssignPersonIds(*records, r, {});
  std::unordered_map<std::string, std::string> previous;
  for (size_t i = 0; i < records->size(); ++i) previous[(*records)[i].id] = first.person_of[i];
  const StablePersonIds again = AssignPersonIds(shuffled, s, previous);
  for (size_t i = 0; i < shuffled.size(); ++i) ASSERT_EQ(again.person_of[i], previous.at(shuffled[i].id));
  EXPECT_EQ(again.created, 0);
  EXPECT_TRUE(again.retired.empty());
  // Linked first without a tenth of the records, then with all of them: clusters
  // only grow, so each earlier id is kept, unless two earlier persons now join (one is retired).
  std::vector<PatientRecord> part;
  for (size_t i = 0; i < shuffled.size(); ++i)
    if (i % 10 != 0) part.push_back(shuffled[i]);
  LinkResult pr = LinkRecords(part, {});
  const StablePersonIds part_ids = AssignPersonIds(part, pr, {});
  std::unordered_map<std::string, std::string> before;
  for (size_t i = 0; i < part.size(); ++i) before[part[i].id] = part_ids.person_of[i];
  const StablePersonIds grown = AssignPersonIds(*records, r, before);
  const std::set<std::string> retired(grown.retired.begin(), grown.retired.end());
  int64_t moved = 0;
  for (size_t i = 0; i < records->size(); ++i) {
    auto prev = before.find((*records)[i].id);
    if (prev == before.end() || grown.person_of[i] == prev->second) continue;
    EXPECT_TRUE(retired.count(prev->second)) << prev->second << " moved without being retired";
    ++moved;
  }
  EXPECT_LT(moved, static_cast<int64_t>(records->size() / 20));
  EXPECT_GT(grown.kept, static_cast<int64_t>(0.95 * static_cast<double>(std::set<std::string>(part_ids.person_of.begin(), part_ids.person_of.end()).size())));
  fs::remove_all(dir);
}

TEST(AssignPersonIds, KeepsIdsOfSameOrGrownClustersAndNeverReusesOne) {
  std::vector<PatientRecord> records(5);
  const char* ids[] = {"a", "b", "c", "d", "e"};
  for (size_t i = 0; i < 5; ++i) records[i].id = ids[i];
  LinkResult r;
  r.person_of = {0, 0, 2, 3, 0};  // {a, b, e} {c} {d}
  std::unordered_map<std::string, std::string> previous{{"a", "P1"}, {"b", "P1"}, {"c", "P2"}, {"x", "person-d"}};
  StablePersonIds s = AssignPersonIds(records, r, previous);
  EXPECT_EQ(s.person_of, (std::vector<std::string>{"P1", "P1", "P2", "person-d-2", "P1"}))
      << "grew, same, and a new id that avoids an earlier one";
  EXPECT_EQ(s.kept, 2);
  EXPECT_EQ(s.created, 1);
  EXPECT_TRUE(s.retired.empty());
  // P1 split in two: neither part takes its id.
  r.person_of = {0, 1, 2, 3, 4};
  s = AssignPersonIds(records, r, previous);
  EXPECT_EQ(s.person_of[0], "person-a");
  EXPECT_EQ(s.person_of[1], "person-b");
  EXPECT_EQ(s.retired, (std::vector<std::string>{"P1"}));
  // Two earlier persons joined: the larger keeps its id, the other is retired.
  r.person_of = {0, 0, 0, 3, 4};
  s = AssignPersonIds(records, r, previous);
  EXPECT_EQ(s.person_of[2], "P1");
  EXPECT_EQ(s.retired, (std::vector<std::string>{"P2"}));
}

TEST(ReadPatientNdjson, NamesTheLineOfABadRecordAndKeepsRecordsWithoutNames) {
  const fs::path f = fs::temp_directory_path() / ("rhip-mpi-bad-" + std::to_string(::getpid()) + ".ndjson");
  std::ofstream(f) << R"({"resourceType":"Patient","id":"p1"})" << "\n"
                   << R"({"resourceType":"Patient","id":"p2","name":[{"text":"陳偉"}],"birthDate":"1990-13-45",)"
                   << R"("identifier":[{"system":"urn:oid:2.16.156.10011.1.3","value":"12345"}]})" << "\n";
  auto ok = ReadPatientNdjson(f.string());
  ASSERT_TRUE(ok.ok());
  ASSERT_EQ(ok->size(), 2u);
  EXPECT_TRUE((*ok)[0].name.empty()) << "no name: still a record, matched on what it has";
  EXPECT_EQ((*ok)[1].name.simplified, "陈伟");
  EXPECT_EQ((*ok)[1].id_number.status, IdStatus::kMalformed) << "flagged, not trusted";
  std::ofstream(f, std::ios::app) << "{not json\n";
  auto bad = ReadPatientNdjson(f.string());
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(":3:"), std::string::npos) << bad.status().message();
  fs::remove(f);
}

}  // namespace
}  // namespace rhip::mpi
