#!/usr/bin/env bash
# docs/flags.md must be what tools/gen-flags-doc.sh makes from the binary's --help, and
# the pages about the sidecar's behaviour name only flags the binary has.
set -euo pipefail
bin=$1
src=$2
if ! diff -u "$src/docs/flags.md" <("$src/tools/gen-flags-doc.sh" "$bin"); then
  echo "docs/flags.md is stale: run tools/gen-flags-doc.sh build/ringside > docs/flags.md" >&2
  exit 1
fi
echo "docs/flags.md matches ringside --help"
known=$("$bin" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u)
unknown=0
for page in docs/http-proxy.md docs/operations.md docs/rotation.md; do
  for flag in $(grep -o -- '`--[a-z][a-z0-9-]*[a-z0-9]' "$src/$page" | tr -d '`' | sort -u); do
    if ! grep -qx -- "$flag" <<<"$known"; then
      echo "$page names $flag, which ringside --help does not list" >&2
      unknown=1
    fi
  done
done
[ "$unknown" = 0 ] && echo "the flags named in the docs exist"
exit "$unknown"
