#!/usr/bin/env bash
# run.sh -- the Mastodon client-library test (masto.js, megalodon) against a
# real local cluster in demo mode, on ports of its own (regions 18191-18193,
# Redis 16391), data in a temp dir.
set -euo pipefail
cd "$(dirname "$0")/../.."
export DF_BIN=${DRIFTFEED_BIN:-build/driftfeed}
export DF_VAR; DF_VAR=$(mktemp -d /tmp/driftfeed-clients-XXXX)
export DF_PORT_BASE=18191 DF_REDIS_PORT=16391
trap 'deploy/cluster stop >/dev/null; rm -rf "$DF_VAR"' EXIT
deploy/cluster start --demo
node tests/clients/clients.test.mjs "http://127.0.0.1:$DF_PORT_BASE" "http://127.0.0.1:$((DF_PORT_BASE + 1))"
