// Hetzner userdata: key=value text and #cloud-config write_files, accepted or refused as
// docs/config.md "Hetzner userdata" says.
#include <catch2/catch.hpp>

#include <map>

#include "common/bytes.h"
#include "config/config.h"
#include "tests/support/result_matchers.h"

using namespace torgw;
using namespace torgw::config;
using torgw::testing::FailsWith;

namespace {

std::map<std::string, std::string> as_map(const std::vector<Entry>& e) {
  std::map<std::string, std::string> m;
  for (const auto& x : e) m[x.key] = x.value;
  return m;
}

std::string reason(std::string_view body) {
  auto r = parse_hetzner_userdata(body);
  return r ? std::string("ok") : r.error().reason;
}

}  // namespace

TEST_CASE("userdata: torgw.conf key=value text") {
  auto r = parse_hetzner_userdata("# my gateway\r\nbackend=exit.example.net:1080\nidentity = ephemeral\n");
  REQUIRE(r);
  auto m = as_map(*r);
  CHECK(m.size() == 2);
  CHECK(m["backend"] == "exit.example.net:1080");
  CHECK(m["identity"] == "ephemeral");
  CHECK(parse_hetzner_userdata("")->empty());
}

TEST_CASE("userdata: cloud-config write_files with a literal block") {
  const char* body = "#cloud-config\n"
                     "# written by hand\n"
                     "write_files:\n"
                     "  - path: /etc/torgw/torgw.conf\n"
                     "    permissions: '0600'\n"
                     "    owner: root:root\n"
                     "    content: |\n"
                     "      backend=exit.example.net:1080\n"
                     "\n"
                     "      # a comment inside the file\n"
                     "      identity=ephemeral\n";
  auto r = parse_hetzner_userdata(body);
  INFO((r ? "" : r.error().to_string()));
  REQUIRE(r);
  auto m = as_map(*r);
  CHECK(m.size() == 2);
  CHECK(m["backend"] == "exit.example.net:1080");
  CHECK(m["identity"] == "ephemeral");
  // The block's lines number from the content.
  CHECK((*r)[1].line == 4);
}

TEST_CASE("userdata: cloud-config shapes hcloud users write") {
  // The dash at the key's indentation, `|-`, CRLF, the entry's keys in another order.
  auto r = parse_hetzner_userdata("#cloud-config\r\nwrite_files:\r\n- content: |-\r\n    backend=10.0.0.1:1080\r\n  "
                                  "path: /etc/torgw/torgw.conf\r\n");
  INFO((r ? "" : r.error().to_string()));
  REQUIRE(r);
  CHECK(as_map(*r)["backend"] == "10.0.0.1:1080");
  // The dash alone on its line.
  r = parse_hetzner_userdata(
      "#cloud-config\nwrite_files:\n  -\n    path: \"/etc/torgw/torgw.conf\"\n    content: backend=a:1\n");
  INFO((r ? "" : r.error().to_string()));
  REQUIRE(r);
  CHECK(as_map(*r)["backend"] == "a:1");
}

TEST_CASE("userdata: cloud-config with encoding b64, one line and folded over lines") {
  const std::string conf = "backend=exit.example.net:1080\nidentity=ephemeral\n";
  const std::string b64 = to_base64(as_bytes(conf));
  for (const char* enc : {"b64", "base64"}) {
    auto r = parse_hetzner_userdata("#cloud-config\nwrite_files:\n- encoding: " + std::string(enc) +
                                    "\n  content: " + b64 + "\n  path: /etc/torgw/torgw.conf\n");
    INFO((r ? "" : r.error().to_string()));
    REQUIRE(r);
    CHECK(as_map(*r)["identity"] == "ephemeral");
  }
  auto r = parse_hetzner_userdata(
      "#cloud-config\nwrite_files:\n- path: /etc/torgw/torgw.conf\n  encoding: b64\n  content: |\n    " +
      b64.substr(0, 20) + "\n    " + b64.substr(20) + "\n");
  INFO((r ? "" : r.error().to_string()));
  REQUIRE(r);
  CHECK(as_map(*r)["backend"] == "exit.example.net:1080");
}

TEST_CASE("userdata: a cloud-config that writes another file is refused") {
  CHECK(reason("#cloud-config\nwrite_files:\n- path: /etc/ssh/sshd_config\n  content: PermitRootLogin yes\n") ==
        "hetzner:cloud_config_other_file");
  // ... also next to the right one.
  CHECK(reason("#cloud-config\nwrite_files:\n- path: /etc/torgw/torgw.conf\n  content: backend=a:1\n"
               "- path: /root/x\n  content: y\n") == "hetzner:cloud_config_other_file");
  CHECK(reason("#cloud-config\nwrite_files:\n- path: /etc/torgw/torgw.conf\n  content: backend=a:1\n"
               "- path: /etc/torgw/torgw.conf\n  content: backend=b:1\n") == "hetzner:cloud_config_duplicate");
}

TEST_CASE("userdata: cloud-config outside the subset is refused with a reason") {
  auto W = [](const std::string& rest) { return reason("#cloud-config\n" + rest); };
  CHECK(W("") == "hetzner:cloud_config_no_torgw_conf");
  CHECK(W("write_files:\n") == "hetzner:cloud_config_no_torgw_conf");
  CHECK(W("runcmd:\n  - reboot\n") == "hetzner:cloud_config_unsupported");
  CHECK(W("write_files:\n- path: /etc/torgw/torgw.conf\n  content: backend=a:1\nruncmd:\n- x\n") ==
        "hetzner:cloud_config_unsupported");
  CHECK(W("write_files: [{path: /etc/torgw/torgw.conf, content: x}]\n") == "hetzner:cloud_config_unsupported");
  CHECK(W("write_files:\n- path: /etc/torgw/torgw.conf\n  content: >\n    backend=a:1\n") ==
        "hetzner:cloud_config_unsupported");
  CHECK(W("write_files:\n- path: /etc/torgw/torgw.conf\n  append: true\n  content: backend=a:1\n") ==
        "hetzner:cloud_config_unsupported");
  CHECK(W("write_files:\n- path: /etc/torgw/torgw.conf\n  content: \"backend=a:1\\n\"\n") ==
        "hetzner:cloud_config_unsupported");
  CHECK(W("write_files:\n- path: /etc/torgw/torgw.conf\n  encoding: gzip\n  content: x\n") ==
        "hetzner:cloud_config_encoding");
  CHECK(W("write_files:\n- path: /etc/torgw/torgw.conf\n  encoding: b64\n  content: '%%%'\n") ==
        "hetzner:cloud_config_bad_base64");
  CHECK(W("write_files:\n- path: /etc/torgw/torgw.conf\n") == "hetzner:cloud_config_syntax");  // no content
  CHECK(W("write_files:\n- content: backend=a:1\n") == "hetzner:cloud_config_syntax");         // no path
  CHECK(W("write_files:\n- path: /etc/torgw/torgw.conf\n\tcontent: x\n") == "hetzner:cloud_config_syntax");
  CHECK(W("write_files:\n- path: /etc/torgw/torgw.conf\n   content: x\n") == "hetzner:cloud_config_syntax");
  CHECK(W("write_files:\n- path: /etc/torgw/torgw.conf\n  path: /x\n  content: x\n") ==
        "hetzner:cloud_config_duplicate");
  CHECK(W("write_files:\n- path: '/etc/torgw/torgw.conf\n  content: x\n") == "hetzner:cloud_config_unsupported");
  CHECK(W("write_files:\n  path: /etc/torgw/torgw.conf\n") == "hetzner:cloud_config_syntax");
  CHECK(W("  write_files:\n") == "hetzner:cloud_config_syntax");
  // The content is torgw.conf text: its own errors come through.
  CHECK(W("write_files:\n- path: /etc/torgw/torgw.conf\n  content: |\n    not a pair\n") == "hetzner:syntax");
  CHECK(W("write_files:\n- path: /etc/torgw/torgw.conf\n  content: |\n    Bad.Key=1\n") != "ok");
}

TEST_CASE("userdata: garbage and cloud-init's other formats are refused, naming the accepted ones") {
  for (std::string body :
       {std::string("#!/bin/bash\necho hi\n"), std::string("#include\nhttp://x/\n"),
        std::string("Content-Type: multipart/mixed; boundary=x\n"), std::string("#cloud-boothook\n"),
        std::string("\x1f\x8b\x08\x00garbage", 8), std::string("just some words\n"), std::string("\x01\x02\x03\xff", 4),
        std::string("#cloud-config\n\x01\n"), std::string("#cloud-config\n# \xc3\xa4\n")}) {
    auto r = parse_hetzner_userdata(body);
    INFO(body);
    REQUIRE_FALSE(r);
    CHECK_THAT(r, FailsWith("hetzner:userdata_format"));
    CHECK(r.error().detail.find("#cloud-config") != std::string::npos);
    CHECK(r.error().detail.find("key=value") != std::string::npos);
  }
  CHECK(reason(std::string(kMaxTextBytes + 1, '#')) == "hetzner:too_large");
}

TEST_CASE("userdata: errors never carry the content's values") {
  const std::string secret = "c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1ub3QtbGVhaw==";
  for (std::string body :
       {"#cloud-config\nwrite_files:\n- path: /etc/x\n  content: identity_key=" + secret + "\n",
        "#cloud-config\nwrite_files:\n- path: /etc/torgw/torgw.conf\n  content: |\n    identity_key " + secret + "\n",
        "identity_key " + secret + "\n"}) {
    auto r = parse_hetzner_userdata(body);
    REQUIRE_FALSE(r);
    CHECK(r.error().to_string().find(secret) == std::string::npos);
  }
}
