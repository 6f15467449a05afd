#include "store/sqlite/index_manifest.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace rhip::store::sqlite {
namespace {

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void PutSigned(std::string& out, int64_t v) {
  PutVarint(out, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));  // zig-zag
}

void PutString(std::string& out, std::string_view s) {
  PutVarint(out, s.size());
  out.append(s);
}

void PutDouble(std::string& out, double d) {
  char b[sizeof d];
  std::memcpy(b, &d, sizeof d);
  out.append(b, sizeof d);
}

class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  bool done() const { return pos_ >= s_.size(); }
  size_t pos() const { return pos_; }
  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= s_.size()) return false;
      const auto b = static_cast<uint8_t>(s_[pos_++]);
      *v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  bool Signed(int64_t* v) {
    uint64_t u;
    if (!Varint(&u)) return false;
    *v = static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
    return true;
  }
  bool String(std::string_view* v) {
    uint64_t n;
    if (!Varint(&n) || n > s_.size() - pos_) return false;
    *v = s_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool Double(double* d) {
    if (s_.size() - pos_ < sizeof *d) return false;
    std::memcpy(d, s_.data() + pos_, sizeof *d);
    pos_ += sizeof *d;
    return true;
  }
  bool Byte(uint8_t* b) {
    if (pos_ >= s_.size()) return false;
    *b = static_cast<uint8_t>(s_[pos_++]);
    return true;
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

bool DecodeOne(Reader& r, std::string_view whole, IndexEntry* e) {
  const size_t start = r.pos();
  uint8_t t;
  uint64_t param;
  if (!r.Byte(&t) || t >= static_cast<uint8_t>(IndexTable::kCount) || !r.Varint(&param)) return false;
  e->table = static_cast<IndexTable>(t);
  e->param = static_cast<int64_t>(param);
  e->s1 = e->s2 = {};
  e->i1 = e->i2 = 0;
  e->d = 0;
  bool ok = true;
  switch (e->table) {
    case IndexTable::kString: case IndexTable::kToken: case IndexTable::kReference:
      ok = r.String(&e->s1) && r.String(&e->s2);
      break;
    case IndexTable::kDate:
      ok = r.Signed(&e->i1) && r.Signed(&e->i2);
      break;
    case IndexTable::kNumber:
      ok = r.Double(&e->d);
      break;
    case IndexTable::kQuantity:
      ok = r.Double(&e->d) && r.String(&e->s1) && r.String(&e->s2);
      break;
    case IndexTable::kUri: case IndexTable::kCompartment:
      ok = r.String(&e->s1);
      break;
    case IndexTable::kCount:
      return false;
  }
  if (!ok) return false;
  e->bytes = whole.substr(start, r.pos() - start);
  return true;
}

}  // namespace

int64_t ParamKey(std::string_view type, std::string_view code) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a 64
  auto mix = [&](std::string_view s) {
    for (char c : s) {
      h ^= static_cast<uint8_t>(c);
      h *= 1099511628211ULL;
    }
  };
  mix(type);
  mix(".");
  mix(code);
  // Fold to 47 bits: a positive value SQLite stores in 6 bytes.
  return static_cast<int64_t>((h ^ (h >> 47)) & ((uint64_t{1} << 47) - 1));
}

void ManifestBuilder::Begin(IndexTable t, int64_t param) {
  spans_.emplace_back(static_cast<uint32_t>(buf_.size()), 0);
  buf_.push_back(static_cast<char>(t));
  PutVarint(buf_, static_cast<uint64_t>(param));
}

void ManifestBuilder::End() { spans_.back().second = static_cast<uint32_t>(buf_.size()) - spans_.back().first; }

void ManifestBuilder::String(int64_t param, std::string_view normalized, std::string_view exact) {
  Begin(IndexTable::kString, param);
  PutString(buf_, normalized);
  PutString(buf_, exact);
  End();
}
void ManifestBuilder::Token(int64_t param, std::string_view code, std::string_view system) {
  Begin(IndexTable::kToken, param);
  PutString(buf_, code);
  PutString(buf_, system);
  End();
}
void ManifestBuilder::Date(int64_t param, int64_t low, int64_t high) {
  Begin(IndexTable::kDate, param);
  PutSigned(buf_, low);
  PutSigned(buf_, high);
  End();
}
void ManifestBuilder::Reference(int64_t param, std::string_view target_id, std::string_view target_type) {
  Begin(IndexTable::kReference, param);
  PutString(buf_, target_id);
  PutString(buf_, target_type);
  End();
}
void ManifestBuilder::Number(int64_t param, double value) {
  Begin(IndexTable::kNumber, param);
  PutDouble(buf_, value);
  End();
}
void ManifestBuilder::Quantity(int64_t param, double value, std::string_view system, std::string_view code) {
  Begin(IndexTable::kQuantity, param);
  PutDouble(buf_, value);
  PutString(buf_, system);
  PutString(buf_, code);
  End();
}
void ManifestBuilder::Uri(int64_t param, std::string_view uri) {
  Begin(IndexTable::kUri, param);
  PutString(buf_, uri);
  End();
}
void ManifestBuilder::Compartment(std::string_view patient_id) {
  Begin(IndexTable::kCompartment, 0);
  PutString(buf_, patient_id);
  End();
}

std::string ManifestBuilder::Finish() {
  auto view = [&](const std::pair<uint32_t, uint32_t>& s) { return std::string_view(buf_).substr(s.first, s.second); };
  std::sort(spans_.begin(), spans_.end(), [&](const auto& a, const auto& b) { return view(a) < view(b); });
  std::string out;
  out.reserve(buf_.size());
  std::string_view prev;
  for (const auto& s : spans_) {
    std::string_view v = view(s);
    if (v == prev) continue;
    out.append(v);
    prev = v;
  }
  buf_.clear();
  spans_.clear();
  return out;
}

std::string EncodeManifest(std::string_view type, const IndexRows& rows) {
  ManifestBuilder b;
  for (const auto& r : rows.strings) b.String(ParamKey(type, r.param), r.normalized, r.exact);
  for (const auto& r : rows.tokens) b.Token(ParamKey(type, r.param), r.code, r.system);
  for (const auto& r : rows.dates) b.Date(ParamKey(type, r.param), r.low, r.high);
  for (const auto& r : rows.references) b.Reference(ParamKey(type, r.param), r.target_id, r.target_type);
  for (const auto& r : rows.numbers) b.Number(ParamKey(type, r.param), r.value);
  for (const auto& r : rows.quantities) b.Quantity(ParamKey(type, r.param), r.value, r.system, r.code);
  for (const auto& r : rows.uris) b.Uri(ParamKey(type, r.param), r.uri);
  for (const auto& p : rows.compartment_patients) b.Compartment(p);
  return b.Finish();
}

bool DecodeManifest(std::string_view manifest, std::vector<IndexEntry>* out) {
  Reader r(manifest);
  while (!r.done()) {
    IndexEntry e;
    if (!DecodeOne(r, manifest, &e)) return false;
    out->push_back(e);
  }
  return true;
}

bool DiffManifests(std::string_view old_manifest, std::string_view new_manifest, std::vector<IndexEntry>* removed,
                   std::vector<IndexEntry>* added) {
  Reader a(old_manifest), b(new_manifest);
  IndexEntry ea, eb;
  bool has_a = !a.done(), has_b = !b.done();
  if (has_a && !DecodeOne(a, old_manifest, &ea)) return false;
  if (has_b && !DecodeOne(b, new_manifest, &eb)) return false;
  while (has_a || has_b) {
    const int cmp = !has_a ? 1 : !has_b ? -1 : ea.bytes.compare(eb.bytes);
    if (cmp < 0) removed->push_back(ea);
    if (cmp > 0) added->push_back(eb);
    if (cmp <= 0) {
      has_a = !a.done();
      if (has_a && !DecodeOne(a, old_manifest, &ea)) return false;
    }
    if (cmp >= 0) {
      has_b = !b.done();
      if (has_b && !DecodeOne(b, new_manifest, &eb)) return false;
    }
  }
  return true;
}

}  // namespace rhip::store::sqlite
