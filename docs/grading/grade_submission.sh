#!/usr/bin/env bash
# Grade one student's lab in a copy of this repository, for a course platform:
#
#   grade_submission.sh FORMAT LAB SUBMISSION RESULTS [POINTS]
#
# FORMAT is gradescope or prairielearn; LAB the lab's number; SUBMISSION the
# folder the platform put the student's files in; RESULTS the results.json
# to write; POINTS, if given, the checks' weights (labcheck.py --points,
# e.g. hello=2,big=0.5; each check not named is worth 1).
#
# The student's chapterN.cpp (and, for lab 1, connect.h if they sent it)
# goes over the starter in chapters/NN_*/lab/, `make labN labserver` builds
# it, and tests/labcheck.py grades it. A submission that does not build, or
# has no chapterN.cpp, still gets a results.json: score 0 on Gradescope, not
# gradable on PrairieLearn, with the compiler's messages.
#
# The repository is the one this script sits in (docs/grading/ of it). The
# build runs in it: give each submission its own copy, as both platforms do.
# CXXFLAGS from the environment reaches make (the Makefile's default: -O2 -g).
set -u
format=$1 lab=$2 submission=$3 results=$4 points=${5:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$(dirname "$results")"
log=$(mktemp)

not_graded() {  # REASON: write a result that says why nothing was graded
    python3 "$root/tests/grade_formats.py" not-graded --format "$format" --lab "$lab" \
        --reason "$1" --log "$log" --results "$results"
    cat "$log"
    rm -f "$log"
    exit 0
}

lab_dir=$(ls -d "$root"/chapters/$(printf '%02d' "$lab")_*/lab 2>/dev/null | head -n 1)
[ -n "$lab_dir" ] || not_graded "this repository has no lab $lab"

# The file as uploaded, or inside a whole repository (a GitHub submission).
source_file=$submission/chapter$lab.cpp
if [ ! -f "$source_file" ]; then
    source_file=$(ls "$submission"/chapters/*/lab/chapter"$lab".cpp 2>/dev/null | head -n 1)
fi
if [ -z "$source_file" ] || [ ! -f "$source_file" ]; then
    ls -R "$submission" >"$log" 2>&1
    not_graded "no chapter$lab.cpp in the submission (its files are listed below)"
fi
cp "$source_file" "$lab_dir/chapter$lab.cpp"
if [ "$lab" = 1 ] && [ -f "$(dirname "$source_file")/connect.h" ]; then
    cp "$(dirname "$source_file")/connect.h" "$lab_dir/connect.h"
fi

cd "$root" || exit 1
# Some checks talk to the standalone lab server (./labserver) too.
if ! make -j2 "lab$lab" labserver >"$log" 2>&1; then
    not_graded "lab$lab did not build: the compiler's messages are below"
fi

# labcheck exits 1 when a check failed: that is a grade, not an error.
python3 tests/labcheck.py --lab "$lab" --program "./lab$lab" --format "$format" --results "$results" \
    ${points:+--points "$points"}
if [ ! -s "$results" ]; then
    echo "labcheck.py wrote no $results" >"$log"
    not_graded "the grader itself stopped: tell your teacher"
fi
rm -f "$log"
