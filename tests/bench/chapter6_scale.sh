#!/usr/bin/env bash
# What epoll removes: chapter 5's scan, measured against chapter 6 and asyncio.
# The load is chapter5_scan.sh's: a standalone lab server answers one
# connection in 64 with drip:8 (8 bytes every 50 ms) and the other 63 with
# silent; each client opens N connections with --timeout 1.5 (TIMEOUT, below),
# so the silent ones end at their deadline while every wake-up is for a
# dripping one.
# chapter 5's poll hands the kernel every connection in flight on each wake-up;
# chapter 6 registers each socket once with epoll and gets back only the ready
# ones; asyncio (tests/bench/asyncio_client.py) does the same work on its own
# epoll loop.
#
#   tests/bench/chapter6_scale.sh [ROUNDS]   (default 3; N = 1000, 5000, 10000, 14000, 50000)
#   NS="1000 10000" tests/bench/chapter6_scale.sh 5
#   ASYNCIO_TIMEOUT=5 NS="10000 14000" tests/bench/chapter6_scale.sh 5
#
# Programs: chapter6 (level-triggered), chapter6 --edge, chapter5 --wait poll,
# asyncio. Within a round each runs once, in an order that rotates from round
# to round; each run gets a fresh server (the silent connections of one run
# must not still be held when the next starts).
#
# Prints per N and program the medians of CPU time (user + sys, from wait4),
# of complete connections, of ready reports and of the sockets handed to the
# kernel in all its waits (from the program's summary line: poll takes every
# socket in flight each time, epoll none), and the CPU per ready report in
# microseconds; then, per N, chapter 6's CPU against chapter 5's and asyncio's.
# asyncio's ready reports are its client's count (asyncio_client.py).
#
# DRIP (default drip:8) and TIMEOUT (default 1.5): the one connection in 64's
# scenario and every client's --timeout. drip:1 sends the 127-byte answer a
# byte at a time, 6.4 s in all; with TIMEOUT=7 the busy part of the run is
# eight times longer.
# ASYNCIO_TIMEOUT (default TIMEOUT, as the others): asyncio's --timeout. From
# about N = 5,000 on this machine asyncio takes longer than 1.5 s to start its
# connections and sees its first ready reports late, so connections it has not
# served yet, dripping ones too, reach their deadline: it does less work than
# the chapters (the complete column shows it). With 5 it does all of it, or
# nearly (204 of 219 dripping connections in one run at 14,000).
#
# Each connection is a descriptor in the client and one in the server (a
# separate process): an N above the descriptor limit (ulimit -Hn, less 64) is
# skipped with a line that says so. So is an N above half the ephemeral port
# range (ip_local_port_range; 14,116 ports here): every connection goes to one
# address and port, and Linux's connect() picks an even local port first, so
# once the even ones are all taken each connect walks every one of them before
# it takes an odd one. Chapter 6 alone at 19,000 spent 14 s in the kernel and
# lost most connects to its 1.5 s timeout: that measures the port search.
set -euo pipefail
cd "${BENCH_ROOT:-$(dirname "$0")/../..}"
. tests/bench/lib.sh
rounds=${1:-3}
ns=(${NS:-1000 5000 10000 14000 50000})
programs=(chapter6 chapter6-edge chapter5-poll asyncio)
make -s chapter6 chapter5 labserver
ulimit -n "$(ulimit -Hn)"
python=$(python3 -c 'import sys; print(sys.executable)')
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  { echo "asyncio_client.py needs Python 3.11 or later" >&2; exit 1; }
read -r first_port last_port </proc/sys/net/ipv4/ip_local_port_range

drip=${DRIP:-drip:8}
timeout=${TIMEOUT:-1.5}
mix=$drip
for _ in $(seq 63); do mix="$mix,silent"; done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/measure.py" <<'EOF'
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=open(sys.argv[1] + ".err", "w"))
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as out:
    out.write("%.4f\n" % (usage.ru_utime + usage.ru_stime))
EOF

# start_scan_server N: lib.sh's start_labserver, with room for N connections
# (the lab server's default is at most 16,384). run_one calls it in a
# subshell (`< <(run_one ...)`), whose exit stops the server.
start_scan_server() {
  bench_tmp=$(mktemp -d)
  ./labserver --quiet --max-connections "$1" --scenario "mix:$mix" >"$bench_tmp/listening" &
  server_pid=$!
  trap 'kill $server_pid 2>/dev/null; rm -rf "$bench_tmp"' EXIT
  for _ in $(seq 50); do [ -s "$bench_tmp/listening" ] && break; sleep 0.1; done
  port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$bench_tmp/listening")
  [ -n "$port" ] || { echo "labserver did not start" >&2; exit 1; }
}

# run_one PROGRAM N: one run against a fresh server; print "cpu complete reports
# handed" (handed: - for asyncio, which does not say).
run_one() {
  local program=$1 n=$2 command client_timeout=$timeout summary
  case $program in
    chapter6) command=(./chapter6) ;;
    chapter6-edge) command=(./chapter6 --edge) ;;
    chapter5-poll) command=(./chapter5 --wait poll) ;;
    asyncio) command=("$python" tests/bench/asyncio_client.py) client_timeout=${ASYNCIO_TIMEOUT:-$timeout} ;;
  esac
  start_scan_server "$n"
  "$python" "$work/measure.py" "$work/run" "${command[@]}" --connections "$n" --timeout "$client_timeout" \
    127.0.0.1 "$port"
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  rm -rf "$bench_tmp"
  # "N complete, F failed in T s; ... R ready reports ..." (every program's last line)
  summary=$(grep -E '[0-9]+ complete, [0-9]+ failed' "$work/run.err") ||
    { echo "$program at N=$n printed no summary:" >&2; tail -n 3 "$work/run.err" >&2; exit 1; }
  handed=$(sed -nE 's/.*(watching|handing the kernel) ([0-9]+) sockets in all.*/\2/p' <<<"$summary")
  echo "$(cat "$work/run") $(sed -E 's/^[^0-9]*([0-9]+) complete.*/\1/' <<<"$summary")" \
    "$(sed -E 's/.* ([0-9]+) ready reports.*/\1/' <<<"$summary") ${handed:--}"
}

echo "$(nproc) CPUs; descriptor limit $(ulimit -n); ephemeral ports $first_port-$last_port;" \
  "somaxconn $(cat /proc/sys/net/core/somaxconn); $("$python" --version), asyncio --timeout" \
  "${ASYNCIO_TIMEOUT:-$timeout}; $drip, --timeout $timeout; rounds $rounds"
printf '%6s  %-14s %8s %9s %14s %15s %16s\n' N program "CPU s" complete "ready reports" "sockets handed" \
  "CPU/report us"
for n in "${ns[@]}"; do
  if [ $(( n + 64 )) -gt "$(ulimit -n)" ]; then
    echo "N=$n skipped: the descriptor limit is $(ulimit -n) (ulimit -Hn), and $n connections need about $(( n + 64 ))"
    continue
  fi
  if [ "$n" -gt $(( (last_port - first_port + 1) / 2 )) ]; then
    echo "N=$n skipped: more than half the ephemeral port range ($first_port-$last_port), where" \
      "connect() searches every even port before each odd one"
    continue
  fi
  declare -A cpus=() completes=() reports=() handeds=()
  for round in $(seq "$rounds"); do
    count=${#programs[@]}
    for k in $(seq 0 $(( count - 1 ))); do
      program=${programs[$(( (k + round) % count ))]}
      read -r cpu complete report handed < <(run_one "$program" "$n")
      cpus[$program]+="$cpu "
      completes[$program]+="$complete "
      reports[$program]+="$report "
      handeds[$program]+="$handed "
    done
  done
  declare -A medians=()
  for program in "${programs[@]}"; do
    cpu=$(median ${cpus[$program]})
    report=$(median ${reports[$program]})
    medians[$program]=$cpu
    printf '%6s  %-14s %8s %9s %14s %15s %16.1f\n' "$n" "$program" "$cpu" "$(median ${completes[$program]})" \
      "$report" "$(median ${handeds[$program]})" \
      "$(awk -v c="$cpu" -v r="$report" 'BEGIN { print c / (r > 0 ? r : 1) * 1e6 }')"
  done
  awk -v n="$n" -v c6="${medians[chapter6]}" -v e6="${medians[chapter6-edge]}" -v c5="${medians[chapter5-poll]}" \
    -v py="${medians[asyncio]}" 'BEGIN {
      printf "%6s  CPU chapter6 / chapter5-poll %.2f (--edge %.2f); chapter6 / asyncio %.2f (--edge %.2f)\n",
        n, c6 / c5, e6 / c5, c6 / py, e6 / py }'
  unset cpus completes reports handeds medians
done
