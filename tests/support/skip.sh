# The skip contract of tests/support/skip.h for shell tests (sourced).
#   skip NEEDS "reason"   NEEDS: root package shared cache fixture sanitizer kvm
# Prints "SKIP: NEEDS: reason" and exits 77 (CTest: SKIP_RETURN_CODE 77). Under CI=true a
# precondition that CI guarantees (root, package, shared, cache, and the image fixture
# that CI builds) is a failure instead: exit 1, so CI can never go green by skipping.
# shellcheck shell=bash
skip() {
  local needs=$1; shift
  case $needs in
    root|package|shared|cache|fixture)
      if [ "${CI:-}" = true ]; then
        echo "FAIL: CI guarantees this precondition ($needs), so it is a failure, not a skip: $*" >&2
        exit 1
      fi ;;
    sanitizer|kvm) ;;
    *) echo "FAIL: skip: unknown precondition '$needs' (tests/support/skip.sh)" >&2; exit 1 ;;
  esac
  echo "SKIP: $needs: $*"
  exit 77
}
