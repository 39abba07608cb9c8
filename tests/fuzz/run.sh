#!/usr/bin/env bash
# Run every fuzz target (tests/fuzz/fuzz_*.cpp) for a while with libFuzzer.
#
#   bash tests/fuzz/run.sh SECONDS [BUILD_DIR]      (BUILD_DIR defaults to build-fuzz)
#
# It configures BUILD_DIR with clang++, libFuzzer's coverage instrumentation
# and AddressSanitizer + UndefinedBehaviorSanitizer for everything (so common/
# is instrumented too), builds only the fuzz-NAME programs, and runs each for
# SECONDS, one after another, starting from a scratch copy of its corpus
# (tests/fuzz/corpus/NAME/ stays as it is: new inputs go to the copy).
#
# A finding is a crash (a sanitizer report, an uncaught exception, a failed
# FUZZ_CHECK), a leak, an input that takes over 1 s (a hang) or over 2 GiB.
# libFuzzer saves the input in BUILD_DIR/fuzz-artifacts/NAME/ (crash-*,
# leak-*, timeout-*, oom-*); its log is BUILD_DIR/fuzz-logs/NAME.log. To keep a
# finding fixed, copy the input into tests/fuzz/corpus/NAME/ as crash-WHAT or
# hang-WHAT once the bug is fixed: fuzz-corpus:NAME replays it in every build.
#
# Prints, per target, how many inputs it ran and whether it found anything;
# exits 1 if any target found something.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:?usage: tests/fuzz/run.sh SECONDS [BUILD_DIR]}
build=${2:-build-fuzz}
case $build in /*) ;; *) build="$PWD/$build" ;; esac  # the fuzzers run from a scratch folder

command -v clang++ >/dev/null || { echo "run.sh: clang++ is needed (libFuzzer comes with it)" >&2; exit 2; }

# -fsanitize=fuzzer-no-link: coverage for libFuzzer in every object, libFuzzer
# itself linked only into the fuzz-NAME programs (fuzz.cmake adds it there).
cmake -S . -B "$build" -DFUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS='-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer'

names=()
for source in tests/fuzz/fuzz_*.cpp; do
  name=$(basename "$source" .cpp)
  name=${name#fuzz_}
  names+=("${name//_/-}")
done
cmake --build "$build" -j 2 --target "${names[@]/#/fuzz-}"

mkdir -p "$build/fuzz-artifacts" "$build/fuzz-logs"
found=0
summary=""
for name in "${names[@]}"; do
  corpus="$build/fuzz-corpus/$name"  # the scratch copy libFuzzer adds to
  artifacts="$build/fuzz-artifacts/$name"
  log="$build/fuzz-logs/$name.log"
  rm -rf "$corpus" "$artifacts"
  mkdir -p "$corpus" "$artifacts"
  cp tests/fuzz/corpus/"$name"/* "$corpus/"

  # -timeout=1: an input that runs over 1 s is a hang. -max_len=16384: longer
  # inputs (the corpus's 64 KiB response head) run 4 to 10 times slower and
  # cover a branch or two more; their files still replay whole in
  # fuzz-corpus:NAME. -close_fd_mask=3: the target's own stdout and stderr
  # (the usage text) go nowhere; libFuzzer's report still comes through. A
  # dictionary of the protocol's words (NAME.dict) helps it build
  # "Transfer-Encoding: chunked" sooner than by chance.
  dict=()
  [ -f "tests/fuzz/$name.dict" ] && dict=("-dict=$PWD/tests/fuzz/$name.dict")
  echo "== fuzz-$name for $seconds s"
  status=0
  # From a scratch folder of its own: a command line the fuzzer makes may name
  # a file to write (--mermaid 4 writes ./4 when the target exits), and such
  # files must not land in the checkout.
  scratch="$build/fuzz-scratch/$name"
  mkdir -p "$scratch"
  (cd "$scratch" && ASAN_OPTIONS=detect_leaks=1 "$build/tests/fuzz-$name" "$corpus" "${dict[@]}" \
    -max_total_time="$seconds" -max_len=16384 -timeout=1 -rss_limit_mb=2048 -detect_leaks=1 \
    -print_final_stats=1 -close_fd_mask=3 -artifact_prefix="$artifacts/") >"$log" 2>&1 || status=$?

  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  saved=$(ls "$artifacts")
  if [ "$status" = 0 ] && [ -z "$saved" ]; then
    result="nothing found"
  else
    found=1
    result="FOUND (exit $status): $(echo $saved)"
    # The end of libFuzzer's report, then the input run once more without
    # -close_fd_mask, so a failed FUZZ_CHECK says which (a hang is cut at 5 s).
    tail -40 "$log"
    for input in "$artifacts"/*; do
      [ -f "$input" ] || continue
      echo "-- $build/tests/fuzz-$name $input"
      "$build/tests/fuzz-$name" -timeout=5 "$input" 2>&1 |
        grep -m 5 -E 'FUZZ_CHECK|ERROR|SUMMARY|runtime error|ALARM' || true
    done
  fi
  summary+="$(printf '%-16s %12s runs  %s' "$name" "${runs:-?}" "$result")"$'\n'
done

echo "== fuzzing summary ($seconds s per target; logs in $build/fuzz-logs)"
printf '%s' "$summary"
exit $found
