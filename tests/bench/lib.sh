# Shared by the benchmark scripts: source it from the repository root.

# start_labserver SCENARIO: start a standalone labserver on 127.0.0.1, set
# $port and $server_pid, and stop it when the script exits.
start_labserver() {
  bench_tmp=$(mktemp -d)
  ./labserver --quiet --scenario "$1" >"$bench_tmp/listening" &
  server_pid=$!
  trap 'kill $server_pid 2>/dev/null; rm -rf "$bench_tmp"' EXIT
  for _ in $(seq 50); do [ -s "$bench_tmp/listening" ] && break; sleep 0.1; done
  port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$bench_tmp/listening")
  [ -n "$port" ] || { echo "labserver did not start" >&2; exit 1; }
}

# now: seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }

# mib_per_s MIB START END
mib_per_s() { awk -v mib="$1" -v s="$2" -v e="$3" 'BEGIN { printf "%.0f", mib / (e - s) }'; }

# download_rate MIB CHAPTER [OPTIONS...]: fetch from the labserver to /dev/null,
# check the byte count the chapter narrates, print MiB/s. (A pipe into `wc -c`
# tops out near 1 GB/s here and would measure the pipe, not the socket.)
download_rate() {
  local mib=$1 chapter=$2 start end bytes
  shift 2
  start=$(now)
  ./"$chapter" "$@" 127.0.0.1 "$port" >/dev/null 2>"$bench_tmp/narration"
  end=$(now)
  bytes=$(grep -oE '[0-9]+ bytes in' "$bench_tmp/narration" | tail -n 1 | cut -d' ' -f1)
  [ "${bytes:-0}" -ge $(( mib * 1024 * 1024 )) ] || { echo "short download by $chapter $*" >&2; exit 1; }
  mib_per_s "$mib" "$start" "$end"
}

# median N...: the middle value.
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# bench_workspace: a temporary folder $bench_tmp (readable by nginx's workers)
# and a list $pids of servers started in it; on exit both go.
bench_workspace() {
  bench_tmp=$(mktemp -d)
  pids=()
  trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$bench_tmp"' EXIT
  chmod 755 "$bench_tmp"
}
