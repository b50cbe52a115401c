#!/usr/bin/env bash
# Installs whatever is missing for ward on Debian 12 (apt packages, npm deps, the build) and
# mounts bpffs. Idempotent: a second run only checks. Must run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "ward setup: must run as root (it installs packages, loads BPF programs, creates netns)" >&2
  exit 1
fi

APT_PACKAGES=(etcd-server etcd-client clang llvm libbpf-dev libelf-dev zlib1g-dev bpftool iproute2
  iputils-ping netcat-openbsd curl socat make g++ python3 procps util-linux systemd
  podman containernetworking-plugins runc busybox-static)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ward setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then echo "ward setup: Node.js >= 20 required, found $(node --version)" >&2; exit 1; fi

# node-gyp must build against the local Node headers (no downloads): .npmrc sets nodedir=/usr.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "ward setup: installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
fi

if ! mountpoint -q /sys/fs/bpf; then
  mount -t bpf bpffs /sys/fs/bpf
fi

echo "ward setup: building"
npm run --silent build
