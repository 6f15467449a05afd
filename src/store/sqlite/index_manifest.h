// The index manifest: every search-index row of a resource's current version,
// encoded compactly in one blob kept on the resource row.
//
// Why: an index row lives in its value index only — (param, value…, res) — and
// is found again for replacement or deletion through the manifest instead of a
// second b-tree (res, param) per index table. A create therefore costs one
// b-tree insert per index row; an update deletes and inserts only the rows that
// changed (Diff). The manifest also answers per-resource questions without a
// join: the sort key of a parameter (SQL function rhip_sort_key).
//
// Encoding: a sequence of entries, each `table (1 byte) | param (varint) |
// fields`, strings as varint length + bytes, integers as zig-zag varints,
// doubles as 8 raw bytes. Entries are sorted by their bytes and unique, so two
// manifests can be diffed with one merge pass.
//
// Private to the SQLite backend. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rhip/store/index_rows.h"

namespace rhip::store::sqlite {

enum class IndexTable : uint8_t {
  kString = 0, kToken, kDate, kReference, kNumber, kQuantity, kUri, kCompartment, kCount
};

// One decoded index row; the views point into the manifest it came from.
//   string: s1 = normalized, s2 = exact        token: s1 = code, s2 = system
//   date: i1 = low, i2 = high                  reference: s1 = target_id, s2 = target_type
//   number: d = value                          quantity: d = value, s1 = system, s2 = code
//   uri: s1 = uri                              compartment: s1 = patient id (param 0)
struct IndexEntry {
  IndexTable table = IndexTable::kString;
  int64_t param = 0;
  std::string_view s1, s2;
  int64_t i1 = 0, i2 = 0;
  double d = 0;
  std::string_view bytes;  // the whole encoded entry
};

// The store key of search parameter `code` of resource type `type`: a 47-bit
// FNV-1a hash of "Type.code" (stable across builds and processes, no lookup
// table; 2,000 parameters collide with probability ~1e-8).
int64_t ParamKey(std::string_view type, std::string_view code);

// Builds a manifest entry by entry (any order, duplicates allowed); Finish()
// returns it sorted and de-duplicated, and empties the builder for reuse.
// Not thread-safe.
class ManifestBuilder {
 public:
  void String(int64_t param, std::string_view normalized, std::string_view exact);
  void Token(int64_t param, std::string_view code, std::string_view system);
  void Date(int64_t param, int64_t low, int64_t high);
  void Reference(int64_t param, std::string_view target_id, std::string_view target_type);
  void Number(int64_t param, double value);
  void Quantity(int64_t param, double value, std::string_view system, std::string_view code);
  void Uri(int64_t param, std::string_view uri);
  void Compartment(std::string_view patient_id);
  std::string Finish();

 private:
  void Begin(IndexTable t, int64_t param);
  void End();
  std::string buf_;
  std::vector<std::pair<uint32_t, uint32_t>> spans_;  // (offset, length) of each entry in buf_
};

// The sorted, de-duplicated manifest of `rows` (of a resource of `type`).
std::string EncodeManifest(std::string_view type, const IndexRows& rows);

// Decodes `manifest`; false when it is damaged (entries decoded so far are kept).
bool DecodeManifest(std::string_view manifest, std::vector<IndexEntry>* out);

// Entries of `old_manifest` missing from `new_manifest` (to delete) and of
// `new_manifest` missing from `old_manifest` (to insert). False when damaged.
bool DiffManifests(std::string_view old_manifest, std::string_view new_manifest, std::vector<IndexEntry>* removed,
                   std::vector<IndexEntry>* added);

}  // namespace rhip::store::sqlite
