#!/usr/bin/env bash
# Download benchmark: a chapter against curl, fetching big:MIB from a standalone
# labserver on loopback, runs alternating so both see the same machine state.
#
#   tests/bench/download.sh [CHAPTER] [MIB] [RUNS] [CHAPTER OPTIONS...]
#   (defaults: chapter1 1024 5)
#
# Prints each run's throughput, the median of each, and the ratio chapter/curl.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
chapter=${1:-chapter1}
mib=${2:-1024}
runs=${3:-5}
shift $(( $# < 3 ? $# : 3 ))
command -v curl >/dev/null || { echo "curl is needed: apt-get install -y curl" >&2; exit 1; }
make -s "$chapter" labserver
start_labserver "big:$mib"

curl_rate() {
  local start end bytes
  start=$(now)
  bytes=$(curl -s -o /dev/null -w '%{size_download}' "http://127.0.0.1:$port/")
  end=$(now)
  [ "$bytes" -ge $(( mib * 1024 * 1024 )) ] || { echo "short download by curl" >&2; exit 1; }
  mib_per_s "$mib" "$start" "$end"
}

chapter_rates=() curl_rates=()
for i in $(seq "$runs"); do
  c=$(download_rate "$mib" "$chapter" "$@")
  u=$(curl_rate)
  chapter_rates+=("$c") curl_rates+=("$u")
  echo "run $i: $chapter ${c} MiB/s   curl ${u} MiB/s"
done
mc=$(median "${chapter_rates[@]}")
mu=$(median "${curl_rates[@]}")
echo "median over $runs runs of $mib MiB: $chapter $mc MiB/s, curl $mu MiB/s, ratio $(awk -v a="$mc" -v b="$mu" 'BEGIN { printf "%.2f", a / b }')"
