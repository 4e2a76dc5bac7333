// `torgw measure` performance targets (issue 13):
//   a 4 MiB OVMF with 64 vCPUs (parse + launch digest)        <= 15 ms CPU
//   every SNP row of ../shared/vectors/measure/vectors.json    <= 1 s CPU (files read,
//                                                                 json parsed, rows checked)
// Usage: measure_bench [--iterations N] [--shared DIR] [--ovmf FILE]
// The 4 MiB firmware is Debian trixie's OVMF.fd from DIR/vectors/measure/fixtures, else
// --ovmf, else the largest of Debian's /usr/share/OVMF images that has SEV metadata.
// Judged on process CPU time (CLOCK_PROCESS_CPUTIME_ID): on a shared machine wall time
// includes waiting for a core.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "measure/measure.h"

using namespace torgw;
using namespace torgw::measure;
using Clock = std::chrono::steady_clock;

namespace {

double cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

struct Stats {
  double cpu_median_ms, cpu_max_ms, wall_median_ms;
};

Stats measure_fn(int n, const std::function<void()>& fn) {
  fn();  // warm up
  std::vector<double> cpu, wall;
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    const double c0 = cpu_ms();
    fn();
    cpu.push_back(cpu_ms() - c0);
    wall.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(cpu.begin(), cpu.end());
  std::sort(wall.begin(), wall.end());
  return {cpu[cpu.size() / 2], cpu.back(), wall[wall.size() / 2]};
}

void print_stats(const std::string& what, const Stats& s, double target_ms) {
  std::printf("%-62s cpu median %8.3f ms  max %8.3f ms  wall median %8.3f ms  target <= %.0f ms: %s\n", what.c_str(),
              s.cpu_median_ms, s.cpu_max_ms, s.wall_median_ms, target_ms,
              s.cpu_median_ms <= target_ms ? "met" : "MISSED");
}

std::string read_all(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::string pick_ovmf(const std::string& shared, const std::string& given) {
  if (!given.empty()) return given;
  const std::string fixture = shared + "/vectors/measure/fixtures/debian-trixie-ovmf-2025.02-8+deb13u1-OVMF.fd";
  if (std::filesystem::exists(fixture)) return fixture;
  std::string best;
  std::uintmax_t best_size = 0;
  for (const char* dir : {"/usr/share/OVMF", "/usr/share/ovmf"}) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      const std::string bytes = read_all(e.path());
      if (bytes.size() > best_size && parse_ovmf(as_bytes(bytes)).ok()) {
        best = e.path();
        best_size = bytes.size();
      }
    }
  }
  return best;
}

// Every SNP row: read the files, compute, compare. Returns the number of rows checked, or
// -1 on a mismatch.
int run_table(const std::string& dir) {
  const auto doc = nlohmann::json::parse(read_all(dir + "/vectors.json"));
  int n = 0;
  for (const auto& row : doc.at("vectors")) {
    const std::string mode = row.at("mode");
    if (mode != "snp" && mode != "snp:ovmf-hash") continue;
    auto file = [&](const std::string& name) {
      if (name == "/dev/null") return std::string();
      const std::string f = dir + "/fixtures/" + name;
      return read_all(std::filesystem::exists(f) ? f : dir + "/" + name);
    };
    const std::string ovmf = file(row.at("ovmf"));
    const std::string expected = row.at("expected");
    std::string got;
    if (mode == "snp:ovmf-hash") {
      auto h = snp_ovmf_hash(as_bytes(ovmf));
      if (h) got = to_hex(*h);
    } else {
      SnpLaunch l;
      l.ovmf = as_bytes(ovmf);
      l.vcpus = row.at("vcpus");
      l.vmm = *parse_vmm_type(row.at("vmm_type").get<std::string>());
      if (!row.at("vcpu_sig").is_null()) l.vcpu_sig = std::stoul(row.at("vcpu_sig").get<std::string>(), nullptr, 0);
      l.guest_features = std::stoull(row.at("guest_features").get<std::string>(), nullptr, 0);
      if (!row.at("snp_ovmf_hash").is_null()) {
        auto b = from_hex(row.at("snp_ovmf_hash").get<std::string>());
        Digest384 seed{};
        std::copy_n(b->begin(), 48, seed.begin());
        l.ovmf_hash = seed;
      }
      std::string kernel, initrd;
      if (!row.at("kernel").is_null()) {
        kernel = file(row.at("kernel"));
        DirectBoot b{as_bytes(kernel), std::nullopt, row.at("append").is_null() ? "" : row.at("append")};
        if (!row.at("initrd").is_null()) {
          initrd = file(row.at("initrd"));
          b.initrd = as_bytes(initrd);
        }
        l.direct_boot = b;
      }
      auto d = snp_launch_digest(l);
      got = d ? to_hex(*d) : "ERROR:" + d.error().reason;
    }
    const bool error_row = expected.rfind("ERROR:", 0) == 0;
    if (error_row ? got.rfind("ERROR:", 0) != 0 : got != expected) {
      std::fprintf(stderr, "measure_bench: row %s: got %s\n", row.at("name").get<std::string>().c_str(), got.c_str());
      return -1;
    }
    ++n;
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  int n = 50;
  std::string shared = std::getenv("TORGW_SHARED_DIR") ? std::getenv("TORGW_SHARED_DIR") : "../shared";
  std::string ovmf_path;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--iterations") && i + 1 < argc) n = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--shared") && i + 1 < argc) shared = argv[++i];
    else if (!std::strcmp(argv[i], "--ovmf") && i + 1 < argc) ovmf_path = argv[++i];
  }
  if (n < 1) n = 1;
  double load[1] = {0};
  getloadavg(load, 1);
  std::printf("measure_bench: %d iterations each (load average %.1f; CPU medians are the figure)\n", n, load[0]);

  ovmf_path = pick_ovmf(shared, ovmf_path);
  if (ovmf_path.empty()) {
    std::fprintf(stderr, "measure_bench: no OVMF with SEV metadata found (give --ovmf)\n");
    return 1;
  }
  const std::string ovmf = read_all(ovmf_path);
  std::printf("measure_bench: OVMF %s (%zu bytes)\n", ovmf_path.c_str(), ovmf.size());
  SnpLaunch l;
  l.ovmf = as_bytes(ovmf);
  l.vcpus = 64;
  l.vcpu_sig = *vcpu_signature("EPYC-Milan");
  std::string digest;
  auto s = measure_fn(n, [&] {
    auto d = snp_launch_digest(l);
    if (!d) {
      std::fprintf(stderr, "measure_bench: %s\n", d.error().to_string().c_str());
      std::exit(1);
    }
    digest = to_hex(*d);
  });
  print_stats("snp launch digest, " + std::to_string(ovmf.size() >> 20) + " MiB OVMF, 64 vCPUs, EPYC-Milan", s, 15);
  std::printf("  digest %s\n", digest.c_str());

  const std::string dir = shared + "/vectors/measure";
  if (std::filesystem::exists(dir + "/vectors.json")) {
    int rows = 0;
    auto t = measure_fn(std::max(1, n / 10), [&] {
      rows = run_table(dir);
      if (rows < 0) std::exit(1);
    });
    print_stats("vectors.json: all " + std::to_string(rows) + " SNP rows (read, compute, compare)", t, 1000);
  } else {
    std::printf("measure_bench: %s/vectors.json absent: table measurement skipped\n", dir.c_str());
  }
  return 0;
}
