#include "store/sqlite/wal_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <string>

namespace rhip::store::sqlite {
namespace {

constexpr const char* kName = "rhip-wal";
constexpr size_t kMaxBuffered = 8 << 20;  // a huge commit (bulk import) is written in 8 MiB pieces
constexpr size_t kMaxWrite = 0x1f000;     // 124 KiB
constexpr int kFrameHeader = 24;          // WAL frame header; bytes 4..7: database size after a commit, else 0

sqlite3_vfs* g_base = nullptr;  // the platform's default VFS, set once

// Contiguous WAL bytes not yet written, starting at file offset `offset`.
struct WalBuffer {
  std::string bytes;
  sqlite3_int64 offset = 0;
  bool commit_frame_next = false;  // the last frame header was a commit's: its page ends the commit
};

// The file object SQLite allocates for us (szOsFile bytes): ours, then the real one.
struct ShimFile {
  sqlite3_file base;
  sqlite3_file* real;
  std::unique_ptr<WalBuffer> wal;  // only for WAL files
};

thread_local ShimFile* t_pending = nullptr;  // the WAL file with buffered bytes on this thread

ShimFile* Shim(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f); }
const sqlite3_io_methods* Real(ShimFile* f) { return f->real->pMethods; }

int Flush(ShimFile* f) {
  if (t_pending == f) t_pending = nullptr;
  if (!f->wal || f->wal->bytes.empty()) return SQLITE_OK;
  WalBuffer& b = *f->wal;
  int rc = SQLITE_OK;
  // The unix VFS writes at most 128 KiB - 1 per call (it masks the length), so in pieces below that.
  for (size_t done = 0; done < b.bytes.size() && rc == SQLITE_OK; done += kMaxWrite) {
    const size_t n = std::min(kMaxWrite, b.bytes.size() - done);
    rc = Real(f)->xWrite(f->real, b.bytes.data() + done, static_cast<int>(n),
                         b.offset + static_cast<sqlite3_int64>(done));
  }
  b.bytes.clear();
  return rc;
}

// Before shared-memory changes (locks, the header barrier) nothing may stay buffered:
// a published frame must be in the file.
void FlushPendingOrDie() {
  if (!t_pending) return;
  if (Flush(t_pending) != SQLITE_OK) {
    // Unreachable in practice (each commit's last frame is written with its own error
    // check, below). Publishing a header over frames that are not in the file would
    // damage the store; dying first loses only the unacknowledged commit.
    std::fprintf(stderr, "rhip: cannot write the store's WAL; stopping to keep the store intact\n");
    std::abort();
  }
}

int Close(sqlite3_file* f) {
  ShimFile* s = Shim(f);
  int rc = Flush(s);
  const int close_rc = Real(s)->xClose(s->real);
  s->~ShimFile();
  return rc != SQLITE_OK ? rc : close_rc;
}

int Read(sqlite3_file* f, void* out, int n, sqlite3_int64 off) {
  ShimFile* s = Shim(f);
  if (int rc = Flush(s); rc != SQLITE_OK) return rc;
  return Real(s)->xRead(s->real, out, n, off);
}

int Write(sqlite3_file* f, const void* data, int n, sqlite3_int64 off) {
  ShimFile* s = Shim(f);
  if (!s->wal) return Real(s)->xWrite(s->real, data, n, off);
  WalBuffer& b = *s->wal;
  if (!b.bytes.empty() && off != b.offset + static_cast<sqlite3_int64>(b.bytes.size())) {
    if (int rc = Flush(s); rc != SQLITE_OK) return rc;
  }
  if (b.bytes.empty()) b.offset = off;
  b.bytes.append(static_cast<const char*>(data), static_cast<size_t>(n));
  t_pending = s;
  bool end_of_commit = false;
  if (n == kFrameHeader) {
    const auto* h = static_cast<const unsigned char*>(data);
    b.commit_frame_next = (h[4] | h[5] | h[6] | h[7]) != 0;
  } else if (b.commit_frame_next) {
    b.commit_frame_next = false;
    end_of_commit = true;
  }
  // The commit's last page is written here, where an I/O error can still fail the commit.
  if (end_of_commit || b.bytes.size() >= kMaxBuffered) return Flush(s);
  return SQLITE_OK;
}

int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  ShimFile* s = Shim(f);
  if (int rc = Flush(s); rc != SQLITE_OK) return rc;
  return Real(s)->xTruncate(s->real, size);
}

int Sync(sqlite3_file* f, int flags) {
  ShimFile* s = Shim(f);
  if (int rc = Flush(s); rc != SQLITE_OK) return rc;
  return Real(s)->xSync(s->real, flags);
}

int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  ShimFile* s = Shim(f);
  if (int rc = Flush(s); rc != SQLITE_OK) return rc;
  return Real(s)->xFileSize(s->real, size);
}

int Lock(sqlite3_file* f, int level) { return Real(Shim(f))->xLock(Shim(f)->real, level); }
int Unlock(sqlite3_file* f, int level) { return Real(Shim(f))->xUnlock(Shim(f)->real, level); }
int CheckReservedLock(sqlite3_file* f, int* out) { return Real(Shim(f))->xCheckReservedLock(Shim(f)->real, out); }
int FileControl(sqlite3_file* f, int op, void* arg) {
  ShimFile* s = Shim(f);
  if (int rc = Flush(s); rc != SQLITE_OK) return rc;
  return Real(s)->xFileControl(s->real, op, arg);
}
int SectorSize(sqlite3_file* f) { return Real(Shim(f))->xSectorSize(Shim(f)->real); }
int DeviceCharacteristics(sqlite3_file* f) { return Real(Shim(f))->xDeviceCharacteristics(Shim(f)->real); }
int ShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return Real(Shim(f))->xShmMap(Shim(f)->real, region, size, extend, out);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  FlushPendingOrDie();
  return Real(Shim(f))->xShmLock(Shim(f)->real, offset, n, flags);
}
void ShmBarrier(sqlite3_file* f) {
  FlushPendingOrDie();
  Real(Shim(f))->xShmBarrier(Shim(f)->real);
}
int ShmUnmap(sqlite3_file* f, int del) {
  FlushPendingOrDie();
  return Real(Shim(f))->xShmUnmap(Shim(f)->real, del);
}
int Fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
  return Real(Shim(f))->xFetch(Shim(f)->real, off, n, out);
}
int Unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) { return Real(Shim(f))->xUnfetch(Shim(f)->real, off, p); }

const sqlite3_io_methods kMethods = {
    3,        Close,     Read,       Write,      Truncate,   Sync,     FileSize, Lock,  Unlock,
    CheckReservedLock,   FileControl, SectorSize, DeviceCharacteristics, ShmMap, ShmLock, ShmBarrier,
    ShmUnmap, Fetch,     Unfetch,
};

int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  auto* s = new (f) ShimFile{};
  s->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + sizeof(ShimFile));
  const int rc = g_base->xOpen(g_base, name, s->real, flags, out_flags);
  if (rc != SQLITE_OK || !s->real->pMethods) {
    s->~ShimFile();
    f->pMethods = nullptr;  // SQLite will not call xClose
    return rc;
  }
  // The unix VFS speaks io version 3 (shared memory, memory maps), which kMethods forwards.
  if (s->real->pMethods->iVersion < 3) {
    s->real->pMethods->xClose(s->real);
    s->~ShimFile();
    f->pMethods = nullptr;
    return SQLITE_CANTOPEN;
  }
  if (flags & SQLITE_OPEN_WAL) s->wal = std::make_unique<WalBuffer>();
  s->base.pMethods = &kMethods;
  return rc;
}

}  // namespace

const char* CombiningWalVfs() {
  static std::once_flag once;
  static sqlite3_vfs vfs;
  std::call_once(once, [] {
    g_base = sqlite3_vfs_find(nullptr);
    vfs = *g_base;
    vfs.zName = kName;
    vfs.szOsFile = static_cast<int>(sizeof(ShimFile)) + g_base->szOsFile;
    vfs.xOpen = Open;
    vfs.pAppData = nullptr;
    vfs.pNext = nullptr;
    sqlite3_vfs_register(&vfs, 0);
  });
  return kName;
}

}  // namespace rhip::store::sqlite
