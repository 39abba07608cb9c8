#!/usr/bin/env python3
"""The lab grader's results, written for a course platform.

tests/labcheck.py runs a lab's checks and hands over what it found:

    results = {"lab": 3, "program": "./lab3",
               "checks": [{"number": 1, "name": "hello", "title": "...",
                           "points": 1.0, "outcome": "passed",  # or "failed", "skipped"
                           "output": "..."}, ...]}

render(fmt, results) writes them as one platform reads them:

    gradescope    /autograder/results/results.json
    prairielearn  /grade/results/results.json
    autolab       the last line of the autograder's stdout, {"scores": {...}}
    junit         JUnit XML, as `ctest --output-junit` writes it

and score(results) is (points earned, points possible). A skipped check is
one that does not apply on the machine that ran it (no IPv6 loopback, say):
it is left out of both. The teacher's templates in docs/grading/ call this
through labcheck.py --format; `grade_formats.py not-graded` writes the
result of a submission that did not compile.

The fields follow each platform's own documentation:
  Gradescope:   https://gradescope-autograders.readthedocs.io/en/latest/specs/
  PrairieLearn: https://prairielearn.readthedocs.io/en/latest/externalGrading/
  Autolab:      https://docs.autolabproject.com/lab/
  JUnit:        https://cmake.org/cmake/help/latest/manual/ctest.1.html (--output-junit;
                the element and attribute names are those CTest 3.25 writes)
  XML text:     https://www.w3.org/TR/xml/#charsets
"""
import argparse
import json
import math
import sys

FORMATS = ("gradescope", "prairielearn", "autolab", "junit")

# Gradescope shows a test to students as "visibility" says (visible, hidden,
# after_due_date, after_published); the autograder's stdout (the build and
# the grader's own report) is for the teacher unless stdout_visibility says
# otherwise. Change these two to change what students see.
GRADESCOPE_VISIBILITY = "visible"
GRADESCOPE_STDOUT_VISIBILITY = "hidden"

# A failed check's output is kept whole up to this many characters; past it,
# its start and its end (PrairieLearn takes a results.json of 1 MB at most).
OUTPUT_LIMIT = 16000


# ------------------------------------------------------------ text

def clean(text):
    """text with what no format can carry spelled out: a lone surrogate (a byte
    that was not UTF-8, decoded with surrogateescape) becomes \\xNN."""
    def one(ch):
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            return "\\x%02x" % (code - 0xDC00)
        if 0xD800 <= code <= 0xDFFF:
            return "\\u%04x" % code
        return ch
    text = str(text)
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        text = "".join(one(ch) for ch in text)
    return text


def shortened(text, limit=OUTPUT_LIMIT):
    text = clean(text)
    if len(text) <= limit:
        return text
    half = limit // 2
    return "%s\n[... %d characters left out ...]\n%s" % (text[:half], len(text) - 2 * half, text[-half:])


def points_text(value):
    """2 -> "2", 0.5 -> "0.5", 1/3 -> "0.33"."""
    return ("%.2f" % value).rstrip("0").rstrip(".")


def points_named(value):
    """1 -> "1 point", 0.5 -> "0.5 points"."""
    return points_text(value) + (" point" if value == 1 else " points")


def number(value):
    """A whole number of points as an int, so the JSON shows 2, not 2.0."""
    return int(value) if float(value).is_integer() else value


# ------------------------------------------------------------ the score

def checks(results):
    for check in results["checks"]:
        outcome = check["outcome"]
        if outcome not in ("passed", "failed", "skipped"):
            raise ValueError("check %s: outcome %r is not passed, failed or skipped" % (check.get("name"), outcome))
        points = float(check.get("points", 1.0))
        if not math.isfinite(points) or points < 0:
            raise ValueError("check %s: points %r is not a number of 0 or more" % (check.get("name"), points))
        yield check, outcome, points


def score(results):
    """(earned, maximum): the points of the passed checks, and of every check
    that was not skipped. Rounded to 6 places, so 0.1 + 0.2 is 0.3."""
    earned = maximum = 0.0
    for _, outcome, points in checks(results):
        if outcome == "skipped":
            continue
        maximum += points
        if outcome == "passed":
            earned += points
    return round(earned, 6), round(maximum, 6)


def summary(results):
    """One line: lab3: 7.5 of 10 points (8 of 11 checks passed, 1 skipped here)."""
    earned, maximum = score(results)
    outcomes = [outcome for _, outcome, _ in checks(results)]
    skipped = outcomes.count("skipped")
    line = "lab%d: %s of %s points (%d of %d checks passed" % (
        results["lab"], points_text(earned), points_text(maximum), outcomes.count("passed"), len(outcomes) - skipped)
    return line + (", %d skipped here)" % skipped if skipped else ")")


def report(results):
    """The text a student reads: the summary, then one line per check, and
    under each failed or skipped one what the check said."""
    lines = [summary(results)]
    for check, outcome, points in checks(results):
        lines.append("check %d, %s (%s): %s ... %s" % (
            check["number"], check["name"], points_named(points), check["title"],
            {"passed": "ok", "failed": "FAILED", "skipped": "skipped here"}[outcome]))
        if outcome != "passed" and check.get("output"):
            lines.extend("    " + line for line in shortened(check["output"]).splitlines())
    return clean("\n".join(lines) + "\n")


# ------------------------------------------------------------ Gradescope

def gradescope(results):
    """results.json for Gradescope. Each check is a test: score and max_score
    in points, status "passed" or "failed", its output shown as plain text
    (output_format "text": the top-level default, "simple_format", would
    read a `<` in a program's output as HTML).

    A skipped check is a test of 0 of 0 points, its output saying why, with no
    status: Gradescope has only "passed" and "failed", and a check that could
    not run here was neither. It adds nothing to the score and nothing to the
    maximum. Without a status Gradescope marks a test passing when its score
    is its max_score ("Test case status"), so 0 of 0 shows as passing: the
    truth for the student, as nothing was held against them."""
    earned, _ = score(results)
    tests = []
    for check, outcome, points in checks(results):
        test = {
            "name": "%s: %s" % (check["name"], clean(check["title"])),
            "number": "%d.%d" % (results["lab"], check["number"]),
            "score": number(points if outcome == "passed" else 0),
            "max_score": number(0 if outcome == "skipped" else points),
            "output": shortened(check.get("output", "")) if outcome != "passed" else "",
            "visibility": GRADESCOPE_VISIBILITY,
        }
        if outcome == "skipped":
            test["output"] = "skipped here: " + test["output"]
        else:
            test["status"] = outcome
        tests.append(test)
    document = {
        "score": number(earned),
        "output": summary(results),
        "output_format": "text",
        "test_output_format": "text",
        "test_name_format": "text",
        "visibility": GRADESCOPE_VISIBILITY,
        "stdout_visibility": GRADESCOPE_STDOUT_VISIBILITY,
        "tests": tests,
    }
    return json.dumps(document, indent=2) + "\n"


# ------------------------------------------------------------ PrairieLearn

def prairielearn(results):
    """/grade/results/results.json for PrairieLearn: score is a fraction,
    0.0 to 1.0, of the points of the checks that ran; each check is a test
    with points and max_points (a skipped one: 0 of 0, its message says why).
    When no check could run at all there is nothing to grade the submission
    on: gradable false, which costs the student no attempt."""
    earned, maximum = score(results)
    tests = []
    for check, outcome, points in checks(results):
        tests.append({
            "name": "%d. %s" % (check["number"], check["name"]),
            "description": clean(check["title"]),
            "points": number(points if outcome == "passed" else 0),
            "max_points": number(0 if outcome == "skipped" else points),
            "message": {"passed": "passed", "failed": "failed: what was expected and seen is below",
                        "skipped": "skipped here: this check does not apply on the grading machine"}[outcome],
            "output": shortened(check.get("output", "")) if outcome != "passed" else "",
        })
    document = {
        "gradable": maximum > 0,
        "score": earned / maximum if maximum > 0 else 0.0,
        "message": summary(results),
        "output": report(results),
        "tests": tests,
    }
    if maximum == 0:
        document["format_errors"] = ["no check of lab %d could run on the grading machine" % results["lab"]]
    return json.dumps(document, indent=2) + "\n"


# ------------------------------------------------------------ Autolab

def autolab(results):
    """The autoresult, the line Autolab reads as the last of the autograder's
    stdout: {"scores": {...}, "scoreboard": [...]}. labcheck.py prints its
    text report above it, the feedback the student reads.

    One key per check, the check's name ("hello", "drip", ...), its points if
    it passed, else 0. Autolab matches each key to a problem of the same name,
    exactly, so the assessment needs one problem per check, named as
    `labcheck.py --lab N --list-checks` names them, each with the check's
    points as its maximum. A name, not "check1": numbers shift when a check is
    added, names do not. A skipped check's key is left out, as a problem that
    is not autograded. The scoreboard entry is [points earned], for a
    scoreboard of one column."""
    earned, _ = score(results)
    scores = {}
    for check, outcome, points in checks(results):
        if outcome != "skipped":
            scores[check["name"]] = number(points if outcome == "passed" else 0)
    autoresult = json.dumps({"scores": scores, "scoreboard": [number(earned)]}, separators=(",", ":"))
    return autoresult + "\n"


# ------------------------------------------------------------ JUnit XML

def xml_text(text, attribute=False):
    """text escaped for XML 1.0. A character XML cannot hold at all (the
    control bytes but tab, newline and return; U+FFFE, U+FFFF) is spelled
    \\xNN or \\uNNNN instead; in an attribute, tab, newline and return are
    written as character references, which a parser keeps (it would turn
    them into spaces otherwise)."""
    out = []
    for ch in clean(text):
        code = ord(ch)
        if ch == "&":
            out.append("&amp;")
        elif ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        elif ch == '"' and attribute:
            out.append("&quot;")
        elif ch in "\t\n\r":
            out.append("&#%d;" % code if attribute or ch == "\r" else ch)
        elif code < 0x20 or code == 0x7F:
            out.append("\\x%02x" % code)
        elif code in (0xFFFE, 0xFFFF):
            out.append("\\u%04x" % code)
        else:
            out.append(ch)
    return "".join(out)


def headline(output, limit=200):
    """A failure's first line, and the next while a line ends in a colon
    ("expected, and seen:"): what fits in a message attribute."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    text = lines[0] if lines else ""
    for line in lines[1:3]:
        if not text.endswith(":"):
            break
        text += " " + line
    return text if len(text) <= limit else text[:limit - 3] + "..."


def junit(results):
    """A JUnit XML testsuite, as `ctest --output-junit` writes one: a testcase
    per check (classname labN, name the check's name), a failed one with
    <failure message="its first line(s)"> and the whole output inside, a skipped
    one with <skipped message="why">. The suite's properties carry the score
    in points; time is each check's "seconds" when labcheck gives it."""
    earned, maximum = score(results)
    rows = list(checks(results))
    failures = sum(1 for _, outcome, _ in rows if outcome == "failed")
    skipped = sum(1 for _, outcome, _ in rows if outcome == "skipped")
    total_time = sum(float(check.get("seconds", 0)) for check, _, _ in rows)
    suite = "lab%d" % results["lab"]
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<testsuite name="%s" tests="%d" failures="%d" errors="0" disabled="0" skipped="%d" time="%.3f">' % (
                 suite, len(rows), failures, skipped, total_time),
             "\t<properties>",
             '\t\t<property name="program" value="%s"/>' % xml_text(results.get("program", ""), True),
             '\t\t<property name="score" value="%s"/>' % points_text(earned),
             '\t\t<property name="max_score" value="%s"/>' % points_text(maximum),
             "\t</properties>"]
    for check, outcome, points in rows:
        output = shortened(check.get("output", ""))
        status = {"passed": "run", "failed": "fail", "skipped": "notrun"}[outcome]
        lines.append('\t<testcase name="%s" classname="%s" time="%.3f" status="%s">' % (
            xml_text(check["name"], True), suite, float(check.get("seconds", 0)), status))
        first_line = headline(output) or outcome
        if outcome == "failed":
            lines.append('\t\t<failure message="%s">%s</failure>' % (xml_text(first_line, True), xml_text(output)))
        elif outcome == "skipped":
            lines.append('\t\t<skipped message="%s"/>' % xml_text(first_line, True))
        lines.append("\t\t<system-out>%s</system-out>" % xml_text(
            "check %d (%s): %s\n" % (check["number"], points_named(points), check["title"])))
        lines.append("\t</testcase>")
    lines.append("</testsuite>")
    return "\n".join(lines) + "\n"


RENDERERS = {"gradescope": gradescope, "prairielearn": prairielearn, "autolab": autolab, "junit": junit}


def render(fmt, results):
    if fmt not in RENDERERS:
        raise ValueError("no format %r: one of %s" % (fmt, ", ".join(FORMATS)))
    return RENDERERS[fmt](results)


# ------------------------------------------------------------ a submission not graded

def not_graded(fmt, lab, reason, log=""):
    """The result of a submission that could not be graded: reason says why
    (it did not build, the file was missing), log is what the build printed.
    Score 0 on Gradescope; on PrairieLearn not gradable, which costs the
    student no attempt (as PrairieLearn's own C grader does on a compile
    error)."""
    headline = "lab%d was not graded: %s" % (lab, clean(reason))
    log = shortened(log, 60000)
    if fmt == "gradescope":
        document = {"score": 0, "output": headline + ("\n\n" + log if log else ""), "output_format": "text",
                    "visibility": GRADESCOPE_VISIBILITY, "stdout_visibility": GRADESCOPE_STDOUT_VISIBILITY,
                    "tests": []}
    elif fmt == "prairielearn":
        document = {"gradable": False, "score": 0.0, "message": headline, "output": log,
                    "format_errors": [headline], "tests": []}
    else:
        raise ValueError("not-graded writes gradescope or prairielearn, not %r" % fmt)
    return json.dumps(document, indent=2) + "\n"


def main():
    parser = argparse.ArgumentParser(description="Write a grading result for a course platform.")
    commands = parser.add_subparsers(dest="command", required=True)
    failed = commands.add_parser("not-graded", help="the result of a submission that could not be graded")
    failed.add_argument("--format", required=True, choices=("gradescope", "prairielearn"))
    failed.add_argument("--lab", required=True, type=int)
    failed.add_argument("--reason", required=True, help="why, in a few words")
    failed.add_argument("--log", help="a file with what the build printed")
    failed.add_argument("--results", required=True, help="the results.json to write")
    options = parser.parse_args()
    log = ""
    if options.log:
        with open(options.log, encoding="utf-8", errors="surrogateescape") as f:
            log = f.read()
    with open(options.results, "w", encoding="utf-8") as f:
        f.write(not_graded(options.format, options.lab, options.reason, log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
