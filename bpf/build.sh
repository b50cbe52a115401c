#!/usr/bin/env bash
# Builds the BPF programs (clang, into bpf/build/), the C benchmark floors (bpf/build/bench-floor,
# bpf/build/l7-relay) and the ebpf-napi addon (node-gyp against the system libbpf, into bpf/napi/build/Release/).
# Works from a clean clone; needs clang, libbpf-dev, libelf-dev, zlib1g-dev, g++, make, python3.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p build
# asm/ headers of the host architecture (Debian multiarch path).
ARCH_INC="/usr/include/$(uname -m)-linux-gnu"

for src in progs/*.c; do
  obj="build/$(basename "${src%.c}").o"
  clang -O2 -g -Wall -Werror -target bpf -I"$ARCH_INC" -c "$src" -o "$obj"
done

# BTF of the ABI structs, for the layout test (never loaded).
clang -O2 -g -Wall -Werror -target bpf -I"$ARCH_INC" -c include/abi_btf.c -o build/ward_abi.o

clang -O2 -Wall -Werror -o build/bench-floor bench/floor.c -lbpf -lelf -lz
clang -O2 -Wall -Werror -o build/l7-relay bench/l7-relay.c

# nodedir=/usr: build against the installed Node headers, never download them.
../node_modules/.bin/node-gyp rebuild --nodedir=/usr --loglevel=warn -C napi >/dev/null
echo "bpf: built $(ls build/*.o | tr '\n' ' ')bench-floor l7-relay napi/build/Release/ebpf_napi.node"
