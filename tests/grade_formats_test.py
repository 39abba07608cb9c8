#!/usr/bin/env python3
"""Tests of the grader's results for course platforms (tests/grade_formats.py)
and of the teacher's templates in docs/grading/.

Each format is written from sample results that hold every case a lab can
give (passed, failed and skipped checks, points of 2 and 0.5, output with
quotes, <, &, newlines, a control byte and a byte that was not UTF-8) and
read back field by field against the platform's documented fields. The
templates run as the platforms run them, offline, in a temporary folder: a
copy of this repository, the reference chapter 1 as the student's
submission (full marks), and one that does not compile (score 0, the
compiler's message). CTest runs each case (`--list`) as grade-formats:NAME.
"""
import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

from cases import Failed, Skipped, expect, registry, run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES, case = registry()
VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}
GRADESCOPE_FORMATS = {"text", "simple_format", "html", "md", "ansi"}

FAILED_OUTPUT = ('expected "HTTP/1.1 200 OK" & <body>\nseen: \x01 and \x7f, a line\r\n'
                 "see it yourself:  ./lab3 --scenario 'drip'")


def sample():
    """Results as labcheck.py hands them over: 3 of 4.5 points."""
    return {"lab": 3, "program": "./lab3", "checks": [
        {"number": 1, "name": "hello", "title": "offline: the built-in lab server's answer", "points": 2.0,
         "outcome": "passed", "output": ""},
        {"number": 2, "name": "drip", "title": "a response in many small pieces (drip)", "points": 0.5,
         "outcome": "failed", "output": FAILED_OUTPUT},
        {"number": 3, "name": "ipv6", "title": "an IPv6 literal", "points": 1.0,
         "outcome": "skipped", "output": "no IPv6 loopback here"},
        {"number": 4, "name": "deadline:connect-timeout", "title": 'a "silent" connect <gives up>', "points": 1.0,
         "outcome": "failed", "output": "bytes seen: \udcff\udc80 ]]> end"},
        {"number": 5, "name": "ending", "title": "shutdown(SHUT_WR), then close",
         "outcome": "passed", "output": ""},  # no "points": worth 1
    ]}


def strict_json(text, what):
    """text parsed as JSON that any parser takes: UTF-8, no NaN or Infinity."""
    def refuse(name):
        raise Failed("%s holds %s, which is not JSON" % (what, name))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise Failed("%s is not UTF-8: %s" % (what, error))
    try:
        return json.loads(text, parse_constant=refuse)
    except ValueError as error:
        raise Failed("%s does not parse as JSON: %s\n%s" % (what, error, text[:2000]))


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def close(a, b):
    return abs(a - b) < 1e-9


def load_formats():
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import grade_formats
    return grade_formats


# ------------------------------------------------------------ the fields of each format

def check_gradescope(document, earned=None, maximum=None):
    """Gradescope's results.json, field by field (its "Output format")."""
    expect(isinstance(document, dict), "results.json is not an object")
    expect(is_number(document.get("score")), "no top-level score (a number): %r" % document.get("score"))
    expect(isinstance(document.get("output", ""), str), "output is not text")
    for key in ("visibility", "stdout_visibility"):
        expect(document.get(key, "visible") in VISIBILITIES, "%s %r is none of %s" % (key, document.get(key), VISIBILITIES))
    for key in ("output_format", "test_output_format", "test_name_format"):
        expect(document.get(key, "text") in GRADESCOPE_FORMATS, "%s %r is no Gradescope format" % (key, document.get(key)))
    tests = document.get("tests", [])
    expect(isinstance(tests, list), "tests is not a list")
    for test in tests:
        label = "test %r" % test.get("name")
        expect(isinstance(test.get("name"), str) and test["name"], "a test without a name: %r" % test)
        expect(isinstance(test.get("number"), str), "%s: number is not text: %r" % (label, test.get("number")))
        expect(is_number(test.get("score")) and is_number(test.get("max_score")), "%s: score or max_score not a number" % label)
        expect(0 <= test["score"] <= test["max_score"], "%s: score %r out of 0..%r" % (label, test["score"], test["max_score"]))
        expect(test.get("status", "passed") in ("passed", "failed"), "%s: status %r" % (label, test.get("status")))
        expect(isinstance(test.get("output", ""), str), "%s: output is not text" % label)
        expect(test.get("visibility", "visible") in VISIBILITIES, "%s: visibility %r" % (label, test.get("visibility")))
    if tests:
        expect(close(sum(t["score"] for t in tests), document["score"]),
               "the tests add up to %r, the top-level score is %r" % (sum(t["score"] for t in tests), document["score"]))
    if earned is not None:
        expect(close(document["score"], earned), "score %r, not %r" % (document["score"], earned))
    if maximum is not None:
        expect(close(sum(t["max_score"] for t in tests), maximum),
               "max_score adds up to %r, not %r" % (sum(t["max_score"] for t in tests), maximum))


def check_prairielearn(document, earned=None, maximum=None):
    """PrairieLearn's results.json, field by field ("Grading results")."""
    expect(isinstance(document, dict), "results.json is not an object")
    expect(isinstance(document.get("gradable", True), bool), "gradable is not true or false")
    gradable = document.get("gradable", True)
    if gradable:
        expect(is_number(document.get("score")) and 0 <= document["score"] <= 1,
               "score %r is not a number from 0 to 1" % document.get("score"))
    for key in ("message", "output"):
        expect(isinstance(document.get(key, ""), str), "%s is not text" % key)
    errors = document.get("format_errors", [])
    expect(isinstance(errors, str) or (isinstance(errors, list) and all(isinstance(e, str) for e in errors)),
           "format_errors is neither text nor a list of text")
    tests = document.get("tests", [])
    for test in tests:
        label = "test %r" % test.get("name")
        for key in ("name", "description", "message", "output"):
            expect(isinstance(test.get(key), str), "%s: %s is not text" % (label, key))
        expect(is_number(test.get("points")) and is_number(test.get("max_points")), "%s: points not numbers" % label)
        expect(0 <= test["points"] <= test["max_points"], "%s: points %r out of 0..%r" % (label, test["points"], test["max_points"]))
    if gradable and tests and sum(t["max_points"] for t in tests) > 0:
        fraction = sum(t["points"] for t in tests) / sum(t["max_points"] for t in tests)
        expect(close(fraction, document["score"]), "the tests give %r, score is %r" % (fraction, document["score"]))
    if earned is not None and maximum:
        expect(close(document["score"], earned / maximum), "score %r, not %r" % (document["score"], earned / maximum))


def check_autolab(text, names, earned):
    expect(text.endswith("\n"), "the output does not end with a newline")
    last = text.rstrip("\n").split("\n")[-1]
    autoresult = strict_json(last, "the last line")
    expect(isinstance(autoresult, dict) and isinstance(autoresult.get("scores"), dict),
           "the last line has no \"scores\" object: %r" % last)
    scores = autoresult["scores"]
    expect(sorted(scores) == sorted(names), "the problems are %s, not %s" % (sorted(scores), sorted(names)))
    expect(all(is_number(v) for v in scores.values()), "a score that is not a number: %r" % scores)
    expect(close(sum(scores.values()), earned), "the scores add up to %r, not %r" % (sum(scores.values()), earned))
    board = autoresult.get("scoreboard", [])
    expect(isinstance(board, list) and all(is_number(v) for v in board), "scoreboard is not a list of numbers")
    return autoresult


# ------------------------------------------------------------ the formats, from sample results

@case("score-arithmetic")
def score_arithmetic():
    gf = load_formats()
    expect(gf.score(sample()) == (3.0, 4.5), "sample score %r, not (3, 4.5)" % (gf.score(sample()),))
    tenths = {"lab": 1, "checks": [{"number": n, "name": "c%d" % n, "title": "t", "points": p, "outcome": "passed",
                                    "output": ""} for n, p in ((1, 0.1), (2, 0.2))]}
    expect(gf.score(tenths) == (0.3, 0.3), "0.1 + 0.2 gave %r" % (gf.score(tenths),))
    skipped = {"lab": 1, "checks": [dict(c, outcome="skipped") for c in sample()["checks"]]}
    expect(gf.score(skipped) == (0.0, 0.0), "every check skipped gave %r" % (gf.score(skipped),))
    for bad in ({"outcome": "ok"}, {"points": -1}, {"points": float("nan")}):
        broken = {"lab": 1, "checks": [dict(sample()["checks"][0], **bad)]}
        try:
            gf.score(broken)
        except ValueError:
            continue
        raise Failed("a check with %r was taken" % bad)
    try:
        gf.render("html", sample())
    except ValueError:
        return
    raise Failed("render('html') did not refuse an unknown format")


@case("gradescope")
def gradescope_render():
    gf = load_formats()
    document = strict_json(gf.render("gradescope", sample()), "gradescope")
    check_gradescope(document, 3, 4.5)
    tests = {t["name"].split(":")[0]: t for t in document["tests"]}
    expect(len(document["tests"]) == 5, "%d tests, not 5" % len(document["tests"]))
    expect(tests["hello"]["status"] == "passed" and tests["hello"]["score"] == 2, "hello: %r" % tests["hello"])
    drip = tests["drip"]
    expect(drip["status"] == "failed" and drip["score"] == 0 and drip["max_score"] == 0.5, "drip: %r" % drip)
    expect(drip["output"] == FAILED_OUTPUT, "drip's output changed on the way: %r" % drip["output"])
    skip = tests["ipv6"]
    expect("status" not in skip and skip["score"] == 0 and skip["max_score"] == 0, "the skipped check: %r" % skip)
    expect("no IPv6 loopback here" in skip["output"], "the skipped check does not say why: %r" % skip["output"])
    expect("\\xff\\x80" in tests["deadline"]["output"], "bytes that were not UTF-8 not spelled \\xNN: %r"
           % tests["deadline"]["output"])
    expect(document["output_format"] == "text", "the top-level output would be read as HTML (simple_format)")
    expect([t["number"] for t in document["tests"]] == ["3.%d" % n for n in range(1, 6)], "numbers: %r"
           % [t["number"] for t in document["tests"]])


@case("prairielearn")
def prairielearn_render():
    gf = load_formats()
    document = strict_json(gf.render("prairielearn", sample()), "prairielearn")
    check_prairielearn(document, 3, 4.5)
    expect(document["gradable"] is True, "sample results not gradable")
    expect(len(document["tests"]) == 5, "%d tests, not 5" % len(document["tests"]))
    drip = document["tests"][1]
    expect(drip["output"] == FAILED_OUTPUT and drip["max_points"] == 0.5 and drip["points"] == 0, "drip: %r" % drip)
    skip = document["tests"][2]
    expect(skip["max_points"] == 0 and "skipped" in skip["message"], "the skipped check: %r" % skip)
    none_ran = {"lab": 3, "checks": [dict(c, outcome="skipped") for c in sample()["checks"]]}
    document = strict_json(gf.render("prairielearn", none_ran), "prairielearn, nothing ran")
    check_prairielearn(document)
    expect(document["gradable"] is False and document["format_errors"],
           "no check ran, and the submission was graded: %r" % document)


@case("autolab")
def autolab_render():
    gf = load_formats()
    text = gf.render("autolab", sample())
    autoresult = check_autolab(text, ["hello", "drip", "deadline:connect-timeout", "ending"], 3)
    expect(autoresult["scores"] == {"hello": 2, "drip": 0, "deadline:connect-timeout": 0, "ending": 1},
           "scores %r" % autoresult["scores"])
    expect(autoresult["scoreboard"] == [3], "scoreboard %r, not [3]" % autoresult["scoreboard"])
    expect(text.count("\n") == 1, "the autoresult is not one line: %r" % text)


def junit_tree(text):
    try:
        text.encode("utf-8")
        return ET.fromstring(text.encode("utf-8"))
    except (ET.ParseError, UnicodeEncodeError) as error:
        raise Failed("the JUnit XML does not parse: %s\n%s" % (error, text[:3000]))


@case("junit")
def junit_render():
    gf = load_formats()
    suite = junit_tree(gf.render("junit", sample()))
    expect(suite.tag == "testsuite", "the root is <%s>, not <testsuite>" % suite.tag)
    cases = suite.findall("testcase")
    counts = {key: int(suite.get(key, "-1")) for key in ("tests", "failures", "skipped", "errors")}
    expect(counts == {"tests": 5, "failures": 2, "skipped": 1, "errors": 0}, "counts %r" % counts)
    expect(len(cases) == 5, "%d testcases, not 5" % len(cases))
    for testcase in cases:
        expect(testcase.get("name") and testcase.get("classname") == "lab3", "testcase %r" % testcase.attrib)
        float(testcase.get("time"))
    expect(len(suite.findall("testcase/failure")) == 2 and len(suite.findall("testcase/skipped")) == 1,
           "failure and skipped elements do not match the counts")
    drip = cases[1].find("failure")
    expect(drip.text == FAILED_OUTPUT.replace("\x01", "\\x01").replace("\x7f", "\\x7f"),
           "drip's output, read back: %r" % drip.text)
    expect(drip.get("message") == 'expected "HTTP/1.1 200 OK" & <body>', "failure message %r" % drip.get("message"))
    expect(cases[2].find("skipped").get("message") == "no IPv6 loopback here", "skipped message %r"
           % cases[2].find("skipped").get("message"))
    expect(cases[3].get("name") == "deadline:connect-timeout", "name %r" % cases[3].get("name"))
    properties = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    expect(properties.get("score") == "3" and properties.get("max_score") == "4.5", "properties %r" % properties)
    # Every character XML cannot carry, in the output and in the name: still parses.
    every = "".join(chr(c) for c in range(0x20)) + "\x7f\ufffe\uffff\ud800\udcfe" + "<&>\"'"
    results = {"lab": 1, "program": every, "checks": [
        {"number": 1, "name": every, "title": every, "points": 1, "outcome": "failed", "output": every},
        {"number": 2, "name": "x", "title": every, "points": 1, "outcome": "skipped", "output": every}]}
    suite = junit_tree(gf.render("junit", results))
    text = suite.find("testcase/failure").text
    expect("\\x00" in text and "\\x1f" in text and "\t\n\\x0b\\x0c\r" in text and "<&>\"'" in text,
           "the control bytes read back as %r" % text)


@case("not-graded")
def not_graded():
    """grade_formats.py not-graded: what a template writes when the build fails."""
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "build.log")
        with open(log, "wb") as f:
            f.write(b"chapter1.cpp:3:5: error: 'nope' was not declared in this scope\n\x1b[0m\xff\n")
        for fmt, check in (("gradescope", check_gradescope), ("prairielearn", check_prairielearn)):
            out = os.path.join(tmp, fmt + ".json")
            done = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "grade_formats.py"), "not-graded",
                                   "--format", fmt, "--lab", "1", "--reason", "lab1 did not build",
                                   "--log", log, "--results", out], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            expect(done.returncode == 0, "not-graded exit %d: %s" % (done.returncode, done.stdout.decode(errors="replace")))
            document = strict_json(open(out, encoding="utf-8").read(), fmt)
            check(document)
            whole = document["output"] + document.get("message", "")
            expect("'nope' was not declared" in whole and "did not build" in whole, "%s: %r" % (fmt, document))
        expect(strict_json(open(os.path.join(tmp, "gradescope.json")).read(), "")["score"] == 0, "score not 0")
        expect(strict_json(open(os.path.join(tmp, "prairielearn.json")).read(), "")["gradable"] is False,
               "a build that failed was gradable")


# ------------------------------------------------------------ the GitHub Classroom workflow

def parse_yaml(text):
    """The YAML the workflow generator writes: block mappings and sequences,
    plain, single- and double-quoted scalars, comments. Enough to read its
    structure back; anything else is an error."""
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        expect("\t" not in line, "line %d has a tab" % number)
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        lines.append([len(line) - len(line.lstrip(" ")), line.strip(), number])

    def scalar(token, number):
        if token.startswith('"'):
            try:
                return json.loads(token)
            except ValueError:
                raise Failed("line %d: %r is no double-quoted scalar" % (number, token))
        if token.startswith("'"):
            expect(token.endswith("'") and len(token) > 1, "line %d: %r" % (number, token))
            return token[1:-1].replace("''", "'")
        expect(not token.startswith(("{", "[", "&", "*", "!", "|", ">")), "line %d: %r is outside the subset" % (number, token))
        return int(token) if re.fullmatch(r"-?\d+", token) else token

    def key_value(content, number):
        match = re.fullmatch(r"""('[^']*'|"[^"]*"|[A-Za-z0-9_.-]+):(?: (.*))?""", content)
        expect(match, "line %d: %r is not KEY: VALUE" % (number, content))
        return scalar(match.group(1), number) if match.group(1)[0] in "'\"" else match.group(1), match.group(2)

    def block(i, indent):
        if lines[i][1].startswith("- "):
            items = []
            while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
                rest = lines[i][1][2:]
                if re.match(r"""('[^']*'|"[^"]*"|[A-Za-z0-9_.-]+):( |$)""", rest):
                    lines[i] = [indent + 2, rest, lines[i][2]]  # a mapping starts on the dash's line
                    value, i = block(i, indent + 2)
                else:
                    value, i = scalar(rest, lines[i][2]), i + 1
                items.append(value)
            return items, i
        mapping = {}
        while i < len(lines) and lines[i][0] == indent and not lines[i][1].startswith("- "):
            key, value = key_value(lines[i][1], lines[i][2])
            expect(key not in mapping, "line %d: %r twice" % (lines[i][2], key))
            if value is None:
                expect(i + 1 < len(lines) and lines[i + 1][0] >= indent, "line %d: %r has no value" % (lines[i][2], key))
                deeper = lines[i + 1][0]
                expect(deeper > indent or lines[i + 1][1].startswith("- "), "line %d: nothing under %r" % (lines[i][2], key))
                mapping[key], i = block(i + 1, deeper)
            else:
                mapping[key], i = scalar(value, lines[i][2]), i + 1
        return mapping, i

    document, end = block(0, 0)
    expect(end == len(lines), "line %d: indentation the subset does not read" % (lines[end][2] if end < len(lines) else -1))
    return document


def check_workflow(text, lab, checks):
    """checks: [(number, name, points, title)]. The workflow has one grader
    step per check, in order, and the reporter reads every one."""
    from_generator = load_generator()
    doc = parse_yaml(text)
    expect(set(doc) == {"name", "on", "permissions", "jobs"}, "top-level keys %r" % sorted(doc))
    expect("push" in doc["on"], "not run on push: %r" % doc["on"])
    job = doc["jobs"]["run-autograding-tests"]
    expect(job["runs-on"] == "ubuntu-latest", "runs-on %r" % job["runs-on"])
    steps = job["steps"]
    expect(steps[0].get("uses", "").startswith("actions/checkout@"), "the first step does not check out: %r" % steps[0])
    graders, reporter = steps[1:-1], steps[-1]
    expect(len(graders) == len(checks), "%d grader steps for %d checks" % (len(graders), len(checks)))
    ids = []
    for index, (step, (number, name, points, title)) in enumerate(zip(graders, checks)):
        expect(step["uses"] == from_generator.GRADER, "step %d uses %r" % (index + 1, step["uses"]))
        expect(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", step["id"]), "step id %r" % step["id"])
        ids.append(step["id"])
        inputs = step["with"]
        expect(set(inputs) <= {"test-name", "setup-command", "command", "timeout", "max-score"},
               "step %s has inputs the action does not take: %r" % (step["id"], sorted(inputs)))
        expect(("setup-command" in inputs) == (index == 0), "setup-command on step %d" % (index + 1))
        expect(inputs["command"] == "python3 tests/labcheck.py --lab %d --program ./lab%d --check %d" % (lab, lab, number),
               "step %d runs %r" % (index + 1, inputs["command"]))
        expect(isinstance(inputs["timeout"], int) and inputs["timeout"] > 0, "timeout %r" % inputs["timeout"])
        expect(inputs["max-score"] == points, "max-score %r for %s points" % (inputs["max-score"], points))
        expect(name in inputs["test-name"] and title in inputs["test-name"], "test-name %r" % inputs["test-name"])
    expect(len(set(ids)) == len(ids), "step ids repeat: %r" % ids)
    expect(graders[0]["with"]["setup-command"] == "make lab%d labserver" % lab, "setup %r" % graders[0]["with"]["setup-command"])
    expect(reporter["uses"] == from_generator.REPORTER, "the last step uses %r" % reporter["uses"])
    expect(reporter["with"]["runners"] == ",".join(ids), "runners %r, not %r" % (reporter["with"]["runners"], ",".join(ids)))
    expected_env = {i.upper() + "_RESULTS": "${{steps.%s.outputs.result}}" % i for i in ids}
    expect(reporter["env"] == expected_env, "the reporter's env %r" % reporter["env"])


def load_generator():
    sys.path.insert(0, os.path.join(ROOT, "docs", "grading", "github-classroom"))
    import make_workflow
    return make_workflow


CHECKS_FILE = ("1\thello\t2\toffline: the built-in lab server's answer, byte for byte\n"
               "2\tdeadline:connect-timeout\t0\ta \"quoted\" title: with a colon, # and a hash\n"
               "3\tending\t1\t--trace shows the ending: shutdown(SHUT_WR), then close\n")


def generate(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "docs", "grading", "github-classroom", "make_workflow.py")]
                          + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)


@case("workflow-one-step-per-check")
def workflow_steps():
    with tempfile.TemporaryDirectory() as tmp:
        listed = os.path.join(tmp, "checks.txt")
        with open(listed, "w") as f:
            f.write(CHECKS_FILE)
        done = generate("--lab", "4", "--checks-file", listed)
        expect(done.returncode == 0, "make_workflow.py exit %d: %s" % (done.returncode, done.stderr))
        checks = load_generator().read_checks(CHECKS_FILE.splitlines())
        check_workflow(done.stdout, 4, checks)
        with open(listed, "w") as f:
            f.write(CHECKS_FILE.replace("\t0\t", "\t0.5\t"))
        done = generate("--lab", "4", "--checks-file", listed)
        expect(done.returncode != 0 and "whole" in done.stderr,
               "a check of 0.5 points (which the action reads as 0) was taken: exit %d, %s" % (done.returncode, done.stderr))


@case("classroom-yml-current")
def classroom_yml_current():
    """docs/grading/github-classroom/classroom.yml is what the generator makes
    for lab 3 from labcheck.py's checks today."""
    done = generate("--lab", "3")
    expect(done.returncode == 0, "make_workflow.py --lab 3 exit %d: %s" % (done.returncode, done.stderr))
    path = os.path.join(ROOT, "docs", "grading", "github-classroom", "classroom.yml")
    committed = open(path).read()
    expect(committed == done.stdout, "%s is out of date: run docs/grading/github-classroom/make_workflow.py --lab 3 > %s"
           % (os.path.relpath(path, ROOT), os.path.relpath(path, ROOT)))
    listed = list_checks(3)
    check_workflow(committed, 3, load_generator().read_checks(listed))


def list_checks(lab):
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "labcheck.py"), "--lab", str(lab), "--list-checks"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    expect(done.returncode == 0, "labcheck.py --list-checks exit %d: %s" % (done.returncode, done.stderr))
    return done.stdout.splitlines()


# ------------------------------------------------------------ the templates, run offline

def need_tools(options):
    if options.emulator:
        raise Skipped("the templates are shell scripts that build with make and g++: they run in the Linux suite")
    for tool in ("bash", "make", os.environ.get("CXX", "g++")):
        if not shutil.which(tool):
            raise Skipped("no %s here" % tool)


# What a teacher's copy leaves out where git cannot say (.gitignore's entries).
NOT_COPIED = re.compile(r"^(\.git|build|build-.*|wineprefix|chapter\d+|labserver|lab\d+)$|\.exe$|"
                        r"(^|/)(__pycache__|node_modules)$")


def repository_files():
    """The files a teacher's copy holds: those git tracks, and those it would
    (new, not ignored); without git or a checkout (an unpacked archive), the
    tree less .gitignore's build outputs."""
    if shutil.which("git"):
        listed = subprocess.run(["git", "-c", "safe.directory=*", "-C", ROOT, "ls-files", "--cached", "--others",
                                 "--exclude-standard", "-z"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if listed.returncode == 0:
            return [os.fsdecode(name) for name in listed.stdout.split(b"\0") if name]
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        relative = os.path.relpath(folder, ROOT)
        relative = "" if relative == "." else relative + "/"
        subfolders[:] = [d for d in subfolders if not NOT_COPIED.search(relative + d)]
        found += [relative + f for f in files if not NOT_COPIED.search(relative + f)]
    return found


def copy_repository(destination):
    """The repository's files as a teacher's copy holds them, as they are on disk."""
    for relative in repository_files():
        source = os.path.join(ROOT, relative)
        if not os.path.isfile(source):
            continue  # deleted in the working tree
        target = os.path.join(destination, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target)


def reference_submission(folder):
    os.makedirs(folder, exist_ok=True)
    chapter = os.path.join(ROOT, "chapters", "01_blocking_client")
    for name in ("chapter1.cpp", "connect.h"):
        shutil.copy(os.path.join(chapter, name), folder)


def broken_submission(folder):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "chapter1.cpp"), "w") as f:
        f.write("// A lab 1 that does not compile.\nint main() { return not_declared_anywhere; }\n")


def run_template(command, env, cwd):
    full = dict(os.environ, CXXFLAGS="-O0", **env)
    try:
        done = subprocess.run(command, cwd=cwd, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=280)
    except subprocess.TimeoutExpired:
        raise Failed("%s ran past 280 s" % " ".join(command))
    out = done.stdout.decode(errors="replace")
    expect(done.returncode == 0, "%s exit %d:\n%s" % (" ".join(command), done.returncode, out[-4000:]))
    return out


def read_results(path, out):
    expect(os.path.isfile(path), "no %s written; the run printed:\n%s" % (path, out[-4000:]))
    with open(path, encoding="utf-8") as f:
        return strict_json(f.read(), path)


def gradescope_run(options, submission):
    """Run run_autograder (with LAB=1, as a teacher sets it) in a fake
    /autograder; return (results.json, what it printed)."""
    need_tools(options)
    with tempfile.TemporaryDirectory() as autograder:
        copy_repository(os.path.join(autograder, "source"))
        submission(os.path.join(autograder, "submission"))
        script = open(os.path.join(ROOT, "docs", "grading", "gradescope", "run_autograder")).read()
        expect(script.count("\nLAB=3\n") == 1, "run_autograder has no line LAB=3 to set")
        with open(os.path.join(autograder, "run_autograder"), "w") as f:
            f.write(script.replace("\nLAB=3\n", "\nLAB=1\n"))
        out = run_template(["bash", os.path.join(autograder, "run_autograder")], {"AUTOGRADER_ROOT": autograder}, autograder)
        return read_results(os.path.join(autograder, "results", "results.json"), out), out


def prairielearn_run(options, submission):
    need_tools(options)
    with tempfile.TemporaryDirectory() as tmp:
        grade = os.path.join(tmp, "grade")
        course = os.path.join(grade, "serverFilesCourse", "socket-chapters")
        copy_repository(course)
        submission(os.path.join(grade, "student"))
        info = strict_json(open(os.path.join(ROOT, "docs", "grading", "prairielearn", "info.json")).read(), "info.json")
        entrypoint = info["externalGradingOptions"]["entrypoint"].split()
        expect(entrypoint[0].startswith("/grade/serverFilesCourse/socket-chapters/"), "entrypoint %r" % entrypoint)
        script = os.path.join(grade, entrypoint[0][len("/grade/"):])
        out = run_template(["bash", script, "1"], {"GRADE_ROOT": grade}, tmp)
        return read_results(os.path.join(grade, "results", "results.json"), out), out


@case("gradescope-full-marks")
def gradescope_full_marks(options):
    document, out = gradescope_run(options, reference_submission)
    check_gradescope(document)
    tests = document["tests"]
    expect(len(tests) == len(list_checks(1)), "%d tests for lab 1's %d checks" % (len(tests), len(list_checks(1))))
    expect(not [t for t in tests if t.get("status") == "failed"], "the reference chapter 1 failed:\n%s" % out[-4000:])
    expect(document["score"] == sum(t["max_score"] for t in tests) > 0,
           "score %r of %r" % (document["score"], sum(t["max_score"] for t in tests)))


@case("gradescope-build-fails")
def gradescope_build_fails(options):
    document, out = gradescope_run(options, broken_submission)
    check_gradescope(document)
    expect(document["score"] == 0, "score %r for a submission that does not compile" % document["score"])
    expect("not_declared_anywhere" in document["output"] and "error" in document["output"],
           "the compiler's message is not in the output: %r" % document["output"][:2000])


@case("gradescope-no-submission")
def gradescope_no_submission(options):
    document, _ = gradescope_run(options, lambda folder: os.makedirs(os.path.join(folder, "notes"), exist_ok=True))
    check_gradescope(document)
    expect(document["score"] == 0 and "no chapter1.cpp" in document["output"], "%r" % document)


@case("prairielearn-full-marks")
def prairielearn_full_marks(options):
    document, out = prairielearn_run(options, reference_submission)
    check_prairielearn(document)
    expect(document.get("gradable", True) and document["score"] == 1, "score %r:\n%s" % (document.get("score"), out[-4000:]))
    expect(len(document["tests"]) == len(list_checks(1)), "%d tests for lab 1" % len(document["tests"]))


@case("prairielearn-build-fails")
def prairielearn_build_fails(options):
    document, _ = prairielearn_run(options, broken_submission)
    check_prairielearn(document)
    expect(document["gradable"] is False, "a submission that does not compile was gradable: %r" % document)
    expect("not_declared_anywhere" in document["output"], "the compiler's message is not in the output: %r"
           % document["output"][:2000])


TAKES_OPTIONS = {"gradescope-full-marks", "gradescope-build-fails", "gradescope-no-submission",
                 "prairielearn-full-marks", "prairielearn-build-fails"}


def main():
    global ROOT
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=ROOT)
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--bin-dir", default=".")
    parser.add_argument("--suffix", default="")
    parser.add_argument("--emulator", default="")
    parser.add_argument("case", nargs="?")
    options = parser.parse_args()
    ROOT = os.path.abspath(options.root)
    if options.list:
        print("\n".join(sorted(CASES)))
        return 0
    if options.case not in CASES:
        print("no case %r (see --list)" % options.case)
        return 1
    args = (options,) if options.case in TAKES_OPTIONS else ()
    return run(options.case, CASES[options.case], *args)


if __name__ == "__main__":
    sys.exit(main())
