#!/usr/bin/env bash
# The lab server against nginx, side by side on the same loads, alternating
# from round to round (the starting server rotates):
#
#   wrk -t2 -cC -d5s -H 'Connection: close'   at C = 100 and 1000: requests/s
#   ab -n 20000 -c 100                          (HTTP/1.0, a new connection each): requests/s
#   ab -n 1000 -c 1000  on a 1 MiB body         (1,000 downloads at once): seconds for all
#   wrk -t2 -c1000 -d5s on a 1 MiB body         (1,000 downloads at a time, for 5 s): MiB/s
#
#   tests/bench/labserver_vs_nginx.sh [ROUNDS]       (default 5)
#
# Servers: the labserver with --quiet (scenario hello; big:1 for the 1 MiB
# body), the labserver logging to a file, and a private nginx with 2 workers
# and with 1 worker (access_log off, sendfile on) serving a file with the
# hello body at / and a 1 MiB file at /big.bin. The hello answers differ in
# size: nginx adds Server, Date, Last-Modified, ETag and Accept-Ranges headers
# (about 230 bytes in all, against the lab server's 130).
#
# Checks: wrk must report no socket errors and no non-2xx answers; ab must
# report every request complete and none failed (a body of the wrong length
# counts as failed). ab is one thread: on the 1 MiB load it is busy all the
# time, so that figure is as much ab's as the servers'; the wrk one (two
# threads) leaves the servers more room to differ. Prints each round, then per server and load the median,
# min and max, and the ratio of the labserver's median to nginx's.
set -euo pipefail
cd "${BENCH_ROOT:-$(dirname "$0")/../..}"
. tests/bench/lib.sh
rounds=${1:-5}
for tool in nginx wrk ab curl; do
  command -v $tool >/dev/null ||
    { echo "$tool is needed: apt-get install -y nginx-light wrk apache2-utils curl" >&2; exit 1; }
done
make -s labserver
ulimit -n "$(ulimit -Hn)"  # 1,000 connections at once, on both sides

bench_workspace
mkdir -m 755 "$bench_tmp/www"
printf 'Hello from the lab server.\nYou asked for /\n' >"$bench_tmp/www/index.txt"
head -c $(( 1024 * 1024 )) /dev/urandom >"$bench_tmp/www/big.bin"
chmod 644 "$bench_tmp/www/"*

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_nginx NAME WORKERS: a private nginx; sets port_NAME.
start_nginx() {
  local name=$1 workers=$2 port
  port=$(free_port)
  mkdir -p "$bench_tmp/$name"
  cat >"$bench_tmp/$name/nginx.conf" <<EOF
daemon off;
worker_processes $workers;
worker_rlimit_nofile 20000;
pid $bench_tmp/$name/nginx.pid;
error_log $bench_tmp/$name/error.log warn;
events { worker_connections 8192; }
http {
    default_type text/plain;
    sendfile on;
    access_log off;
    client_body_temp_path $bench_tmp/$name/client_body;
    proxy_temp_path $bench_tmp/$name/proxy;
    fastcgi_temp_path $bench_tmp/$name/fastcgi;
    uwsgi_temp_path $bench_tmp/$name/uwsgi;
    scgi_temp_path $bench_tmp/$name/scgi;
    server {
        listen 127.0.0.1:$port backlog=4096;
        root $bench_tmp/www;
        location = / { try_files /index.txt =404; }
    }
}
EOF
  nginx -p "$bench_tmp/$name" -e "$bench_tmp/$name/error.log" -c "$bench_tmp/$name/nginx.conf" &
  pids+=($!)
  for _ in $(seq 50); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")" = 200 ] && break
    sleep 0.1
  done
  [ "$(curl -s "http://127.0.0.1:$port/")" = "$(cat "$bench_tmp/www/index.txt")" ] ||
    { echo "nginx $name did not serve /:" >&2; cat "$bench_tmp/$name/error.log" >&2; exit 1; }
  printf -v "port_$name" %s "$port"
}

# start_lab NAME SCENARIO [OPTIONS...]: a labserver; sets port_NAME.
start_lab() {
  local name=$1 scenario=$2 port
  shift 2
  ./labserver --scenario "$scenario" "$@" >"$bench_tmp/$name.out" 2>"$bench_tmp/$name.log" &
  pids+=($!)
  for _ in $(seq 50); do [ -s "$bench_tmp/$name.out" ] && break; sleep 0.1; done
  port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$bench_tmp/$name.out")
  [ -n "$port" ] || { echo "labserver $name did not start" >&2; exit 1; }
  printf -v "port_$name" %s "$port"
}

start_lab lab hello --quiet
start_lab lab_logging hello
start_lab lab_big big:1 --quiet
start_nginx nginx2 2
start_nginx nginx1 1
port_nginx2_big=$port_nginx2 port_nginx1_big=$port_nginx1

servers=(lab lab_logging nginx2 nginx1)
big_servers=(lab nginx2 nginx1)

# url SERVER LOAD: what each load fetches from each server.
url() {
  case $1:$2 in
    lab:big | lab:wrkbig) echo "http://127.0.0.1:$port_lab_big/" ;;
    lab:* | lab_logging:*) local p=port_$1; echo "http://127.0.0.1:${!p}/" ;;
    nginx*:big | nginx*:wrkbig) local p=port_$1; echo "http://127.0.0.1:${!p}/big.bin" ;;
    nginx*:*) local p=port_$1; echo "http://127.0.0.1:${!p}/" ;;
  esac
}

# run_load LOAD SERVER: one measurement, checked; prints the figure.
run_load() {
  local load=$1 out
  case $load in
    wrk100 | wrk1000 | wrkbig)
      local connections=${load#wrk}
      [ "$connections" = big ] && connections=1000
      out=$(wrk -t2 -c"$connections" -d5s -H 'Connection: close' "$(url "$2" "$load")")
      if grep -qE 'Socket errors|Non-2xx' <<<"$out"; then echo "$2 $load: $out" >&2; exit 1; fi
      awk '/^Requests\/sec/ { printf "%.0f", $2 }' <<<"$out" ;;
    ab100)
      out=$(ab -q -n 20000 -c 100 "$(url "$2" "$load")" 2>&1)
      grep -q '^Complete requests: *20000$' <<<"$out" && grep -q '^Failed requests: *0$' <<<"$out" ||
        { echo "$2 $load: $out" >&2; exit 1; }
      awk '/^Requests per second/ { printf "%.0f", $4 }' <<<"$out" ;;
    big)
      out=$(ab -q -n 1000 -c 1000 "$(url "$2" "$load")" 2>&1)
      grep -q '^Complete requests: *1000$' <<<"$out" && grep -q '^Failed requests: *0$' <<<"$out" ||
        { echo "$2 $load: $out" >&2; exit 1; }
      awk '/^Time taken for tests/ { printf "%.3f", $5 }' <<<"$out" ;;
  esac
}

echo "labserver $(git rev-parse --short HEAD 2>/dev/null || echo '?'), nginx $(nginx -v 2>&1 | sed 's/.*\///'), $(nproc) cores, $rounds rounds"
declare -A results
for load in wrk100 wrk1000 ab100 big wrkbig; do
  if [ $load = big ] || [ $load = wrkbig ]; then list=("${big_servers[@]}"); else list=("${servers[@]}"); fi
  for round in $(seq "$rounds"); do
    line="$load round $round:"
    n=${#list[@]}
    for i in $(seq 0 $(( n - 1 ))); do
      server=${list[$(( (i + round) % n ))]}
      figure=$(run_load $load "$server")
      results[$load:$server]+=" $figure"
      line+=" $server $figure"
      sleep 1  # let TIME_WAIT and the kernel's queues settle between runs
    done
    echo "$line"
  done
done

echo
echo "medians (min-max); wrk and ab: requests/s (wrkbig: of 1 MiB each, so MiB/s), higher is better;"
echo "big: seconds for 1000 x 1 MiB, lower is better"
for load in wrk100 wrk1000 ab100 big wrkbig; do
  if [ $load = big ] || [ $load = wrkbig ]; then list=("${big_servers[@]}"); else list=("${servers[@]}"); fi
  line="$load:"
  for server in "${list[@]}"; do
    read -ra values <<<"${results[$load:$server]}"
    sorted=$(printf '%s\n' "${values[@]}" | sort -g)
    line+=" $server $(median "${values[@]}") ($(head -1 <<<"$sorted")-$(tail -1 <<<"$sorted"))"
  done
  echo "$line"
  read -ra lab_values <<<"${results[$load:lab]}"
  read -ra nginx_values <<<"${results[$load:nginx2]}"
  awk -v l="$(median "${lab_values[@]}")" -v n="$(median "${nginx_values[@]}")" -v load=$load \
    'BEGIN { printf "  labserver / nginx (2 workers): %.2fx %s\n", (load == "big" ? n / l : l / n), (load == "big" ? "(speed: nginx time / labserver time)" : "") }'
done
