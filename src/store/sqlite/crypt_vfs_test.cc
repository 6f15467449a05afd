// Encryption at rest (crypt_vfs.h) through the store API: what lands on disk, what a
// wrong or missing key does, what a changed page does. The store's whole behaviour
// suite also runs encrypted (sqlite_store_test.cc, Encrypted/StoreTest.*), as do its
// crash tests (StoreDurability.Encrypted*).
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "rhip/store/store.h"
#include "rhip/store/store_key.h"
#include "store/sqlite/crypt_vfs.h"
#include "store/sqlite/temp_db_for_test.h"

namespace rhip::store {
namespace {

namespace fs = std::filesystem;

constexpr const char* kHexKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
constexpr const char* kOtherHexKey = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
constexpr const char* kName = "Ouyang Zhenhua";        // a synthetic patient name
constexpr const char* kIdNumber = "330402199001011234";  // a synthetic ID-card number

StoreKey Key(const char* hex = kHexKey) { return *StoreKey::Parse(hex); }

std::string TempDb(const std::string& name) { return sqlite::TempStoreFile("rhip-crypt-test-", name); }

std::string Bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

PutRequest Patient(const std::string& id, int n = 0) {
  PutRequest p;
  p.type = "Patient";
  p.id = id;
  p.version = 1;
  p.last_updated = 1000;
  p.method = "PUT";
  p.json = std::string(R"({"resourceType":"Patient","id":")") + id + R"(","name":[{"text":")" + kName + " " +
           std::to_string(n) + R"("}],"identifier":[{"value":")" + kIdNumber + R"("}]})";
  p.index.tokens.push_back({"identifier", "urn:oid:2.16.156.10011.1.3", kIdNumber});
  p.index.strings.push_back({"name", kName, kName});
  p.index.compartment_patients.push_back(id);
  return p;
}

Status Put(Store& s, const PutRequest& p) {
  return s.Write([&](WriteTransaction& tx) { return tx.Put(p); });
}

// Writes `n` patients into a new store at `path` (plain without a key) and closes it.
void Fill(const std::string& path, const std::optional<StoreKey>& key, int n) {
  auto s = OpenStore({.url = "sqlite:" + path, .key = key});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  for (int i = 0; i < n; ++i) ASSERT_TRUE(Put(**s, Patient("p" + std::to_string(i), i)).ok());
  ASSERT_TRUE((*s)->Close().ok());
}

TEST(StoreKey, ParsesHexAndBase64OfThirtyTwoBytes) {
  auto hex = StoreKey::Parse(std::string(kHexKey) + "\n");
  ASSERT_TRUE(hex.ok()) << hex.status().ToString();
  EXPECT_EQ(hex->bytes()[0], 0x00);
  EXPECT_EQ(hex->bytes()[1], 0x11);
  EXPECT_EQ(hex->bytes()[31], 0xff);
  // The same 32 bytes in base64, with and without padding, standard and URL-safe.
  for (const char* b64 : {"ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=", "ABEiM0RVZneImaq7zN3u_wARIjNEVWZ3iJmqu8zd7v8"}) {
    auto k = StoreKey::Parse(b64);
    ASSERT_TRUE(k.ok()) << b64;
    EXPECT_EQ(k->bytes(), hex->bytes()) << b64;
  }
}

TEST(StoreKey, RefusesShortLongAndMalformedKeysWithoutEchoingThem) {
  for (const char* bad : {"", "00112233", "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
                          "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00",
                          "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v", "correct horse battery staple"}) {
    auto k = StoreKey::Parse(bad);
    ASSERT_FALSE(k.ok()) << bad;
    EXPECT_EQ(k.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(k.status().message().find("openssl rand -hex 32"), std::string::npos);
    if (*bad) EXPECT_EQ(k.status().message().find(bad), std::string::npos) << "the message repeats the key";
  }
}

TEST(StoreKey, KeyFileMustBePrivateAndOutsideTheDataFolder) {
  const fs::path dir = fs::temp_directory_path() / ("rhip-crypt-keyfile-" + std::to_string(getpid()));
  fs::create_directories(dir / "data");
  const fs::path outside = dir / "store.key", inside = dir / "data" / "store.key";
  for (const fs::path& p : {outside, inside}) {
    std::ofstream(p) << kHexKey << "\n";
    ::chmod(p.c_str(), 0600);
  }
  auto ok = StoreKey::FromFile(outside.string(), (dir / "data").string());
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->bytes(), Key().bytes());
  auto in = StoreKey::FromFile(inside.string(), (dir / "data").string());
  ASSERT_FALSE(in.ok());
  EXPECT_NE(in.status().message().find("inside the data folder"), std::string::npos);
  ::chmod(outside.c_str(), 0644);
  auto readable = StoreKey::FromFile(outside.string(), (dir / "data").string());
  ASSERT_FALSE(readable.ok());
  EXPECT_NE(readable.status().message().find("chmod 600"), std::string::npos);
  EXPECT_EQ(StoreKey::FromFile((dir / "none").string(), "").status().code(), StatusCode::kNotFound);
  fs::remove_all(dir);
}

TEST(StoreEncryption, RoundTripsAndLeavesNoPlaintextInTheFileOrItsWal) {
  const std::string path = TempDb("roundtrip");
  auto s = OpenStore({.url = "sqlite:" + path, .key = Key()});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(Put(**s, Patient("p" + std::to_string(i), i)).ok());
  // While open, the pages are in the WAL.
  const std::string wal = Bytes(path + "-wal");
  ASSERT_GT(wal.size(), 100000u);
  EXPECT_EQ(wal.find(kIdNumber), std::string::npos);
  EXPECT_EQ(wal.find(kName), std::string::npos);
  EXPECT_EQ(wal.find("resourceType"), std::string::npos);
  ASSERT_TRUE((*s)->Close().ok());
  // After close, in the database file (checkpointed).
  const std::string db = Bytes(path);
  ASSERT_GT(db.size(), 100000u);
  EXPECT_EQ(db.find(kIdNumber), std::string::npos);
  EXPECT_EQ(db.find(kName), std::string::npos);
  EXPECT_EQ(db.find("CREATE TABLE"), std::string::npos);  // even the schema
  EXPECT_EQ(db.find("SQLite format 3"), std::string::npos);
  EXPECT_EQ(db.substr(0, 8), "rhip-gcm");
  // Reopened with the key: everything is there, search by the ID number included.
  auto again = OpenStore({.url = "sqlite:" + path, .key = Key()});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  auto r = (*again)->Read("Patient", "p123");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->json, Patient("p123", 123).json);
  Criterion c;
  c.param = "identifier";
  c.type = ParamType::kToken;
  SearchValue v;
  v.code = kIdNumber;
  c.values.push_back(v);
  auto page = (*again)->Search({.type = "Patient", .criteria = {c}, .count = 500});
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->resources.size(), 200u);
}

TEST(StoreEncryption, APlainStoreHoldsThePlaintextTheEncryptedOneHides) {
  // The control for the test above: the same writes without a key are readable on disk.
  const std::string path = TempDb("plain");
  Fill(path, std::nullopt, 50);
  const std::string db = Bytes(path);
  EXPECT_NE(db.find(kIdNumber), std::string::npos);
  EXPECT_NE(db.find(kName), std::string::npos);
}

TEST(StoreEncryption, WrongOrMissingKeyIsRefusedAndTheFileIsUnchanged) {
  const std::string path = TempDb("wrongkey");
  Fill(path, Key(), 20);
  const std::string before = Bytes(path);
  ASSERT_FALSE(fs::exists(path + "-wal"));

  auto wrong = OpenStore({.url = "sqlite:" + path, .key = Key(kOtherHexKey)});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(wrong.status().message().find("another key"), std::string::npos) << wrong.status().message();
  EXPECT_NE(wrong.status().message().find("nothing was changed"), std::string::npos);

  // No key: refused, even where a missing store would be created.
  auto none = OpenStore({.url = "sqlite:" + path, .create_if_missing = true});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(none.status().message().find("is encrypted: run with --encrypt"), std::string::npos)
      << none.status().message();
  EXPECT_NE(none.status().message().find("RHIP_STORE_KEY"), std::string::npos);

  EXPECT_EQ(Bytes(path), before);
  EXPECT_FALSE(fs::exists(path + "-wal"));
  auto right = OpenStore({.url = "sqlite:" + path, .key = Key()});
  ASSERT_TRUE(right.ok()) << right.status().ToString();
  EXPECT_EQ(*(*right)->Count("Patient"), 20);
}

TEST(StoreEncryption, APlainStoreOpenedWithAKeyIsRefused) {
  const std::string path = TempDb("plainwithkey");
  Fill(path, std::nullopt, 5);
  const std::string before = Bytes(path);
  auto s = OpenStore({.url = "sqlite:" + path, .key = Key()});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("is not encrypted"), std::string::npos) << s.status().message();
  EXPECT_EQ(Bytes(path), before);
  EXPECT_TRUE(OpenStore({.url = "sqlite:" + path}).ok());
}

TEST(StoreEncryption, AnEncryptedStoreKilledBeforeItsFirstCheckpointIsRecognizedAndRecovered) {
  // Killed before the first checkpoint: the data is only in the WAL.
  const std::string path = TempDb("walonly");
  pid_t pid = fork();
  if (pid == 0) {
    auto s = OpenStore({.url = "sqlite:" + path, .key = Key()});
    if (!s.ok() || !Put(**s, Patient("w1")).ok()) _exit(3);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_GT(fs::file_size(path + "-wal"), 0u);
  auto none = OpenStore({.url = "sqlite:" + path});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("is encrypted"), std::string::npos) << none.status().message();
  auto s = OpenStore({.url = "sqlite:" + path, .key = Key()});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE((*s)->Read("Patient", "w1").ok());
}

// Flips one byte of the encrypted part of page `pgno` (1-based).
void Tamper(const std::string& path, int pgno, int at = 1000) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  const std::streamoff off = static_cast<std::streamoff>(pgno - 1) * sqlite::kEncryptedPageSize + at;
  f.seekg(off);
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x01);
  f.seekp(off);
  f.write(&c, 1);
}

TEST(StoreEncryption, AChangedPageIsAnErrorNeverWrongData) {
  const std::string path = TempDb("tamper");
  Fill(path, Key(), 300);
  const auto pages = static_cast<int>(fs::file_size(path) / sqlite::kEncryptedPageSize);
  ASSERT_GT(pages, 10);
  // A data page: the open or some read fails with kDataLoss naming the page; no read
  // returns changed data.
  Tamper(path, pages);  // the last page: written last, a resource, version or index page
  const std::string why = "page " + std::to_string(pages) + " of " + path + " failed its authentication check";
  if (auto s = OpenStore({.url = "sqlite:" + path, .key = Key()}); !s.ok()) {
    EXPECT_EQ(s.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(s.status().message().find(why), std::string::npos) << s.status().message();
  } else {
    int failed = 0;
    for (int i = 0; i < 300; ++i) {
      auto r = (*s)->Read("Patient", "p" + std::to_string(i));
      if (r.ok()) {
        EXPECT_EQ(r->json, Patient("p" + std::to_string(i), i).json);
      } else {
        ++failed;
        EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
        EXPECT_NE(r.status().message().find(why), std::string::npos) << r.status().message();
      }
    }
    auto n = (*s)->Count("Patient");
    auto scan = (*s)->Scan("Patient", [](const ResourceVersion&) { return Status::Ok(); });
    EXPECT_TRUE(failed > 0 || !n.ok() || !scan.ok()) << "the changed page was never read";
  }
  // Page 1 (the schema and header): the store does not open.
  Tamper(path, pages);  // undo
  Tamper(path, 1, 200);
  auto s = OpenStore({.url = "sqlite:" + path, .key = Key()});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kDataLoss) << s.status().ToString();
  EXPECT_NE(s.status().message().find("page 1 of"), std::string::npos) << s.status().message();
}

TEST(StoreEncryption, AChangedPageInTheWalIsAnErrorForItsReaders) {
  const std::string path = TempDb("waltamper");
  auto s = OpenStore({.url = "sqlite:" + path, .key = Key()});
  ASSERT_TRUE(s.ok());
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(Put(**s, Patient("p" + std::to_string(i), i)).ok());
  // Every committed frame's page gets one changed byte (headers untouched); a second
  // store on the file reads them from the WAL with a cold cache.
  {
    std::fstream f(path + "-wal", std::ios::in | std::ios::out | std::ios::binary);
    const auto size = static_cast<std::streamoff>(fs::file_size(path + "-wal"));
    for (std::streamoff at = 32 + 24 + 2000; at < size; at += 24 + sqlite::kEncryptedPageSize) {
      char c = 0;
      f.seekg(at);
      f.read(&c, 1);
      c = static_cast<char>(c ^ 0x40);
      f.seekp(at);
      f.write(&c, 1);
    }
  }
  auto other = OpenStore({.url = "sqlite:" + path, .read_connections = 1, .key = Key(), .exclusive = false});
  Status st = other.status();
  if (other.ok()) st = (*other)->Read("Patient", "p50").status();
  ASSERT_FALSE(st.ok()) << "a changed WAL page was read as data";
  EXPECT_EQ(st.code(), StatusCode::kDataLoss) << st.ToString();
  EXPECT_NE(st.message().find("(in the WAL) failed its authentication check"), std::string::npos) << st.message();
}

TEST(StoreEncryption, PagesCannotBeSwapped) {
  const std::string path = TempDb("swap");
  Fill(path, Key(), 300);
  const auto pages = static_cast<int>(fs::file_size(path) / sqlite::kEncryptedPageSize);
  std::string bytes = Bytes(path);
  const size_t ps = sqlite::kEncryptedPageSize;
  // Two whole, individually valid pages trade places: both fail (the page number is authenticated).
  std::string a = bytes.substr((pages - 1) * ps, ps), b = bytes.substr((pages - 2) * ps, ps);
  bytes.replace((pages - 1) * ps, ps, b);
  bytes.replace((pages - 2) * ps, ps, a);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  auto s = OpenStore({.url = "sqlite:" + path, .key = Key()});
  if (!s.ok()) {  // the store reads one of them when it opens
    EXPECT_EQ(s.status().code(), StatusCode::kDataLoss) << s.status().ToString();
    return;
  }
  auto scan = (*s)->Scan("Patient", [](const ResourceVersion&) { return Status::Ok(); });
  auto n = (*s)->Count("Patient");
  bool any_failed = !scan.ok() || !n.ok();
  for (int i = 0; i < 300; ++i) {
    auto r = (*s)->Read("Patient", "p" + std::to_string(i));
    if (r.ok()) EXPECT_EQ(r->json, Patient("p" + std::to_string(i), i).json);
    any_failed = any_failed || (!r.ok() && r.status().code() == StatusCode::kDataLoss);
  }
  EXPECT_TRUE(any_failed);
}

// The nonces (bytes 4068..4079 of each sealed page) in a database file and its WAL.
std::set<std::string> Nonces(const std::string& path) {
  std::set<std::string> out;
  const std::string db = Bytes(path), wal = Bytes(path + "-wal");
  const size_t ps = sqlite::kEncryptedPageSize, body = ps - sqlite::kEncryptedReserve;
  for (size_t at = 0; at + ps <= db.size(); at += ps) out.insert(db.substr(at + body, 12));
  for (size_t at = 32 + 24; at + ps <= wal.size(); at += ps + 24) out.insert(wal.substr(at + body, 12));
  return out;
}

TEST(StoreEncryption, AForkedChildNeverReusesItsParentsNonces) {
  // Opening a store creates its schema on the calling thread, which seals those pages
  // into the WAL with nonces drawn 64 at a time: when this thread forks it holds unused
  // ones. Then parent and child each create a store with the same key and stop before
  // any checkpoint (the WAL keeps the pages sealed on this thread).
  const std::string in_child = TempDb("fork-child"), in_parent = TempDb("fork-parent");
  auto warm = OpenStore({.url = "sqlite:" + TempDb("fork-warm"), .read_connections = 1, .key = Key()});
  ASSERT_TRUE(warm.ok());
  pid_t pid = fork();
  if (pid == 0) {
    auto t = OpenStore({.url = "sqlite:" + in_child, .read_connections = 1, .key = Key()});
    _exit(t.ok() ? 0 : 3);  // no close: the WAL stays as written
  }
  auto t = OpenStore({.url = "sqlite:" + in_parent, .read_connections = 1, .key = Key()});
  ASSERT_TRUE(t.ok());
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const auto a = Nonces(in_child), b = Nonces(in_parent);
  ASSERT_GT(a.size(), 5u);
  for (const std::string& n : a) EXPECT_EQ(b.count(n), 0u) << "a nonce was used twice with the same key";
}

TEST(StoreEncryption, SortsLargerThanMemoryNeedNoTemporaryFile) {
  // temp_store=MEMORY keeps sorts in memory; the VFS refuses temporary files, so a
  // query that wanted one would fail here.
  auto s = OpenStore({.url = "sqlite::memory:", .key = Key()});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE((*s)->Write([](WriteTransaction& tx) -> Status {
                   for (int i = 0; i < 3000; ++i) RETURN_IF_ERROR(tx.Put(Patient("s" + std::to_string(i), i)));
                   return Status::Ok();
                 }).ok());
  SearchQuery q{.type = "Patient", .count = 10, .total = TotalMode::kAccurate};
  q.sort.push_back({"name", ParamType::kString, true});
  auto page = (*s)->Search(q);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->resources.size(), 10u);
  EXPECT_EQ(*page->total, 3000);
}

}  // namespace
}  // namespace rhip::store
