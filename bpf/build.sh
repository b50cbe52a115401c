#!/usr/bin/env bash
# Builds the BPF programs (clang) and the ebpf-napi addon (node-gyp against the system libbpf).
set -euo pipefail
cd "$(dirname "$0")"
echo "bpf: nothing to build yet"
