#!/usr/bin/env bash
# How often lab 6's mistake edge-no-drain shows, and how often its check sees
# it. The mistake is chapter 6 with one line gone: at the turn's cap of 16
# reads, an --edge connection goes back to the loop without queueing its next
# turn. epoll reports an edge-triggered socket once, so a connection whose
# turn ends at the cap after its last bytes arrived waits for --timeout with
# the rest of its answer in the kernel. Whether a turn ends there is a race
# with the sender, so this counts, in RUNS runs each:
#
#   - the chapter README's example (--edge --connections 3 --scenario big:4,
#     offline, --timeout 2): runs with a connection that did not end "ok";
#   - the grader's check edge-drains (labcheck.py --lab 6, check 15) on the
#     mistake program: runs it failed, and on chapter 6 itself: runs it failed.
#
#   tests/bench/edge_no_drain.sh [RUNS] [BUILD_DIR]     (defaults: 20 build)
#
# The mistake program is built by CMake (make test, or cmake --build BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-20}
build=${2:-build}
cmake --build "$build" --target chapter6 mistake-edge-no-drain >/dev/null
check=$(python3 tests/labcheck.py --lab 6 --list-checks | awk '$2 == "edge-drains" { print $1 }')

example_stalls=0 mistake_caught=0 chapter_failed=0
for i in $(seq "$runs"); do
  if "$build/mistake-edge-no-drain" --edge --connections 3 --scenario big:4 --timeout 2 --quiet |
      awk '$2 != "ok" { bad = 1 } END { exit bad || NR != 3 }'; then
    :
  else
    example_stalls=$((example_stalls + 1))
  fi
  python3 tests/labcheck.py --lab 6 --check "$check" --bin-dir "$build" \
    --program "$build/mistake-edge-no-drain" >/dev/null 2>&1 || mistake_caught=$((mistake_caught + 1))
  python3 tests/labcheck.py --lab 6 --check "$check" --bin-dir "$build" \
    --program "$build/chapter6" >/dev/null 2>&1 || chapter_failed=$((chapter_failed + 1))
done
echo "$runs runs each"
echo "README example (--edge --connections 3 --scenario big:4), mistake-edge-no-drain: a connection stalled in $example_stalls"
echo "check edge-drains on mistake-edge-no-drain: failed (caught it) in $mistake_caught"
echo "check edge-drains on chapter6: failed in $chapter_failed"
