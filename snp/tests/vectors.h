// Access to the real AMD-signed vectors in ../shared/vectors/snp (read at test time,
// never copied into the repository). INDEX.md's table says what each must do.
#pragma once

#include <openssl/asn1.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "snp/verify.h"
#include "tests/support/process.h"

namespace torgw::snp::testvec {

inline std::string root() { return torgw::testing::shared_dir() + "/vectors/snp"; }
inline bool present() { return std::filesystem::exists(root() + "/INDEX.md"); }

inline Bytes read_bytes(const std::string& path) {
  std::string s = torgw::testing::read_file(path);
  return Bytes(s.begin(), s.end());
}
inline bool exists(const std::string& p) { return std::filesystem::exists(p); }

struct Vector {
  std::string name;
  std::string dir;
  std::string result;  // INDEX.md's last column, e.g. "OK", "OK (VLEK expired ...)", "CHAIN OK, SIGNATURE FAILS ..."
  std::string vek_path, ask_path, ark_path;
  bool vlek = false;
};

// Rows of INDEX.md's table that have a report.bin.
inline std::vector<Vector> all() {
  std::vector<Vector> out;
  std::istringstream in(torgw::testing::read_file(root() + "/INDEX.md"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("| ", 0) != 0 || line.rfind("| dir", 0) == 0 || line.rfind("|---", 0) == 0) continue;
    std::vector<std::string> cols;
    std::string cell;
    std::istringstream ls(line.substr(1));
    while (std::getline(ls, cell, '|')) {
      auto b = cell.find_first_not_of(' '), e = cell.find_last_not_of(' ');
      cols.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
    }
    while (!cols.empty() && cols.back().empty()) cols.pop_back();
    if (cols.size() < 3) continue;
    Vector v;
    v.name = cols.front();
    v.result = cols.back();
    v.dir = root() + "/" + v.name;
    if (!exists(v.dir + "/report.bin")) continue;
    v.vlek = exists(v.dir + "/vlek.pem");
    v.vek_path = v.dir + (v.vlek ? "/vlek.pem" : "/vcek.pem");
    v.ask_path = v.dir + (v.vlek ? "/asvk.pem" : "/ask.pem");
    v.ark_path = v.dir + "/ark.pem";
    out.push_back(v);
  }
  return out;
}

inline std::optional<Vector> get(const std::string& name) {
  for (auto& v : all())
    if (v.name == name) return v;
  return std::nullopt;
}

inline CertChain chain_of(const Vector& v) {
  CertChain c;
  c.vek = *load_certificate(read_bytes(v.vek_path));
  c.ask = *load_certificate(read_bytes(v.ask_path));
  c.ark = *load_certificate(read_bytes(v.ark_path));
  c.vek_kind = v.vlek ? SignerKind::Vlek : SignerKind::Vcek;
  return c;
}

// A time inside the VCEK/VLEK's validity (an hour after notBefore): VLEKs live a year.
inline std::int64_t inside_validity(const Bytes& vek_der) {
  const unsigned char* p = vek_der.data();
  X509* x = d2i_X509(nullptr, &p, static_cast<long>(vek_der.size()));
  std::tm tm{};
  ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm);
  X509_free(x);
  return static_cast<std::int64_t>(timegm(&tm)) + 3600;
}

}  // namespace torgw::snp::testvec
