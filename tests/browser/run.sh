#!/usr/bin/env bash
# run.sh -- the browser test against a real local cluster in demo mode, on
# ports of its own (regions 18181-18183, Redis 16390), data in a temp dir.
set -euo pipefail
cd "$(dirname "$0")/../.."
export DF_BIN=${DRIFTFEED_BIN:-build/driftfeed}
export DF_VAR; DF_VAR=$(mktemp -d /tmp/driftfeed-browser-XXXX)
export DF_PORT_BASE=18181 DF_REDIS_PORT=16390
export ARTIFACTS=${ARTIFACTS:-$PWD/tests/browser/artifacts}
trap 'deploy/cluster stop >/dev/null; rm -rf "$DF_VAR"' EXIT
deploy/cluster start --demo
node tests/browser/demo.test.mjs "http://127.0.0.1:$DF_PORT_BASE/"
