#!/usr/bin/env bash
# Many connections on one thread: chapter 5 against curl's own event loop.
# A local nginx serves a small file and a 1 MiB file; for N = 10, 100, 1,000
# and 5,000, chapter 5 fetches one of them over N connections at once, and
# `curl --parallel --parallel-max N` fetches the same N URLs. ROUNDS rounds;
# within a round each program runs once, in an order that rotates from round
# to round.
#
#   tests/bench/chapter5_vs_curl.sh [ROUNDS]            (default 5)
#   NS="100 1000" SIZES=small tests/bench/chapter5_vs_curl.sh 3
#
# Programs: chapter5 --wait poll at every N; chapter5 --wait select up to
# N = 1,000 (its sockets are descriptors 3 to about 1,003, below FD_SETSIZE;
# at 5,000 they are not); curl. PROGRAMS="chapter6 chapter6-edge chapter5-poll
# curl" picks others (tests/bench/chapter6_vs_curl.sh). The chapters run with
# --quiet, stdout (one line per connection) to a file; curl with -s and every
# response to /dev/null.
#
# Prints per size, N and program the medians of wall time and of CPU time
# (user + sys of the process, from wait4's rusage), the throughput (requests/s
# and MB/s of bodies, from the median wall time), the CPU per connection in
# microseconds, and the ratio curl's median wall time / the program's (above
# 1: faster than curl).
#
# Checks: chapter 5 exits 0 only when every connection got its whole response
# (its Content-Length); curl's exit status must be 0, and its -w line per
# transfer must say 200 with the file's size, N times.
set -euo pipefail
cd "${BENCH_ROOT:-$(dirname "$0")/../..}"
. tests/bench/lib.sh
rounds=${1:-5}
ns=(${NS:-10 100 1000 5000})
sizes=(${SIZES:-small 1m})
command -v nginx >/dev/null || { echo "nginx is needed: apt-get install -y nginx-light" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is needed: apt-get install -y curl" >&2; exit 1; }
python=$(python3 -c 'import sys; print(sys.executable)')
make -s chapter5 chapter6
# 5,000 connections: 5,000 descriptors for the client, as many for nginx.
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge 12000 ] || { echo "the descriptor limit ($(ulimit -n)) is too low for 5,000 connections" >&2; exit 1; }

bench_workspace
# measure.py OUT COMMAND...: run it; write "wall cpu" in seconds to OUT
# (microseconds: /usr/bin/time's 10 ms would round N = 10 away).
cat >"$bench_tmp/measure.py" <<'EOF'
import os, subprocess, sys, time
start = time.perf_counter()
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as out:
    out.write("%.4f %.4f\n" % (wall, usage.ru_utime + usage.ru_stime))
sys.exit(os.waitstatus_to_exitcode(status))
EOF
mkdir -m 755 "$bench_tmp/www"
head -c 1024 /dev/urandom >"$bench_tmp/www/small"
head -c $(( 1024 * 1024 )) /dev/urandom >"$bench_tmp/www/1m"
echo ok >"$bench_tmp/www/probe.txt"
chmod 644 "$bench_tmp/www/"*
cat "$bench_tmp/www/"* >/dev/null  # into the page cache

# --- nginx: a private instance on 127.0.0.1, enough connections for 5,000 -----
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$bench_tmp/nginx.conf" <<EOF
daemon off;
worker_processes 2;
worker_rlimit_nofile 30000;
pid $bench_tmp/nginx.pid;
error_log $bench_tmp/error.log warn;
events { worker_connections 12000; }
http {
    default_type application/octet-stream;
    sendfile on;
    access_log off;
    keepalive_timeout 0;
    client_body_temp_path $bench_tmp/client_body;
    proxy_temp_path $bench_tmp/proxy;
    fastcgi_temp_path $bench_tmp/fastcgi;
    uwsgi_temp_path $bench_tmp/uwsgi;
    scgi_temp_path $bench_tmp/scgi;
    server {
        listen 127.0.0.1:$port backlog=8192;
        root $bench_tmp/www;
    }
}
EOF
nginx -p "$bench_tmp" -e "$bench_tmp/error.log" -c "$bench_tmp/nginx.conf" &
pids+=($!)
for _ in $(seq 50); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/probe.txt")" = 200 ] && break
  sleep 0.1
done
echo "nginx $(nginx -v 2>&1 | sed 's/.*\///') on 127.0.0.1:$port; $(curl --version | head -1 | cut -d' ' -f1-2);" \
  "$(nproc) CPUs; somaxconn $(cat /proc/sys/net/core/somaxconn); rounds $rounds"

# run_one PROGRAM SIZE N: run it once; print "wall cpu" in seconds.
run_one() {
  local program=$1 file=$2 n=$3 out="$bench_tmp/out" times="$bench_tmp/times"
  case $program in
    curl)
      "$python" "$bench_tmp/measure.py" "$times" curl -s --no-progress-meter -K "$bench_tmp/urls-$file-$n" \
        --parallel --parallel-immediate --parallel-max "$n" -w '%{http_code} %{size_download}\n' >"$out" ||
        { echo "curl failed ($file, N=$n)" >&2; exit 1; }
      local want
      want=$(stat -c %s "$bench_tmp/www/$file")
      [ "$(grep -c "^200 $want\$" "$out")" = "$n" ] || { echo "curl: not $n whole responses ($file)" >&2; exit 1; }
      ;;
    chapter*)
      # Its lines go to a file (a few bytes each), printed if any connection
      # failed. --timeout 30: at N = 5,000 the accept queue (somaxconn) can
      # overflow, and a dropped SYN is sent again 1, 3, 7 s later; curl waits
      # minutes for a connect.
      local command
      case $program in
        chapter6) command=(./chapter6) ;;
        chapter6-edge) command=(./chapter6 --edge) ;;
        chapter5-poll) command=(./chapter5 --wait poll) ;;
        chapter5-select) command=(./chapter5 --wait select) ;;
      esac
      "$python" "$bench_tmp/measure.py" "$times" "${command[@]}" --quiet --timeout 30 --connections "$n" \
        --path "/$file" 127.0.0.1 "$port" >"$bench_tmp/lines" ||
        { echo "$program failed ($file, N=$n):" >&2; grep -v ' ok ' "$bench_tmp/lines" | head -5 >&2; exit 1; }
      ;;
  esac
  cat "$times"
}

printf '\n%-6s %6s  %-14s %8s %8s %11s %9s %12s %9s\n' size N program "wall s" "CPU s" requests/s "MB/s" \
  "CPU/conn us" "/ curl"
for file in "${sizes[@]}"; do
  bytes=$(stat -c %s "$bench_tmp/www/$file")
  for n in "${ns[@]}"; do
    # curl's URL list: N URLs, each response to /dev/null.
    for _ in $(seq "$n"); do
      printf 'url = "http://127.0.0.1:%s/%s"\noutput = "/dev/null"\n' "$port" "$file"
    done >"$bench_tmp/urls-$file-$n"
    if [ -n "${PROGRAMS:-}" ]; then
      read -r -a programs <<<"$PROGRAMS"
    else
      programs=(chapter5-poll curl)
      [ "$n" -le 1000 ] && programs=(chapter5-poll chapter5-select curl)
    fi
    declare -A walls=() cpus=()
    for round in $(seq "$rounds"); do
      count=${#programs[@]}
      for k in $(seq 0 $(( count - 1 ))); do
        program=${programs[$(( (k + round) % count ))]}
        read -r wall cpu < <(run_one "$program" "$file" "$n")
        walls[$program]+="$wall "
        cpus[$program]+="$cpu "
      done
    done
    curl_wall=$(median ${walls[curl]})
    for program in "${programs[@]}"; do
      wall=$(median ${walls[$program]})
      cpu=$(median ${cpus[$program]})
      ratio=$(awk -v c="$curl_wall" -v w="$wall" 'BEGIN { printf "%.2f", c / w }')
      [ "$program" = curl ] && ratio=""
      printf '%-6s %6s  %-14s %8s %8s %11.0f %9.1f %12.0f %9s\n' "$file" "$n" "$program" "$wall" "$cpu" \
        "$(awk -v n="$n" -v w="$wall" 'BEGIN { print n / w }')" \
        "$(awk -v n="$n" -v b="$bytes" -v w="$wall" 'BEGIN { print n * b / w / 1e6 }')" \
        "$(awk -v c="$cpu" -v n="$n" 'BEGIN { print c / n * 1e6 }')" "$ratio"
    done
    unset walls cpus
  done
done
