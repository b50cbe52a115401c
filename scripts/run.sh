#!/usr/bin/env bash
# ward's main job: setup, then `ward dev up` on the sample cluster file: a local etcd, two hosts
# (network namespaces on a bridge) with an agent each, four workloads, the connectivity matrix
# before and after the sample policy. The cluster stays up: `npx ward dev exec WORKLOAD -- CMD`,
# `npx ward dev status`, `npx ward dev down`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node bin/ward.js dev up -f examples/cluster.yaml "$@"
