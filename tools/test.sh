#!/usr/bin/env bash
# Sets up the machine (tools/setup.sh) and runs the whole test suite: unit tests,
# micro-benchmark smoke passes and integration tests against real peers, first on the
# release build, then the libFuzzer targets over their corpora (clang, build-fuzz), then
# the unit and integration tests again under ASan+UBSan.
#
#   tools/test.sh                 everything
#   RINGSIDE_SKIP_SANITIZERS=1 tools/test.sh    release build only
#
# Ends with one line "N passed, N failed, N skipped" (CI reads it), counting test
# cases, not meson tests. Every test program of the suite (gtest binaries through
# tests/gtest_main.cc, micro-benchmarks through bench/micro/benchmark_main.cc, Python
# files through harness.main()) prints "ringside-test-counts: P passed, F failed, S
# skipped" last; the counts are read from each test's output in meson's testlog.json
# and checked against meson's result for that test (docs/testing.md):
#   OK            its counts (a test printing none counts as one pass; one that counted
#                 nothing at all as one failure; a failure it reports still counts)
#   SKIP          its skipped count, at least one; nothing passed or failed
#   EXPECTEDFAIL  one pass (the test failed as it should)
#   anything else (FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS, ...): its passes and skips,
#                 and its failures, at least one
# so a meson FAIL is always a failure, a meson SKIP always a skip, and the final line's
# totals are at least meson's. Tests with skips or failures are listed before it.
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
"$here/tools/setup.sh" build || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }

passed=0
failed=0
skipped=0
run_suite() {  # BUILD_DIR [meson test args...]
  local dir=$1
  shift
  local log="$dir/meson-logs/testlog.json"
  rm -f "$log"  # never count an earlier run's results
  meson test -C "$dir" --print-errorlogs --num-processes 1 "$@"
  local rc=$?
  if [ -f "$log" ]; then
    local counts
    counts=$(python3 "$here/tools/test_counts.py" "$log") || counts="0 1 0"
    read -r p f s <<<"$(tail -n 1 <<<"$counts")"
    sed '$d' <<<"$counts"
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
  elif [ $rc -ne 0 ]; then
    failed=$((failed + 1))
  fi
}

run_suite build

# The libFuzzer targets (fuzz/: the HTTP/1.1 parser both ways, the HTTP/2 server session),
# built with clang so that they cannot stop building unnoticed, each run once over its
# corpus (suite fuzz). Only the fuzz targets are built; long fuzzing runs are by hand
# (docs/http2.md, docs/http-parser.md).
fuzz_targets=(fuzz/http_request_fuzz fuzz/http_response_fuzz fuzz/h2_server_fuzz)
if { [ -f build-fuzz/build.ninja ] ||
       CC=clang CXX=clang++ meson setup build-fuzz -Dfuzz=true --buildtype=debugoptimized \
         -Dwolfssl_prefix="$("$here/tools/build-wolfssl.sh")" >/dev/null; } &&
     ninja -C build-fuzz "${fuzz_targets[@]}" >/dev/null; then
  run_suite build-fuzz --no-rebuild --suite fuzz
else
  echo "test: the libFuzzer targets did not build (build-fuzz)" >&2
  failed=$((failed + 1))
fi

if [ -z "${RINGSIDE_SKIP_SANITIZERS:-}" ]; then
  # Sanitizers: the same tests on an ASan+UBSan build (benchmarks' smoke passes too).
  RINGSIDE_BUILDTYPE=debugoptimized \
    RINGSIDE_MESON_ARGS="-Db_sanitize=address,undefined -Db_lundef=false" \
    "$here/tools/setup.sh" build-asan || failed=$((failed + 1))
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_suite build-asan
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
