#!/usr/bin/env bash
# Installs a built ward tree on this host (idempotent: a second run changes nothing):
#   PREFIX (default /opt/ward)        package.json, bin/, dist/, BPF objects, the addon, docs,
#                                     production node_modules (npm ci --omit=dev, offline first)
#   BINDIR/ward (default /usr/local/bin)  wrapper running PREFIX/bin/ward.js with this node
#   CNIDIR/ward-cni (default /usr/lib/cni)  the CNI plugin, a wrapper running PREFIX/bin/ward-cni.js
#   /etc/ward/agent.yaml              from deploy/agent.yaml.example, only if absent
#   /etc/systemd/system/ward-agent.service  (and ward-etcd.service + /etc/ward/etcd.env with --etcd)
# Nothing is enabled or started: see the README section "Running on bare-metal hosts".
set -euo pipefail

usage() {
  cat <<USAGE
Usage: deploy/install.sh [--prefix DIR] [--root DIR] [--bin-dir DIR] [--cni-dir DIR] [--etcd]

  --prefix DIR   where ward goes (default /opt/ward)
  --root DIR     staging root: every path is created under DIR (packaging, tests)
  --bin-dir DIR  where the ward wrapper goes (default /usr/local/bin)
  --cni-dir DIR  CNI plugin directory for ward-cni (default /usr/lib/cni, Debian's podman)
  --etcd         also install the etcd member unit and /etc/ward/etcd.env (from the example)

Run from a built checkout (npm run build, or scripts/setup.sh) as root.
USAGE
}

die() { echo "ward install: $*" >&2; exit 1; }

PREFIX=/opt/ward
ROOT=
BINDIR=/usr/local/bin
CNIDIR=/usr/lib/cni
WITH_ETCD=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || { usage >&2; exit 2; }; PREFIX=$2; shift 2 ;;
    --root) [ $# -ge 2 ] || { usage >&2; exit 2; }; ROOT=$2; shift 2 ;;
    --bin-dir) [ $# -ge 2 ] || { usage >&2; exit 2; }; BINDIR=$2; shift 2 ;;
    --cni-dir) [ $# -ge 2 ] || { usage >&2; exit 2; }; CNIDIR=$2; shift 2 ;;
    --etcd) WITH_ETCD=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "ward install: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$PREFIX" in /*) ;; *) echo "ward install: --prefix must be absolute" >&2; exit 2 ;; esac
case "$BINDIR" in /*) ;; *) echo "ward install: --bin-dir must be absolute" >&2; exit 2 ;; esac
case "$CNIDIR" in /*) ;; *) echo "ward install: --cni-dir must be absolute" >&2; exit 2 ;; esac
if [ -n "$ROOT" ]; then
  case "$ROOT" in /*) ;; *) echo "ward install: --root must be absolute" >&2; exit 2 ;; esac
  ROOT=${ROOT%/}
fi

SRC=$(cd "$(dirname "$0")/.." && pwd)
DEST=$ROOT$PREFIX
[ "$SRC" != "$DEST" ] || die "source and prefix are the same directory ($SRC)"
for f in dist/agent/cli/main.js bpf/build/ward_endpoint.o bpf/napi/build/Release/ebpf_napi.node; do
  [ -e "$SRC/$f" ] || die "$SRC/$f is missing: build first (npm run build)"
done
NODE=$(command -v node) || die "node (Node.js >= 20) is not on PATH"

changed=0
note() { echo "ward install: $*"; changed=1; }

# Copies SRC_PATH to DST_PATH only when the content differs (keeps mtimes of unchanged files).
put_file() {
  local from=$1 to=$2 mode=$3
  if [ -f "$to" ] && cmp -s "$from" "$to"; then return 0; fi
  mkdir -p "$(dirname "$to")"
  install -m "$mode" "$from" "$to.tmp.$$"
  mv -f "$to.tmp.$$" "$to"
  note "installed $to"
}

# Mirrors a directory tree (files removed from the source go from the copy too).
put_tree() {
  local from=$1 to=$2
  if [ -d "$to" ] && diff -rq "$from" "$to" >/dev/null 2>&1; then return 0; fi
  rm -rf "$to.tmp.$$"
  mkdir -p "$(dirname "$to")"
  cp -a "$from" "$to.tmp.$$"
  rm -rf "$to"
  mv "$to.tmp.$$" "$to"
  note "installed $to/"
}

mkdir -p "$DEST"
put_file "$SRC/package.json" "$DEST/package.json" 0644
put_file "$SRC/package-lock.json" "$DEST/package-lock.json" 0644
put_file "$SRC/bin/ward.js" "$DEST/bin/ward.js" 0755
put_file "$SRC/bin/ward-cni.js" "$DEST/bin/ward-cni.js" 0755
put_tree "$SRC/dist" "$DEST/dist"
for o in "$SRC"/bpf/build/*.o; do put_file "$o" "$DEST/bpf/build/$(basename "$o")" 0644; done
put_file "$SRC/bpf/napi/build/Release/ebpf_napi.node" "$DEST/bpf/napi/build/Release/ebpf_napi.node" 0755
put_tree "$SRC/docs" "$DEST/docs"
put_tree "$SRC/deploy" "$DEST/deploy"

# Production dependencies, reinstalled only when the lock file changed.
stamp="$DEST/node_modules/.ward-lock.sha256"
want=$(sha256sum "$DEST/package-lock.json" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "ward install: npm ci --omit=dev in $DEST"
  (cd "$DEST" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error) \
    || die "npm ci failed in $DEST"
  echo "$want" >"$stamp"
  changed=1
fi

# The wrapper names this node binary: systemd's PATH may not contain it.
wrapper=$(mktemp)
trap 'rm -f "$wrapper"' EXIT
printf '#!/bin/sh\n# ward CLI and agent (installed by deploy/install.sh)\nexec %s %s "$@"\n' "$NODE" "$PREFIX/bin/ward.js" >"$wrapper"
put_file "$wrapper" "$ROOT$BINDIR/ward" 0755
# Runtimes run CNI plugins with a PATH that may lack node: the same kind of wrapper.
printf '#!/bin/sh\n# ward CNI plugin (installed by deploy/install.sh)\nexec %s %s "$@"\n' "$NODE" "$PREFIX/bin/ward-cni.js" >"$wrapper"
put_file "$wrapper" "$ROOT$CNIDIR/ward-cni" 0755

# Config from the example, never overwritten.
if [ ! -e "$ROOT/etc/ward/agent.yaml" ]; then
  mkdir -p "$ROOT/etc/ward"
  install -m 0644 "$SRC/deploy/agent.yaml.example" "$ROOT/etc/ward/agent.yaml"
  note "created $ROOT/etc/ward/agent.yaml (edit node-name, node-ip, endpoint-cidr, etcd)"
fi

unit=$(mktemp)
trap 'rm -f "$wrapper" "$unit"' EXIT
sed -e "s#/usr/local/bin/ward #$BINDIR/ward #" -e "s#/opt/ward/#$PREFIX/#" "$SRC/deploy/systemd/ward-agent.service" >"$unit"
put_file "$unit" "$ROOT/etc/systemd/system/ward-agent.service" 0644
if [ "$WITH_ETCD" = 1 ]; then
  put_file "$SRC/deploy/etcd/ward-etcd.service" "$ROOT/etc/systemd/system/ward-etcd.service" 0644
  if [ ! -e "$ROOT/etc/ward/etcd.env" ]; then
    install -D -m 0640 "$SRC/deploy/etcd/etcd.env.example" "$ROOT/etc/ward/etcd.env"
    note "created $ROOT/etc/ward/etcd.env (edit the member name, URLs and certificates)"
  fi
fi

# Only on a live systemd host, and only for the real root.
if [ -z "$ROOT" ] && [ "$changed" = 1 ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
fi
if [ "$changed" = 1 ]; then echo "ward install: done ($DEST)"; else echo "ward install: up to date ($DEST)"; fi
