#!/bin/sh
# Runs ringside-bench against its own `serve` upstream: closed loop, open loop, stream
# mode against --echo, and the failure paths (unreachable target, bad flags).
# Usage: loadgen_integration.sh PATH/TO/ringside-bench
set -u
BENCH="$1"
. "$(dirname "$0")/loadgen_lib.sh"

# json_number FILE KEY: the first number after "KEY": in FILE.
json_number() {
  sed -n "s/.*\"$2\": \([0-9.]*\).*/\1/p" "$1" | head -n 1
}

start_server http
"$BENCH" "http://127.0.0.1:$PORT/" -c 4 -d 1s --json "$WORK/closed.json" --plot "$WORK/p.svg" \
  > "$WORK/closed.txt" 2>&1 || fail "closed loop exited $?: $(cat "$WORK/closed.txt")"
requests=$(json_number "$WORK/closed.json" requests)
errors=$(json_number "$WORK/closed.json" total)
[ "${requests:-0}" -gt 0 ] || fail "closed loop: no requests"
[ "$errors" = 0 ] || fail "closed loop: $errors errors"
grep -q "Requests/sec" "$WORK/closed.txt" || fail "closed loop: no summary"
grep -q "</svg>" "$WORK/p.svg" || fail "plot: not an SVG document"

"$BENCH" "http://127.0.0.1:$PORT/" -c 4 -d 1s -R 400 --json "$WORK/open.json" \
  > "$WORK/open.txt" 2>&1 || fail "open loop exited $?: $(cat "$WORK/open.txt")"
requests=$(json_number "$WORK/open.json" requests)
errors=$(json_number "$WORK/open.json" total)
# 400/s for 1 s: the schedule bounds the count from above (no timing is asserted).
[ "${requests:-0}" -gt 0 ] && [ "$requests" -le 404 ] || fail "open loop: $requests requests"
[ "$errors" = 0 ] || fail "open loop: $errors errors"

start_server echo --echo
"$BENCH" "tcp://127.0.0.1:$PORT" --mode tcp -c 2 -d 1s --write-size 4k --json "$WORK/tcp.json" \
  > "$WORK/tcp.txt" 2>&1 || fail "tcp mode exited $?: $(cat "$WORK/tcp.txt")"
[ "$(json_number "$WORK/tcp.json" payload_read)" -gt 0 ] || fail "tcp mode: nothing echoed"

# A port nothing listens on: a clear line and a non-zero exit.
"$BENCH" "http://127.0.0.1:1/" -c 1 -d 1s > "$WORK/down.txt" 2>&1
status=$?
[ $status -ne 0 ] || fail "unreachable target exited 0"
grep -q "cannot connect to 127.0.0.1:1" "$WORK/down.txt" || fail "unreachable: $(cat "$WORK/down.txt")"

"$BENCH" "http://127.0.0.1:$PORT/" -c 1 -d 10q > "$WORK/usage.txt" 2>&1
[ $? -eq 2 ] || fail "bad duration did not exit 2"
grep -q "bad duration" "$WORK/usage.txt" || fail "bad duration: $(cat "$WORK/usage.txt")"
"$BENCH" "ftp://x/" > "$WORK/url.txt" 2>&1
[ $? -eq 2 ] || fail "bad URL did not exit 2"
echo "ok"
