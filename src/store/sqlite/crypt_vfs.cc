#include "store/sqlite/crypt_vfs.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

#include "store/sqlite/wal_vfs.h"

namespace rhip::store::sqlite {
namespace {

constexpr int kPage = kEncryptedPageSize;
constexpr int kBody = kPage - kEncryptedReserve;  // encrypted bytes of a page (page 1: from byte 16)
constexpr int kNonce = 12;
constexpr int kTag = 16;
constexpr int kWalHeader = 32;
constexpr int kFrameHeader = 24;
constexpr int kFrame = kFrameHeader + kPage;
constexpr char kSqliteMagic[16] = {'S', 'Q', 'L', 'i', 't', 'e', ' ', 'f', 'o', 'r', 'm', 'a', 't', ' ', '3', '\0'};
constexpr char kMarker[8] = {'r', 'h', 'i', 'p', '-', 'g', 'c', 'm'};

// One key's derived material and its VFS (registered under its own name).
struct KeyVfs {
  uint8_t page_key[32];
  uint8_t check[8];
  std::string name;
  sqlite3_vfs vfs;
};

sqlite3_vfs* g_base = nullptr;  // rhip-wal, set once

thread_local std::string t_failure;

bool Hkdf(const StoreKey& key, const char* info, uint8_t* out, size_t n) {
  static constexpr char kSalt[] = "rhip store encryption at rest";
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> c(EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr),
                                                                 EVP_PKEY_CTX_free);
  size_t len = n;
  return c && EVP_PKEY_derive_init(c.get()) > 0 && EVP_PKEY_CTX_set_hkdf_md(c.get(), EVP_sha256()) > 0 &&
         EVP_PKEY_CTX_set1_hkdf_salt(c.get(), reinterpret_cast<const unsigned char*>(kSalt), sizeof kSalt - 1) > 0 &&
         EVP_PKEY_CTX_set1_hkdf_key(c.get(), key.bytes().data(), static_cast<int>(key.bytes().size())) > 0 &&
         EVP_PKEY_CTX_add1_hkdf_info(c.get(), reinterpret_cast<const unsigned char*>(info),
                                     static_cast<int>(std::strlen(info))) > 0 &&
         EVP_PKEY_derive(c.get(), out, &len) > 0 && len == n;
}

// ---- AES-256-GCM over one page ----

const EVP_CIPHER* Gcm() {
  static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

// A thread's cipher contexts, keyed once per KeyVfs (the AES key schedule is kept
// between pages; each page only sets its nonce).
struct ThreadCipher {
  const KeyVfs* enc_key = nullptr;
  const KeyVfs* dec_key = nullptr;
  EVP_CIPHER_CTX* enc = EVP_CIPHER_CTX_new();
  EVP_CIPHER_CTX* dec = EVP_CIPHER_CTX_new();
  ThreadCipher() = default;
  ThreadCipher(const ThreadCipher&) = delete;
  ThreadCipher& operator=(const ThreadCipher&) = delete;
  ~ThreadCipher() {
    EVP_CIPHER_CTX_free(enc);
    EVP_CIPHER_CTX_free(dec);
  }
};
thread_local ThreadCipher t_cipher;

// Random nonces, drawn from OpenSSL's CSPRNG 64 at a time: RAND_bytes checks for a
// fork with a getpid() system call on every call, and a commit seals ~30 pages.
// A fork must not inherit a thread's unused nonces (the child would reuse them with
// the same key): a fork handler moves the generation on, which empties every pool.
std::atomic<uint64_t> g_fork_generation{0};
void OnFork() { g_fork_generation.fetch_add(1, std::memory_order_relaxed); }

struct NoncePool {
  static constexpr int kCount = 64;
  uint8_t bytes[kCount * kNonce];
  int used = kCount;
  uint64_t generation = 0;
  ~NoncePool() { OPENSSL_cleanse(bytes, sizeof bytes); }
};
thread_local NoncePool t_nonces;

bool NextNonce(uint8_t* out) {
  static const bool registered = pthread_atfork(nullptr, nullptr, OnFork) == 0;
  NoncePool& p = t_nonces;
  const uint64_t gen = g_fork_generation.load(std::memory_order_relaxed);
  if (!registered) return RAND_bytes(out, kNonce) == 1;
  if (p.used == NoncePool::kCount || p.generation != gen) {
    if (RAND_bytes(p.bytes, sizeof p.bytes) != 1) return false;
    p.used = 0;
    p.generation = gen;
  }
  std::memcpy(out, p.bytes + p.used * kNonce, kNonce);
  OPENSSL_cleanse(p.bytes + p.used * kNonce, kNonce);
  ++p.used;
  return true;
}

// Associated data: 'D' + page number for the database file, 'W' + page number +
// the frame's two salts for a WAL frame.
struct Aad {
  uint8_t bytes[13];
  int size;
};
Aad DbAad(uint32_t pgno) {
  Aad a{{'D', uint8_t(pgno >> 24), uint8_t(pgno >> 16), uint8_t(pgno >> 8), uint8_t(pgno)}, 5};
  return a;
}
Aad WalAad(const uint8_t* frame_header) {
  Aad a{{'W'}, 13};
  std::memcpy(a.bytes + 1, frame_header, 4);      // page number
  std::memcpy(a.bytes + 5, frame_header + 8, 8);  // salt-1, salt-2
  return a;
}
uint32_t Be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

// Seals the plaintext page `in` into `out` (not overlapping). False on an OpenSSL failure.
bool Seal(const KeyVfs& k, const uint8_t* in, uint8_t* out, const Aad& aad, bool first_page) {
  ThreadCipher& t = t_cipher;
  if (t.enc_key != &k) {
    if (EVP_EncryptInit_ex(t.enc, Gcm(), nullptr, k.page_key, nullptr) <= 0) return false;
    t.enc_key = &k;
  }
  uint8_t* nonce = out + kBody;
  uint8_t* tag = nonce + kNonce;
  if (!NextNonce(nonce)) return false;
  const int from = first_page ? 16 : 0;
  int len = 0;
  if (EVP_EncryptInit_ex(t.enc, nullptr, nullptr, nullptr, nonce) <= 0 ||
      EVP_EncryptUpdate(t.enc, nullptr, &len, aad.bytes, aad.size) <= 0 ||
      EVP_EncryptUpdate(t.enc, out + from, &len, in + from, kBody - from) <= 0 ||
      EVP_EncryptFinal_ex(t.enc, out + from + len, &len) <= 0 ||
      EVP_CIPHER_CTX_ctrl(t.enc, EVP_CTRL_GCM_GET_TAG, kTag, tag) <= 0)
    return false;
  if (first_page) {
    std::memcpy(out, kMarker, sizeof kMarker);
    std::memcpy(out + 8, k.check, sizeof k.check);
  }
  return true;
}

// Opens a stored page in place. False when its tag does not verify (or page 1's marker is wrong).
bool Open(const KeyVfs& k, uint8_t* page, const Aad& aad, bool first_page) {
  ThreadCipher& t = t_cipher;
  if (t.dec_key != &k) {
    if (EVP_DecryptInit_ex(t.dec, Gcm(), nullptr, k.page_key, nullptr) <= 0) return false;
    t.dec_key = &k;
  }
  if (first_page && (std::memcmp(page, kMarker, sizeof kMarker) != 0 || CRYPTO_memcmp(page + 8, k.check, 8) != 0))
    return false;
  uint8_t* nonce = page + kBody;
  uint8_t* tag = nonce + kNonce;
  const int from = first_page ? 16 : 0;
  int len = 0;
  const bool ok = EVP_DecryptInit_ex(t.dec, nullptr, nullptr, nullptr, nonce) > 0 &&
                  EVP_DecryptUpdate(t.dec, nullptr, &len, aad.bytes, aad.size) > 0 &&
                  EVP_DecryptUpdate(t.dec, page + from, &len, page + from, kBody - from) > 0 &&
                  EVP_CIPHER_CTX_ctrl(t.dec, EVP_CTRL_GCM_SET_TAG, kTag, tag) > 0 &&
                  EVP_DecryptFinal_ex(t.dec, page + from + len, &len) > 0;
  if (!ok) return false;
  if (first_page) std::memcpy(page, kSqliteMagic, sizeof kSqliteMagic);
  std::memset(page + kBody, 0, kEncryptedReserve);  // SQLite left its reserved bytes zero
  return true;
}

bool AllZero(const uint8_t* p, size_t n) {
  return std::all_of(p, p + n, [](uint8_t b) { return b == 0; });
}

// ---- the file ----

enum class Kind { kMain, kWal };

struct CryptFile {
  sqlite3_file base;
  sqlite3_file* real;
  const KeyVfs* key;
  Kind kind;
  std::string path;
  std::vector<uint8_t> scratch;
  uint8_t last_header[kFrameHeader];  // the last WAL frame header written, at last_header_off
  sqlite3_int64 last_header_off = -1;
};

CryptFile* File(sqlite3_file* f) { return reinterpret_cast<CryptFile*>(f); }
const sqlite3_io_methods* Real(CryptFile* f) { return f->real->pMethods; }

int Fail(CryptFile* f, const std::string& what, uint32_t pgno) {
  t_failure = "page " + std::to_string(pgno) + " of " + f->path + " " + what;
  return SQLITE_IOERR_DATA;
}

int RefuseWrite(CryptFile* f, const char* why) {
  std::fprintf(stderr, "rhip: refusing a write to encrypted store file %s: %s\n", f->path.c_str(), why);
  return SQLITE_IOERR_WRITE;
}

// A plaintext page SQLite hands over must leave the reserved bytes to us, and page 1
// must say 4,096-byte pages with 28 reserved bytes (the layout this VFS assumes).
const char* CheckPlainPage(const uint8_t* p, bool first_page) {
  if (!AllZero(p + kBody, kEncryptedReserve)) return "a page uses the bytes reserved for the nonce and tag";
  if (first_page && (std::memcmp(p, kSqliteMagic, 16) != 0 || p[16] != 0x10 || p[17] != 0x00 ||
                     p[20] != kEncryptedReserve))
    return "the database was not created with 4096-byte pages and 28 reserved bytes";
  return nullptr;
}

// Reads page `pgno` of the main file into `out` (whole) and opens it. SQLITE_IOERR_SHORT_READ
// with zeros for a page beyond the end.
int ReadMainPage(CryptFile* f, uint32_t pgno, uint8_t* out) {
  const int rc = Real(f)->xRead(f->real, out, kPage, sqlite3_int64(pgno - 1) * kPage);
  if (rc == SQLITE_IOERR_SHORT_READ && AllZero(out, kPage)) return rc;
  if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) return rc;
  if (!Open(*f->key, out, DbAad(pgno), pgno == 1)) {
    return Fail(f, pgno == 1 && std::memcmp(out, kMarker, 8) != 0 ? "is not an encrypted page (plaintext store?)"
                                                                   : "failed its authentication check",
                pgno);
  }
  return SQLITE_OK;
}

int MainRead(CryptFile* f, uint8_t* out, int n, sqlite3_int64 off) {
  if (off % kPage == 0 && n % kPage == 0) {  // whole pages: in place
    int result = SQLITE_OK;
    for (int i = 0; i < n / kPage; ++i) {
      const int rc = ReadMainPage(f, static_cast<uint32_t>(off / kPage + i + 1), out + i * kPage);
      if (rc == SQLITE_IOERR_SHORT_READ) {
        std::memset(out + i * kPage, 0, static_cast<size_t>(n - i * kPage));
        return rc;
      }
      if (rc != SQLITE_OK) return rc;
    }
    return result;
  }
  // Part of a page (SQLite reads the 100-byte header first): open the whole page, copy the part.
  f->scratch.resize(kPage);
  int result = SQLITE_OK;
  for (sqlite3_int64 pos = off; pos < off + n;) {
    const auto pgno = static_cast<uint32_t>(pos / kPage + 1);
    const sqlite3_int64 start = sqlite3_int64(pgno - 1) * kPage;
    const sqlite3_int64 end = std::min<sqlite3_int64>(start + kPage, off + n);
    const int rc = ReadMainPage(f, pgno, f->scratch.data());
    if (rc == SQLITE_IOERR_SHORT_READ) {
      std::memset(out + (pos - off), 0, static_cast<size_t>(off + n - pos));
      return rc;
    }
    if (rc != SQLITE_OK) return rc;
    std::memcpy(out + (pos - off), f->scratch.data() + (pos - start), static_cast<size_t>(end - pos));
    pos = end;
  }
  return result;
}

int MainWrite(CryptFile* f, const uint8_t* in, int n, sqlite3_int64 off) {
  if (off % kPage != 0 || n % kPage != 0) return RefuseWrite(f, "not whole pages");
  f->scratch.resize(static_cast<size_t>(n));
  for (int i = 0; i < n / kPage; ++i) {
    const auto pgno = static_cast<uint32_t>(off / kPage + i + 1);
    if (const char* why = CheckPlainPage(in + i * kPage, pgno == 1)) return RefuseWrite(f, why);
    if (!Seal(*f->key, in + i * kPage, f->scratch.data() + i * kPage, DbAad(pgno), pgno == 1))
      return RefuseWrite(f, "OpenSSL could not encrypt the page");
  }
  return Real(f)->xWrite(f->real, f->scratch.data(), n, off);
}

// WAL layout: a 32-byte header, then frames of a 24-byte header and a page.
sqlite3_int64 FrameStart(sqlite3_int64 k) { return kWalHeader + k * kFrame; }

// Opens the frame in `frame` (header + page) in place; `lenient` for SQLite's recovery,
// which reads frame by frame until one does not fit (a write cut short by a crash):
// such a frame's page is returned as zeros, so its checksum fails and recovery stops
// there, exactly as for a torn plaintext frame.
int OpenFrame(CryptFile* f, uint8_t* frame, bool lenient, sqlite3_int64 k) {
  const uint32_t pgno = Be32(frame);
  if (Open(*f->key, frame + kFrameHeader, WalAad(frame), pgno == 1)) return SQLITE_OK;
  if (lenient) {
    std::memset(frame + kFrameHeader, 0, kPage);
    std::fprintf(stderr, "rhip: frame %lld of %s does not authenticate; recovery ends the WAL there "
                 "(a write cut short by a crash, or a changed file)\n", static_cast<long long>(k + 1), f->path.c_str());
    return SQLITE_OK;
  }
  return Fail(f, "(in the WAL) failed its authentication check", pgno);
}

int WalRead(CryptFile* f, uint8_t* out, int n, sqlite3_int64 off) {
  if (off + n <= kWalHeader) return Real(f)->xRead(f->real, out, n, off);
  const sqlite3_int64 first = off < kWalHeader ? 0 : (off - kWalHeader) / kFrame;
  const sqlite3_int64 last = (off + n - 1 - kWalHeader) / kFrame;
  const bool page_only = n == kPage && off >= kWalHeader && (off - kWalHeader) % kFrame == kFrameHeader;
  int rc = SQLITE_OK;
  if (!page_only) {
    rc = Real(f)->xRead(f->real, out, n, off);
    if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) return rc;
  }
  for (sqlite3_int64 k = first; k <= last; ++k) {
    const sqlite3_int64 fs = FrameStart(k), ps = fs + kFrameHeader, pe = fs + kFrame;
    if (pe <= off || ps >= off + n) continue;  // only the frame header is in the read
    if (!page_only && fs >= off && pe <= off + n) {  // the whole frame was read: open it in place
      uint8_t* frame = out + (fs - off);
      if (rc == SQLITE_IOERR_SHORT_READ && AllZero(frame, kFrame)) continue;
      if (int r = OpenFrame(f, frame, n == kFrame && off == fs, k); r != SQLITE_OK) return r;
      continue;
    }
    // Part of a frame's page: read and open the whole frame, copy the part.
    f->scratch.resize(kFrame);
    int r = Real(f)->xRead(f->real, f->scratch.data(), kFrame, fs);
    if (r == SQLITE_IOERR_SHORT_READ && AllZero(f->scratch.data(), kFrame)) {
      rc = r;
    } else if (r != SQLITE_OK) {
      return r == SQLITE_IOERR_SHORT_READ ? Fail(f, "(in the WAL) is cut short", Be32(f->scratch.data())) : r;
    } else if (int o = OpenFrame(f, f->scratch.data(), false, k); o != SQLITE_OK) {
      return o;
    }
    const sqlite3_int64 from = std::max(ps, off), to = std::min(pe, off + n);
    std::memcpy(out + (from - off), f->scratch.data() + (from - fs), static_cast<size_t>(to - from));
  }
  return rc;
}

int WalWrite(CryptFile* f, const uint8_t* in, int n, sqlite3_int64 off) {
  if (off == 0 && n == kWalHeader) {
    if (Be32(in + 8) != kPage) return RefuseWrite(f, "the WAL's page size is not 4096");
    return Real(f)->xWrite(f->real, in, n, off);
  }
  if (off < kWalHeader) return RefuseWrite(f, "an unexpected WAL header write");
  const sqlite3_int64 at = (off - kWalHeader) % kFrame;
  const sqlite3_int64 fs = off - at;
  if (at == 0 && n == kFrameHeader) {  // a frame header: kept, for the page that follows
    std::memcpy(f->last_header, in, kFrameHeader);
    f->last_header_off = off;
    return Real(f)->xWrite(f->real, in, n, off);
  }
  const uint8_t* header;
  const uint8_t* page;
  f->scratch.resize(kFrame);
  if (at == 0 && n == kFrame) {
    f->last_header_off = -1;
    header = in;
    page = in + kFrameHeader;
  } else if (at == kFrameHeader && n == kPage) {
    if (f->last_header_off != fs) {
      // SQLite rewrites a page already in the WAL in place (a transaction that spilled
      // its cache): its header is in the file.
      uint8_t h[kFrameHeader];
      if (int rc = Real(f)->xRead(f->real, h, kFrameHeader, fs); rc != SQLITE_OK) return rc;
      std::memcpy(f->last_header, h, kFrameHeader);
      f->last_header_off = fs;
    }
    header = f->last_header;
    page = in;
    f->last_header_off = -1;  // only the header written just before a page is trusted
  } else {
    return RefuseWrite(f, "not a whole WAL frame or page");
  }
  const uint32_t pgno = Be32(header);
  if (const char* why = CheckPlainPage(page, pgno == 1)) return RefuseWrite(f, why);
  uint8_t* sealed = f->scratch.data() + kFrameHeader;
  if (!Seal(*f->key, page, sealed, WalAad(header), pgno == 1)) return RefuseWrite(f, "OpenSSL could not encrypt the page");
  if (n == kFrame) {
    std::memcpy(f->scratch.data(), header, kFrameHeader);
    return Real(f)->xWrite(f->real, f->scratch.data(), kFrame, off);
  }
  return Real(f)->xWrite(f->real, sealed, kPage, off);
}

// ---- io methods ----

int Close(sqlite3_file* file) {
  CryptFile* f = File(file);
  const int rc = Real(f)->xClose(f->real);
  f->~CryptFile();
  return rc;
}
int Read(sqlite3_file* file, void* out, int n, sqlite3_int64 off) {
  CryptFile* f = File(file);
  auto* p = static_cast<uint8_t*>(out);
  return f->kind == Kind::kMain ? MainRead(f, p, n, off) : WalRead(f, p, n, off);
}
int Write(sqlite3_file* file, const void* data, int n, sqlite3_int64 off) {
  CryptFile* f = File(file);
  const auto* p = static_cast<const uint8_t*>(data);
  return f->kind == Kind::kMain ? MainWrite(f, p, n, off) : WalWrite(f, p, n, off);
}
int Truncate(sqlite3_file* f, sqlite3_int64 size) { return Real(File(f))->xTruncate(File(f)->real, size); }
int Sync(sqlite3_file* f, int flags) { return Real(File(f))->xSync(File(f)->real, flags); }
int FileSize(sqlite3_file* f, sqlite3_int64* size) { return Real(File(f))->xFileSize(File(f)->real, size); }
int Lock(sqlite3_file* f, int level) { return Real(File(f))->xLock(File(f)->real, level); }
int Unlock(sqlite3_file* f, int level) { return Real(File(f))->xUnlock(File(f)->real, level); }
int CheckReservedLock(sqlite3_file* f, int* out) { return Real(File(f))->xCheckReservedLock(File(f)->real, out); }
int FileControl(sqlite3_file* f, int op, void* arg) { return Real(File(f))->xFileControl(File(f)->real, op, arg); }
int SectorSize(sqlite3_file* f) { return Real(File(f))->xSectorSize(File(f)->real); }
int DeviceCharacteristics(sqlite3_file* f) { return Real(File(f))->xDeviceCharacteristics(File(f)->real); }
int ShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return Real(File(f))->xShmMap(File(f)->real, region, size, extend, out);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return Real(File(f))->xShmLock(File(f)->real, offset, n, flags);
}
void ShmBarrier(sqlite3_file* f) { Real(File(f))->xShmBarrier(File(f)->real); }
int ShmUnmap(sqlite3_file* f, int del) { return Real(File(f))->xShmUnmap(File(f)->real, del); }
// No memory maps: a mapped page would be ciphertext. A null pointer makes SQLite use xRead.
int Fetch(sqlite3_file*, sqlite3_int64, int, void** out) {
  *out = nullptr;
  return SQLITE_OK;
}
int Unfetch(sqlite3_file*, sqlite3_int64, void*) { return SQLITE_OK; }

const sqlite3_io_methods kMethods = {
    3,        Close,     Read,       Write,      Truncate,   Sync,     FileSize, Lock,  Unlock,
    CheckReservedLock,   FileControl, SectorSize, DeviceCharacteristics, ShmMap, ShmLock, ShmBarrier,
    ShmUnmap, Fetch,     Unfetch,
};

int OpenFile(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  file->pMethods = nullptr;
  const bool main = (flags & SQLITE_OPEN_MAIN_DB) != 0, wal = (flags & SQLITE_OPEN_WAL) != 0;
  if (!main && !wal) {
    // A rollback journal or a temporary file would hold plaintext pages.
    t_failure = std::string("an encrypted store writes no ") +
                ((flags & SQLITE_OPEN_MAIN_JOURNAL) ? "rollback journal" : "temporary file") +
                " (it would hold plaintext): the store must run in WAL mode with temp_store=MEMORY";
    return SQLITE_CANTOPEN;
  }
  auto* f = new (file) CryptFile{};
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + sizeof(CryptFile));
  f->key = static_cast<const KeyVfs*>(vfs->pAppData);
  f->kind = main ? Kind::kMain : Kind::kWal;
  f->path = name ? name : "";
  const int rc = g_base->xOpen(g_base, name, f->real, flags, out_flags);
  if (rc != SQLITE_OK || !f->real->pMethods) {
    f->~CryptFile();
    file->pMethods = nullptr;  // SQLite will not call xClose
    return rc;
  }
  f->base.pMethods = &kMethods;
  return rc;
}

std::mutex g_registry_mu;
std::vector<std::unique_ptr<KeyVfs>>& Registry() {
  static auto* r = new std::vector<std::unique_ptr<KeyVfs>>();  // lives as long as the process: SQLite keeps the VFS
  return *r;
}

}  // namespace

StatusOr<std::string> EncryptingVfs(const StoreKey& key) {
  auto k = std::make_unique<KeyVfs>();
  if (!Hkdf(key, "rhip store page key v1 aes-256-gcm", k->page_key, sizeof k->page_key) ||
      !Hkdf(key, "rhip store key check v1", k->check, sizeof k->check) || !Gcm())
    return Internal("store: OpenSSL cannot derive the store's page key (HKDF-SHA256, AES-256-GCM)");
  std::lock_guard lock(g_registry_mu);
  if (!g_base) {
    g_base = sqlite3_vfs_find(CombiningWalVfs());
    if (!g_base) return Internal("store: the rhip-wal VFS is not registered");
  }
  for (const auto& r : Registry()) {
    if (CRYPTO_memcmp(r->page_key, k->page_key, sizeof k->page_key) == 0) {
      OPENSSL_cleanse(k->page_key, sizeof k->page_key);
      return r->name;
    }
  }
  k->name = "rhip-crypt-" + std::to_string(Registry().size() + 1);
  k->vfs = *g_base;
  k->vfs.zName = k->name.c_str();
  k->vfs.szOsFile = static_cast<int>(sizeof(CryptFile)) + g_base->szOsFile;
  k->vfs.xOpen = OpenFile;
  k->vfs.pAppData = k.get();
  k->vfs.pNext = nullptr;
  if (sqlite3_vfs_register(&k->vfs, 0) != SQLITE_OK) return Internal("store: cannot register the encrypting VFS");
  Registry().push_back(std::move(k));
  return Registry().back()->name;
}

StatusOr<StoreFileState> CheckStoreFile(const std::string& path, const StoreKey* key) {
  // The first 16 bytes of page 1: in the database file, or while that is still
  // empty (nothing checkpointed yet), in the WAL's first frame.
  char head[16];
  bool have = false;
  for (auto [file, at] : {std::pair<std::string, std::streamoff>{path, 0}, {path + "-wal", kWalHeader + kFrameHeader}}) {
    std::ifstream in(file, std::ios::binary);
    if (in && in.seekg(at) && in.read(head, sizeof head) && in.gcount() == sizeof head) {
      have = true;
      break;
    }
  }
  if (!have) return StoreFileState::kNew;
  if (std::memcmp(head, kSqliteMagic, sizeof head) == 0) {
    if (key)
      return FailedPrecondition("store " + path + " is not encrypted, but a store key was given (--encrypt): run "
                                "without --encrypt, or start a new data folder to have it encrypted");
    return StoreFileState::kPlain;
  }
  if (std::memcmp(head, kMarker, sizeof kMarker) != 0)
    return Status(StatusCode::kDataLoss, "store " + path + " is neither an SQLite database nor an encrypted rhip store");
  if (!key)
    return FailedPrecondition("store " + path + " is encrypted: run with --encrypt and its key in RHIP_STORE_KEY "
                              "or --key-file FILE");
  uint8_t check[8];
  if (!Hkdf(*key, "rhip store key check v1", check, sizeof check))
    return Internal("store: OpenSSL cannot derive the store's key check (HKDF-SHA256)");
  if (CRYPTO_memcmp(check, head + 8, sizeof check) != 0)
    return FailedPrecondition("the store key given does not open store " + path +
                              " (it was encrypted with another key); nothing was changed: give the key it was "
                              "created with in RHIP_STORE_KEY or --key-file");
  return StoreFileState::kEncrypted;
}

std::string TakePageFailure() { return std::exchange(t_failure, std::string()); }

}  // namespace rhip::store::sqlite
