#!/usr/bin/env bash
# ward's main job on an embedded default: setup, then `ward dev demo` (local etcd, sample
# identities from two nodes, `ward identity list`, the sample policy's connectivity matrix).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node bin/ward.js dev demo "$@"
