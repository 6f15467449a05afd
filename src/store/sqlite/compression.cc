#include "store/sqlite/compression.h"

#include <zstd.h>

#include <memory>

namespace rhip::store::sqlite {
namespace {

constexpr unsigned char kMagic[4] = {0x28, 0xB5, 0x2F, 0xFD};  // ZSTD_MAGICNUMBER, little-endian
constexpr int kLevel = 1;

struct CCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

ZSTD_CCtx* CompressContext() {
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxFree> ctx = [] {
    std::unique_ptr<ZSTD_CCtx, CCtxFree> c(ZSTD_createCCtx());
    if (c) {
      ZSTD_CCtx_setParameter(c.get(), ZSTD_c_compressionLevel, kLevel);
      ZSTD_CCtx_setParameter(c.get(), ZSTD_c_checksumFlag, 1);
      ZSTD_CCtx_setParameter(c.get(), ZSTD_c_contentSizeFlag, 1);
    }
    return c;
  }();
  return ctx.get();
}

ZSTD_DCtx* DecompressContext() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxFree> ctx(ZSTD_createDCtx());
  return ctx.get();
}

}  // namespace

bool IsCompressed(std::string_view stored) {
  return stored.size() >= sizeof kMagic && static_cast<unsigned char>(stored[0]) == kMagic[0] &&
         static_cast<unsigned char>(stored[1]) == kMagic[1] && static_cast<unsigned char>(stored[2]) == kMagic[2] &&
         static_cast<unsigned char>(stored[3]) == kMagic[3];
}

Status CompressJson(std::string_view json, std::string* out) {
  ZSTD_CCtx* c = CompressContext();
  if (!c) return Internal("store: cannot allocate a zstd compression context");
  out->resize(ZSTD_compressBound(json.size()));
  const size_t n = ZSTD_compress2(c, out->data(), out->size(), json.data(), json.size());
  if (ZSTD_isError(n)) return Internal(std::string("store: zstd compression failed: ") + ZSTD_getErrorName(n));
  out->resize(n);
  return Status::Ok();
}

StatusOr<std::string> DecompressJson(std::string_view stored, std::string_view what) {
  auto damaged = [&](std::string_view why) {
    return Status(StatusCode::kDataLoss, "store: the compressed JSON of " + std::string(what) + " is damaged (" +
                                             std::string(why) + "): restore it from a backup");
  };
  const unsigned long long size = ZSTD_getFrameContentSize(stored.data(), stored.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) return damaged("no frame size");
  // A frame claims its size; a damaged one must not make us allocate terabytes.
  if (size > (size_t{1} << 31)) return damaged("frame size out of range");
  ZSTD_DCtx* d = DecompressContext();
  if (!d) return Internal("store: cannot allocate a zstd decompression context");
  std::string out(size, '\0');
  const size_t n = ZSTD_decompressDCtx(d, out.data(), out.size(), stored.data(), stored.size());
  if (ZSTD_isError(n)) return damaged(ZSTD_getErrorName(n));
  if (n != size) return damaged("shorter than its frame says");
  return out;
}

}  // namespace rhip::store::sqlite
