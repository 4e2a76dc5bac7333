#!/usr/bin/env bash
# bench/image_reproducible_cold.sh [--work DIR] [--keep] [--reuse-kernel CACHE]
#
# Cold reproducibility of the VM image: two image/build runs from nothing, compared byte
# for byte. Each run gets its own copy of the source (a git clone of HEAD's commit, in a
# different directory) and its own EMPTY cache in a different directory, so the kernel
# is compiled twice, torgw is compiled twice (different source and build directories)
# and every package is downloaded twice (from the committed rootfs/packages.lock). The
# second run also uses another umask, TZ and working directory, and starts later.
# Prints both build times (wall and CPU) and, for disk.raw, disk.raw.tar.gz, disk.qcow2
# and manifest.json, whether the two are identical (sha256 of each side).
# Takes about 2 x 20-30 min on 2 idle cores; run it under nice -n 19 on a shared host.
#
#   --work DIR            where both runs live (default: a new /var/tmp/torgw-cold.XXXXXX);
#                         must not exist yet or be empty
#   --keep                keep DIR afterwards (default: removed when all four are identical)
#   --reuse-kernel CACHE  NOT cold: copy the kernel cached in CACHE into both empty caches
#                         instead of compiling it (a quick check of everything else); the
#                         output says so on every line that reports a result
#   -h, --help            this text; changes nothing
#
# Exit codes: 0 all four identical, 1 a difference or a failed build, 2 usage.
# Only HEAD's commit is built: uncommitted changes in the checkout are not part of it.
set -euo pipefail
main() {
  export LC_ALL=C
  local repo work="" keep=0 reuse=""
  repo=$(cd "$(dirname "$0")/.." && pwd)
  usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
  while [ $# -gt 0 ]; do
    case $1 in
      --work) work=$2; shift 2 ;;
      --keep) keep=1; shift ;;
      --reuse-kernel) reuse=$2; shift 2 ;;
      -h|--help) usage; exit 0 ;;
      *) echo "image_reproducible_cold: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
  done
  local commit mode=cold
  commit=$(git -C "$repo" rev-parse HEAD)
  [ -z "$(git -C "$repo" status --porcelain --untracked-files=no)" ] \
    || echo "image_reproducible_cold: note: the checkout has uncommitted changes; building $commit without them" >&2
  local kdir=""
  if [ -n "$reuse" ]; then
    kdir=$("$repo/kernel-config/build" --cache "$reuse" --print-dir)
    [ -f "$kdir/bzImage" ] || { echo "image_reproducible_cold: no kernel for these inputs in $reuse ($kdir)" >&2; exit 1; }
    mode="WARM-KERNEL (kernel copied from $kdir, not compiled)"
  fi
  if [ -z "$work" ]; then
    work=$(mktemp -d /var/tmp/torgw-cold.XXXXXX)
  else
    mkdir -p "$work"
    [ -z "$(ls -A "$work")" ] || { echo "image_reproducible_cold: $work is not empty" >&2; exit 2; }
  fi
  work=$(cd "$work" && pwd)
  echo "image_reproducible_cold: $mode, commit $commit, in $work"

  # Two layouts that share nothing: other names, other depths.
  local -a srcs=("$work/one/torgw" "$work/two/deeper/src-b")
  local -a caches=("$work/one/cache" "$work/two/c")
  local -a outs=("$work/one/out" "$work/two/deeper/image")
  local -a walls=() cpus=()
  local i
  for i in 0 1; do
    local src=${srcs[$i]} cache=${caches[$i]} out=${outs[$i]} n=$((i + 1))
    mkdir -p "$cache"
    git clone --quiet --no-local --no-checkout "$repo" "$src"
    git -C "$src" -c advice.detachedHead=false checkout --quiet "$commit"
    if [ -n "$kdir" ]; then
      mkdir -p "$cache/kernel"
      cp -a "$kdir" "$cache/kernel/"
    fi
    [ "$i" = 0 ] || sleep 2  # a different second for anything that would leak the clock
    echo "image_reproducible_cold: build $n: source $src, cache $cache (empty$([ -z "$kdir" ] || echo ' but the kernel'))"
    local t0 c0 t1 c1 log=$work/build$n.log rc=0
    t0=$(date +%s.%N); c0=$(children_cpu)
    if [ "$i" = 0 ]; then
      (cd "$work" && env -u TORGW_CACHE -u SOURCE_DATE_EPOCH "$src/image/build" --out "$out" --cache "$cache") > "$log" 2>&1 || rc=$?
    else
      (cd "$src/.." && umask 077 && TZ=Asia/Kolkata env -u TORGW_CACHE -u SOURCE_DATE_EPOCH \
        "$src/image/build" --out "$out" --cache "$cache") > "$log" 2>&1 || rc=$?
    fi
    t1=$(date +%s.%N); c1=$(children_cpu)
    walls[i]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    cpus[i]=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.1f", b - a }')
    if [ "$rc" -ne 0 ]; then
      tail -30 "$log" >&2
      echo "image_reproducible_cold: build $n FAILED (rc $rc) after ${walls[i]} s; log $log (kept)" >&2
      exit 1
    fi
    local ksec
    ksec=$(sed -n 's/^build_seconds=//p' "$cache"/kernel/*/build-info 2>/dev/null | head -1)
    echo "image_reproducible_cold: build $n: ${walls[i]} s wall, ${cpus[i]} s CPU (kernel compile ${ksec:-?} s$([ -z "$kdir" ] || echo ': copied, not compiled'))"
  done

  local status=0 f a b
  for f in disk.raw disk.raw.tar.gz disk.qcow2 manifest.json; do
    a=$(sha256sum < "${outs[0]}/$f" | cut -c1-16)
    b=$(sha256sum < "${outs[1]}/$f" | cut -c1-16)
    if cmp -s "${outs[0]}/$f" "${outs[1]}/$f"; then
      printf 'image_reproducible_cold: %-16s identical  %s... = %s... (%s bytes)\n' "$f" "$a" "$b" "$(stat -c %s "${outs[0]}/$f")"
    else
      printf 'image_reproducible_cold: %-16s DIFFERS    %s... / %s... (%s)\n' "$f" "$a" "$b" \
        "$(cmp "${outs[0]}/$f" "${outs[1]}/$f" 2>&1 | head -1)"
      status=1
    fi
  done
  if [ "$status" -ne 0 ]; then
    diff <(python3 -m json.tool "${outs[0]}/manifest.json") <(python3 -m json.tool "${outs[1]}/manifest.json") || true
    echo "image_reproducible_cold: NOT reproducible ($mode); both trees kept in $work"
    exit 1
  fi
  echo "image_reproducible_cold: RESULT $mode: all four artefacts identical; build 1 ${walls[0]} s, build 2 ${walls[1]} s wall"
  if [ "$keep" = 1 ]; then echo "image_reproducible_cold: kept $work"; else rm -rf "$work"; fi
}

# CPU seconds (user + system) used so far by this shell's finished children.
children_cpu() {
  local ticks
  ticks=$(getconf CLK_TCK)
  # fields 16 and 17 of /proc/PID/stat: cutime and cstime of the reaped children
  awk -v t="$ticks" '{ sub(/^.*\) /, ""); printf "%.2f", ($14 + $15) / t }' "/proc/$$/stat"
}

main "$@"
