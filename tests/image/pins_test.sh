#!/usr/bin/env bash
# image/build --pin: operator configuration on the measured command line.
# - A pin torgw-init would reject (an out-of-range port, an unknown key) fails the build
#   before the root filesystem is built, with torgw config check's reason.
# - A valid set (a backend, its SOCKS5 user and secret password) lands on the UKI's and
#   direct-boot/'s command line as torgw.KEY=VALUE; the manifest lists the pins, the secret
#   one by sha256 only (the password appears nowhere in manifest.json), and every
#   expected measurement differs from the unpinned fixture's: the pins are measured.
# Usage: pins_test.sh FIXDIR
case ${1:-} in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
source "$(dirname "$0")/lib.sh"
fix=$1
require_fixture "$fix/out"
tmp=$(mktemp -d /var/tmp/torgw-pins.XXXXXX); trap 'rm -rf "$tmp"' EXIT
build() { "$SRC/image/build" --lock "$fix/packages.lock" --no-bios "$@"; }

for bad in onion_port=99999 no_such_key=1; do
  if build --out "$tmp/bad" --pin "$bad" > "$tmp/bad.log" 2>&1; then
    fail "--pin $bad built an image"
  fi
  grep -q 'fails torgw config check' "$tmp/bad.log" || { cat "$tmp/bad.log"; fail "--pin $bad failed for another reason"; }
  grep -q 'root filesystem tree' "$tmp/bad.log" && fail "--pin $bad was refused only after the root filesystem"
  [ ! -e "$tmp/bad/manifest.json" ] || fail "--pin $bad left a manifest"
done
pass "bad pins fail the build early with torgw config check's reason"

secret=pins-test-password-$$
build --out "$tmp/img" --pin backend=192.0.2.7:1080 --pin backend-user=gw \
  --pin "backend_password=$secret" > "$tmp/build.log" 2>&1 || { tail -30 "$tmp/build.log"; fail "pinned build failed"; }
m=$tmp/img/manifest.json
cmdline=$(cat "$tmp/img/direct-boot/cmdline")
[[ $cmdline == *" torgw.backend=192.0.2.7:1080 torgw.backend_user=gw torgw.backend_password=$secret" ]] \
  || fail "pins are not at the end of the command line: $cmdline"
grep -q "$secret" "$m" && fail "the secret pin's value is in manifest.json"
python3 - "$m" "$fix/out/manifest.json" "$secret" <<'PY' || fail "manifest pins or measurements wrong"
import hashlib, json, sys
m = json.load(open(sys.argv[1])); base = json.load(open(sys.argv[2])); secret = sys.argv[3]
assert m["pins"] == [
    {"key": "backend", "secret": False, "value": "192.0.2.7:1080"},
    {"key": "backend_user", "secret": False, "value": "gw"},
    {"key": "backend_password", "secret": True, "value_sha256": hashlib.sha256(secret.encode()).hexdigest()},
], m["pins"]
assert base["pins"] == [], base["pins"]
assert "torgw.backend_password=<secret sha256:" in m["kernel"]["cmdline"], m["kernel"]["cmdline"]
assert m["direct_boot"]["cmdline_sha256"] != base["direct_boot"]["cmdline_sha256"]
a = {(r["vcpu_type"], r["vcpus"]): r["measurement"] for r in m["direct_boot"]["expected_measurements"]["measurements"]}
b = {(r["vcpu_type"], r["vcpus"]): r["measurement"] for r in base["direct_boot"]["expected_measurements"]["measurements"]}
assert a.keys() == b.keys() and len(a) == 21
assert all(a[k] != b[k] for k in a), "a pin left a measurement unchanged"
PY
pass "pins on the measured command line; manifest lists them (secret by sha256 only); all 21 measurements change"
