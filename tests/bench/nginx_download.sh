#!/usr/bin/env bash
# Download benchmark against a real web server: a local nginx (sendfile on)
# serves a random file of MIB MiB from the page cache; the chapters, curl and a
# 10-line Python recv loop fetch it in turn, ROUNDS rounds, each round running
# every program once (the starting program rotates from round to round).
#
#   tests/bench/nginx_download.sh [MIB] [ROUNDS]      (defaults: 1024 9)
#   PROGRAMS="chapter1 curl python" tests/bench/nginx_download.sh 256 5
#
# PROGRAMS (default: all): chapter1 chapter3 chapter2-blocking
# chapter2-nonblocking chapter2-timeout chapter2-deadline curl python, and
# chapter3-bBYTES for chapter 3 with --buffer-size BYTES, chapter3-lwBYTES for
# chapter 3 with --low-water BYTES (SO_RCVLOWAT).
# BENCH_ROOT: the checkout to build and measure (default: this script's).
# PIN=1: nginx runs one worker, pinned to CPU 0, and every client is pinned to
# CPU 1 (taskset): on a 2-core machine the scheduler then cannot put both on
# one core in some rounds and not in others, which spreads the figures widely.
#
# Prints each round's MiB/s, then per program the median, min and max and the
# ratio of its median to the best peer (the larger of the curl and Python
# medians). A chapter's time is its wall time, start-up included (~1 ms);
# curl's is its time_total and Python's its own clock from connect to close, so
# neither peer pays for its start-up (Python's is ~70 ms here).
#
# Checks: before the timed rounds, each chapter's stdout is compared byte for
# byte with the file (headers stripped) through a pipe. In the timed rounds
# stdout goes to /dev/null (a pipe would measure the pipe), so each download is
# checked by (a) the program's exit status (the chapters exit 0 only after they
# had all Content-Length bytes), (b) nginx's access-log line for that request:
# status 200, all MIB MiB of body sent, request completed, and (c) for curl its
# size_download and for Python its own byte count.
set -euo pipefail
cd "${BENCH_ROOT:-$(dirname "$0")/../..}"
. tests/bench/lib.sh
mib=${1:-1024}
rounds=${2:-9}
programs=(${PROGRAMS:-chapter1 chapter3 chapter2-blocking chapter2-nonblocking chapter2-timeout \
  chapter2-deadline curl python})
size=$(( mib * 1024 * 1024 ))
command -v nginx >/dev/null || { echo "nginx is needed: apt-get install -y nginx-light" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is needed: apt-get install -y curl" >&2; exit 1; }
# The interpreter itself, not a wrapper such as a pyenv shim (which adds ~50 ms a run).
python=$(python3 -c 'import sys; print(sys.executable)')
make -s chapter1 chapter2 chapter3

# chapter_command NAME: the command line for a chapter program name.
chapter_command() {
  case $1 in
    chapter1 | chapter3) echo "./$1" ;;
    chapter2-blocking | chapter2-nonblocking | chapter2-timeout | chapter2-deadline)
      echo "./chapter2 --mode ${1#chapter2-}" ;;
    chapter3-b[0-9]*) echo "./chapter3 --buffer-size ${1#chapter3-b}" ;;
    chapter3-lw[0-9]*) echo "./chapter3 --low-water ${1#chapter3-lw}" ;;
    *) return 1 ;;
  esac
}
for program in "${programs[@]}"; do
  case $program in
    curl | python) ;;
    *) chapter_command "$program" >/dev/null || { echo "unknown program in PROGRAMS: $program" >&2; exit 2; } ;;
  esac
done

# --- nginx: a private instance in a temporary directory -----------------------
bench_tmp=$(mktemp -d)
nginx_pid=
stop_nginx() {
  if [ -n "$nginx_pid" ]; then kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
  rm -rf "$bench_tmp"
}
trap stop_nginx EXIT
# As root, nginx's workers run as nobody: they must be able to reach www/.
chmod 755 "$bench_tmp"
mkdir -m 755 "$bench_tmp/www"

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

workers="2;"
client_cpu=()
if [ "${PIN:-0}" = 1 ]; then
  command -v taskset >/dev/null || { echo "PIN=1 needs taskset (util-linux)" >&2; exit 1; }
  workers="1; worker_cpu_affinity 01;"
  client_cpu=(taskset -c 1)
fi
start_nginx() {
  local attempt
  for attempt in 1 2 3; do
    port=$(free_port)
    cat >"$bench_tmp/nginx.conf" <<EOF
daemon off;
worker_processes $workers
pid $bench_tmp/nginx.pid;
error_log $bench_tmp/error.log warn;
events { worker_connections 64; }
http {
    default_type application/octet-stream;
    sendfile on;
    log_format bench '\$request_uri \$status \$body_bytes_sent \$request_completion';
    access_log $bench_tmp/access.log bench;
    client_body_temp_path $bench_tmp/client_body;
    proxy_temp_path $bench_tmp/proxy;
    fastcgi_temp_path $bench_tmp/fastcgi;
    uwsgi_temp_path $bench_tmp/uwsgi;
    scgi_temp_path $bench_tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        root $bench_tmp/www;
    }
}
EOF
    : >"$bench_tmp/error.log"
    nginx -p "$bench_tmp" -e "$bench_tmp/error.log" -c "$bench_tmp/nginx.conf" &
    nginx_pid=$!
    for _ in $(seq 50); do
      kill -0 "$nginx_pid" 2>/dev/null || break
      if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/probe.txt")" = 200 ]; then
        : >"$bench_tmp/access.log"
        return 0
      fi
      sleep 0.1
    done
    kill "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
    nginx_pid=
    grep -q 'Address already in use' "$bench_tmp/error.log" || break  # only a port race is worth a retry
  done
  echo "nginx did not serve http://127.0.0.1:$port/probe.txt (is $bench_tmp readable by its workers?):" >&2
  cat "$bench_tmp/error.log" >&2
  exit 1
}

echo ok >"$bench_tmp/www/probe.txt"
head -c "$size" /dev/urandom >"$bench_tmp/www/f.bin"
chmod 644 "$bench_tmp/www/probe.txt" "$bench_tmp/www/f.bin"
cat "$bench_tmp/www/f.bin" >/dev/null  # into the page cache
start_nginx
url="http://127.0.0.1:$port/f.bin"
echo "nginx $(nginx -v 2>&1 | sed 's/.*\///') on 127.0.0.1:$port, sendfile on, /f.bin = $mib MiB of random bytes"
if [ "${PIN:-0}" = 1 ]; then echo "pinned: nginx's one worker on CPU 0, each client on CPU 1"; fi
# With bbr the kernel paces nginx's socket (one timer per ~64 KiB segment), and
# that, not the client, can set the rate: worth knowing when reading the figures.
echo "TCP congestion control (nginx's sockets): $(cat /proc/sys/net/ipv4/tcp_congestion_control)"

# --- the programs ---------------------------------------------------------------
# The Python client: what a Python programmer writes, recv(65536) until EOF.
# It times itself, from connect to close: the interpreter's start-up (~70 ms
# here) is not socket work.
python_loop='import socket, sys, time
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
start = time.perf_counter()
s = socket.create_connection((host, port))
s.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n" % (path, host, port)).encode())
n = 0
while data := s.recv(65536):
    n += len(data)
s.close()
print(n, time.perf_counter() - start)'

# The bytes on a response's stdout against the file: status 200, then exactly
# the file's bytes. Prints the header length.
verify_body='import sys
expected = open(sys.argv[1], "rb")
stdin = sys.stdin.buffer
head = b""
while b"\r\n\r\n" not in head:
    chunk = stdin.read1(65536)
    if not chunk: sys.exit("no end of headers")
    head += chunk
header, _, body = head.partition(b"\r\n\r\n")
if not header.startswith(b"HTTP/1.1 200 "): sys.exit("status: %r" % header.split(b"\r\n")[0])
count = 0
while body:
    if expected.read(len(body)) != body: sys.exit("body differs from the file after byte %d" % count)
    count += len(body)
    body = stdin.read1(1 << 20)
if expected.read(1): sys.exit("body short: %d bytes" % count)
print(len(header) + 4)'

# Outside the timed rounds: every chapter's stdout, byte for byte.
header_bytes=
for program in "${programs[@]}"; do
  cmd=$(chapter_command "$program") || continue
  if ! h=$($cmd --quiet 127.0.0.1 "$port" --path /f.bin 2>"$bench_tmp/stderr" |
    "$python" -c "$verify_body" "$bench_tmp/www/f.bin"); then
    echo "$program: wrong bytes on stdout" >&2; cat "$bench_tmp/stderr" >&2; exit 1
  fi
  header_bytes=$h
done
if [ -n "$header_bytes" ]; then
  echo "checked: each chapter's stdout is the $header_bytes-byte header and then the file, byte for byte"
else  # no chapter in PROGRAMS: the header length for Python's check, asked like the chapters ask
  header_bytes=$(curl -s -i -H 'Connection: close' "$url" | "$python" -c "$verify_body" "$bench_tmp/www/f.bin")
fi

# check_server_log PROGRAM BEFORE: nginx's access log has a line after its
# first BEFORE lines, and that request sent the whole file.
check_server_log() {
  local line
  for _ in $(seq 100); do
    [ "$(wc -l <"$bench_tmp/access.log")" -gt "$2" ] && break
    sleep 0.01
  done
  line=$(sed -n "$(( $2 + 1 ))p" "$bench_tmp/access.log")
  [ "$line" = "/f.bin 200 $size OK" ] || { echo "$1: nginx logged '$line', not '/f.bin 200 $size OK'" >&2; exit 1; }
}

# rate PROGRAM: one timed download, checked; prints MiB/s.
rate() {
  local program=$1 start end out cmd before
  before=$(wc -l <"$bench_tmp/access.log")
  start=$(now)
  case $program in
    curl) out=$("${client_cpu[@]}" curl -s -o /dev/null -w '%{size_download} %{time_total}' "$url") ;;
    python) out=$("${client_cpu[@]}" "$python" -c "$python_loop" 127.0.0.1 "$port" /f.bin) ;;
    *)
      cmd=$(chapter_command "$program")
      "${client_cpu[@]}" $cmd --quiet 127.0.0.1 "$port" --path /f.bin >/dev/null 2>"$bench_tmp/stderr" ||
        { echo "$program failed:" >&2; cat "$bench_tmp/stderr" >&2; exit 1; }
      out=ok ;;
  esac
  end=$(now)
  case $program in
    curl) [ "${out% *}" = "$size" ] || { echo "curl: ${out% *} bytes, not $size" >&2; exit 1; } ;;
    python) [ "${out% *}" = $(( header_bytes + size )) ] ||
      { echo "python: ${out% *} bytes, not $(( header_bytes + size ))" >&2; exit 1; } ;;
  esac
  check_server_log "$program" "$before"
  case $program in
    curl | python) mib_per_s "$mib" 0 "${out#* }" ;;  # their own transfer time
    *) mib_per_s "$mib" "$start" "$end" ;;           # wall time, start-up included
  esac
}

declare -A rates
count=${#programs[@]}
for round in $(seq "$rounds"); do
  declare -A this_round=()
  for k in $(seq 0 $(( count - 1 ))); do
    program=${programs[$(( (k + round - 1) % count ))]}
    this_round[$program]=$(rate "$program")
    rates[$program]="${rates[$program]:-} ${this_round[$program]}"
  done
  line="round $round:"
  for program in "${programs[@]}"; do line+="  $program ${this_round[$program]}"; done
  echo "$line MiB/s"
done

declare -A medians
for program in "${programs[@]}"; do medians[$program]=$(median ${rates[$program]}); done
best_peer=0 peer_names=
for peer in curl python; do
  [ -n "${medians[$peer]:-}" ] || continue
  peer_names+="${peer_names:+, }$peer"
  [ "${medians[$peer]}" -gt "$best_peer" ] && best_peer=${medians[$peer]}
done
echo
echo "$mib MiB from nginx, $rounds rounds, MiB/s (ratio: median / best peer median${peer_names:+, peers: $peer_names})"
printf '%-22s %8s %8s %8s %7s\n' program median min max ratio
for program in "${programs[@]}"; do
  sorted=$(printf '%s\n' ${rates[$program]} | sort -n)
  ratio=-
  [ "$best_peer" -gt 0 ] && ratio=$(awk -v a="${medians[$program]}" -v b="$best_peer" 'BEGIN { printf "%.2f", a / b }')
  printf '%-22s %8s %8s %8s %7s\n' "$program" "${medians[$program]}" "$(head -n 1 <<<"$sorted")" \
    "$(tail -n 1 <<<"$sorted")" "$ratio"
done
