#!/usr/bin/env bash
# Sets up the machine (tools/setup.sh) and runs the whole test suite: unit tests,
# micro-benchmark smoke passes and integration tests against real peers, first on the
# release build, then the unit and integration tests again under ASan+UBSan.
#
#   tools/test.sh                 everything
#   RINGSIDE_SKIP_SANITIZERS=1 tools/test.sh    release build only
# Ends with one line "N passed, N failed, N skipped".
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
"$here/tools/setup.sh" build || { echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
skipped=0
run_suite() {  # BUILD_DIR [meson test args...]
  local dir=$1
  shift
  local log="$dir/meson-logs/testlog.json"
  meson test -C "$dir" --print-errorlogs --num-processes 1 "$@"
  local rc=$?
  if [ -f "$log" ]; then
    local counts
    counts=$(python3 - "$log" <<'PY'
import json, sys
results = [json.loads(line)["result"] for line in open(sys.argv[1]) if line.strip()]
ok = sum(r in ("OK", "EXPECTEDFAIL") for r in results)
skip = sum(r == "SKIP" for r in results)
print(ok, len(results) - ok - skip, skip)
PY
)
    read -r p f s <<<"$counts"
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
  elif [ $rc -ne 0 ]; then
    failed=$((failed + 1))
  fi
}

run_suite build

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
