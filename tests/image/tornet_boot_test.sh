#!/usr/bin/env bash
# The product image end to end under qemu: torgw-init prints BOOT_ID, SNP=absent and its
# mounts, starts tor, and with a private Tor network reachable from the guest publishes
# the onion (DESCRIPTOR_PUBLISHED=true, READY=true); qemu's system_powerdown (the ACPI
# power button) then shuts it down cleanly within 10 s.
#
# Wiring: a network namespace made here holds a tap device (10.77.0.1/24) and the private
# Tor network (tests/tornet) bound to that address; qemu runs in the namespace on the tap;
# the guest gets 10.77.0.2 statically (ip= on the command line, after the image's
# ip=dhcp) and its configuration (torgw.<key>=<value>) from the kernel command line of
# an image variant built with --cmdline-extra from the fixture's inputs.
# Usage: tornet_boot_test.sh FIXDIR
source "$(dirname "$0")/lib.sh"
fix=$1
require_fixture "$fix/out"
[ "$(id -u)" = 0 ] || skip "needs root (network namespace, tap device)"
[ "$(cat "$fix/mode")" = product ] || skip "torgw-init is not in this tree yet (init/, issue 4): the fixture carries the pipeline test init"
tornet=${TORGW_BINARY_DIR:-$SRC/build/default}/tests/tornet/tornet
[ -x "$tornet" ] || skip "no tornet harness at $tornet (tests/tornet, issue 2)"
"$tornet" up --help 2>&1 | grep -q -- '--address' \
  || skip "tornet cannot bind the network to a guest-reachable address yet (needs 'tornet up --address A', issue 2)"
grep -qs '"tor_testing_network"' "$SRC/config/keys.cpp" \
  || skip "no config key for a private Tor network yet (torgw.tor_testing_network, config/ + supervisor/, issue 2)"

ns=torgw-img-$$
tmp=$(mktemp -d /var/tmp/torgw-tornet-boot.XXXXXX)
cleanup() {
  [ -d "$tmp/net" ] && ip netns exec "$ns" "$tornet" down --dir "$tmp/net" >/dev/null 2>&1 || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" tuntap add dev tgw0 mode tap
ip -n "$ns" addr add 10.77.0.1/24 dev tgw0
ip -n "$ns" link set tgw0 up

ip netns exec "$ns" "$tornet" up --dir "$tmp/net" --no-netns --address 10.77.0.1 --json > "$tmp/net.json" \
  || fail "private Tor network did not come up"
# The guest joins the network with the DirAuthority line(s) the harness prints.
dirauth=$(python3 -c "import json,sys; print(';'.join(json.load(open(sys.argv[1]))['dir_authorities']))" "$tmp/net.json")
extra="ip=10.77.0.2::10.77.0.1:255.255.255.0::eth0:off torgw.metadata=off"
extra+=" torgw.identity=ephemeral torgw.snp_fallback=ephemeral torgw.backend=10.77.0.1:9"
extra+=" torgw.tor_testing_network=\"$dirauth\""

args=(--out "$tmp/img" --lock "$fix/packages.lock" --cmdline-extra "$extra")
"$SRC/image/build" "${args[@]}" > "$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "image variant build failed"; }

log=$fix/tornet-boot.log
python3 "$(dirname "$0")/qemu_boot.py" --disk "$tmp/img/disk.raw" --netns "$ns" --net tap:tgw0 \
  --log "$log" --result "$fix/tornet-boot.json" --timeout "${TORGW_BOOT_TIMEOUT:-1500}" \
  --shutdown-within 10 --forbid 'Kernel panic' --forbid 'TORGW FATAL=' \
  --expect 'TORGW BOOT_ID=[0-9a-f]{32}' \
  --expect 'TORGW MARKER_VERSION=1' \
  --expect 'TORGW SNP=absent' \
  --expect 'TORGW TOR_BOOTSTRAP=100' \
  --expect 'TORGW DESCRIPTOR_PUBLISHED=true' \
  --expect 'TORGW READY=true' \
  --powerdown-after 'TORGW READY=true' \
  || fail "product boot on the private Tor network; serial log: $log"
pass "product image: BOOT_ID, SNP=absent, tor bootstrapped, DESCRIPTOR_PUBLISHED, READY, clean ACPI power-off"
