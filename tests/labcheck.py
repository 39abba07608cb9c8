#!/usr/bin/env python3
"""Grade a student's lab program: make check-labN.

    labcheck.py --lab 3 --program ./lab3 [--emulator wine]
                [--format text|gradescope|prairielearn|autolab|junit] [--results FILE]
                [--check N] [--points NAME=P,...] [--list-checks]

runs lab 3's checks (tests/lab_checks.py) against ./lab3 and prints one line
per check, what was expected and what was seen for each that failed, with a
command that shows it again, and the score as the last line:

    lab3: 7 of 10 checks passed

Exit 0 when every check that ran passed, 1 when any failed, 2 when there is
nothing to grade (no program, or one older than its source). --check N runs
check N alone (GitHub Classroom runs one step per check); --format writes the
result the way a class platform reads it (tests/grade_formats.py), to FILE
or to stdout; --points weighs checks (each is worth 1 by default).

The same script proves the grader in CTest (`--list` names the cases):
every reference chapter passes its checks in full, every untouched starter
fails them, each typical mistake (tests/lab_mistakes.py: a reference chapter
with one change, built by tests/CMakeLists.txt) fails the check named for
it, and each correct program written another way passes every check.
"""
import argparse
import glob
import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import e2e
import grade_formats
import lab_checks
from cases import Failed, Skipped, expect, registry, run
from lab_checks import CHECKS
from lab_mistakes import BLIND_UNDER_WINE, MISTAKES, VARIANT_UNSEEN_UNDER_WINE, VARIANTS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def register_cases():
    e2e.ROOT = ROOT
    for program in e2e.chapters():
        e2e.chapter_cases(program)
    e2e.chapter2_cases()
    e2e.chapter3_cases()
    e2e.chapter4_cases()
    e2e.many_connections_cases("chapter5")
    e2e.many_connections_cases("chapter6")
    e2e.chapter6_cases()


def indented(text, lines=16):
    shown = text.strip().splitlines()
    if len(shown) > lines:
        shown = shown[:lines] + ["..."]
    return "\n".join("      " + line for line in shown)


def run_check(lab, program, emulator, slack, function):
    """Run one check; return (outcome, what the student should read)."""
    g = lab_checks.Grading(lab, program, emulator, slack)
    try:
        function(g)
    except Skipped as reason:
        return "skipped", str(reason)
    except Failed as failure:
        out = "expected, and seen:\n" + indented(str(failure))
        if g.shown:
            out += "\nsee it yourself:  " + shlex.join(g.shown)
        return "failed", out
    except (OSError, RuntimeError) as trouble:  # no labserver beside the program, no strace, ...
        return "failed", "the check could not run: %s" % trouble
    return "passed", ""


def grade(lab, program, emulator="", slack=0.0, numbers=None, points=None, at_once=min(4, os.cpu_count() or 1)):
    """Run lab's checks (those numbered in `numbers`, or all) against
    program; return the results (tests/grade_formats.py describes them).
    The checks run `at_once` at a time (each has its own servers and ports),
    one at a time under an emulator, whose start-up is slow enough."""
    points = points or {}
    chosen = [(number, check) for number, check in enumerate(CHECKS[lab], 1) if not numbers or number in numbers]
    with ThreadPoolExecutor(1 if emulator else at_once) as pool:
        futures = [pool.submit(run_check, lab, program, emulator, slack, function) for _, (_, _, function) in chosen]
        checks = []
        for (number, (name, title, _)), future in zip(chosen, futures):
            outcome, output = future.result()
            checks.append({"number": number, "name": name, "title": title, "points": points.get(name, 1.0),
                           "outcome": outcome, "output": output})
    return {"lab": lab, "program": program, "checks": checks}


def text_report(results):
    """The lines a student reads: one per check, the failures explained."""
    lab, total = results["lab"], len(CHECKS[results["lab"]])
    lines = ["lab%d: %d checks of %s (chapter %d's)" % (lab, total, results["program"], lab)]
    for check in results["checks"]:
        label = "check %d of %d: %s" % (check["number"], total, check["title"])
        if check["outcome"] == "skipped":
            lines.append("%s ... skipped here: %s" % (label, check["output"]))
        elif check["outcome"] == "passed":
            lines.append("%s ... ok" % label)
        else:
            lines.append("%s ... FAILED" % label)
            lines.extend("    " + line for line in check["output"].splitlines())
    counted = [c for c in results["checks"] if c["outcome"] != "skipped"]
    passed = [c for c in counted if c["outcome"] == "passed"]
    score = "lab%d: %d of %d checks passed" % (lab, len(passed), len(counted))
    earned, maximum = grade_formats.score(results)
    if any(c["points"] != 1 for c in results["checks"]):
        score += " (%g of %g points)" % (earned, maximum)
    return "\n".join(lines + [score])


def stale(program, lab):
    """Why program may not be graded: a starter's build older than its
    source (the source changed, and did not build again), or None."""
    if not re.fullmatch(r"lab%d(\.exe)?" % lab, os.path.basename(program)):
        return None
    folder = os.path.dirname(os.path.abspath(program))
    sources = [p for pattern in ("chapters/%02d_*/lab/*.cpp", "chapters/%02d_*/lab/*.h")
               for p in glob.glob(os.path.join(folder, pattern % lab))]
    newer = [p for p in sources if os.path.getmtime(p) > os.path.getmtime(program)]
    if newer:
        return ("%s is older than %s, changed since it was built: build it again (make lab%d) before grading"
                % (program, os.path.relpath(newer[0]), lab))
    return None


# ------------------------------------------------------------ the grader, proven

PROOFS, proof = registry()


def program_path(options, name):
    return os.path.join(options.bin_dir, name + options.suffix)


def check_number(lab, name):
    return [n for n, _, _ in CHECKS[lab]].index(name) + 1


def graded(options, lab, name, check=None):
    """Grade a built program (check number `check` alone, or all); return
    (passed, counted, everything printed)."""
    command = [sys.executable, "-S", os.path.abspath(__file__), "--lab", str(lab),
               "--program", program_path(options, name), "--emulator", options.emulator,
               "--slack", str(options.slack)] + (["--check", str(check)] if check else [])
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    out = done.stdout.decode(errors="replace")
    print(out)
    last = out.strip().splitlines()[-1] if out.strip() else ""
    score = re.fullmatch(r"lab%d: (\d+) of (\d+) checks passed" % lab, last)
    expect(score, "no score line at the end: %r" % last)
    passed, counted = int(score.group(1)), int(score.group(2))
    expect((done.returncode == 0) == (passed == counted),
           "exit %d with %d of %d passed" % (done.returncode, passed, counted))
    return passed, counted, out


def verdict(out, lab, number):
    """The word that ends check number's line: ok, FAILED, or the skip."""
    head = "check %d of %d: " % (number, len(CHECKS[lab]))
    line = next((l for l in out.splitlines() if l.startswith(head)), "")
    expect(line, "the grader printed no line for check %d" % number)
    return "ok" if line.endswith(" ... ok") else "FAILED" if line.endswith(" ... FAILED") else "skipped"


def mistakes_table():
    """docs/teaching.md's table of the mistakes and correct variants the
    suite grades, made from tests/lab_mistakes.py (`--mistakes-table`)."""
    rows = ["| program | lab | what the student did | the grader's verdict |", "|---|---|---|---|"]
    def cell(text):
        return text.replace("|", "\\|")
    for name, (lab, what, _, check_name) in sorted(MISTAKES.items(), key=lambda item: (item[1][0], item[0])):
        verdict = "check %d fails (`%s`)" % (check_number(lab, check_name), check_name)
        if name in BLIND_UNDER_WINE:
            verdict += "; not under Wine"
        rows.append("| `mistake-%s` | %d | %s | %s |" % (name, lab, cell(what), verdict))
    for name, (lab, what, _) in sorted(VARIANTS.items(), key=lambda item: (item[1][0], item[0])):
        verdict = "every check passes"
        if name in VARIANT_UNSEEN_UNDER_WINE:
            verdict += "; under Wine, checks %s cannot see it" % ", ".join(
                str(check_number(lab, c)) for c in sorted(VARIANT_UNSEEN_UNDER_WINE[name], key=lambda c: check_number(lab, c)))
        rows.append("| `variant-%s` | %d | %s | %s |" % (name, lab, cell(what), verdict))
    return "\n".join(rows)


# How an untouched starter is run alone, to see it stop at its first TODO.
# Chapter 6's first step is in each connection's own work: with several
# connections it ends each one (its line says so) and the run goes on; with
# one, that connection's failure is the run's, reported as every chapter
# reports one ("chapter6: TODO 1 is not done yet: ...").
ALONE = {6: ["--connections", "1"]}


def define_proofs(options):
    @proof("mistakes-table-current")
    def table_current():
        with open(os.path.join(ROOT, "docs", "teaching.md")) as f:
            text = f.read()
        expect(mistakes_table() in text, "docs/teaching.md's table of mistakes and variants is not what "
               "tests/lab_mistakes.py holds: paste `python3 tests/labcheck.py --mistakes-table` in its place")

    for lab in CHECKS:
        def reference(lab=lab):
            passed, counted, _ = graded(options, lab, "chapter%d" % lab)
            expect(passed == counted, "the reference chapter %d failed %d of its checks" % (lab, counted - passed))
        proof("reference-%d-passes" % lab)(reference)

        def starter(lab=lab):
            args = ["--quiet"] + ALONE.get(lab, [])
            alone = subprocess.run(e2e.Context("", "", options.emulator).command(program_path(options, "lab%d" % lab), args),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            err = alone.stderr.decode(errors="replace").strip()
            expect(alone.returncode == 1 and err.startswith("chapter%d: TODO " % lab) and "is not done yet: " in err,
                   "the untouched starter should stop at its first TODO, exit 1; exit %d, stderr %r" % (alone.returncode, err))
            passed, counted, out = graded(options, lab, "lab%d" % lab)
            expect(passed < counted, "the untouched starter passed every check")
            expect("is not done yet" in out, "no failed check shows the TODO that stopped the program")
        proof("starter-%d-fails" % lab)(starter)

    for name, (lab, _, _, check_name) in MISTAKES.items():
        def mistake(name=name, lab=lab, check_name=check_name):
            if options.emulator and name in BLIND_UNDER_WINE:
                raise Skipped("under Wine: " + BLIND_UNDER_WINE[name])
            number = check_number(lab, check_name)
            _, _, out = graded(options, lab, "mistake-" + name, number)
            expect(verdict(out, lab, number) == "FAILED", "check %d (%s) did not catch the mistake" % (number, check_name))
        proof("mistake-" + name)(mistake)

    for name, (lab, _, _) in VARIANTS.items():
        def variant(name=name, lab=lab):
            passed, counted, out = graded(options, lab, "variant-" + name)
            unseen = VARIANT_UNSEEN_UNDER_WINE.get(name, set()) if options.emulator else set()
            failed = [n for n in range(1, len(CHECKS[lab]) + 1)
                      if verdict(out, lab, n) == "FAILED" and CHECKS[lab][n - 1][0] not in unseen]
            expect(not failed, "checks %s failed a correct program" % failed)
        proof("variant-" + name)(variant)


def rooted_includes(text, folder):
    """The edited copy is built in the build folder, not beside the chapter: a
    quoted include of a file found from the chapter's folder (chapter 1's
    "connect.h", chapter 4's "../01_blocking_client/connect.h") gets its full
    path. The others (common/'s headers) are found on the include path."""
    def rooted(match):
        path = os.path.normpath(os.path.join(folder, match.group(2)))
        if not os.path.isfile(path):
            return match.group(0)
        return match.group(1) + os.path.abspath(path).replace(os.sep, "/") + '"'
    return re.sub(r'(?m)^(#include ")([^"]+)"', rooted, text)


def write_edited(kind, name, path):
    """Write the reference chapter with the edits of MISTAKES[name] (kind
    "mistake") or VARIANTS[name] (kind "variant") to path."""
    lab, what, edits = (MISTAKES if kind == "mistake" else VARIANTS)[name][:3]
    source = [os.path.join(ROOT, "chapters", d, "chapter%d.cpp" % lab)
              for d in os.listdir(os.path.join(ROOT, "chapters")) if d.startswith("%02d_" % lab)][0]
    text = open(source).read()
    for find, replace in edits:
        if text.count(find) != 1:
            raise SystemExit("%s %s: %r is not in %s exactly once" % (kind, name, find, source))
        text = text.replace(find, replace)
    text = rooted_includes(text, os.path.dirname(source))
    title = "A typical mistake" if kind == "mistake" else "A correct variant"
    with open(path, "w") as f:
        f.write("// %s, for tests/labcheck.py: %s.\n" % (title, what) + text)


def parse_points(text, lab):
    """--points hello=2,big=0.5 -> {"hello": 2.0, "big": 0.5}."""
    points = {}
    names = [n for n, _, _ in CHECKS[lab]]
    for item in filter(None, (text or "").split(",")):
        name, _, value = item.partition("=")
        if name not in names or not re.fullmatch(r"\d+(\.\d+)?", value):
            raise SystemExit("labcheck: --points: %r is not CHECK=POINTS with a check of lab %d (%s)"
                             % (item, lab, ", ".join(names)))
        points[name] = float(value)
    return points


def grade_and_report(options):
    """make check-labN: grade, print, write the results; return the exit status."""
    lab, checks = options.lab, CHECKS[options.lab]
    if options.list_checks:
        points = parse_points(options.points, lab)
        for number, (name, title, _) in enumerate(checks, 1):
            print("%d\t%s\t%g\t%s" % (number, name, points.get(name, 1.0), title))
        return 0
    program = options.program or "./lab%d" % lab
    if not os.path.exists(program):
        print("labcheck: no program %s here (build it first: make lab%d builds ./lab%d)" % (program, lab, lab))
        return 2
    why = stale(program, lab)
    if why:
        print("labcheck: " + why)
        return 2
    if options.check is not None and not 1 <= options.check <= len(checks):
        print("labcheck: --check %d: lab %d has checks 1 to %d" % (options.check, lab, len(checks)))
        return 2
    results = grade(lab, program, options.emulator, options.slack,
                    [options.check] if options.check else None, parse_points(options.points, lab))
    text = text_report(results)
    rendered = grade_formats.render(options.format, results) if options.format != "text" else None
    if options.results:
        with open(options.results, "w") as f:
            f.write(rendered if rendered is not None else text + "\n")
    if rendered is None or options.results or options.format == "autolab":
        print(text)
    if rendered is not None and not options.results:
        print(rendered.rstrip("\n"))
    return 1 if any(c["outcome"] == "failed" for c in results["checks"]) else 0


def main():
    parser = argparse.ArgumentParser(description="Grade a lab program; prove the grader (see the top of this file).")
    parser.add_argument("--lab", type=int, choices=sorted(CHECKS))
    parser.add_argument("--program")
    parser.add_argument("--emulator", default="")
    parser.add_argument("--slack", type=float, default=0.0)
    parser.add_argument("--format", default="text", choices=["text"] + list(grade_formats.FORMATS))
    parser.add_argument("--results", metavar="FILE", help="write the results here, in --format")
    parser.add_argument("--check", type=int, metavar="N", help="run check N alone")
    parser.add_argument("--points", metavar="CHECK=POINTS,...", help="weigh checks (default 1 each)")
    parser.add_argument("--list-checks", action="store_true", help="NUMBER NAME POINTS TITLE, one line per check")
    parser.add_argument("--list", action="store_true", help="the CTest cases that prove the grader")
    parser.add_argument("--list-mistakes", action="store_true")
    parser.add_argument("--write-mistake", nargs=2, metavar=("NAME", "PATH"))
    parser.add_argument("--list-variants", action="store_true")
    parser.add_argument("--with-lab", action="store_true", help="with --list-mistakes or --list-variants: NAME LAB")
    parser.add_argument("--mistakes-table", action="store_true", help="docs/teaching.md's table of them")
    parser.add_argument("--write-variant", nargs=2, metavar=("NAME", "PATH"))
    parser.add_argument("--root")
    parser.add_argument("--bin-dir", default=".")
    parser.add_argument("--suffix", default="")
    parser.add_argument("case", nargs="?")
    options = parser.parse_args()
    if options.list_mistakes or options.list_variants:
        programs = MISTAKES if options.list_mistakes else VARIANTS
        print("\n".join(name + (" %d" % programs[name][0] if options.with_lab else "") for name in sorted(programs)))
        return 0
    if options.mistakes_table:
        print(mistakes_table())
        return 0
    if options.write_mistake:
        write_edited("mistake", *options.write_mistake)
        return 0
    if options.write_variant:
        write_edited("variant", *options.write_variant)
        return 0
    register_cases()
    if options.lab:
        return grade_and_report(options)
    define_proofs(options)
    if options.list:
        print("\n".join(sorted(PROOFS)))
        return 0
    if options.case not in PROOFS:
        print("no case %r (see --list)" % options.case)
        return 1
    return run(options.case, PROOFS[options.case])


if __name__ == "__main__":
    sys.exit(main())
