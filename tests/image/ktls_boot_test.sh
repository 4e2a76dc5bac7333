#!/usr/bin/env bash
# Kernel TLS on the hop to a tls:// backend, in the image as built: the guest's torgw-socks
# (OpenSSL 3.0 with SSL_OP_ENABLE_KTLS) hands the TLS 1.3 send direction to the image
# kernel's `tls` ULP (CONFIG_TLS), says so in the BACKEND_TLS marker, and its health check
# (a SOCKS5 greeting written through the kernel's record layer, answered by the backend)
# brings the backend up: bytes encrypted by the guest kernel were decrypted by a stock
# TLS terminator on the other side.
#
# Wiring (loopback only, no fixed host ports):
#   host: openssl makes a self-signed P-256 certificate; its pin is computed by the openssl
#         CLI (docs/cross-provider.md), not by torgw; stunnel4 (TLS 1.3 only) on
#         127.0.0.1:S in front of microsocks on 127.0.0.1:M.
#   guest: GCE metadata (tests/image/gce_metadata.py) says backend=tls://169.254.169.254:1443
#         and backend_tls_pin=sha256//...; qemu's user network forwards the guest's
#         169.254.169.254:1443 to 127.0.0.1:S (qemu_boot.py --forward).
# Usage: ktls_boot_test.sh FIXDIR
case ${1:-} in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
source "$(dirname "$0")/lib.sh"
fix=$1
require_fixture "$fix/out"
for t in qemu-system-x86_64 stunnel4 microsocks openssl socat; do
  command -v "$t" >/dev/null || skip package "$t missing (scripts/setup)"
done

tmp=$(mktemp -d /var/tmp/torgw-ktls-boot.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start ))s"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  local _
  for _ in $(seq 100); do
    python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

socks_port=$(free_port) tls_port=$(free_port)
pin=$(pinned_tls_terminator "$tmp" "$tls_port" "$socks_port") || fail "could not make the test certificate"
microsocks -i 127.0.0.1 -p "$socks_port" > "$tmp/microsocks.log" 2>&1 & pids+=($!)
stunnel4 "$tmp/stunnel.conf" > "$tmp/stunnel.log" 2>&1 & pids+=($!)
wait_port "$socks_port" || fail "microsocks did not listen: $(cat "$tmp/microsocks.log")"
wait_port "$tls_port" || fail "stunnel4 did not listen: $(cat "$tmp/stunnel.log")"

cat > "$tmp/attrs.json" <<EOF
{"torgw-backend": "tls://169.254.169.254:1443", "torgw-backend-tls-pin": "$pin",
 "torgw-identity": "ephemeral"}
EOF
log=$fix/ktls-boot.log
rc=0
python3 "$(dirname "$0")/qemu_boot.py" --disk "$fix/out/disk.raw" \
  --net "user-gce:$tmp/attrs.json" --forward "1443=127.0.0.1:$tls_port" \
  --log "$log" --result "$fix/ktls-boot.json" --timeout "${TORGW_BOOT_TIMEOUT:-150}" \
  --shutdown-within 10 --forbid 'Kernel panic' --forbid 'TORGW FATAL=' \
  --forbid 'TORGW BACKEND_TLS=pinned:userspace' \
  --expect 'TORGW CONFIG_ORIGIN=.*backend@gce' \
  --expect 'TORGW CONFIG_ORIGIN=.*backend_tls_pin@gce' \
  --expect 'TORGW FIREWALL=ready:' \
  --expect 'TORGW SOCKS=listening' \
  --expect 'backend tls://169\.254\.169\.254:1443: TLSv1\.3 [A-Z0-9_]+, pinned:ktls(-tx)?; kernel TLS send on' \
  --expect 'TORGW BACKEND_TLS=pinned:ktls(-tx)?\b' \
  --expect 'backend tls://169\.254\.169\.254:1443 up' \
  --powerdown-after 'backend tls://169\.254\.169\.254:1443 up' > "$tmp/qemu.out" 2>&1 || rc=$?
tail -1 "$tmp/qemu.out"
if [ $rc -ne 0 ]; then
  tail -30 "$tmp/qemu.out"
  echo "--- guest lines about TLS (serial log $log):"
  tr -d '\r' < "$log" | grep -a -i -E 'tls|backend|ktls|crypto' | tail -20 || true
  echo "--- stunnel4:"; tail -20 "$tmp/stunnel.log"
  fail "the tls:// backend did not come up over kernel TLS in the image (reasons above; $(elapsed))"
fi
marker=$(tr -d '\r' < "$log" | sed -n 's/^TORGW BACKEND_TLS=//p' | tail -1)
# the far side saw TLS 1.3 from the guest and passed the plaintext on to microsocks
grep -q 'accepted connection from 127\.0\.0\.1' "$tmp/stunnel.log" || fail "stunnel4 saw no connection: $(tail "$tmp/stunnel.log")"
grep -q "s_connect: connected 127\.0\.0\.1:$socks_port" "$tmp/stunnel.log" \
  || fail "stunnel4 never reached microsocks: $(tail "$tmp/stunnel.log")"
# bytes stunnel4 decrypted from the guest's kernel TLS records and passed to microsocks
# (the health checks' SOCKS5 greetings and CONNECTs); one "Connection closed" per check
for _ in $(seq 50); do grep -q 'Connection closed:' "$tmp/stunnel.log" && break; sleep 0.1; done
plain=$(stunnel_plaintext_bytes "$tmp/stunnel.log")
[ "${plain#* }" -gt 0 ] || fail "stunnel4 decrypted no bytes from the guest: $(tail "$tmp/stunnel.log")"
grep -q 'TORGW CHILD_EXITED=torgw-socks:exit_0' "$log" || fail "torgw-socks did not drain and exit 0"
pass "image kernel TLS: BACKEND_TLS=$marker, backend up; stunnel4 decrypted ${plain#* } bytes in ${plain% *} connection(s) for microsocks ($(elapsed))"
