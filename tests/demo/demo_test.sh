#!/usr/bin/env bash
# Runs scripts/demo, the README's first command, on the already-built binaries
# (--no-setup --build-dir), and checks what it says about itself.
#   pass    the demo exits 0 and its last line is `demo: PASS (...)`
#   tamper  with --tamper-report (one character of the scraped log's attestation report
#           changed before `torgw verify`), the demo exits 1 and its last line is
#           `demo: FAIL: torgw verify: ... INVALID ...`: the demo cannot report success
#           over a log that does not verify.
# Usage: demo_test.sh pass|tamper BUILD_DIR
# Exit 0 pass, 1 fail, 77 skip (not root, or a peer the demo runs is not installed).
case ${1:-} in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
# shellcheck source=tests/image/lib.sh
source "$(dirname "$0")/../image/lib.sh"
mode=${1:?usage: demo_test.sh pass|tamper BUILD_DIR} build=${2:?usage: demo_test.sh pass|tamper BUILD_DIR}
[ "$(id -u)" -eq 0 ] || skip root "the demo runs dante with user.privileged root"
for t in tor danted socat curl; do
  command -v "$t" >/dev/null || skip package "$t missing (scripts/setup installs it)"
done
out=$(mktemp /tmp/torgw-demo-test.XXXXXX); trap 'rm -f "$out"' EXIT
args=(--no-setup --build-dir "$build")
[ "$mode" = tamper ] && args+=(--tamper-report)
set +e
"$SRC/scripts/demo" "${args[@]}" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
set -e
last=$(tail -n 1 "$out")
case $mode in
  pass)
    [ "$rc" -eq 0 ] || fail "scripts/demo exited $rc: $last"
    [[ $last == "demo: PASS ("* ]] || fail "last line is not the PASS line: $last"
    grep -qE '^answer \(.*\): hello through the onion, [0-9a-f]{16}$' "$out" || fail "no token in the demo's output"
    grep -qE '^SIMULATED VALID: ' "$out" || fail "torgw verify did not print SIMULATED VALID"
    pass "scripts/demo: token through the onion, torgw verify VALID, exit 0" ;;
  tamper)
    grep -q '^--tamper-report: changed one character' "$out" || fail "the demo did not tamper with the log: $last"
    [ "$rc" -eq 1 ] || fail "scripts/demo over a tampered log exited $rc, want 1: $last"
    [[ $last == "demo: FAIL: torgw verify: "*INVALID* ]] || fail "last line does not name verify's INVALID: $last"
    pass "scripts/demo over a tampered log: $last" ;;
  *) fail "unknown mode $mode" ;;
esac
