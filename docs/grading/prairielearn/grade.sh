#!/usr/bin/env bash
# PrairieLearn runs this in the grading container for each submission (the
# entrypoint in info.json, with the lab's number and, if the checks are not
# worth 1 point each, their weights: grade.sh 3 hello=2,big=0.5). The student's
# files are in /grade/student; this repository, copied from the course's
# serverFilesCourse/, in /grade/serverFilesCourse; we write
# /grade/results/results.json. See docs/grading/README.md.
LAB=${1:-${LAB:?the lab number: grade.sh 3}}
POINTS=${2:-${POINTS:-}}

# GRADE_ROOT is /grade on PrairieLearn; a test can point it elsewhere.
GRADE_ROOT=${GRADE_ROOT:-/grade}
exec bash "$(dirname "$0")/../grade_submission.sh" prairielearn "$LAB" \
    "$GRADE_ROOT/student" "$GRADE_ROOT/results/results.json" "$POINTS"
