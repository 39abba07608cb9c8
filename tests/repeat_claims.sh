#!/usr/bin/env bash
# Flake hunt: run every claim test ROUNDS times (default 50), two at a time as
# `make test` does, and stop at the first failure. Prints the count of runs.
#
#   tests/repeat_claims.sh [ROUNDS] [CTEST REGEX]    (default regex: ^claim:)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-50}
regex=${2:-^claim:}
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j 2 >/dev/null
tests=$(cd build && ctest -N -R "$regex" | grep -c "Test *#")
start=$(date +%s)
if (cd build && ctest -R "$regex" -j 2 --repeat "until-fail:$rounds" --timeout 120 >/tmp/repeat_claims.log 2>&1); then
  echo "$tests tests x $rounds rounds = $((tests * rounds)) runs, no failure ($(( $(date +%s) - start )) s)"
else
  grep -E "Failed|FAIL" /tmp/repeat_claims.log | head -20
  echo "a failure within $rounds rounds of $tests tests: see /tmp/repeat_claims.log"
  exit 1
fi
