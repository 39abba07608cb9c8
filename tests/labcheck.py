#!/usr/bin/env python3
"""Grade a student's lab program: make check-labN.

    labcheck.py --lab 3 --program ./lab3 [--emulator wine]

runs chapter 3's checks against ./lab3 and prints one line per check, what
was expected and what was seen for each that failed, with the command to see
it yourself, and a score as the last line:

    lab3: 7 of 10 checks passed

Exit 0 when every check passed, 1 when any failed. Each check is one of the
end-to-end cases of tests/e2e.py, run with the student's program in place of
the chapter's: one set of cases grades the reference chapters in `make test`
and the students' programs here.

The same script proves the grader in CTest (`--list` names the cases):
every reference chapter passes its checks in full, every untouched starter
fails them, each typical student mistake (MISTAKES: a reference chapter
with one change, built by tests/CMakeLists.txt) is caught by the check meant
to catch it, and each correct program written another way (VARIANTS, built
the same way) passes them.
"""
import argparse
import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import e2e
from cases import Failed, Skipped, expect, registry, run
from lab_mistakes import BLIND_UNDER_WINE, MISTAKES, VARIANTS

# The checks of each lab, in order: what the check wants, and the e2e case
# that checks it. Chapter 2's cases run its deadline mode unless they say
# otherwise (e2e.BASE_ARGS).
CHECKS = {
    1: [
        ("offline: the built-in lab server's answer, byte for byte", "chapter1:hello"),
        ("a response in many small pieces (drip): recv until the end", "chapter1:drip"),
        ("a 16 MiB download, byte for byte", "chapter1:big"),
        ("a chunked response, read to its last chunk", "chapter1:chunked"),
        ("a response cut short is reported, exit 1", "chapter1:truncate"),
        ("a refused connection: connect's error, exit 1", "chapter1:refused"),
        ("a name that does not resolve: getaddrinfo's error, exit 1", "chapter1:unresolvable"),
        ("a silent server: recv gives up after --timeout", "chapter1:silent"),
        ("a reset connection: recv's error, exit 1", "chapter1:reset"),
        ("a connect that gets no answer gives up after --timeout", "chapter1:connect-timeout"),
        ("--trace shows each call: socket, connect, send, recv and close", "chapter1:trace"),
    ],
    2: [
        ("offline: all four modes fetch the answer, in order", "chapter2:all-modes"),
        ("nonblocking mode: recv fails with EAGAIN while nothing has come", "chapter2:nonblocking-mode-would-block"),
        ("timeout mode: SO_RCVTIMEO is set before the first recv", "chapter2:timeout-mode-sets-rcvtimeo"),
        ("deadline mode: poll with the time left, then recv", "chapter2:deadline-mode-polls"),
        ("a silent server is given up on after --timeout, in every mode", "chapter2:all-modes-silent"),
        ("a 16 MiB download, byte for byte", "chapter2:big"),
        ("a refused connection: connect's error, exit 1", "chapter2:refused"),
        ("a name that does not resolve: getaddrinfo's error, exit 1", "chapter2:unresolvable"),
        ("deadline mode: a connect that gets no answer gives up after --timeout", "chapter2:deadline:connect-timeout"),
    ],
    3: [
        ("offline: the built-in lab server's answer, byte for byte", "chapter3:hello"),
        ("a response in many small pieces (drip): recv until the end", "chapter3:drip"),
        ("a 16 MiB download, byte for byte", "chapter3:big"),
        ("a chunked response, read to its last chunk", "chapter3:chunked"),
        ("a silent server: the wait gives up after --timeout", "chapter3:silent"),
        ("a refused connection: connect's error, exit 1", "chapter3:refused"),
        ("a name that does not resolve: getaddrinfo's error, exit 1", "chapter3:unresolvable"),
        ("a connect that gets no answer gives up after --timeout", "chapter3:connect-timeout"),
        ("waiting costs almost no CPU: the thread sleeps in select", "chapter3:waits-without-spinning"),
        ("--trace shows select with a timeout, not a zero-timeout loop", "chapter3:trace-shows-select-timeout"),
        ("--trace shows the ending: shutdown(SHUT_WR), then close", "chapter3:trace-shows-shutdown-and-close"),
    ],
    4: [
        ("offline: the built-in lab server's answer, byte for byte", "chapter4:hello"),
        ("a 16 MiB download, byte for byte", "chapter4:big"),
        ("--close half: the server sees our FIN, and we still get the echo", "chapter4:close-half"),
        ("--close rd: recv after SHUT_RD returns at once", "chapter4:close-rd"),
        ("--close rdwr: shutdown(SHUT_RDWR), the server sees a FIN", "chapter4:close-rdwr"),
        ("--close linger0: the server sees a reset, not a FIN", "chapter4:close-linger0"),
        ("--close unread: closing with unread data resets", "chapter4:close-unread"),
        ("a refused connection: connect's error, exit 1", "chapter4:refused"),
        ("a silent server: recv gives up after --timeout", "chapter4:silent"),
    ],
    5: [
        ("offline, one connection: the built-in lab server's answer, byte for byte", "chapter5:hello"),
        ("six connections: one line each on stdout, every one ok", "chapter5:lines"),
        ("a 16 MiB download over one connection, byte for byte", "chapter5:big"),
        ("--output: three 1 MiB responses, one file each, byte for byte", "chapter5:output-dir"),
        ("every scenario at once, with poll: each connection ends as it would alone", "chapter5:every-scenario-poll"),
        ("every scenario at once, with select", "chapter5:every-scenario-select"),
        ("a slow peer does not hold up the others", "chapter5:slow-peer-does-not-hold-up-the-rest"),
        ("a refused port: connect's error on every connection's line, exit 1", "chapter5:refused-all"),
        ("a name that does not resolve: getaddrinfo's error, exit 1", "chapter5:unresolvable"),
        ("1,100 connections with poll, past FD_SETSIZE: all complete", "chapter5:beyond-fd-setsize-poll"),
        ("1,100 connections with select: the FD_SETSIZE wall, named, for those past it", "chapter5:beyond-fd-setsize-select"),
        ("--trace shows one poll for every connection in flight", "chapter5:trace-poll"),
    ],
}

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def register_cases():
    e2e.ROOT = ROOT
    for program in e2e.chapters():
        e2e.chapter_cases(program)
    e2e.chapter2_cases()
    e2e.chapter3_cases()
    e2e.chapter4_cases()
    e2e.chapter5_cases()


def indented(text, lines=14):
    shown = text.strip().splitlines()
    if len(shown) > lines:
        shown = shown[:lines] + ["..."]
    return "\n".join("      " + line for line in shown)


def run_check(lab, program, emulator, slack, case_name):
    """Run one check; return (outcome, what was expected and seen, the command)."""
    ctx = e2e.Context(os.path.dirname(os.path.abspath(program)), "", emulator, slack)
    ctx.programs = {"chapter%d" % lab: program}
    ctx.grace = 1  # a program that should have stopped is stopped 1 s past its bound
    try:
        e2e.CASES[case_name](ctx)
    except Skipped as reason:
        return "skipped", str(reason), None
    except Failed as failure:
        return "FAILED", str(failure), ctx.commands[-1] if ctx.commands else None
    return "ok", "", None


def grade(lab, program, emulator="", slack=0.0, at_once=min(4, os.cpu_count() or 1)):
    """Run lab's checks against program; print them; return (passed, counted).

    The checks run `at_once` at a time (each has its own servers and ports;
    four at most, and no more than the machine has CPUs) and are printed in
    order."""
    checks = CHECKS[lab]
    name = "lab%d" % lab
    if emulator:
        at_once = 1  # Wine's start-up is slow enough as it is: one check at a time
    print("%s: %d checks of %s (chapter %d's)" % (name, len(checks), program, lab), flush=True)
    passed = counted = 0
    with ThreadPoolExecutor(at_once) as pool:
        results = [pool.submit(run_check, lab, program, emulator, slack, case_name) for _, case_name in checks]
        for number, ((title, _), result) in enumerate(zip(checks, results), 1):
            outcome, seen, command = result.result()
            label = "check %d of %d: %s" % (number, len(checks), title)
            if outcome == "skipped":
                print("%s ... skipped here: %s" % (label, seen))
                continue
            counted += 1
            if outcome == "ok":
                passed += 1
                print("%s ... ok" % label, flush=True)
                continue
            print("%s ... FAILED" % label)
            print("    expected, and seen:\n" + indented(seen))
            if command:
                print("    see it yourself:  " + shlex.join(command), flush=True)
    print("%s: %d of %d checks passed" % (name, passed, counted))
    return passed, counted


# ------------------------------------------------------------ the grader, proven

PROOFS, proof = registry()


def program_path(options, name):
    return os.path.join(options.bin_dir, name + options.suffix)


def graded(options, lab, name):
    """Grade a built program; return (passed, counted, everything printed)."""
    command = [sys.executable, "-S", os.path.abspath(__file__), "--lab", str(lab),
               "--program", program_path(options, name), "--emulator", options.emulator,
               "--slack", str(options.slack)]
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    out = done.stdout.decode(errors="replace")
    print(out)
    last = out.strip().splitlines()[-1] if out.strip() else ""
    words = last.split()
    expect(len(words) == 6 and words[0] == "lab%d:" % lab and words[2] == "of" and words[4:] == ["checks", "passed"],
           "no score line at the end: %r" % last)
    passed, counted = int(words[1]), int(words[3])
    expect((done.returncode == 0) == (passed == counted),
           "exit %d with %d of %d passed" % (done.returncode, passed, counted))
    return passed, counted, out


def define_proofs(options):
    for lab in CHECKS:
        def reference(lab=lab):
            passed, counted, _ = graded(options, lab, "chapter%d" % lab)
            expect(passed == counted, "the reference chapter %d failed %d of its checks" % (lab, counted - passed))
        proof("reference-%d-passes" % lab)(reference)

        def starter(lab=lab):
            alone = subprocess.run(e2e.Context("", "", options.emulator).command(program_path(options, "lab%d" % lab), ["--quiet"]),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            err = alone.stderr.decode(errors="replace").strip()
            expect(alone.returncode == 1 and err.startswith("chapter%d: TODO " % lab) and "is not done yet: " in err,
                   "the untouched starter should stop at its first TODO, exit 1; exit %d, stderr %r" % (alone.returncode, err))
            passed, counted, out = graded(options, lab, "lab%d" % lab)
            expect(passed < counted, "the untouched starter passed every check")
            expect("is not done yet" in out, "no failed check shows the TODO that stopped the program")
        proof("starter-%d-fails" % lab)(starter)

    for name, (lab, _, _, case_name) in MISTAKES.items():
        def mistake(name=name, lab=lab, case_name=case_name):
            if options.emulator and name in BLIND_UNDER_WINE:
                raise Skipped("under Wine the check accepts a FIN for a reset (see BLIND_UNDER_WINE)")
            _, _, out = graded(options, lab, "mistake-" + name)
            number = [c for _, c in CHECKS[lab]].index(case_name) + 1
            expect("check %d of %d: " % (number, len(CHECKS[lab])) in out and
                   any(l.startswith("check %d of" % number) and l.endswith("FAILED") for l in out.splitlines()),
                   "check %d (%s) did not catch the mistake" % (number, case_name))
        proof("mistake-" + name)(mistake)

    for name, (lab, _, _, case_names) in VARIANTS.items():
        def variant(name=name, lab=lab, case_names=case_names):
            _, _, out = graded(options, lab, "variant-" + name)
            for case_name in case_names:
                number = [c for _, c in CHECKS[lab]].index(case_name) + 1
                expect(any(l.startswith("check %d of %d: " % (number, len(CHECKS[lab]))) and l.endswith(" ok")
                           for l in out.splitlines()),
                       "check %d (%s) failed a correct program" % (number, case_name))
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lab", type=int, choices=sorted(CHECKS))
    parser.add_argument("--program")
    parser.add_argument("--emulator", default="")
    parser.add_argument("--slack", type=float, default=0.0)
    parser.add_argument("--list", action="store_true", help="the CTest cases that prove the grader")
    parser.add_argument("--list-mistakes", action="store_true")
    parser.add_argument("--write-mistake", nargs=2, metavar=("NAME", "PATH"))
    parser.add_argument("--list-variants", action="store_true")
    parser.add_argument("--write-variant", nargs=2, metavar=("NAME", "PATH"))
    parser.add_argument("--root")
    parser.add_argument("--bin-dir", default=".")
    parser.add_argument("--suffix", default="")
    parser.add_argument("case", nargs="?")
    options = parser.parse_args()
    if options.list_mistakes:
        print("\n".join(sorted(MISTAKES)))
        return 0
    if options.list_variants:
        print("\n".join(sorted(VARIANTS)))
        return 0
    if options.write_mistake:
        write_edited("mistake", *options.write_mistake)
        return 0
    if options.write_variant:
        write_edited("variant", *options.write_variant)
        return 0
    register_cases()
    if options.lab:
        program = options.program or "./lab%d" % options.lab
        if not os.path.exists(program):
            print("labcheck: no program %s here (build it first: make lab%d builds ./lab%d)" % (program, options.lab, options.lab))
            return 2
        passed, counted = grade(options.lab, program, options.emulator, options.slack)
        return 0 if passed == counted else 1
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
