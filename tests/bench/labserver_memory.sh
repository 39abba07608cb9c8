#!/usr/bin/env bash
# Memory of the lab server holding idle connections: its resident set (VmRSS)
# and virtual size (VmSize) from /proc, with 0, 1,000 and 10,000 clients
# connected and silent (each has sent nothing, so each waits for its request
# head; --header-timeout 600 keeps them open while we look). The same for a
# private nginx (2 workers, client_header_timeout 600 s), summed over its
# processes, for comparison. Linux only (/proc).
#
#   tests/bench/labserver_memory.sh [COUNTS...]     (default: 1000 10000)
set -euo pipefail
cd "${BENCH_ROOT:-$(dirname "$0")/../..}"
. tests/bench/lib.sh
counts=("${@:-1000 10000}")
read -ra counts <<<"${counts[*]}"
make -s labserver
ulimit -n "$(ulimit -Hn)"
python=$(python3 -c 'import sys; print(sys.executable)')
bench_workspace

# memory PID...: "RSS_KIB VSZ_KIB" summed over the processes.
memory() {
  local rss=0 vsz=0 pid
  for pid in "$@"; do
    rss=$(( rss + $(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status") ))
    vsz=$(( vsz + $(awk '/^VmSize/ { print $2 }' "/proc/$pid/status") ))
  done
  echo "$rss $vsz"
}

# hold PORT COUNT: open COUNT idle connections and keep them until stdin closes;
# prints "ready" once all are connected (and accepted: we wait 1 s).
hold='import socket, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
held = []
for _ in range(count):
    s = socket.socket()
    s.connect(("127.0.0.1", port))
    held.append(s)
time.sleep(1)
print("ready", flush=True)
sys.stdin.read()'

# measure NAME PORT PID...: memory with 0 and each COUNT of idle connections.
measure() {
  local name=$1 port=$2 count line
  shift 2
  read -r rss vsz <<<"$(memory "$@")"
  printf '%-10s %6d idle: RSS %7d KiB, virtual %9d KiB\n' "$name" 0 "$rss" "$vsz"
  for count in "${counts[@]}"; do
    coproc HOLD { "$python" -c "$hold" "$port" "$count"; }
    read -r line <&"${HOLD[0]}"
    [ "$line" = ready ] || { echo "could not hold $count connections" >&2; exit 1; }
    read -r rss vsz <<<"$(memory "$@")"
    printf '%-10s %6d idle: RSS %7d KiB, virtual %9d KiB\n' "$name" "$count" "$rss" "$vsz"
    eval "exec ${HOLD[1]}>&-"
    wait "$HOLD_PID" 2>/dev/null || true
    sleep 1
  done
}

./labserver --quiet --header-timeout 600 >"$bench_tmp/lab.out" &
lab_pid=$!
pids+=($lab_pid)
for _ in $(seq 50); do [ -s "$bench_tmp/lab.out" ] && break; sleep 0.1; done
lab_port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$bench_tmp/lab.out")
measure labserver "$lab_port" "$lab_pid"

if command -v nginx >/dev/null; then
  port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -m 755 "$bench_tmp/www"
  cat >"$bench_tmp/nginx.conf" <<EOF
daemon off;
worker_processes 2;
worker_rlimit_nofile 30000;
pid $bench_tmp/nginx.pid;
error_log $bench_tmp/error.log warn;
events { worker_connections 12000; }
http {
    access_log off;
    client_header_timeout 600s;
    client_body_temp_path $bench_tmp/cb; proxy_temp_path $bench_tmp/p; fastcgi_temp_path $bench_tmp/f;
    uwsgi_temp_path $bench_tmp/u; scgi_temp_path $bench_tmp/s;
    server { listen 127.0.0.1:$port backlog=4096; root $bench_tmp/www; }
}
EOF
  nginx -p "$bench_tmp" -e "$bench_tmp/error.log" -c "$bench_tmp/nginx.conf" &
  pids+=($!)
  sleep 1
  master=$(cat "$bench_tmp/nginx.pid")
  measure nginx "$port" "$master" $(pgrep -P "$master")
fi
