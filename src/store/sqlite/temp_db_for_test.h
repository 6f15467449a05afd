// Tests only: fresh paths for store files under the temp folder, removed (with
// their -wal and -shm) when the test process exits, so that runs leave nothing
// behind. A forked child's exit removes nothing: the parent still uses the files.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

namespace rhip::store::sqlite {

inline std::string TempStoreFile(const std::string& prefix, const std::string& name) {
  struct Made {
    pid_t owner = getpid();
    std::vector<std::string> paths;
    ~Made() {
      if (getpid() != owner) return;
      std::error_code ec;
      for (const auto& p : paths)
        for (const char* s : {"", "-wal", "-shm"}) std::filesystem::remove(p + s, ec);
    }
  };
  static Made made;
  const auto p = std::filesystem::temp_directory_path() / (prefix + std::to_string(getpid()) + "-" + name + ".db");
  for (const char* s : {"", "-wal", "-shm"}) std::filesystem::remove(p.string() + s);
  made.paths.push_back(p.string());
  return p.string();
}

}  // namespace rhip::store::sqlite
