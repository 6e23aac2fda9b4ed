#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# `fleetmedic check` accepts every example configuration in
# packaging/examples/ (bare metal, Kubernetes, dry run), and rejects a
# broken copy of each, so the check can fail. The examples name no
# credential or TLS file (the keys that must name an existing file), so
# they are checked as they are.
#
# Usage: FLEETMEDIC=path/to/fleetmedic test_examples.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
examples=$(cd "$here/../../packaging/examples" && pwd)

if [ -z "${FLEETMEDIC:-}" ] || [ ! -x "$FLEETMEDIC" ]; then
        echo "FLEETMEDIC must name the fleetmedic program" >&2
        exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fleetmedic-examples.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
ok() {
        echo "ok   $1"
        passed=$((passed + 1))
}
fail() {
        echo "FAIL $1"
        sed 's/^/       /' "$tmp/out"
        failed=$((failed + 1))
}

n=0
for f in "$examples"/*.yaml; do
        n=$((n + 1))
        name=$(basename "$f")
        if "$FLEETMEDIC" check -c "$f" >"$tmp/out" 2>&1; then
                ok "$name: accepted"
        else
                fail "$name: rejected"
        fi

        # A broken copy: a misspelled key (dry_run) and a value out of range
        # (tick_s) must both be reported, with their lines.
        sed -e 's/^dry_run:/dry_rnu:/' "$f" >"$tmp/$name"
        printf 'tick_s: 99\n' >>"$tmp/$name"
        if "$FLEETMEDIC" check -c "$tmp/$name" >"$tmp/out" 2>&1; then
                fail "$name, broken copy: accepted"
        elif grep -q "dry_rnu: unknown key" "$tmp/out" && grep -q ": tick_s: " "$tmp/out"; then
                ok "$name, broken copy: rejected"
        else
                fail "$name, broken copy: rejected without naming both errors"
        fi
done
if [ "$n" -ne 3 ]; then
        echo "FAIL expected 3 examples in $examples, found $n"
        failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
