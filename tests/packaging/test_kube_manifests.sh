#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Checks packaging/kubernetes/ with validate-kube.mjs: every document
# validates against the Kubernetes API's schemas (kubernetes-models from
# npm, the exact versions of kube/package-lock.json, installed with npm ci
# into a temporary directory), the objects fit together, and the Role
# grants exactly the API calls of the Kubernetes backend, which the program
# named by $KUBE_RBAC_DUMP (tests/packaging/kube_rbac_dump.c) prints.
#
# Needs node (18 or newer) and npm, and the npm registry (or a filled npm
# cache); exits 77 (a skip for meson) when node or npm is missing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        echo "SKIP: node and npm are needed (Debian packages nodejs and npm)"
        exit 77
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
        echo "SKIP: node $(node --version) is older than 18"
        exit 77
fi
if [ -z "${KUBE_RBAC_DUMP:-}" ] || [ ! -x "$KUBE_RBAC_DUMP" ]; then
        echo "KUBE_RBAC_DUMP must name the kube_rbac_dump program" >&2
        exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fleetmedic-kube.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

cp "$here/kube/package.json" "$here/kube/package-lock.json" "$tmp/"
if ! (cd "$tmp" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) >"$tmp/npm.log" 2>&1; then
        cat "$tmp/npm.log" >&2
        echo "npm ci failed" >&2
        exit 1
fi

"$KUBE_RBAC_DUMP" >"$tmp/rbac.json"
node "$here/validate-kube.mjs" --deps "$tmp" --manifests "$src/packaging/kubernetes" \
        --rbac "$tmp/rbac.json" --example "$src/packaging/examples/kubernetes.yaml"
