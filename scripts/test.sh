#!/usr/bin/env bash
# Runs every check: lint, type check, then all tests. Prints a closing 'N passed, N failed' line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
pnpm lint
pnpm typecheck
mkdir -p test-artifacts
status=0
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json=test-artifacts/vitest.json || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync("test-artifacts/vitest.json", "utf8"));
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""));
' || true
exit $status
