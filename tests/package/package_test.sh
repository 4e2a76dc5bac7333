#!/usr/bin/env bash
# Usage: tests/package/package_test.sh BUILD_DIR
#
# scripts/package --build BUILD_DIR into a scratch directory (lintian included), then
# `dpkg -x` the .deb into a throwaway root and run that root's torgw: `torgw verify LOG
# --vcek F` and `torgw report verify --vcek F` with no --ask/--ark must find AMD's
# certificates in the root's /usr/share/torgw/snp-trust (real reports and VCEKs from
# ../shared/vectors/snp, read here); without that directory it must say so in one line,
# exit 2. Also: the Depends dpkg-shlibdeps found, a man page per subcommand.
set -euo pipefail
case ${1:-} in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
src=${TORGW_SOURCE_DIR:?} build=${1:?usage: package_test.sh BUILD_DIR}
. "$src/tests/support/skip.sh"
vec=${TORGW_SHARED_DIR:-$src/../shared}/vectors/snp
[ -d "$vec/trust" ] || skip shared "no ../shared/vectors/snp (AMD's certificates and real reports)"
for t in dpkg-deb dpkg-shlibdeps help2man lintian; do
  command -v "$t" > /dev/null || skip package "$t not installed (scripts/setup)"
done
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$src/scripts/package" --build "$build" --out "$tmp/out" > "$tmp/package.log" 2>&1 || { cat "$tmp/package.log"; fail "scripts/package"; }
deb=$(ls "$tmp"/out/torgw_*.deb)
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libsodium23 libssl3 libstdc++6; do
  [[ $depends == *"$lib ("* ]] || fail "Depends '$depends' lacks $lib"
done
root=$tmp/root
dpkg -x "$deb" "$root"
torgw=$root/usr/bin/torgw
for p in milan genoa turin; do for k in ark ask asvk; do
  [ -f "$root/usr/share/torgw/snp-trust/${p}_$k.pem" ] || fail "no ${p}_$k.pem in the package"
done; done
# One man page per command the binary has (gen-man walks --help; so does this).
# shellcheck disable=SC2012  # the names are ours (torgw*.1.gz, no newlines): ls | wc -l counts them
pages=$(ls "$root/usr/share/man/man1" | wc -l)
expect=$(( 1 + $("$torgw" --help | awk '/^Subcommands:/{on=1;next} on&&/^  [a-z]/{n++} END{print n}') ))
for g in $("$torgw" --help | awk '/^Subcommands:/{on=1;next} on&&/^  [a-z]/{print $1}'); do
  expect=$(( expect + $("$torgw" "$g" --help | awk '/^Subcommands:/{on=1;next} on&&/^  [a-z]/{n++} END{print n+0}') ))
done
[ "$pages" = "$expect" ] || fail "$pages man pages for $expect commands"
zcat "$root/usr/share/man/man1/torgw-serial-watch.1.gz" | grep -q -- 'Follow a growing serial log' || fail "serial watch man page"

# report verify: the VCEK only; ASK and ARK from the installed trust directory.
unset TORGW_SNP_TRUST_DIR
for v in oak_milan_oc_release oak_genoa_oc oak_turin_oc; do
  [ -f "$vec/$v/report.bin" ] || fail "$v: no report.bin in ../shared"
  vcek=$vec/$v/vcek.pem; [ -f "$vcek" ] || vcek=$vec/$v/vcek.der
  "$torgw" report verify --report "$vec/$v/report.bin" --vcek "$vcek" > "$tmp/$v.out" 2>&1 \
    || { cat "$tmp/$v.out"; fail "$v: report verify with the installed roots"; }
  grep -q "VCEK -> ARK" "$tmp/$v.out" || fail "$v: no chain line"
  echo "ok: $v verified with the package's roots: $(grep -o '[A-Za-z]* VCEK -> ARK' "$tmp/$v.out")"
done

# torgw verify LOG --vcek F: a serial log carrying the real Milan report (it binds no
# onion key of ours, so the verdict is INVALID at the binding, after the chain and the
# signature passed with the installed roots).
v=$vec/oak_milan_oc_release
vcek=$v/vcek.pem; [ -f "$vcek" ] || vcek=$v/vcek.der
python3 - "$v/report.bin" > "$tmp/serial.log" <<'PY'
import base64, hashlib, sys
pk = bytes(range(32))  # any ed25519 point encoding will do: the binding check comes after the chain
chk = hashlib.sha3_256(b".onion checksum" + pk + b"\x03").digest()[:2]
onion = base64.b32encode(pk + chk + b"\x03").decode().lower() + ".onion"
rep = base64.b64encode(open(sys.argv[1], "rb").read()).decode()
m = lambda k, v: f"\r\nTORGW {k}={v}\r\n"
chunks = [rep[i:i + 500] for i in range(0, len(rep), 500)]
out = m("BOOT_ID", "0123456789abcdef0123456789abcdef") + m("MARKER_VERSION", "1") + m("VERSION", "0.1.0")
out += m("SNP", "present") + m("IDENTITY_BINDING", "derived:vcek:measurement,policy:salted")
out += m("ONION_HOSTNAME", onion) + m("ATTESTATION_REPORT_VALID", "true") + m("ATTESTATION_TRANSFER_KEY", "none")
out += "".join(m(f"ATTESTATION_REPORT.{i + 1}/{len(chunks)}", c) for i, c in enumerate(chunks))
out += m("TOR_BOOTSTRAP", "100") + m("DESCRIPTOR_PUBLISHED", "true") + m("READY", "true")
sys.stdout.write(out)
PY
rc=0; "$torgw" verify "$tmp/serial.log" --vcek "$vcek" --json > "$tmp/verify.json" 2> "$tmp/verify.err" || rc=$?
[ "$rc" = 1 ] || { cat "$tmp/verify.json" "$tmp/verify.err"; fail "verify --vcek: exit $rc, expected 1 (binding)"; }
python3 - "$tmp/verify.json" <<'PY' || fail "verify --vcek did not check the chain with the installed roots"
import json, sys
j = json.load(open(sys.argv[1]))
print("verify --vcek:", j["reason"], "| chain:", j.get("product"), j.get("signer"), "ARK SPKI", j.get("ark_spki_sha256"),
      "| signature_ok:", j.get("signature_ok"))
assert j.get("product") == "Milan" and j.get("signer") == "VCEK", j
# ARK-Milan's SPKI hash as ../shared/vectors/snp/trust/FINGERPRINTS.txt lists it
assert j["ark_spki_sha256"] == "9f056bee44377e29308cb5ffa895bdfb62d18881fa6bed8d6f075b0204089cb9", j
assert j["signature_ok"] is True
assert j["reason"].startswith("snp.report_data"), j["reason"]
PY

# Without the trust directory: one line, exit 2.
rm -rf "$root/usr/share/torgw/snp-trust"
rc=0; "$torgw" verify "$tmp/serial.log" --vcek "$vcek" > /dev/null 2> "$tmp/err" || rc=$?
[ "$rc" = 2 ] || fail "missing trust dir: exit $rc"
{ [ "$(wc -l < "$tmp/err")" = 1 ] && grep -q "trust directory .* does not exist" "$tmp/err"; } || { cat "$tmp/err"; fail "missing trust dir message"; }
echo "package_test: PASS ($deb)"
