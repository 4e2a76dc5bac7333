#!/usr/bin/env bash
# The product image end to end under qemu on a private Tor network: torgw-init prints
# BOOT_ID and SNP=absent, mounts, starts torgw-socks and tor; tor bootstraps on the private
# network and publishes the onion (DESCRIPTOR_PUBLISHED=true, READY=true); a client on the
# private network fetches a page through the onion, the VM's torgw-socks and a backend;
# qemu's system_powerdown (the ACPI power button) then shuts it down cleanly within 10 s.
#
# Wiring (nothing listens outside the harness's network namespace, no fixed ports):
#   tests/tornet's network (tornet up; as root in its own namespace) on 127.0.0.1
#   qemu in that namespace, user networking restricted to what the test forwards:
#     169.254.169.254:80   -> tests/image/gce_metadata.py (the guest's configuration)
#     169.254.169.254:1080 -> a SOCKS5 proxy (microsocks): the guest's tor reaches the
#                             relays through it (tor_options=Socks5Proxy=..., allowlisted)
#     169.254.169.254:1081 -> a second microsocks: the backend exit node for torgw-socks
#   the private network's DirAuthority line reaches the guest as torgw.tor_test_network
#   (local-only, so on the kernel command line of an image variant built from the
#   fixture's inputs with --cmdline-extra).
# With "tls" as the fourth argument the backend is tls://, pinned: stunnel4 (TLS 1.3) in
# front of the backend microsocks; the guest kernel encrypts what torgw-socks sends it
# (BACKEND_TLS=pinned:ktls-tx, the client's request spliced into the kTLS socket).
# Usage: tornet_boot_test.sh FIXDIR TORNET_BINARY TORGW_CLI [tls]
case ${1:-} in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
source "$(dirname "$0")/lib.sh"
fix=$1 tornet=$2 torgw=${3:-} hop=${4:-plain}
require_fixture "$fix/out"
[ -x "$tornet" ] || skip package "no tornet harness at $tornet"
tools=(microsocks curl qemu-system-x86_64 socat); [ "$hop" = tls ] && tools+=(stunnel4 openssl)
for t in "${tools[@]}"; do command -v "$t" >/dev/null || skip package "$t missing (scripts/setup)"; done

tmp=$(mktemp -d /var/tmp/torgw-tornet-boot.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$tornet" down --dir "$tmp/net" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start ))s"; }

"$tornet" up --dir "$tmp/net" --json > "$tmp/net.json" 2> "$tmp/net.err" \
  || { cat "$tmp/net.err"; fail "private Tor network did not come up"; }
ns=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['netns'])" "$tmp/net.json")
ns_exec=(); [ -z "$ns" ] || ns_exec=(ip netns exec "$ns")  # ip netns exec execs: $! is the process
client=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['socks'])" "$tmp/net.json")
b64=$(python3 -c "import base64,json,sys; d=json.load(open(sys.argv[1]))['dir_authorities']; print(base64.b64encode(('\n'.join(d)+'\n').encode()).decode())" "$tmp/net.json")
echo "network up ($(elapsed)): namespace '${ns:-host}', client $client"

free_port() { "${ns_exec[@]}" python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
proxy_port=$(free_port) backend_port=$(free_port) http_port=$(free_port)
# (BACKEND_TLS is checked in the log afterwards: it races TOR_TEST_NETWORK, and qemu_boot's
# --expect patterns match in order)
backend_attrs='"torgw-backend": "169.254.169.254:1081",' backend_fwd=$backend_port expect_tls=()
if [ "$hop" = tls ]; then
  tls_port=$(free_port)
  pin=$(pinned_tls_terminator "$tmp" "$tls_port" "$backend_port") || fail "could not make the test certificate"
  "${ns_exec[@]}" stunnel4 "$tmp/stunnel.conf" > "$tmp/stunnel.log" 2>&1 & pids+=($!)
  backend_attrs="\"torgw-backend\": \"tls://169.254.169.254:1081\", \"torgw-backend-tls-pin\": \"$pin\","
  backend_fwd=$tls_port expect_tls=(--forbid 'TORGW BACKEND_TLS=pinned:userspace')
fi
"${ns_exec[@]}" microsocks -i 127.0.0.1 -p "$proxy_port" > "$tmp/proxy.log" 2>&1 & pids+=($!)
"${ns_exec[@]}" microsocks -i 127.0.0.1 -p "$backend_port" > "$tmp/backend.log" 2>&1 & pids+=($!)
mkdir "$tmp/www"
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$token" > "$tmp/www/token"
"${ns_exec[@]}" python3 -m http.server --bind 127.0.0.1 --directory "$tmp/www" "$http_port" > "$tmp/http.log" 2>&1 & pids+=($!)

"$SRC/image/build" --out "$tmp/img" --lock "$fix/packages.lock" \
  --cmdline-extra "torgw.tor_test_network=$b64" > "$tmp/build.log" 2>&1 \
  || { cat "$tmp/build.log"; fail "image variant build failed"; }
echo "image variant built ($(elapsed))"
cat > "$tmp/attrs.json" <<EOF
{$backend_attrs "torgw-identity": "ephemeral",
 "torgw-tor-options": "Socks5Proxy=169.254.169.254:1080",
 "torgw-socks-allow": "127.0.0.1"}
EOF

log=$fix/tornet-boot-$hop.log
rm -f "$log"  # the wait for READY below must not read a previous run's log
"${ns_exec[@]}" python3 "$(dirname "$0")/qemu_boot.py" --disk "$tmp/img/disk.raw" \
  --net "user-gce:$tmp/attrs.json" --forward "1080=127.0.0.1:$proxy_port" --forward "1081=127.0.0.1:$backend_fwd" \
  --log "$log" --result "$fix/tornet-boot-$hop.json" --timeout "${TORGW_BOOT_TIMEOUT:-1200}" \
  --shutdown-within 10 --forbid 'Kernel panic' --forbid 'TORGW FATAL=' \
  --expect 'TORGW BOOT_ID=[0-9a-f]{32}' \
  --expect 'TORGW MARKER_VERSION=1' \
  --expect 'TORGW MOUNTS=ok' \
  --expect 'TORGW TOR_STATE_DIR=tmpfs:100:100:0700' \
  --expect 'TORGW FIREWALL=ready:12' \
  --expect 'TORGW EGRESS_SELFTEST=blocked' \
  --expect 'TORGW SNP=absent' \
  --expect 'TORGW ONION_HOSTNAME=[a-z2-7]{56}\.onion' \
  --expect 'TORGW SOCKS=listening' \
  --expect 'TORGW TOR_TEST_NETWORK=true' \
  --expect 'TORGW TOR_BOOTSTRAP=100' \
  --expect 'TORGW DESCRIPTOR_PUBLISHED=true' \
  --expect 'TORGW READY=true' "${expect_tls[@]}" \
  --powerdown-after 'TORGW READY=true' --powerdown-when-file "$tmp/go" > "$tmp/qemu.out" 2>&1 &
qemu_pid=$!
pids+=("$qemu_pid")

# Wait for READY (or for the boot to fail), then use the onion.
while kill -0 "$qemu_pid" 2>/dev/null && ! grep -q 'TORGW READY=true' "$log" 2>/dev/null; do sleep 1; done
if grep -q 'TORGW READY=true' "$log" 2>/dev/null; then
  echo "READY ($(elapsed))"
  onion=$(tr -d '\r' < "$log" | sed -n 's/^TORGW ONION_HOSTNAME=\([a-z2-7]*\.onion\)$/\1/p' | tail -1)
  # curl -> socat -> the client tor (SOCKS4A, the onion name resolved by tor) -> onion ->
  # the VM's torgw-socks (SOCKS5 from curl) -> backend -> web server. socks_allow admits
  # the web server's loopback literal, which the default policy denies.
  fwd_port=$(free_port)
  "${ns_exec[@]}" socat "TCP-LISTEN:$fwd_port,bind=127.0.0.1,fork,reuseaddr" \
    "SOCKS4A:127.0.0.1:$onion:1080,socksport=${client##*:}" 2> "$tmp/socat.log" & pids+=($!)
  got="" tries=0
  until [ "$got" = "$token" ] || [ $tries -ge 12 ]; do
    tries=$((tries + 1))
    got=$("${ns_exec[@]}" curl -sS --max-time 30 --socks5-hostname "127.0.0.1:$fwd_port" \
          "http://127.0.0.1:$http_port/token" 2>>"$tmp/curl.err" || true)
    [ "$got" = "$token" ] || sleep 2
  done
  echo "curl through the onion: $([ "$got" = "$token" ] && echo "ok after $tries attempt(s)" || echo failed) ($(elapsed))"
fi
touch "$tmp/go"
rc=0; wait "$qemu_pid" || rc=$?
tail -1 "$tmp/qemu.out"
[ $rc -eq 0 ] || { tail -50 "$tmp/qemu.out"; fail "product boot on the private Tor network; serial log: $log"; }
[ "$got" = "$token" ] || { tail -5 "$tmp/curl.err" >&2; fail "no page through the onion (client -> onion -> VM torgw-socks -> backend)"; }
grep -q 'TORGW CHILD_EXITED=torgw-socks:exit_0' "$log" || fail "torgw-socks did not drain and exit 0"
if [ -n "$torgw" ]; then
  "$torgw" serial parse "$log" > /dev/null || fail "torgw serial parse: the boot is not complete"
fi
if [ "$hop" = tls ]; then
  # the request went client -> onion -> torgw-socks -> guest kernel TLS -> stunnel4 -> microsocks
  tr -d '\r' < "$log" | grep -a -q -E '^TORGW BACKEND_TLS=pinned:ktls(-tx)?$' \
    || fail "no kernel TLS to the backend: $(grep -a 'BACKEND_TLS=' "$log")"
  stats=$(tr -d '\r' < "$log" | grep -a 'stats (exit):' | tail -1)
  up=$(sed -n 's/.* bytes_up=\([0-9]*\) .*/\1/p' <<< "$stats")
  [ "${up:-0}" -gt 0 ] || fail "torgw-socks relayed nothing up to the TLS backend: $stats"
  plain=$(stunnel_plaintext_bytes "$tmp/stunnel.log")
  [ "${plain#* }" -gt "$up" ] || fail "stunnel4 decrypted ${plain#* } bytes, fewer than the $up relayed up"
  echo "kernel TLS: $(grep -a -o 'BACKEND_TLS=[a-z+:-]*' "$log" | tail -1), bytes_up=$up, stunnel4 decrypted ${plain#* } bytes in ${plain% *} connection(s)"
fi
pass "($hop backend) product image on a private Tor network: DESCRIPTOR_PUBLISHED, READY, a page through the onion, clean power-off ($(elapsed))"
