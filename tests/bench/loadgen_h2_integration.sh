#!/bin/sh
# ringside-bench's HTTP/2 modes against real peers on 127.0.0.1, a second or so each.
#   h2:   --h2 -m 10 against nghttpd, h2c (prior knowledge) and TLS (h2 chosen with ALPN),
#         closed and open loop; --h2 against an HTTP/1.1-only server must fail.
#   grpc: --grpc against a grpcio server (tests/bench/grpc_server.py): calls succeed, and the
#         calls a server aborts are counted by their grpc-status.
#   serve_grpc: `ringside-bench serve --grpc` (the gRPC echo app) under --grpc -m and under a
#         grpcio client (tests/bench/grpc_echo_client.py), which checks the echoed bytes.
# A missing tool skips (exit 77), except under CI=true for a tool tools/setup.sh installs
# (tools/packages.txt): there it is a failure, as in tests/integration/harness.py.
# Usage: loadgen_h2_integration.sh PATH/TO/ringside-bench h2|grpc|serve_grpc
set -u
BENCH="$1"
PART="$2"
HERE=$(cd "$(dirname "$0")" && pwd)
PACKAGES="$HERE/../../tools/packages.txt"
. "$HERE/loadgen_lib.sh"

# missing WHAT PACKAGE: skip, or fail under CI=true when tools/setup.sh installs PACKAGE.
missing() {
  if [ "${CI:-}" = true ] && grep -q "^$2\( \|$\)" "$PACKAGES"; then
    fail "$1 is missing, but tools/setup.sh installs $2 (tools/packages.txt) and CI=true"
  fi
  echo "SKIP: $1 is missing (package $2)"
  exit 77
}

# The helpers below run python3; the system's first: a version manager's shim on PATH
# costs a few hundred milliseconds a call.
PY=""
for candidate in /usr/bin/python3 python3; do
  if command -v "$candidate" > /dev/null; then PY=$candidate; break; fi
done
[ -n "$PY" ] || missing python3 python3

# json FILE KEY...: the value at that path of a JSON document ("" when absent).
json() {
  "$PY" - "$@" << 'PY'
import json, sys
value = json.load(open(sys.argv[1]))
for key in sys.argv[2:]:
    value = value.get(key, "") if isinstance(value, dict) else ""
print(value)
PY
}

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (5 s at most).
wait_port() {
  "$PY" - "$1" << 'PY' || fail "nothing listens on 127.0.0.1:$1"
import socket, sys, time
deadline = time.time() + 5
while time.time() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
PY
}

# run NAME ARGS...: ringside-bench ARGS --json WORK/NAME.json; must exit 0.
run() {
  name=$1; shift
  "$BENCH" "$@" --json "$WORK/$name.json" > "$WORK/$name.txt" 2>&1 ||
    fail "$name exited $?: $(cat "$WORK/$name.txt")"
}

# no_errors NAME: requests completed, zero errors.
no_errors() {
  requests=$(json "$WORK/$1.json" requests)
  errors=$(json "$WORK/$1.json" errors total)
  [ "${requests:-0}" -gt 0 ] || fail "$1: no requests completed: $(cat "$WORK/$1.txt")"
  [ "$errors" = 0 ] || fail "$1: $errors errors: $(cat "$WORK/$1.txt")"
}

# all_calls_ok NAME: gRPC calls completed, every one with grpc-status 0, zero errors.
all_calls_ok() {
  no_errors "$1"
  ok=$(json "$WORK/$1.json" grpc ok)
  [ "$ok" -gt 0 ] && [ "$ok" = "$(json "$WORK/$1.json" requests)" ] ||
    fail "$1: $ok calls OK: $(cat "$WORK/$1.json")"
}

h2_part() {
  command -v nghttpd > /dev/null || missing nghttpd nghttp2-server
  command -v openssl > /dev/null || missing openssl openssl
  mkdir "$WORK/htdocs"
  echo "hello" > "$WORK/htdocs/index.html"

  port=$(free_port)
  nghttpd --no-tls --address 127.0.0.1 -d "$WORK/htdocs" "$port" > "$WORK/nghttpd.out" 2>&1 &
  SERVER_PIDS="$SERVER_PIDS $!"
  wait_port "$port"
  run h2c "http://127.0.0.1:$port/index.html" --h2 -m 10 -c 2 -d 1s
  no_errors h2c
  [ "$(json "$WORK/h2c.json" protocol)" = h2 ] || fail "h2c: protocol is not h2"
  [ "$(json "$WORK/h2c.json" streams)" = 10 ] || fail "h2c: streams is not 10"
  grep -q "HTTP/2, 10 streams each" "$WORK/h2c.txt" || fail "h2c: $(cat "$WORK/h2c.txt")"

  run h2c_open "http://127.0.0.1:$port/index.html" --h2 -m 10 -c 2 -d 1s -R 400
  no_errors h2c_open
  requests=$(json "$WORK/h2c_open.json" requests)
  [ "$requests" -le 404 ] || fail "h2c open loop at 400/s for 1 s: $requests requests"

  # A missing file: every response is a 404, counted as status errors.
  "$BENCH" "http://127.0.0.1:$port/nothing-here" --h2 -m 4 -c 1 -d 500ms \
    --json "$WORK/h2c_404.json" > "$WORK/h2c_404.txt" 2>&1
  [ "$(json "$WORK/h2c_404.json" errors status)" -gt 0 ] || fail "404s not counted"
  [ "$(json "$WORK/h2c_404.json" status 4xx)" = "$(json "$WORK/h2c_404.json" requests)" ] ||
    fail "404s: $(cat "$WORK/h2c_404.txt")"

  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" > "$WORK/openssl.out" 2>&1 ||
    fail "openssl req: $(cat "$WORK/openssl.out")"
  tls_port=$(free_port)
  nghttpd --address 127.0.0.1 -d "$WORK/htdocs" "$tls_port" "$WORK/key.pem" "$WORK/cert.pem" \
    > "$WORK/nghttpd-tls.out" 2>&1 &
  SERVER_PIDS="$SERVER_PIDS $!"
  wait_port "$tls_port"
  run h2 "https://127.0.0.1:$tls_port/index.html" --h2 -m 10 -c 2 -d 1s \
    --cacert "$WORK/cert.pem" --sni localhost
  no_errors h2
  [ "$(json "$WORK/h2.json" handshakes)" -ge 2 ] || fail "h2: no TLS handshakes"

  # HTTP/2 to an HTTP/1.1-only server: no request succeeds, the exit status says so.
  start_server serve
  h1_port=$PORT
  "$BENCH" "http://127.0.0.1:$h1_port/" --h2 -c 1 -d 500ms --json "$WORK/h1.json" \
    > "$WORK/h1.txt" 2>&1 && fail "--h2 against an HTTP/1.1 server exited 0"
  [ "$(json "$WORK/h1.json" requests)" = 0 ] || fail "--h2 to HTTP/1.1: $(cat "$WORK/h1.txt")"
  [ "$(json "$WORK/h1.json" errors total)" -gt 0 ] || fail "--h2 to HTTP/1.1: no errors"

  "$BENCH" "http://127.0.0.1:$port/" --h2 -m 0 > "$WORK/usage.txt" 2>&1
  [ $? -eq 2 ] || fail "-m 0 did not exit 2"
  grep -q "streams" "$WORK/usage.txt" || fail "-m 0: $(cat "$WORK/usage.txt")"
}

# grpc_python: sets py to an interpreter that has grpc (Debian's python3-grpcio is for
# /usr/bin/python3, which may not be the first python3 on PATH).
grpc_python() {
  py=""
  for candidate in /usr/bin/python3 python3; do
    if "$candidate" -c "import grpc" 2> /dev/null; then py=$candidate; break; fi
  done
  [ -n "$py" ] || missing "python3 module grpc" python3-grpcio
}

grpc_part() {
  grpc_python

  # start_grpc NAME ARGS...: sets PORT.
  start_grpc() {
    name=$1; shift
    "$py" "$HERE/grpc_server.py" "$@" > "$WORK/$name.out" 2>&1 &
    SERVER_PIDS="$SERVER_PIDS $!"
    wait_listening "$name"
  }

  start_grpc grpc --expect-size 64 --fail-status UNAVAILABLE
  url="http://127.0.0.1:$PORT"
  run unary "$url" --grpc /bench.Echo/Unary --message-size 64 -c 2 -m 4 -d 1s
  all_calls_ok unary
  [ "$(json "$WORK/unary.json" protocol)" = grpc ] || fail "unary: protocol is not grpc"

  # The server checks the message length it decoded: one byte more is INVALID_ARGUMENT.
  run wrong_size "$url" --grpc /bench.Echo/Unary --message-size 65 -c 1 -m 2 -d 500ms
  failed=$(json "$WORK/wrong_size.json" grpc failed)
  [ "$failed" -gt 0 ] || fail "wrong size: no failures: $(cat "$WORK/wrong_size.txt")"
  [ "$(json "$WORK/wrong_size.json" grpc by_status INVALID_ARGUMENT)" = "$failed" ] ||
    fail "wrong size: $(cat "$WORK/wrong_size.json")"

  # Aborted calls are counted by their status, as errors, never as OK.
  run abort "$url" --grpc /bench.Echo/Fail -c 2 -m 4 -d 1s
  failed=$(json "$WORK/abort.json" grpc failed)
  [ "$failed" -gt 0 ] || fail "abort: no failures: $(cat "$WORK/abort.txt")"
  [ "$(json "$WORK/abort.json" grpc by_status UNAVAILABLE)" = "$failed" ] ||
    fail "abort: $(cat "$WORK/abort.json")"
  [ "$(json "$WORK/abort.json" grpc ok)" = 0 ] || fail "abort: calls counted OK"
  [ "$(json "$WORK/abort.json" errors grpc)" = "$failed" ] || fail "abort: errors.grpc"
  grep -q "failed (UNAVAILABLE $failed)" "$WORK/abort.txt" || fail "abort: $(cat "$WORK/abort.txt")"

  # A method the server does not have.
  run unknown "$url" --grpc /bench.Echo/Nope -c 1 -d 500ms
  [ "$(json "$WORK/unknown.json" grpc by_status UNIMPLEMENTED)" -gt 0 ] ||
    fail "unknown method: $(cat "$WORK/unknown.json")"

  "$BENCH" "$url" --grpc bench.Echo/Unary > "$WORK/usage.txt" 2>&1
  [ $? -eq 2 ] || fail "--grpc without a leading / did not exit 2"
  "$BENCH" "$url" --grpc /bench.Echo/Unary --message-size 17M > "$WORK/usage.txt" 2>&1
  [ $? -eq 2 ] || fail "--message-size 17M did not exit 2"
}

serve_grpc_part() {
  grpc_python
  start_server echo_app --grpc --threads 2
  grep -q "grpc, h2c" "$WORK/echo_app.out" || fail "serve --grpc: $(cat "$WORK/echo_app.out")"
  url="http://127.0.0.1:$PORT"

  # Many streams on many connections: every call OK, nothing else.
  run echo "$url" --grpc /bench.Echo/Unary --message-size 64 -c 8 -m 20 -d 1s
  all_calls_ok echo
  # Empty and larger-than-the-window messages, any method path.
  run echo_empty "$url" --grpc /other.Service/Call -c 2 -m 4 -d 300ms
  all_calls_ok echo_empty
  run echo_large "$url" --grpc /bench.Echo/Unary --message-size 200k -c 2 -m 4 -d 500ms
  all_calls_ok echo_large

  # A real gRPC client gets its own bytes back.
  "$py" "$HERE/grpc_echo_client.py" "$PORT" > "$WORK/grpcio.txt" 2>&1 ||
    fail "grpcio client: $(cat "$WORK/grpcio.txt")"
  grep -q "^ok 404$" "$WORK/grpcio.txt" || fail "grpcio client: $(cat "$WORK/grpcio.txt")"

  # Not gRPC: every GET is answered 404 (counted as status errors).
  "$BENCH" "$url/" --h2 -c 1 -m 2 -d 300ms --json "$WORK/get.json" > "$WORK/get.txt" 2>&1
  [ "$(json "$WORK/get.json" status 4xx)" -gt 0 ] || fail "GET: $(cat "$WORK/get.txt")"
  [ "$(json "$WORK/get.json" status 4xx)" = "$(json "$WORK/get.json" requests)" ] &&
    [ "$(json "$WORK/get.json" errors status)" = "$(json "$WORK/get.json" requests)" ] ||
    fail "GET: $(cat "$WORK/get.json")"

  "$BENCH" serve 127.0.0.1:0 --grpc --echo > "$WORK/usage.txt" 2>&1
  [ $? -eq 2 ] || fail "serve --grpc --echo did not exit 2"
  "$BENCH" serve 127.0.0.1:0 --grpc --delay 1ms > "$WORK/usage.txt" 2>&1
  [ $? -eq 2 ] || fail "serve --grpc --delay did not exit 2"
}

case "$PART" in
  h2) h2_part ;;
  grpc) grpc_part ;;
  serve_grpc) serve_grpc_part ;;
  *) fail "usage: $0 BENCH h2|grpc|serve_grpc" ;;
esac
echo "ok"
