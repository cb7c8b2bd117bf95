#!/usr/bin/env bash
# Start the product: a loopback HA pair (iscsi-ha demo); flags pass through (npm start -- --json).
# On a fresh clone it installs the dependencies and builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build --silent
exec node bin/run.js demo "$@"
