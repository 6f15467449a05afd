// Resource JSON stored compressed (StoreOptions::compress_from_bytes): a zstd
// frame with its content size and checksum, kept as a BLOB in the same column
// that holds plain JSON as TEXT. A JSON resource starts with '{', a zstd frame
// with its magic number (28 B5 2F FD), so rows of either kind read back alike:
// a store keeps working when the setting changes.
//
// Why: the audit log stores pages of 2,000 AuditEvents (~2 MB of JSON) that are
// written once and seldom read; zstd level 1 makes them ~20× smaller at ~3 GB/s
// (bench/RESULTS.md): a log ~10× smaller on disk, its WAL and checkpoints copying
// fewer bytes. (It did not measurably change the server's CPU per read.)
//
// Thread-safety: every function may be called from any thread (contexts are per thread).
#pragma once

#include <string>
#include <string_view>

#include "rhip/core/status.h"

namespace rhip::store::sqlite {

// True when `stored` is a compressed value (starts with a zstd frame's magic number).
bool IsCompressed(std::string_view stored);

// `json` as a zstd frame (level 1, with content size and checksum) in *out.
Status CompressJson(std::string_view json, std::string* out);

// The JSON a compressed value holds; kDataLoss naming `what` when the frame is
// damaged (its checksum or size does not match).
StatusOr<std::string> DecompressJson(std::string_view stored, std::string_view what);

}  // namespace rhip::store::sqlite
