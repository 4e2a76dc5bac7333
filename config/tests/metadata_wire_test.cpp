// The metadata helper's pipe format: what the helper writes, PID 1 reads back exactly;
// everything else is refused with a metadata_wire.* reason, never a crash. The base64
// strings below were made with coreutils base64 (printf '%s' '127.0.0.1:9050' | base64),
// not with the code under test.
#include <catch2/catch.hpp>

#include "config/metadata.h"

using namespace torgw;
using namespace torgw::config;

namespace {

std::string reason_of(std::string_view text) {
  auto r = parse_metadata_wire(text);
  return r ? std::string("ok") : r.error().reason;
}

const std::string H = "torgw-metadata 1\n";

}  // namespace

TEST_CASE("metadata wire: the helper's output parses back to the same result") {
  MetadataResult m;
  m.gce.state = ProviderState::Present;
  m.gce.data.entries = {
      {"backend", "127.0.0.1:9050", 0}, {"backend_password", "hunter2 secret", 0}, {"transfer_blob", "", 0}};
  m.hetzner.state = ProviderState::Absent;
  m.hetzner.note = "no userdata (HTTP 404)";
  const std::string text = format_metadata_wire(m);
  CHECK(text == H + "provider gce present -\n"
                    "entry gce backend MTI3LjAuMC4xOjkwNTA=\n"
                    "entry gce backend_password aHVudGVyMiBzZWNyZXQ=\n"
                    "entry gce transfer_blob -\n"
                    "provider hetzner absent bm8gdXNlcmRhdGEgKEhUVFAgNDA0KQ==\n"
                    "end 3\n");
  auto r = parse_metadata_wire(text);
  REQUIRE(r);
  CHECK_FALSE(r->failed);
  CHECK(r->result.gce.state == ProviderState::Present);
  CHECK(r->result.gce.data.source == Source::Gce);
  REQUIRE(r->result.gce.data.entries.size() == 3);
  CHECK(r->result.gce.data.entries[1].value == "hunter2 secret");
  CHECK(r->result.gce.data.entries[2].value.empty());
  CHECK(r->result.hetzner.state == ProviderState::Absent);
  CHECK(r->result.hetzner.note == "no userdata (HTTP 404)");
  CHECK(r->result.hetzner.data.source == Source::Hetzner);
}

TEST_CASE("metadata wire: a fetch error crosses with its reason token; a provider not tried is omitted") {
  const std::string text = format_metadata_wire(
      Result<MetadataResult>(make_error("gce:http_500", "attribute listing")));
  CHECK(text == H + "error gce:http_500 YXR0cmlidXRlIGxpc3Rpbmc=\n");
  auto r = parse_metadata_wire(text);
  REQUIRE(r);
  CHECK(r->failed);
  CHECK(r->error == make_error("gce:http_500", "attribute listing"));
  CHECK(format_metadata_wire(MetadataResult{}) == H + "end 0\n");
  // A reason the wire cannot carry is replaced by one that says so, never passed through.
  auto odd = parse_metadata_wire(format_metadata_wire(Result<MetadataResult>(make_error("Bad Reason\n"))));
  REQUIRE(odd);
  CHECK(odd->error.reason == "metadata:helper_bad_reason");
}

TEST_CASE("metadata wire: bad input is refused with a named reason") {
  CHECK(reason_of("") == "metadata_wire.truncated");
  CHECK(reason_of(H) == "metadata_wire.truncated");
  CHECK(reason_of(H + "end 0") == "metadata_wire.truncated");  // no newline
  CHECK(reason_of("torgw-metadata 2\nend 0\n") == "metadata_wire.bad_header");
  CHECK(reason_of("HTTP/1.1 200 OK\r\n") == "metadata_wire.bad_header");
  CHECK(reason_of(H + "end 0\r\n") == "metadata_wire.bad_line");  // no \r
  CHECK(reason_of(H + "end  0\n") == "metadata_wire.bad_line");   // two spaces
  CHECK(reason_of(H + "end 1\n") == "metadata_wire.bad_count");
  CHECK(reason_of(H + "end 00\n") == "metadata_wire.bad_count");
  CHECK(reason_of(H + "end 0\nend 0\n") == "metadata_wire.trailing");
  CHECK(reason_of(H + "end 0\nx") == "metadata_wire.trailing");
  CHECK(reason_of(H + "hello\n") == "metadata_wire.bad_line");
  CHECK(reason_of(H + "provider aws present -\nend 0\n") == "metadata_wire.bad_provider");
  CHECK(reason_of(H + "provider gce maybe -\nend 0\n") == "metadata_wire.bad_state");
  CHECK(reason_of(H + "provider gce absent -\nprovider gce absent -\nend 0\n") == "metadata_wire.duplicate_provider");
  CHECK(reason_of(H + "provider gce absent G1sySg==\nend 0\n") == "metadata_wire.not_printable");  // ESC[2J
  CHECK(reason_of(H + "provider gce absent not*base64\nend 0\n") == "metadata_wire.bad_base64");
  CHECK(reason_of(H + "entry gce backend MTI3LjAuMC4xOjkwNTA=\nend 1\n") == "metadata_wire.entry_without_provider");
  CHECK(reason_of(H + "provider gce absent -\nentry gce backend -\nend 1\n") == "metadata_wire.entry_without_provider");
  CHECK(reason_of(H + "provider gce present -\nentry gce Backend -\nend 1\n") == "metadata_wire.bad_key");
  CHECK(reason_of(H + "provider gce present -\nentry gce " + std::string(65, 'a') + " -\nend 1\n") ==
        "metadata_wire.bad_key");
  CHECK(reason_of(H + "provider gce present -\nentry gce backend\nend 1\n") == "metadata_wire.bad_line");
  CHECK(reason_of(H + "provider gce present -\nentry gce backend a b\nend 1\n") == "metadata_wire.bad_line");
  CHECK(reason_of(H + "error FATAL=x -\n") == "metadata_wire.bad_reason");
  CHECK(reason_of(H + "error gce:http_500 G1sySg==\n") == "metadata_wire.not_printable");
  CHECK(reason_of(H + "provider gce absent -\nerror gce:http_500 -\n") == "metadata_wire.bad_line");
  CHECK(reason_of(H + "error gce:http_500 -\nend 0\n") == "metadata_wire.trailing");
  CHECK(reason_of(std::string(kMaxMetadataWireBytes + 1, 'a')) == "metadata_wire.too_large");
  std::string many = H + "provider gce present -\n";
  for (std::size_t i = 0; i <= kMaxEntries; ++i) many += "entry gce k" + std::to_string(i) + " -\n";
  CHECK(reason_of(many + "end " + std::to_string(kMaxEntries + 1) + "\n") == "metadata_wire.too_many_entries");
  // Every prefix of a good report that is not the whole of it is refused.
  const std::string good = H + "provider gce present -\nentry gce backend MTI3LjAuMC4xOjkwNTA=\nend 1\n";
  for (std::size_t n = 0; n < good.size(); ++n) CHECK(reason_of(good.substr(0, n)) != "ok");
  CHECK(reason_of(good) == "ok");
}
