#!/usr/bin/env bash
# Start a controller on the embedded default (or pass flags through: npm start -- --config F).
# On a fresh clone it installs the dependencies and builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build --silent
exec node bin/run.js node start "$@"
