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
the flag's name as the key, every key with a value and no `[section]` headers; repeat a
key for a repeatable flag; relative paths in the file are relative to the file's folder);
flags override the file.

`ringside hosts` followed by the same flags checks them as a start would, then prints
the `/etc/hosts` lines that map each egress listener's service to its client alias
address (`127.255.0.1 app.sample-namespace`), and the host names of `--route` targets to
the first HTTP egress listener's address, and exits 0, so a platform can write the
task's hosts file from the sidecar's own configuration (see docs/service-connect.md).

```
HEAD
"$bin" --help
echo '```'
