#!/usr/bin/env bash
# Where the scan of select() and poll() shows: many connections idle, a few
# active. A standalone lab server answers one connection in 64 with drip:8
# (8 bytes every 50 ms) and the other 63 with silent; chapter 5 opens N
# connections with --timeout 1.5, so the silent ones end at their deadline
# while every wake-up is for a dripping one. Each wake-up still hands the
# kernel, and then the loop, every connection in flight.
#
#   tests/bench/chapter5_scan.sh [ROUNDS]      (default 3; N = 100, 1000, 5000)
#
# Prints per N and waiting call the medians of CPU time (user + sys, from
# wait4) and, from the chapter's summary line, the waits, the sockets watched
# in all and the ready reports. select runs only where its descriptors stay
# below FD_SETSIZE (N = 100 and 1,000: the server is a separate process).
# Each N and waiting call gets a fresh server: the silent connections of one
# run must not still be held when the next starts.
set -euo pipefail
cd "${BENCH_ROOT:-$(dirname "$0")/../..}"
. tests/bench/lib.sh
rounds=${1:-3}
ns=(${NS:-100 1000 5000})
make -s chapter5 labserver
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge 12000 ] || { echo "the descriptor limit ($(ulimit -n)) is too low for 5,000 connections" >&2; exit 1; }

mix="drip:8"
for _ in $(seq 63); do mix="$mix,silent"; done
work=$(mktemp -d)
cat >"$work/measure.py" <<'EOF'
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=open(sys.argv[1] + ".err", "w"))
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as out:
    out.write("%.4f\n" % (usage.ru_utime + usage.ru_stime))
EOF
python=$(python3 -c 'import sys; print(sys.executable)')

printf '%6s  %-6s %8s %7s %16s %14s %18s\n' N wait "CPU s" waits "sockets watched" "ready reports" "watched per report"
for n in "${ns[@]}"; do
  for wait in select poll; do
    [ "$wait" = select ] && [ "$n" -gt 1000 ] && continue
    cpus=()
    for round in $(seq "$rounds"); do
      start_labserver "mix:$mix"
      "$python" "$work/measure.py" "$work/run" ./chapter5 --connections "$n" --wait "$wait" \
        --timeout 1.5 127.0.0.1 "$port"
      kill "$server_pid"
      wait "$server_pid" 2>/dev/null || true
      rm -rf "$bench_tmp"
      cpus+=("$(cat "$work/run")")
      summary=$(grep -E 'complete, [0-9]+ failed' "$work/run.err")
    done
    # "... N waits, watching M sockets in all, for R ready reports ..." (the last round's)
    waits=$(sed -E 's/.*; ([0-9]+) waits, .*/\1/' <<<"$summary")
    watched=$(sed -E 's/.*watching ([0-9]+) sockets in all.*/\1/' <<<"$summary")
    reports=$(sed -E 's/.*for ([0-9]+) ready reports.*/\1/' <<<"$summary")
    printf '%6s  %-6s %8s %7s %16s %14s %18s\n' "$n" "$wait" "$(median "${cpus[@]}")" "$waits" "$watched" \
      "$reports" "$(( watched / (reports > 0 ? reports : 1) ))"
  done
done
rm -rf "$work"
