#!/usr/bin/env bash
# The main job, end to end on one machine: set up, build, make a private CA, and pass
# traffic app -> egress sidecar -(mutual TLS)-> ingress sidecar -> upstream app.
#
#   tools/demo.sh            (as root on Debian 12; sets everything up first)
#
# Layout (all on 127.0.0.1):
#   client (curl) -> :15080 egress sidecar "client.sample-namespace"
#                 -> TLS 1.3, mTLS, SAN app.sample-namespace checked
#                 -> :15443 ingress sidecar "app.sample-namespace"
#                 -> :18080 upstream app (ringside-bench serve)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
"$here/tools/setup.sh" build
bin="$here/build"
ringside="$bin/ringside"
ca_tool="$bin/tools/ca/ringside-ca"
bench="$bin/bench/loadgen/ringside-bench"

work=$(mktemp -d /tmp/ringside-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_port() {  # PORT
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "demo: nothing listens on 127.0.0.1:$1" >&2
  exit 1
}

step() { printf '\n== %s\n' "$*"; }

step "1. a private CA and two short-lived certificates (ringside-ca)"
"$ca_tool" init --out "$work/ca" --key-type ecdsa-p256
"$ca_tool" issue --ca "$work/ca" --san app.sample-namespace --lifetime 7d --out "$work/app"
"$ca_tool" issue --ca "$work/ca" --san client.sample-namespace --lifetime 7d --out "$work/client"
"$ca_tool" show "$work/app/cert.pem"

step "2. the upstream app on 127.0.0.1:18080 (ringside-bench serve)"
"$bench" serve 127.0.0.1:18080 >"$work/app.log" 2>&1 &
pids+=($!)
wait_port 18080

step "3. the ingress sidecar of app.sample-namespace on 127.0.0.1:15443 (TLS in, mutual TLS required)"
"$ringside" --service-name app.sample-namespace \
  --ingress 127.0.0.1:15443=127.0.0.1:18080,protocol=http,client-cert=require \
  --cert "$work/app/cert.pem" --key "$work/app/key.pem" --trust "$work/ca/ca.pem" \
  --access-log "$work/ingress-access.log" \
  --admin 127.0.0.1:19901 --threads 1 >"$work/ingress.log" 2>&1 &
pids+=($!)
wait_port 15443

step "4. the egress sidecar of client.sample-namespace on 127.0.0.1:15080 (the client alias)"
"$ringside" --service-name client.sample-namespace \
  --egress 127.0.0.1:15080=app.sample-namespace,protocol=http \
  --upstream app.sample-namespace=127.0.0.1:15443 \
  --cert "$work/client/cert.pem" --key "$work/client/key.pem" --trust "$work/ca/ca.pem" \
  --access-log "$work/egress-access.log" \
  --admin 127.0.0.1:19902 --threads 1 >"$work/egress.log" 2>&1 &
pids+=($!)
wait_port 15080

step "5. the app calls http://127.0.0.1:15080/ in plaintext"
response=$(curl -sS --max-time 5 -D - http://127.0.0.1:15080/)
echo "$response"

sleep 0.3  # the access log is written out every 100 ms
echo "  egress access log:  $(tail -n 1 "$work/egress-access.log" 2>/dev/null)"
echo "  ingress access log: $(tail -n 1 "$work/ingress-access.log" 2>/dev/null)"

step "6. what the ingress presents (openssl s_client with the CA and a client certificate)"
echo | openssl s_client -connect 127.0.0.1:15443 -servername app.sample-namespace \
  -CAfile "$work/ca/ca.pem" -cert "$work/client/cert.pem" -key "$work/client/key.pem" \
  -verify_hostname app.sample-namespace 2>/dev/null |
  grep -E '^(subject|issuer)=|Protocol|Cipher is|Verify return code' | sed 's/^/  /' || true

step "7. a client without a certificate is refused by the ingress"
if echo | timeout 5 openssl s_client -connect 127.0.0.1:15443 -servername app.sample-namespace \
  -CAfile "$work/ca/ca.pem" 2>&1 | grep -q 'Hello, world'; then
  no_cert="ACCEPTED (unexpected)"
else
  no_cert="refused"
fi
echo "  $no_cert"

step "8. what the sidecars counted (admin /stats)"
curl -s http://127.0.0.1:19901/stats | grep -E '^ringside_listener_(cx_total|tls_handshake_success_total|tls_handshake_failure_total)' | sed 's/^/  ingress: /'
curl -s http://127.0.0.1:19902/stats | grep -E '^ringside_listener_(cx_total|tls_handshake_success_total|upstream_tx_bytes_total)' | sed 's/^/  egress:  /'
curl -s http://127.0.0.1:19902/stats | grep -E '^ringside_http_service_(requests_total|http_code_target_2xx_total)' | sed 's/^/  egress:  /'

step "what this proves"
ok=1
if grep -q 'Hello, world' <<<"$response"; then
  echo "  [ok] a plaintext request crossed egress -> TLS -> ingress -> app and came back"
else
  echo "  [FAIL] no answer from the app through the sidecars"; ok=0
fi
if grep -qi '^server: ringside' <<<"$response" && grep -qi '^x-upstream-service-time:' <<<"$response" &&
  grep -q '" 200 ' "$work/egress-access.log" 2>/dev/null && grep -q '" 200 ' "$work/ingress-access.log" 2>/dev/null; then
  echo "  [ok] both sidecars proxied HTTP/1.1: the response carries server: ringside and x-upstream-service-time, and each logged the request"
else
  echo "  [FAIL] the HTTP headers or access log lines are missing"; ok=0
fi
if curl -s http://127.0.0.1:19902/stats | grep -Eq '^ringside_listener_tls_handshake_success_total\{[^}]*\} [1-9]'; then
  echo "  [ok] the egress sidecar verified the ingress's certificate (chain to the private CA, DNS SAN app.sample-namespace)"
else
  echo "  [FAIL] the egress sidecar recorded no verified TLS handshake"; ok=0
fi
if [ "$no_cert" = refused ]; then
  echo "  [ok] the ingress required a client certificate from the private CA (mutual TLS)"
else
  echo "  [FAIL] the ingress let a client without a certificate through"; ok=0
fi
kill -TERM "${pids[1]}"
if wait "${pids[1]}"; then
  echo "  [ok] SIGTERM drained the ingress sidecar and it exited 0"
else
  echo "  [FAIL] the ingress sidecar did not exit cleanly on SIGTERM"; ok=0
fi
[ "$ok" = 1 ] && echo "demo: all good" || { echo "demo: something failed; logs in $work"; trap - EXIT; exit 1; }
