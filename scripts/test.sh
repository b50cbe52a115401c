#!/usr/bin/env bash
# The whole test suite: setup, lint (incl. import direction), type check, unit tests, then the
# integration suites (real etcd clusters, real BPF programs, real packets between netns).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== lint"; npm run --silent lint
echo "== typecheck"; npm run --silent typecheck
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
status=0
# Unit tests get one retry: a test that passes only on retry is listed as FLAKY at the end.
echo "== unit tests"
npx vitest run --project unit --retry 1 --reporter=default --reporter=json --outputFile.json="$results/unit.json" || status=$?
echo "== integration tests (root: etcd, BPF, netns; two files at a time)"
npx vitest run --project integration --maxWorkers=2 --minWorkers=1 \
  --reporter=default --reporter=json --outputFile.json="$results/integration.json" || status=$?
# One closing line for both projects: "tests: N passed, N failed".
node -e '
  const fs = require("node:fs");
  let passed = 0, failed = 0;
  for (const f of process.argv.slice(1)) {
    if (!fs.existsSync(f)) { failed++; continue; }
    const r = JSON.parse(fs.readFileSync(f, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests;
    // CI keeps only the tail of the output: repeat each failure here, with its first lines.
    for (const file of r.testResults ?? []) {
      if (file.status === "failed" && (file.assertionResults ?? []).every((a) => a.status !== "failed"))
        console.log(`FAILED (file) ${file.name}\n  ${String(file.message ?? "").split("\n").slice(0, 12).join("\n  ")}`);
      for (const a of file.assertionResults ?? []) {
        if (a.status === "passed" && (a.failureMessages ?? []).length > 0)
          console.log(`FLAKY (passed on retry) ${file.name} > ${a.fullName}\n  ${a.failureMessages[0].split("\n").slice(0, 6).join("\n  ")}`);
        if (a.status !== "failed") continue;
        const msg = (a.failureMessages ?? []).join("\n").split("\n").slice(0, 12).join("\n  ");
        console.log(`FAILED ${file.name} > ${a.fullName}\n  ${msg}`);
      }
    }
  }
  console.log(`tests: ${passed} passed, ${failed} failed`);
' "$results/unit.json" "$results/integration.json"
exit "$status"
