#!/usr/bin/env bash
# Records what real HAProxy 2.6 prints for every config in compat-tests/configs/ into
# NAME.haproxy (stdout, then stderr with the pid masked, then the exit code).
# The golden test compares rhaproxy's output with these files. Re-run after adding a config.
set -euo pipefail
cd "$(dirname "$0")/configs"
haproxy -v | grep 'version 2\.6\.' >/dev/null || { echo "needs HAProxy 2.6" >&2; exit 1; }
for f in *.cfg; do
  out=$(haproxy -c -f "$f" 2>/tmp/rhx-rec.err) && rc=0 || rc=$?
  {
    echo "$out" | sed '/^$/d' | sed 's/^/stdout: /'
    { grep -v 'haproxy version is\|path to executable is' /tmp/rhx-rec.err || true; } | sed -E 's/^\[([A-Z]+)\] +\([0-9]+\) : /[\1] (PID) : /' | sed 's/^/stderr: /'
    echo "exit: $rc"
  } > "${f%.cfg}.haproxy"
done
rm -f /tmp/rhx-rec.err
