#!/usr/bin/env bash
# Writes docs/flags.md from `ringside --help`, so the flag reference never drifts from
# the binary (tests/config/flags_doc_test.sh fails when it is stale).
#   tools/gen-flags-doc.sh [PATH_TO_RINGSIDE] > docs/flags.md
set -euo pipefail
bin=${1:-build/ringside}
cat <<'HEAD'
# ringside flags

Generated from `ringside --help` by `tools/gen-flags-doc.sh`; a test fails when this
page and the binary disagree. Durations take `ms`, `s`, `m`, `h`, `d` (a bare number is
seconds); sizes take `k` and `m`. Every flag can also be set in `--config FILE` (INI,
the flag's name as the key; repeat a key for a repeatable flag); flags override the file.

```
HEAD
"$bin" --help
echo '```'
