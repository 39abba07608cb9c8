#!/usr/bin/env bash
# CPU spent while waiting for a slow server: chapter 3's select() wait against
# the tutorial's zero-timeout loop (--busy-wait), the same two in chapter 3's
# Python twin (select_client.py), chapter 1's blocking recv, and chapter 2's
# four modes (the naive non-blocking retry loop among them). The server (a
# standalone labserver, scenario slow:SECS) is another process, so only the
# client's CPU is counted, its start-up included (for the twin: the Python
# interpreter's, run as $PYTHON, by default the one python3 runs, not a
# version manager's shim in front of it).
#
#   tests/bench/wait_cpu.sh [SECS] [RUNS]     (defaults: 2 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
secs=${1:-2}
runs=${2:-3}
make -s chapter1 chapter2 chapter3 labserver
start_labserver "slow:$secs"
PYTHON=${PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}

# cpu_seconds CHAPTER [OPTIONS...]: user + system CPU seconds of one run, from
# getrusage (microseconds; /usr/bin/time rounds to 10 ms). CHAPTER
# select_client.py is the Python twin.
cpu_seconds() {
  local chapter=./$1
  [ "$1" = select_client.py ] && chapter="$PYTHON chapters/03_select/select_client.py"
  shift
  # The difference before/after: this python's own start-up can run helpers too.
  python3 -c 'import resource, subprocess, sys
def cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
before = cpu()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
sys.exit(done.returncode) if done.returncode else print("%.4f" % (cpu() - before))' \
    $chapter --quiet "$@" 127.0.0.1 "$port"
}

echo "CPU seconds while waiting $secs s for the answer (median of $runs runs)"
for variant in "chapter3" "chapter3 --busy-wait" "select_client.py" "select_client.py --busy-wait" \
  "chapter1" "chapter2 --mode blocking" \
  "chapter2 --mode nonblocking" "chapter2 --mode timeout" "chapter2 --mode deadline"; do
  values=()
  for _ in $(seq "$runs"); do values+=("$(cpu_seconds $variant)"); done
  m=$(median "${values[@]}")
  printf '%-28s %6s s   (%s)\n' "$variant" "$m" "${values[*]}"
  [ "$variant" = "chapter3" ] && select_cpu=$m
  [ "$variant" = "chapter3 --busy-wait" ] && busy_cpu=$m
done
awk -v a="$select_cpu" -v b="$busy_cpu" 'BEGIN { printf "chapter3 uses %.2f%% of the busy loop'"'"'s CPU\n", 100 * a / b }'
