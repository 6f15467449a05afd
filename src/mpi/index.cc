#include "rhip/mpi/index.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <cstdio>
#include <deque>
#include <unordered_map>

namespace rhip::mpi {

double MatchModel::Contribution(int f, int level, double name_u) const {
  if (level == 0) return 0;
  const double uu = f == kFieldName && level == 1 && name_u > 0 ? name_u : u[f][level];
  return std::log2(std::max(m[f][level], 1e-9) / std::max(uu, 1e-12));
}

double MatchModel::Weight(const Levels& l, double name_u) const {
  double w = 0;
  for (int f = 0; f < kFieldCount; ++f) w += Contribution(f, l[f], name_u);
  return w;
}

Grade MatchModel::GradeOf(double w) const {
  return w >= certain ? Grade::kCertain : w >= probable ? Grade::kProbable : w >= possible ? Grade::kPossible : Grade::kNone;
}

MatchModel DefaultModel() {
  MatchModel o;
  // EM on 238,665 generated records (seed 13): see bench/RESULTS.md, EMPI batch linkage.
  o.m[kFieldId] = {0, 0.97, 0.028, 1e-4, 2e-4};
  o.u[kFieldId] = {0, 2e-6, 6e-6, 0.972, 0.028};
  o.m[kFieldName] = {0, 0.945, 0.041, 0.013, 3e-4};
  o.u[kFieldName] = {0, 5e-5, 1.5e-5, 3.5e-5, 0.9999};
  o.m[kFieldBirth] = {0, 0.99, 0.0075, 0.002, 5e-4};
  o.u[kFieldBirth] = {0, 6.5e-5, 1.5e-5, 0.0042, 0.9957};
  o.m[kFieldSex] = {0, 0.999, 0.001};
  o.u[kFieldSex] = {0, 0.5, 0.5};
  o.m[kFieldPhone] = {0, 0.81, 0.19};
  o.u[kFieldPhone] = {0, 1.5e-5, 0.99998};
  o.m[kFieldCard] = {0, 0.9997, 3e-4};
  o.u[kFieldCard] = {0, 2.5e-5, 0.99997};
  o.m[kFieldCounty] = {0, 0.95, 0.05};
  o.u[kFieldCounty] = {0, 0.15, 0.85};
  return o;
}

const char* GradeCode(Grade g) {
  switch (g) {
    case Grade::kCertain: return "certain";
    case Grade::kProbable: return "probable";
    case Grade::kPossible: return "possible";
    case Grade::kNone: return "certainly-not";
  }
  return "certainly-not";
}

namespace {

uint64_t HashKey(std::string_view s) {  // FNV-1a, then a finalizer: keys are short strings
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  return h ^ (h >> 33);
}

int Hamming(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return 99;
  int d = 0;
  for (size_t i = 0; i < a.size(); ++i) d += a[i] != b[i];
  if (d == 2) {  // an adjacent transposition is one typing error too
    for (size_t i = 0; i + 1 < a.size(); ++i)
      if (a[i] != b[i]) return a[i] == b[i + 1] && a[i + 1] == b[i] ? 1 : 2;
  }
  return d;
}

bool Valid(IdStatus s) { return s == IdStatus::kValid || s == IdStatus::kConflicting; }

// Strings that repeat across records (names, counties) or that the index must
// give back (phones, cards): each kept once, referred to by number (0 = none).
class StringPool {
 public:
  uint32_t Intern(std::string_view s) {
    if (s.empty()) return 0;
    auto it = codes_.find(s);
    if (it != codes_.end()) return it->second;
    strings_.emplace_back(s);
    const uint32_t code = static_cast<uint32_t>(strings_.size());
    codes_.emplace(std::string_view(strings_.back()), code);
    return code;
  }
  uint32_t Find(std::string_view s) const {  // 0 when never interned: equal to nothing stored
    if (s.empty()) return 0;
    auto it = codes_.find(s);
    return it == codes_.end() ? 0 : it->second;
  }
  const std::string& Get(uint32_t code) const {
    static const std::string kEmpty;
    return code == 0 ? kEmpty : strings_[code - 1];
  }
  size_t Bytes() const {
    size_t b = codes_.bucket_count() * sizeof(void*) + codes_.size() * (sizeof(std::string_view) + sizeof(uint32_t) + 2 * sizeof(void*));
    for (const auto& s : strings_) b += sizeof(std::string) + (s.size() > 15 ? s.capacity() + 1 : 0);
    return b;
  }

 private:
  std::deque<std::string> strings_;  // stable addresses for the views in codes_
  std::unordered_map<std::string_view, uint32_t> codes_;
};

}  // namespace

struct PatientIndex::Impl {
  struct Stored {
    const std::string* id = nullptr;  // the key in `slots` (stable node)
    uint32_t simplified = 0, pinyin = 0, fuzzy = 0, initials = 0, phone = 0, card = 0, county = 0;
    std::array<char, 18> id_number{};
    uint8_t id_len = 0;  // 0 or 18
    IdStatus id_status = IdStatus::kMissing;
    uint16_t year = 0;   // 0: no full birth date
    uint8_t month = 0, day = 0;
    Sex sex = Sex::kUnknown;
    bool live = false;
    std::string_view IdNumber() const { return {id_number.data(), id_len}; }
  };
  // The blocking keys' table: open addressing on the key's 64-bit hash (0 = empty slot).
  struct Bucket {
    uint64_t key = 0;
    uint32_t head = 0;   // first posting + 1 (0 = none)
    uint32_t count = 0;
  };
  struct Posting {
    uint32_t record = 0;
    uint32_t next = 0;  // next posting + 1
  };

  StringPool pool;
  std::unordered_map<std::string, uint32_t> slots;  // Patient id → record
  std::vector<Stored> records;
  std::vector<uint32_t> free_records;
  std::vector<Bucket> table = std::vector<Bucket>(1 << 16);
  size_t used_buckets = 0;
  std::vector<Posting> postings;
  std::vector<uint32_t> free_postings;
  std::vector<uint32_t> name_count;  // by interned simplified name
  size_t live = 0;

  // The blocking keys of a record (the same rules as the batch linkage's).
  template <typename F>
  static void Keys(std::string_view id_number, std::string_view card, std::string_view phone, std::string_view fuzzy,
                   std::string_view birth, Sex sex, std::string_view county, std::string_view initials, F&& emit) {
    std::string k;
    auto key = [&](char tag, std::initializer_list<std::string_view> parts) {
      k.assign(1, tag);
      for (auto p : parts) k.append("|").append(p);
      emit(HashKey(k));
    };
    if (!id_number.empty()) key('i', {id_number});
    if (!card.empty()) key('c', {card});
    if (IsMobile(phone)) key('p', {phone});
    if (!fuzzy.empty() && birth.size() == 10) {
      key('n', {fuzzy, birth});
      std::string_view m = birth.substr(5, 2), d = birth.substr(8, 2);
      if (m > d) std::swap(m, d);
      std::string swapped = std::string(birth.substr(0, 4)) + std::string(m) + std::string(d);
      key('s', {fuzzy, swapped});
      const char sx[2] = {static_cast<char>('0' + static_cast<int>(sex)), 0};
      key('b', {birth, std::string_view(sx, 1), county, initials});
    }
  }
  static std::string Birth(const Stored& r) {
    if (!r.year) return {};
    char b[16];
    std::snprintf(b, sizeof b, "%04d-%02d-%02d", r.year, r.month, r.day);
    return b;
  }
  template <typename F>
  void KeysOf(const Stored& r, F&& emit) const {
    Keys(r.IdNumber(), pool.Get(r.card), pool.Get(r.phone), pool.Get(r.fuzzy), Birth(r), r.sex, pool.Get(r.county),
         pool.Get(r.initials), emit);
  }
  template <typename F>
  static void KeysOf(const PatientRecord& r, F&& emit) {
    if (r.name.empty()) {
      Keys(r.id_number.number, r.health_card, r.phone, {}, r.birth, r.sex, r.county, {}, emit);
    } else {
      Keys(r.id_number.number, r.health_card, r.phone, r.name.fuzzy, r.birth, r.sex, r.county, r.name.initials, emit);
    }
  }

  size_t Find(uint64_t key) const {  // the bucket of `key`, or of the empty slot where it would go
    const size_t mask = table.size() - 1;
    for (size_t i = key & mask;; i = (i + 1) & mask)
      if (table[i].key == key || table[i].key == 0) return i;
  }
  void Grow() {  // doubles the table, dropping the emptied buckets
    std::vector<Bucket> old(table.size() * 2);
    old.swap(table);
    used_buckets = 0;
    for (const Bucket& b : old) {
      if (b.key == 0 || b.count == 0) continue;
      table[Find(b.key)] = b;
      ++used_buckets;
    }
  }
  void AddPosting(uint64_t key, uint32_t record) {
    if (key == 0) key = 1;
    if ((used_buckets + 1) * 10 > table.size() * 7) Grow();
    Bucket& b = table[Find(key)];
    if (b.key == 0) {
      b.key = key;
      ++used_buckets;
    }
    uint32_t p;
    if (!free_postings.empty()) {
      p = free_postings.back();
      free_postings.pop_back();
    } else {
      p = static_cast<uint32_t>(postings.size());
      postings.emplace_back();
    }
    postings[p] = {record, b.head};
    b.head = p + 1;
    ++b.count;
  }
  // Removes one posting of `record` under `key`. Emptied buckets stay as tombstones
  // (key kept, count 0), which keeps probing correct without rehashing.
  void RemovePosting(uint64_t key, uint32_t record) {
    if (key == 0) key = 1;
    Bucket& b = table[Find(key)];
    if (b.key == 0) return;
    uint32_t* link = &b.head;
    while (*link) {
      Posting& p = postings[*link - 1];
      if (p.record == record) {
        const uint32_t gone = *link - 1;
        *link = p.next;
        free_postings.push_back(gone);
        --b.count;
        return;
      }
      link = &p.next;
    }
  }
  template <typename F>
  void ForEach(uint64_t key, F&& f) const {
    if (key == 0) key = 1;
    const Bucket& b = table[Find(key)];
    if (b.key == 0 || b.count > 256) return;  // absent, or not selective
    for (uint32_t p = b.head; p; p = postings[p - 1].next) f(postings[p - 1].record);
  }

  // The query's fields looked up once, for comparing it with many stored records.
  struct Query {
    const PatientRecord* r;
    uint32_t simplified = 0, pinyin = 0, fuzzy = 0, phone = 0, card = 0, county = 0;
    uint16_t year = 0;
    uint8_t month = 0, day = 0;
  };
  Query Prepare(const PatientRecord& r) const {
    Query q{&r};
    if (!r.name.empty()) {
      q.simplified = pool.Find(r.name.simplified);
      q.pinyin = pool.Find(r.name.pinyin);
      q.fuzzy = pool.Find(r.name.fuzzy);
    }
    q.phone = pool.Find(r.phone);
    q.card = pool.Find(r.health_card);
    q.county = pool.Find(r.county);
    if (r.birth.size() == 10) {
      q.year = static_cast<uint16_t>(std::atoi(r.birth.c_str()));
      q.month = static_cast<uint8_t>((r.birth[5] - '0') * 10 + (r.birth[6] - '0'));
      q.day = static_cast<uint8_t>((r.birth[8] - '0') * 10 + (r.birth[9] - '0'));
    }
    return q;
  }
  // The same levels as Compare(query, stored record).
  Levels Compare(const Query& q, const Stored& s) const {
    Levels l{};
    const PatientRecord& r = *q.r;
    if (!r.id_number.number.empty() && s.id_len) {
      const std::string_view a = r.id_number.number, b = s.IdNumber();
      l[kFieldId] = a == b ? 1 : Hamming(a, b) == 1 ? 2 : Valid(r.id_number.status) && Valid(s.id_status) ? 3 : 4;
    }
    // A query string the pool never saw (code 0) equals no stored one.
    auto same = [](uint32_t a, uint32_t b) { return a != 0 && a == b; };
    if (!r.name.empty() && s.simplified)
      l[kFieldName] = same(q.simplified, s.simplified) ? 1 : same(q.pinyin, s.pinyin) ? 2 : same(q.fuzzy, s.fuzzy) ? 3 : 4;
    if (q.year && s.year) {
      const bool y = q.year == s.year, m = q.month == s.month, d = q.day == s.day;
      l[kFieldBirth] = y && m && d ? 1 : y && q.month == s.day && q.day == s.month ? 2 : y + m + d == 2 ? 3 : 4;
    }
    if (r.sex != Sex::kUnknown && s.sex != Sex::kUnknown) l[kFieldSex] = r.sex == s.sex ? 1 : 2;
    if (!r.phone.empty() && s.phone) l[kFieldPhone] = same(q.phone, s.phone) ? 1 : 2;
    if (!r.health_card.empty() && s.card) l[kFieldCard] = same(q.card, s.card) ? 1 : 2;
    if (!r.county.empty() && s.county) l[kFieldCounty] = same(q.county, s.county) ? 1 : 2;
    return l;
  }
  MatchCandidate Score(const MatchModel& model, const Query& q, const Stored& s) const {
    MatchCandidate c;
    c.id = *s.id;
    c.levels = Compare(q, s);
    if (c.levels[kFieldName] == 1) {
      const double n = std::max<double>(1, static_cast<double>(live));
      c.name_u = std::max(static_cast<double>(s.simplified < name_count.size() ? name_count[s.simplified] : 1), 1.0) / n;
    }
    c.weight = model.Weight(c.levels, c.name_u);
    // Two different valid ID numbers are two people, however alike the rest.
    if (c.levels[kFieldId] == 3) c.weight = std::min(c.weight, model.possible - 1);
    c.grade = model.GradeOf(c.weight);
    return c;
  }

  void Unindex(uint32_t slot) {
    Stored& r = records[slot];
    KeysOf(r, [&](uint64_t k) { RemovePosting(k, slot); });
    if (r.simplified && r.simplified < name_count.size()) --name_count[r.simplified];
    r.live = false;
    --live;
  }
};

PatientIndex::PatientIndex(MatchModel model) : model_(std::move(model)), impl_(std::make_unique<Impl>()) {}
PatientIndex::~PatientIndex() = default;

void PatientIndex::Upsert(const PatientRecord& record) {
  std::unique_lock lock(mu_);
  Impl& m = *impl_;
  auto [it, fresh] = m.slots.try_emplace(record.id, 0);
  uint32_t slot;
  if (fresh) {
    if (!m.free_records.empty()) {
      slot = m.free_records.back();
      m.free_records.pop_back();
    } else {
      slot = static_cast<uint32_t>(m.records.size());
      m.records.emplace_back();
    }
    it->second = slot;
  } else {
    slot = it->second;
    if (m.records[slot].live) m.Unindex(slot);
  }
  Impl::Stored& s = m.records[slot];
  s = {};
  s.id = &it->first;
  if (!record.name.empty()) {
    s.simplified = m.pool.Intern(record.name.simplified);
    s.pinyin = m.pool.Intern(record.name.pinyin);
    s.fuzzy = m.pool.Intern(record.name.fuzzy);
    s.initials = m.pool.Intern(record.name.initials);
  }
  s.phone = m.pool.Intern(record.phone);
  s.card = m.pool.Intern(record.health_card);
  s.county = m.pool.Intern(record.county);
  if (record.id_number.number.size() == 18) {
    std::copy(record.id_number.number.begin(), record.id_number.number.end(), s.id_number.begin());
    s.id_len = 18;
  }
  s.id_status = record.id_number.status;
  if (record.birth.size() == 10) {
    s.year = static_cast<uint16_t>(std::atoi(record.birth.c_str()));
    s.month = static_cast<uint8_t>((record.birth[5] - '0') * 10 + (record.birth[6] - '0'));
    s.day = static_cast<uint8_t>((record.birth[8] - '0') * 10 + (record.birth[9] - '0'));
  }
  s.sex = record.sex;
  s.live = true;
  ++m.live;
  Impl::KeysOf(record, [&](uint64_t k) { m.AddPosting(k, slot); });
  if (s.simplified) {
    if (m.name_count.size() <= s.simplified) m.name_count.resize(s.simplified + 1024, 0);
    ++m.name_count[s.simplified];
  }
}

void PatientIndex::Remove(const std::string& id) {
  std::unique_lock lock(mu_);
  Impl& m = *impl_;
  auto it = m.slots.find(id);
  if (it == m.slots.end()) return;
  const uint32_t slot = it->second;
  if (m.records[slot].live) m.Unindex(slot);
  m.records[slot].id = nullptr;
  m.free_records.push_back(slot);
  m.slots.erase(it);
}

size_t PatientIndex::size() const {
  std::shared_lock lock(mu_);
  return impl_->live;
}

size_t PatientIndex::MemoryBytes() const {
  std::shared_lock lock(mu_);
  const Impl& m = *impl_;
  size_t b = m.pool.Bytes();
  b += m.slots.bucket_count() * sizeof(void*) + m.slots.size() * (sizeof(std::string) + sizeof(uint32_t) + 2 * sizeof(void*));
  for (const auto& [id, slot] : m.slots) b += id.size() > 15 ? id.capacity() + 1 : 0;
  b += m.records.capacity() * sizeof(Impl::Stored) + m.table.capacity() * sizeof(Impl::Bucket) +
       m.postings.capacity() * sizeof(Impl::Posting) + m.name_count.capacity() * sizeof(uint32_t) +
       (m.free_postings.capacity() + m.free_records.capacity()) * sizeof(uint32_t);
  return b;
}

std::optional<MatchCandidate> PatientIndex::Score(const PatientRecord& query, const std::string& id) const {
  std::shared_lock lock(mu_);
  const Impl& m = *impl_;
  auto it = m.slots.find(id);
  if (it == m.slots.end() || !m.records[it->second].live) return std::nullopt;
  return m.Score(model_, m.Prepare(query), m.records[it->second]);
}

std::optional<PatientRecord> PatientIndex::Find(const std::string& id) const {
  std::shared_lock lock(mu_);
  const Impl& m = *impl_;
  auto it = m.slots.find(id);
  if (it == m.slots.end() || !m.records[it->second].live) return std::nullopt;
  const Impl::Stored& s = m.records[it->second];
  PatientRecord r;
  r.id = id;
  r.name.simplified = m.pool.Get(s.simplified);
  r.name.pinyin = m.pool.Get(s.pinyin);
  r.name.fuzzy = m.pool.Get(s.fuzzy);
  r.name.initials = m.pool.Get(s.initials);
  r.id_number.number = std::string(s.IdNumber());
  r.id_number.status = s.id_status;
  r.birth = Impl::Birth(s);
  r.sex = s.sex;
  r.phone = m.pool.Get(s.phone);
  r.health_card = m.pool.Get(s.card);
  r.county = m.pool.Get(s.county);
  return r;
}

std::vector<std::string> PatientIndex::WithIdNumber(const std::string& number) const {
  std::shared_lock lock(mu_);
  const Impl& m = *impl_;
  std::vector<std::string> out;
  m.ForEach(HashKey("i|" + number), [&](uint32_t slot) {
    if (m.records[slot].live && m.records[slot].IdNumber() == number) out.push_back(*m.records[slot].id);
  });
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<MatchCandidate> PatientIndex::Match(const PatientRecord& query, int count) const {
  std::shared_lock lock(mu_);
  const Impl& m = *impl_;
  const Impl::Query q = m.Prepare(query);
  std::vector<uint32_t> seen;
  std::vector<MatchCandidate> out;
  Impl::KeysOf(query, [&](uint64_t key) {
    m.ForEach(key, [&](uint32_t slot) {
      if (std::find(seen.begin(), seen.end(), slot) != seen.end()) return;
      seen.push_back(slot);
      const Impl::Stored& s = m.records[slot];
      if (!s.live || *s.id == query.id) return;
      MatchCandidate c = m.Score(model_, q, s);
      if (c.grade != Grade::kNone) out.push_back(std::move(c));
    });
  });
  std::sort(out.begin(), out.end(), [](const MatchCandidate& a, const MatchCandidate& b) {
    return a.weight != b.weight ? a.weight > b.weight : a.id < b.id;
  });
  if (count >= 0 && out.size() > static_cast<size_t>(count)) out.resize(static_cast<size_t>(count));
  return out;
}

}  // namespace rhip::mpi
