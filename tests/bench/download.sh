#!/usr/bin/env bash
# Download benchmark: a chapter against curl, fetching big:MIB from a standalone
# labserver on loopback, runs alternating so both see the same machine state.
#
#   tests/bench/download.sh [CHAPTER] [MIB] [RUNS]     (defaults: chapter1 1024 5)
#
# Prints each run's throughput, the median of each, and the ratio chapter/curl.
set -euo pipefail
cd "$(dirname "$0")/../.."
chapter=${1:-chapter1}
mib=${2:-1024}
runs=${3:-5}
shift $(( $# < 3 ? $# : 3 )) || true
extra=("$@")  # further options for the chapter, e.g. --buffer-size 262144

make -s "$chapter" labserver
command -v curl >/dev/null || { echo "curl is needed: apt-get install -y curl" >&2; exit 1; }

out=$(mktemp -d)
./labserver --quiet --scenario "big:$mib" >"$out/listening" &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$out"' EXIT
for _ in $(seq 50); do [ -s "$out/listening" ] && break; sleep 0.1; done
port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out/listening")
[ -n "$port" ] || { echo "labserver did not start" >&2; exit 1; }

expected=$(( mib * 1024 * 1024 ))
# Output goes straight to /dev/null: a pipe to `wc -c` tops out near 1 GB/s
# here and would measure the pipe. The byte count is checked instead from the
# chapter's narration ("N bytes in M recv calls") and curl's size_download,
# so a short download cannot look fast.
rate() { awk -v mib="$mib" -v s="$1" -v e="$2" 'BEGIN { printf "%.0f", mib / (e - s) }'; }
check() { [ "${1:-0}" -ge "$expected" ] || { echo "short download ($1 bytes) by $2" >&2; exit 1; }; }
run_chapter() {
  local start end
  start=$(date +%s.%N)
  ./"$chapter" "${extra[@]}" 127.0.0.1 "$port" >/dev/null 2>"$out/narration"
  end=$(date +%s.%N)
  check "$(grep -oE '[0-9]+ bytes in' "$out/narration" | tail -n 1 | cut -d' ' -f1)" "$chapter"
  rate "$start" "$end"
}
run_curl() {
  local start end bytes
  start=$(date +%s.%N)
  bytes=$(curl -s -o /dev/null -w '%{size_download}' "http://127.0.0.1:$port/")
  end=$(date +%s.%N)
  check "$bytes" curl
  rate "$start" "$end"
}

chapter_rates=() curl_rates=()
for i in $(seq "$runs"); do
  c=$(run_chapter)
  u=$(run_curl)
  chapter_rates+=("$c") curl_rates+=("$u")
  echo "run $i: $chapter ${c} MiB/s   curl ${u} MiB/s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
mc=$(median "${chapter_rates[@]}")
mu=$(median "${curl_rates[@]}")
echo "median over $runs runs of $mib MiB: $chapter $mc MiB/s, curl $mu MiB/s, ratio $(awk -v a="$mc" -v b="$mu" 'BEGIN { printf "%.2f", a / b }')"
