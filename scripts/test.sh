#!/usr/bin/env bash
# The whole test suite: setup, lint (incl. import direction), type check, unit tests, then the
# integration suites (real etcd clusters, real BPF programs, real packets between netns).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== lint"; npm run --silent lint
echo "== typecheck"; npm run --silent typecheck
echo "== unit tests"; npx vitest run --project unit
echo "== integration tests"; npx vitest run --project integration --maxWorkers=2 --minWorkers=1
