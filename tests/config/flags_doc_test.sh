#!/usr/bin/env bash
# docs/flags.md must be what tools/gen-flags-doc.sh makes from the binary's --help.
set -euo pipefail
bin=$1
src=$2
if ! diff -u "$src/docs/flags.md" <("$src/tools/gen-flags-doc.sh" "$bin"); then
  echo "docs/flags.md is stale: run tools/gen-flags-doc.sh build/ringside > docs/flags.md" >&2
  exit 1
fi
echo "docs/flags.md matches ringside --help"
