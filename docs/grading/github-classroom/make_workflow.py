#!/usr/bin/env python3
"""Print a GitHub Classroom autograding workflow for one lab:

    python3 docs/grading/github-classroom/make_workflow.py --lab 3 > .github/workflows/classroom.yml

One step per check of the lab, each `labcheck.py --check K` with GitHub's
command grader (exit 0: the check's points), then GitHub's reporter, which
adds them up for Classroom. The checks, their names and points come from
`python3 tests/labcheck.py --lab N --list-checks` (one line per check:
NUMBER, NAME, POINTS, TITLE, tab-separated), or from a file of such lines
(--checks-file). --points weighs them as labcheck.py --points does.

The actions' inputs, as their action.yml files and code define them
(github.com/education/autograding-command-grader,
github.com/education/autograding-grading-reporter):
  test-name      the name the report shows
  setup-command  run before the command: here `make labN labserver` (some
                 checks talk to ./labserver), on the first step
  command        exit 0 grants max-score
  timeout        in MINUTES, for the setup command and the command each
  max-score      read with parseInt: whole points only (0.5 would count as 0)
  runners        the reporter's input: the steps' ids, comma-separated; it
                 reads each one's result from the env variable ID_RESULTS
                 (the id in capitals), which the workflow must set
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
GRADER = "education/autograding-command-grader@v1"
REPORTER = "education/autograding-grading-reporter@v1"


def read_checks(lines):
    """[(number, name, points, title)] from --list-checks lines."""
    found = []
    for line in lines:
        if not line.strip():
            continue
        fields = line.rstrip("\n").split("\t")
        if len(fields) != 4:
            raise SystemExit("make_workflow: not NUMBER<tab>NAME<tab>POINTS<tab>TITLE: %r" % line)
        number, name, points, title = fields
        found.append((int(number), name, float(points), title))
    if not found:
        raise SystemExit("make_workflow: no checks listed")
    return found


def listed_checks(lab, points):
    command = [sys.executable, os.path.join(ROOT, "tests", "labcheck.py"), "--lab", str(lab), "--list-checks"]
    if points:
        command += ["--points", points]
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit("make_workflow: labcheck.py --lab %d --list-checks failed:\n%s" % (lab, done.stderr))
    return done.stdout.splitlines()


def quoted(text):
    """A YAML double-quoted scalar (JSON's string syntax is a subset of it)."""
    return json.dumps(text)


def workflow(lab, checks, timeout):
    for number, name, points, _ in checks:
        if not points.is_integer():
            raise SystemExit("make_workflow: check %d (%s) is worth %s points: the command grader reads "
                             "max-score as a whole number, so give every check whole points" % (number, name, points))
    program = "./lab%d" % lab
    out = [
        "# GitHub Classroom autograding for lab %d: one step per check of" % lab,
        "# `python3 tests/labcheck.py --lab %d --list-checks`, then the reporter." % lab,
        "# Made by docs/grading/github-classroom/make_workflow.py --lab %d; goes in" % lab,
        "# the students' repositories as .github/workflows/classroom.yml.",
        "name: Autograding Tests",
        "'on':",
        "  - push",
        "  - workflow_dispatch",
        "  - repository_dispatch",
        "permissions:",
        "  checks: write",
        "  actions: read",
        "  contents: read",
        "jobs:",
        "  run-autograding-tests:",
        "    runs-on: ubuntu-latest",
        "    if: github.actor != 'github-classroom[bot]'",
        "    steps:",
        "      - name: Checkout code",
        "        uses: actions/checkout@v4",
    ]
    ids = []
    for index, (number, name, points, title) in enumerate(checks):
        step_id = "check%d" % number
        ids.append(step_id)
        out += [
            "      - name: %s" % quoted("check %d: %s" % (number, name)),
            "        id: %s" % step_id,
            "        uses: %s" % GRADER,
            "        with:",
            "          test-name: %s" % quoted("%d %s: %s" % (number, name, title)),
        ]
        if index == 0:  # the build, once: the later steps find ./labN in the same workspace
            out.append("          setup-command: make lab%d labserver" % lab)
        out += [
            "          command: python3 tests/labcheck.py --lab %d --program %s --check %d" % (lab, program, number),
            "          timeout: %d" % timeout,
            "          max-score: %d" % int(points),
        ]
    out += [
        "      - name: Autograding Reporter",
        "        uses: %s" % REPORTER,
        "        env:",
    ]
    out += ["          %s_RESULTS: \"${{steps.%s.outputs.result}}\"" % (step_id.upper(), step_id) for step_id in ids]
    out += [
        "        with:",
        "          runners: %s" % ",".join(ids),
    ]
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description="Print a GitHub Classroom autograding workflow for a lab.")
    parser.add_argument("--lab", type=int, required=True)
    parser.add_argument("--checks-file", help="--list-checks output saved in a file, instead of running labcheck.py")
    parser.add_argument("--points", help="the checks' weights, as labcheck.py --points takes them: hello=2,big=3")
    parser.add_argument("--timeout", type=int, default=5, help="minutes for each step (default 5)")
    options = parser.parse_args()
    if options.checks_file:
        with open(options.checks_file) as f:
            lines = f.read().splitlines()
    else:
        lines = listed_checks(options.lab, options.points)
    sys.stdout.write(workflow(options.lab, read_checks(lines), options.timeout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
