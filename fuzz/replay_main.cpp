// Replay driver for fuzz targets in builds without libFuzzer: runs the target's entry
// point over every file in the given corpus directories (and every prefix of each, since
// truncation is the commonest malformation), so the corpus is a regression suite in
// every build, including the ASan one.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::size_t runs = 0, files = 0;
  for (int i = 1; i < argc; ++i) {
    std::vector<fs::path> paths;
    if (fs::is_directory(argv[i])) {
      for (const auto& e : fs::recursive_directory_iterator(argv[i]))
        if (e.is_regular_file()) paths.push_back(e.path());
    } else if (fs::is_regular_file(argv[i])) {
      paths.emplace_back(argv[i]);
    } else {
      std::fprintf(stderr, "replay: no such corpus: %s\n", argv[i]);
      return 2;
    }
    for (const auto& p : paths) {
      std::ifstream f(p, std::ios::binary);
      std::vector<std::uint8_t> data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      ++files;
      for (std::size_t n = 0; n <= data.size(); ++n) {
        // Copy so ASan catches reads one past the prefix.
        std::vector<std::uint8_t> prefix(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
        LLVMFuzzerTestOneInput(prefix.data(), prefix.size());
        ++runs;
      }
    }
  }
  std::printf("replay: %zu files, %zu inputs, no crash\n", files, runs);
  return files == 0 ? 1 : 0;
}
