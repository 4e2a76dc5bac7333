// torgw's minisign signer and verifier against Debian's minisign, both ways, through the
// real binaries: ours signs and minisign -V accepts it; minisign signs (prehashed and
// legacy) and torgw release verify accepts it; a changed file, another key, an extra line
// in the signature get the same verdict from both tools (or a clear input error).
#include <catch2/catch.hpp>

#include "tests/support/skip.h"

#include <nlohmann/json.hpp>

#include "tests/support/process.h"
#include "tests/support/tempdir.h"

using namespace torgw::testing;

namespace {

std::string torgw_bin() { return binary_dir() + "/cli/torgw"; }

// A key pair from the real minisign, unencrypted (-W) so no password prompt is needed.
void keygen(const std::string& minisign, const std::string& pub, const std::string& sec) {
  auto r = run({minisign, "-G", "-W", "-f", "-p", pub, "-s", sec});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
}

}  // namespace

TEST_CASE("minisign interop: ours signs, minisign verifies; minisign signs, we verify") {
  const std::string minisign = find_program("minisign");
  if (minisign.empty()) {
    TORGW_SKIP(torgw::testing::Needs::package, "minisign not installed (scripts/setup)");
  }
  TempDir dir("minisign");
  const std::string pub = dir.file("release.pub"), sec = dir.file("release.key");
  const std::string pub2 = dir.file("other.pub"), sec2 = dir.file("other.key");
  keygen(minisign, pub, sec);
  keygen(minisign, pub2, sec2);
  const std::string file = dir.file("manifest.json");
  write_file(file, "{\n  \"format\": \"torgw-image-manifest/1\"\n}\n");

  // Ours signs: minisign -V accepts it and shows our trusted comment.
  auto s = run({torgw_bin(), "release", "sign", file, "--key", sec, "--trusted-comment", "torgw 0.1.0 abc", "--json"});
  INFO(s.out << s.err);
  REQUIRE(s.exit_code == 0);
  auto sj = nlohmann::json::parse(s.out);
  CHECK(sj["signature_file"] == file + ".minisig");
  auto v = run({minisign, "-V", "-p", pub, "-m", file});
  INFO(v.out << v.err);
  CHECK(v.exit_code == 0);
  CHECK(v.out.find("Trusted comment: torgw 0.1.0 abc") != std::string::npos);
  // minisign prints the key id the way we do.
  CHECK(read_file(pub).find(sj["key_id"].get<std::string>()) != std::string::npos);
  CHECK(run({minisign, "-V", "-p", pub2, "-m", file}).exit_code != 0);

  // minisign signs (default prehashed ED, and legacy Ed with -l): we verify.
  for (bool legacy : {false, true}) {
    INFO("legacy " << legacy);
    const std::string sig = dir.file(legacy ? "legacy.minisig" : "ms.minisig");
    std::vector<std::string> argv = {minisign, "-S", "-s", sec, "-m", file, "-x", sig, "-t", "by minisign"};
    if (legacy) argv.push_back("-l");
    auto m = run(argv);
    INFO(m.out << m.err);
    REQUIRE(m.exit_code == 0);
    auto ours = run({torgw_bin(), "release", "verify", file, "--sig", sig, "--key", pub, "--json"});
    INFO(ours.out << ours.err);
    CHECK(ours.exit_code == 0);
    auto j = nlohmann::json::parse(ours.out);
    CHECK(j["valid"] == true);
    CHECK(j["trusted_comment"] == "by minisign");
    // Another key: both tools refuse.
    auto wrong = run({torgw_bin(), "release", "verify", file, "--sig", sig, "--key", pub2, "--json"});
    CHECK(wrong.exit_code == 1);
    CHECK(nlohmann::json::parse(wrong.out)["reason"] == "minisign.wrong_key");
    CHECK(run({minisign, "-V", "-p", pub2, "-m", file, "-x", sig}).exit_code != 0);
  }

  // A tampered manifest (an extra field): both tools refuse, ours with the reason.
  const std::string tampered = dir.file("tampered.json");
  write_file(tampered, "{\n  \"format\": \"torgw-image-manifest/1\",\n  \"extra\": 1\n}\n");
  auto t = run({torgw_bin(), "release", "verify", tampered, "--sig", file + ".minisig", "--key", pub});
  CHECK(t.exit_code == 1);
  CHECK(t.out.find("INVALID: " + tampered + ": minisign.bad_signature") == 0);
  CHECK(run({minisign, "-V", "-p", pub, "-m", tampered, "-x", file + ".minisig"}).exit_code != 0);

  // A changed trusted comment: both refuse.
  std::string sig_text = read_file(file + ".minisig");
  std::string forged = sig_text;
  forged.replace(forged.find("torgw 0.1.0 abc"), 15, "torgw 9.9.9 abc");
  write_file(dir.file("forged.minisig"), forged);
  auto f = run({torgw_bin(), "release", "verify", file, "--sig", dir.file("forged.minisig"), "--key", pub, "--json"});
  CHECK(f.exit_code == 1);
  CHECK(nlohmann::json::parse(f.out)["reason"] == "minisign.bad_trusted_comment");
  CHECK(run({minisign, "-V", "-p", pub, "-m", file, "-x", dir.file("forged.minisig")}).exit_code != 0);

  // An extra line in the signature file is malformed input: exit 2, one line naming it.
  write_file(dir.file("extra.minisig"), sig_text + "extra: line\n");
  auto e = run({torgw_bin(), "release", "verify", file, "--sig", dir.file("extra.minisig"), "--key", pub});
  CHECK(e.exit_code == 2);
  CHECK(e.err == "torgw: " + dir.file("extra.minisig") + ": minisign.bad_format: signature: 5 lines, expected 4\n");
  CHECK(run({torgw_bin(), "release", "verify", file, "--sig", dir.file("missing"), "--key", pub}).exit_code == 2);
}

TEST_CASE("minisign interop: an encrypted (scrypt) key from minisign -G signs with --password-stdin") {
  const std::string minisign = find_program("minisign");
  if (minisign.empty()) {
    TORGW_SKIP(torgw::testing::Needs::package, "minisign not installed (scripts/setup)");
  }
  TempDir dir("minisign-enc");
  const std::string pub = dir.file("enc.pub"), sec = dir.file("enc.key"), file = dir.file("manifest.json");
  // minisign reads the password (twice) from stdin when it is not a terminal; its scrypt
  // costs about 1 GiB and a few seconds, as it does for a real release key.
  auto g = run({minisign, "-G", "-f", "-p", pub, "-s", sec}, std::chrono::milliseconds(120000),
               {.stdin_data = "correct horse\ncorrect horse\n"});
  INFO(g.out << g.err);
  REQUIRE(g.exit_code == 0);
  write_file(file, "{}\n");
  auto s = run({torgw_bin(), "release", "sign", file, "--key", sec, "--password-stdin"},
               std::chrono::milliseconds(120000), {.stdin_data = "correct horse\n"});
  INFO(s.out << s.err);
  REQUIRE(s.exit_code == 0);
  CHECK(run({minisign, "-V", "-p", pub, "-m", file}).exit_code == 0);
  auto bad = run({torgw_bin(), "release", "sign", file, "--key", sec, "--password-stdin"},
                 std::chrono::milliseconds(120000), {.stdin_data = "wrong\n"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("minisign.bad_password") != std::string::npos);
  // No password at all: said, not guessed.
  auto none = run({torgw_bin(), "release", "sign", file, "--key", sec});
  CHECK(none.exit_code == 2);
  CHECK(none.err.find("minisign.password_required") != std::string::npos);
}
