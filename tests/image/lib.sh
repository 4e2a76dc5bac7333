# Shared helpers for tests/image/*.sh (sourced). Tests exit 0 pass, 1 fail, 77 skip.
# shellcheck shell=bash
set -euo pipefail
export LC_ALL=C
# shellcheck disable=SC2034  # SRC is for the tests that source this file
SRC=${TORGW_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
fail() { echo "FAIL: $*" >&2; exit 1; }
# shellcheck source=../support/skip.sh
. "$(dirname "${BASH_SOURCE[0]}")/../support/skip.sh"
pass() { echo "ok: $*"; }
# manifest FILE EXPR: a Python expression over m (the parsed manifest.json)
manifest() { python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print($2)" "$1"; }
require_fixture() {
  [ -f "$1/manifest.json" ] || skip fixture "no image fixture in $1 (image_fixture_build failed or was skipped)"
}
# pinned_tls_terminator DIR TLS_PORT TARGET_PORT: writes a self-signed P-256 certificate and
# a stunnel4 configuration (TLS 1.3 only, 127.0.0.1:TLS_PORT -> 127.0.0.1:TARGET_PORT) into
# DIR and prints the certificate's pin as curl's --pinnedpubkey wants it, computed by the
# openssl CLI (docs/cross-provider.md), not by torgw. Start it: stunnel4 DIR/stunnel.conf.
pinned_tls_terminator() {
  local dir=$1 pin
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=exit.torgw.test -keyout "$dir/exit.key" -out "$dir/exit.pem" 2> "$dir/openssl.err" \
    || { cat "$dir/openssl.err" >&2; return 1; }
  pin=sha256//$(openssl x509 -in "$dir/exit.pem" -pubkey -noout | openssl pkey -pubin -outform der \
                | openssl dgst -sha256 -binary | base64)
  [ ${#pin} -eq 52 ] || { echo "pin computation: '$pin'" >&2; return 1; }
  printf 'foreground = yes\npid =\ndebug = info\n[exit]\naccept = 127.0.0.1:%s\nconnect = 127.0.0.1:%s\ncert = %s\nkey = %s\nsslVersionMin = TLSv1.3\n' \
    "$2" "$3" "$dir/exit.pem" "$dir/exit.key" > "$dir/stunnel.conf"
  echo "$pin"
}
# stunnel_plaintext_bytes LOG: "CONNECTIONS BYTES": what stunnel4 decrypted and passed on,
# summed over its closed connections.
stunnel_plaintext_bytes() {
  sed -n 's/.*Connection closed: [0-9]* byte(s) sent to TLS, \([0-9]*\) byte(s) sent to socket.*/\1/p' "$1" \
    | awk '{s += $1; n++} END {print n+0, s+0}'
}
