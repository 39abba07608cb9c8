#!/usr/bin/env bash
# Does the whole suite pass from a fresh clone, every time? Runs `make test`
# in N fresh clones of the current commit, one after another, and says for
# each run whether it passed, how long it took, and which tests failed.
#
#   tests/repeat_suite.sh N [--load] [VAR=value ...]
#
#   N          how many clones to test, one at a time
#   --load     beside the suite, one busy process per core (nproc) spins for
#              the whole run: a busy machine, as a shared CI runner can be
#   VAR=value  passed to `make test`, as are BUILD_DIR, CMAKE_ARGS and
#              CTEST_JOBS from the environment. The sanitizer build of .ci/run:
#
#   tests/repeat_suite.sh 3 BUILD_DIR=build-asan CTEST_JOBS=2 CMAKE_ARGS="-DCMAKE_BUILD_TYPE=Debug \
#     -DCMAKE_CXX_FLAGS='-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all'"
#
# Each clone is made in a new folder under /tmp (TMPDIR) from the commit at
# HEAD; changes not committed are not in it. A clone whose run passed is
# removed; one whose run failed is kept, with its `make test` output in
# make-test.log, for a look at what went wrong. The last line is the score,
# "repeat_suite: 9 of 10 runs passed"; the exit status is 0 only when every
# run passed (1 otherwise, 2 for a wrong command line).
#
# The clones have no shared/ folder beside them, as the repository has here
# (the project's notes): nothing in the suite reads it, so its absence changes
# nothing. Nothing here uses the network: the clone is from this folder, and
# the suite talks over loopback only.
set -u
cd "$(dirname "$0")/.." || exit 2
repo=$(pwd)

usage() {
  echo "usage: tests/repeat_suite.sh N [--load] [VAR=value ...]" >&2
  exit 2
}

# The command line: a count, --load, and make variables in any order.
runs=""
load=0
make_vars=()
for arg in "$@"; do
  case "$arg" in
    --load) load=1 ;;
    [A-Za-z_]*=*) make_vars+=("$arg") ;;
    *[!0-9]* | "") usage ;;
    *) runs=$arg ;;
  esac
done
if [ -z "$runs" ] || [ "$runs" -lt 1 ]; then usage; fi

# Where `make test` puts its build: BUILD_DIR from the command line, else from
# the environment, else the Makefile's default. The list of failed tests is
# in that folder.
build_dir=${BUILD_DIR:-build}
for var in "${make_vars[@]}"; do
  case "$var" in BUILD_DIR=*) build_dir=${var#BUILD_DIR=} ;; esac
done

commit=$(git -C "$repo" rev-parse HEAD) || { echo "repeat_suite: $repo is not a git repository" >&2; exit 2; }
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  echo "repeat_suite: note: uncommitted changes in $repo are not tested; the clones have commit ${commit:0:12}"
fi
top=$(mktemp -d "${TMPDIR:-/tmp}/repeat-suite.XXXXXX")

# --load: the busy processes, and a trap that stops them however this script
# ends (finished, failed, or Ctrl-C). Each is a shell spinning in a loop that
# never sleeps, so it wants a whole core; the kernel shares the cores between
# them and the suite.
spinners=()
stop_spinners() {
  for pid in "${spinners[@]}"; do kill "$pid" 2>/dev/null; done
  spinners=()
}
trap stop_spinners EXIT
trap 'stop_spinners; echo "repeat_suite: interrupted; clones left in $top"; exit 130' INT TERM
if [ "$load" = 1 ]; then
  for _ in $(seq 1 "$(nproc)"); do
    sh -c 'while :; do :; done' &
    spinners+=($!)
  done
fi

what="make test${make_vars[*]:+ ${make_vars[*]}}"
[ "$load" = 1 ] && what="$what, with ${#spinners[@]} busy process(es) beside it"
echo "repeat_suite: $runs run(s) of $what, commit ${commit:0:12}"
passed=0
failed_tests=()  # "test name" once per run it failed in
for run in $(seq 1 "$runs"); do
  clone=$top/run-$run
  start=$SECONDS
  status=0
  if ! git clone --quiet "$repo" "$clone" 2>"$top/clone-$run.log" ||
     ! git -C "$clone" checkout --quiet --detach "$commit" 2>>"$top/clone-$run.log"; then
    echo "run $run of $runs: FAIL: git clone failed (see $top/clone-$run.log)"
    continue
  fi
  rm -f "$top/clone-$run.log"
  (cd "$clone" && make test "${make_vars[@]}") >"$clone/make-test.log" 2>&1 || status=$?
  took=$((SECONDS - start))
  if [ "$status" = 0 ]; then
    passed=$((passed + 1))
    echo "run $run of $runs: pass in $took s"
    rm -rf "$clone"
    continue
  fi
  # Which tests failed: CTest writes one "number:name" line for each to
  # LastTestsFailed.log. No such file: the configure or the build failed.
  list=$clone/$build_dir/Testing/Temporary/LastTestsFailed.log
  if [ -s "$list" ]; then
    names=$(cut -d: -f2- "$list" | paste -sd ' ' -)
    for name in $names; do failed_tests+=("$name"); done
    echo "run $run of $runs: FAIL in $took s: $names"
  else
    echo "run $run of $runs: FAIL in $took s: make test failed before any test failed (configure or build?)"
  fi
  echo "    kept: $clone (its make test output: $clone/make-test.log)"
done
stop_spinners

# Tests that failed, with how many runs each failed in: one that fails now and
# then, alone, is a flaky test; many at once point at the machine or the build.
if [ "${#failed_tests[@]}" -gt 0 ]; then
  echo "failed tests (runs):"
  printf '%s\n' "${failed_tests[@]}" | sort | uniq -c | sort -rn | awk '{print "    " $2 " (" $1 ")"}'
fi
rmdir "$top" 2>/dev/null
echo "repeat_suite: $passed of $runs runs passed$([ "$load" = 1 ] && echo " (under load)")"
[ "$passed" = "$runs" ]
