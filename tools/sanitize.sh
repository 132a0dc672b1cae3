#!/usr/bin/env bash
# Runs tests under a sanitizer, in a build folder of its own (never the normal .build):
#
#   tools/sanitize.sh thread    # ThreadSanitizer: the runtime's tests (executor, thread pool,
#                               # kernel dispatch, optimizer: RuntimeTests) and the C pool's and
#                               # GEMM's threaded tests (KernelTests PoolTests, GemmTests); .build-tsan
#   tools/sanitize.sh address   # AddressSanitizer (+ LeakSanitizer): the whole suite; .build-asan
#   tools/sanitize.sh thread --filter REGEX   # other tests (extra arguments go to `swift test`)
#
# A report fails the run (the sanitizers' exit code). Reports that are not mqan's bugs are
# suppressed narrowly in tools/sanitizers/*.supp, each with its reason; the script prints the
# wall time at the end.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kind="${1:-}"; shift || true
supp="$root/tools/sanitizers"
case "$kind" in
  thread)
    scratch="$root/.build-tsan"
    [ $# -gt 0 ] || set -- --filter 'RuntimeTests|KernelTests\.(PoolTests|GemmTests)'
    export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=0 second_deadlock_stack=1 suppressions=$supp/tsan.supp}"
    ;;
  address)
    scratch="$root/.build-asan"
    export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1 strict_string_checks=1 check_initialization_order=1}"
    export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$supp/lsan.supp print_suppressions=0}"
    ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

start=$(date +%s)
status=0
swift test --package-path "$root" --scratch-path "$scratch" --sanitize="$kind" "$@" \
  2>&1 | grep -vE "Cannot export local symbol|^\[[0-9]+/[0-9]+\] (Compiling|Emitting|Write)" || status=$?
echo "sanitize $kind: exit $status after $(( $(date +%s) - start )) s (build included)" >&2
exit "$status"
