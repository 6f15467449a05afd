// The fuzz targets without libFuzzer: feeds every file of the corpus folders
// given on the command line to LLVMFuzzerTestOneInput, then a fixed set of
// variants of each (prefixes, byte flips, duplicated halves) from a seeded
// generator, so the replay is deterministic. Built with the normal compiler
// into the unit-test build; ctest runs it over fuzz/corpus/<target>/ (the
// "fuzz smoke" of `make test`). The long libFuzzer runs use the same targets
// (build-fuzz, `make fuzz`).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));

namespace {

void Run(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

void RunVariants(const std::string& seed, std::mt19937& rng) {
  Run(seed);
  if (seed.empty()) return;
  std::uniform_int_distribution<size_t> pos(0, seed.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 16; ++i) Run(seed.substr(0, pos(rng)));  // truncations
  for (int i = 0; i < 32; ++i) {                                // one to three changed bytes
    std::string v = seed;
    for (int k = 0, n = 1 + i % 3; k < n; ++k) v[pos(rng)] = static_cast<char>(byte(rng));
    Run(v);
  }
  for (int i = 0; i < 8; ++i) {  // a piece repeated
    const size_t a = pos(rng), b = pos(rng);
    std::string v = seed;
    v.insert(std::max(a, b), seed.substr(std::min(a, b), std::max(a, b) - std::min(a, b)));
    Run(v);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  std::mt19937 rng(20261202);
  size_t files = 0;
  for (int i = 1; i < argc; ++i) {
    std::vector<std::filesystem::path> paths;
    if (std::filesystem::is_directory(argv[i])) {
      for (const auto& e : std::filesystem::directory_iterator(argv[i]))
        if (e.is_regular_file()) paths.push_back(e.path());
    } else {
      paths.emplace_back(argv[i]);
    }
    std::sort(paths.begin(), paths.end());
    for (const auto& p : paths) {
      std::ifstream in(p, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "cannot read %s\n", p.c_str());
        return 2;
      }
      RunVariants(std::string(std::istreambuf_iterator<char>(in), {}), rng);
      ++files;
    }
  }
  if (files == 0) {
    std::fprintf(stderr, "no corpus files given: nothing was tested\n");
    return 2;
  }
  std::printf("replayed %zu corpus files (with 57 variants each): no invariant broken\n", files);
  return 0;
}
