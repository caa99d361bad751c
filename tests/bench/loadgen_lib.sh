# Sourced by the ringside-bench integration scripts (POSIX sh), after BENCH is set: a work
# directory removed at exit together with the servers started, fail, and servers that
# print "listening on 127.0.0.1:PORT".
WORK=$(mktemp -d)
SERVER_PIDS=""
cleanup() {
  for pid in $SERVER_PIDS; do kill "$pid" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# wait_listening NAME: sets PORT from "listening on 127.0.0.1:PORT" in WORK/NAME.out, which
# the server started last writes (10 s at most).
wait_listening() {
  for _ in $(seq 100); do
    PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/$1.out")
    [ -n "$PORT" ] && return 0
    sleep 0.1
  done
  fail "$1 server did not start: $(cat "$WORK/$1.out")"
}

# start_server NAME ARGS...: runs `BENCH serve 127.0.0.1:0 ARGS` and sets PORT.
start_server() {
  name=$1; shift
  "$BENCH" serve 127.0.0.1:0 "$@" > "$WORK/$name.out" 2>&1 &
  SERVER_PIDS="$SERVER_PIDS $!"
  wait_listening "$name"
}
