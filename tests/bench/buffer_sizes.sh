#!/usr/bin/env bash
# Throughput of chapter 3 by --buffer-size, downloading big:MIB from a
# standalone labserver; the median of RUNS runs per size.
#
#   tests/bench/buffer_sizes.sh [MIB] [RUNS]      (defaults: 1024 5)
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
mib=${1:-1024}
runs=${2:-5}
make -s chapter3 labserver
start_labserver "big:$mib"
echo "buffer bytes   median MiB/s   (runs)"
for size in ${SIZES:-1024 4096 16384 32768 65536 131072 262144 1048576}; do
  rates=()
  for _ in $(seq "$runs"); do rates+=("$(download_rate "$mib" chapter3 --buffer-size "$size")"); done
  printf '%12s   %12s   (%s)\n' "$size" "$(median "${rates[@]}")" "${rates[*]}"
done
