#!/usr/bin/env bash
# ringside-ca end to end: init, intermediate, issue, show, file modes, openssl verify, usage errors.
set -u
ca_tool=$1
dir=$(mktemp -d /tmp/ringside-ca-test.XXXXXX)
trap 'rm -rf "$dir"' EXIT
failures=0
check() {  # check DESCRIPTION EXPECTED_STATUS COMMAND...
  local what=$1 want=$2
  shift 2
  "$@" >"$dir/out" 2>&1
  local got=$?
  if [ "$got" != "$want" ]; then
    echo "FAIL: $what: exit $got, wanted $want"; cat "$dir/out"; failures=$((failures + 1))
  fi
}
contains() {  # contains DESCRIPTION TEXT
  if ! grep -qF -- "$2" "$dir/out"; then
    echo "FAIL: $1: output lacks '$2'"; cat "$dir/out"; failures=$((failures + 1))
  fi
}

check "init" 0 "$ca_tool" init --out "$dir/ca" --cn "Test CA"
check "ca.key mode" 0 test "$(stat -c %a "$dir/ca/ca.key")" = 600
check "init refuses to overwrite" 1 "$ca_tool" init --out "$dir/ca"
check "issue" 0 "$ca_tool" issue --ca "$dir/ca" --san app.test --san api.test --lifetime 36h \
  --key-type rsa-2048 --out "$dir/leaf"
check "key.pem mode" 0 test "$(stat -c %a "$dir/leaf/key.pem")" = 600
before=$(cat "$dir/leaf/cert.pem" "$dir/leaf/key.pem" | sha256sum)
check "issue refuses to overwrite" 1 "$ca_tool" issue --ca "$dir/ca" --san other.test \
  --out "$dir/leaf"
contains "issue refusal says --force" "--force"
check "refused issue left the pair alone" 0 test \
  "$(cat "$dir/leaf/cert.pem" "$dir/leaf/key.pem" | sha256sum)" = "$before"
mkdir -p "$dir/keyonly" && echo stale >"$dir/keyonly/key.pem"
check "issue refuses a lone key.pem" 1 "$ca_tool" issue --ca "$dir/ca" --san a.test \
  --out "$dir/keyonly"
check "issue --force" 0 "$ca_tool" issue --ca "$dir/ca" --san other.test --force \
  --out "$dir/keyonly"
check "issue --force wrote the pair" 0 test "$(cat "$dir/keyonly/key.pem")" != stale
check "no temp files left" 0 test "$(ls "$dir/leaf" | tr '\n' ' ')" = "cert.pem key.pem "
if command -v openssl >/dev/null; then
  check "openssl verify" 0 openssl verify -CAfile "$dir/ca/ca.pem" "$dir/leaf/cert.pem"
fi
check "show leaf" 0 "$ca_tool" show "$dir/leaf/cert.pem"
contains "show subject" "subject:    CN=app.test"
contains "show issuer" "issuer:     CN=Test CA"
contains "show sans" "dns sans:   app.test, api.test"
contains "show key type" "key type:   rsa-2048"
contains "show is ca" "is ca:      no"
check "show ca" 0 "$ca_tool" show "$dir/ca/ca.pem"
contains "show ca is ca" "is ca:      yes"

# A subordinate CA: root -> intermediate (pathlen 0) -> leaf, served with its chain.
check "intermediate" 0 "$ca_tool" intermediate --ca "$dir/ca" --out "$dir/inter" --cn "Test Sub CA" \
  --lifetime 365d
check "intermediate ca.key mode" 0 test "$(stat -c %a "$dir/inter/ca.key")" = 600
check "intermediate chain file" 0 test "$(grep -c 'BEGIN CERTIFICATE' "$dir/inter/ca.pem")" = 2
check "intermediate refuses to overwrite" 1 "$ca_tool" intermediate --ca "$dir/ca" \
  --out "$dir/inter"
check "show intermediate" 0 "$ca_tool" show "$dir/inter/ca.pem"
contains "intermediate subject" "subject:    CN=Test Sub CA"
contains "intermediate issuer" "issuer:     CN=Test CA"
contains "intermediate path length" "path len:   0"
check "issue under the intermediate" 0 "$ca_tool" issue --ca "$dir/inter" --san sub.test \
  --out "$dir/subleaf"
check "leaf served with the intermediate" 0 test \
  "$(grep -c 'BEGIN CERTIFICATE' "$dir/subleaf/cert.pem")" = 2
if command -v openssl >/dev/null; then
  check "openssl verify against the root" 0 openssl verify -CAfile "$dir/ca/ca.pem" \
    -untrusted "$dir/subleaf/cert.pem" "$dir/subleaf/cert.pem"
fi
check "no CA under a pathlen 0 CA" 1 "$ca_tool" intermediate --ca "$dir/inter" --out "$dir/sub2" \
  --lifetime 1d
contains "pathlen refusal says why" "pathLenConstraint 0"
check "no intermediate outliving its parent" 1 "$ca_tool" intermediate --ca "$dir/ca" \
  --out "$dir/long" --lifetime 4000d
contains "lifetime refusal says why" "outlive its parent"
check "intermediate help" 0 "$ca_tool" intermediate --help

check "help" 0 "$ca_tool" --help
check "issue help" 0 "$ca_tool" issue --help
check "no command" 2 "$ca_tool"
check "unknown command" 2 "$ca_tool" frobnicate
check "missing san" 2 "$ca_tool" issue --ca "$dir/ca" --out "$dir/x"
contains "missing san names it" "--san"
check "bad duration" 2 "$ca_tool" issue --ca "$dir/ca" --san a.test --lifetime 3weeks --out "$dir/x"
contains "bad duration names it" "--lifetime"
check "bad key type" 2 "$ca_tool" init --out "$dir/y" --key-type dsa
contains "bad key type names it" "--key-type"
check "show without file" 2 "$ca_tool" show
check "show missing file" 1 "$ca_tool" show "$dir/nope.pem"
echo "garbage" >"$dir/garbage.pem"
check "show garbage" 1 "$ca_tool" show "$dir/garbage.pem"
check "issue with a missing CA" 1 "$ca_tool" issue --ca "$dir/none" --san a.test --out "$dir/z"

[ "$failures" = 0 ] && echo "all ringside-ca checks passed"
exit $((failures > 0))
