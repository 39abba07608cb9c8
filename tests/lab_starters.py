#!/usr/bin/env python3
"""The lab starters: each chapter program with its socket work taken out.

In a chapter's source, a line

    // lab step 3: send it all; when send() would block, wait until writable

marks where a student's step begins. The step runs to a line

    // lab end

or, without one, to the end of the block the marker is in. In the starter,
chapters/NN_name/lab/chapterN.cpp, the step's code is replaced by

    // TODO 3: send it all; when send() would block, wait until writable
    chapter::todo(3, "send it all; when send() would block, wait until writable");

which throws "TODO 3 is not done yet: ..." until the student writes the
step: the program stops there (exit 1), or, inside chapter 5's event loop,
that connection fails with it and the others go on. Everything else (the command line, the narration,
the comments, the lab server) stays as in the chapter.

A header beside the chapter with steps of its own (chapter 1's connect.h,
which chapter 4 includes too) gets a starter beside the chapter's,
lab/connect.h, which lab/chapterN.cpp then includes; the steps of a chapter
count 1, 2, 3... over its files together. A quoted include of a file
further away ("../01_blocking_client/connect.h") gets one more "../" in the
starter, one folder down, so it names the same file.

    lab_starters.py --root ROOT           fail if a starter is not what its chapter makes
    lab_starters.py --root ROOT --write   write the starters
"""
import argparse
import glob
import os
import re
import sys

MARKER = re.compile(r"^(\s*)// lab step (\d+): (.+)$")
END = re.compile(r"^\s*// lab end$")

HEADER = """\
// Lab {n} starter: chapter {n} with its socket work taken out (see ../README.md).
//
// Write the TODO steps, in order, where they are; leave the rest of the file
// as it is. Build and grade from the repository's root folder:
//
//   make lab{n} && ./lab{n}       runs, and stops at the first step not written
//   make check-lab{n}             numbered checks of your program, and a score
//
// A run stops at the first unwritten step it reaches, which is not always the
// lowest number. {order}
//
// (Made from ../chapter{n}.cpp by tests/lab_starters.py --write.)
//
"""

# The order a run reaches each lab's steps (found by running each chapter with
# a line printed at each "lab step" marker), for the header above.
RUN_ORDER = {
    "1": "This lab's runs reach them in the order 1, 2, 3, 4.",
    "2": "A run reaches step 2, then 3, then 1 (step 1's poll is\n"
         "// reached in nonblocking and deadline modes only).",
    "3": "A run reaches them in the order 2, 1, 3, 4, 5 (the connect\n"
         "// of step 2 waits with step 1's select).",
    "4": "The default ending (--close none) reaches step 1 alone; each\n"
         "// other ending reaches its own step, then 1: half 2, rd 3, rdwr 4,\n"
         "// linger0 5, unread 6.",
    "5": "A run reaches them in the order 5, 1, 2, 3 (with --wait\n"
         "// select: 4, 1, 2, 3). In the event loop a step not written ends only the\n"
         "// connection that reached it.",
    "6": "A run reaches them in the order 1, 4, 2 (3 only when a\n"
         "// deadline passes). A step not written in a connection's callback ends\n"
         "// only that connection; step 4 is the loop's own turn.",
}

HEADER_OF_HEADER = """\
// Lab {n} starter: chapter {n}'s {name} with its socket work taken out (see ../README.md).
//
// lab/chapter{n}.cpp includes this file: its TODO is one of lab {n}'s steps,
// written in order with the others. Leave the rest of the file as it is.
//
// (Made from ../{name} by tests/lab_starters.py --write.)
//
"""
FARTHER_INCLUDE = re.compile(r'^(#include ")(\.\./)', re.M)


def starter(source, number, name=None):
    """The starter of one file: (text, its step numbers)."""
    lines = source.splitlines()
    out, i, steps = [], 0, []
    while i < len(lines):
        match = MARKER.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        indent, step, what = match.group(1), int(match.group(2)), match.group(3)
        steps.append(step)
        block_end = indent[:-4] + "}"
        i += 1
        while i < len(lines) and not END.match(lines[i]) and not lines[i].startswith(block_end):
            i += 1
        if i == len(lines):
            raise SystemExit("step %d runs to the end of the file" % step)
        if END.match(lines[i]):
            i += 1
        text = what.rstrip(".")
        out.append("%s// TODO %d: %s." % (indent, step, text))
        out.append('%schapter::todo(%d, "%s");' % (indent, step, text.replace("\\", "\\\\").replace('"', '\\"')))
    if steps != sorted(steps):
        raise SystemExit("chapter %s: steps %s, expected them in order" % (number, steps))
    # The chapter's own opening comment follows the lab's header.
    header = HEADER.format(n=number, order=RUN_ORDER[number]) if name is None else HEADER_OF_HEADER.format(n=number, name=name)
    return FARTHER_INCLUDE.sub(r"\1../\2", header + "\n".join(out) + "\n"), steps


def pairs(root):
    for source in sorted(glob.glob(os.path.join(root, "chapters", "*", "chapter*.cpp"))):
        number = re.search(r"chapter(\d+)\.cpp$", source).group(1)
        folder = os.path.dirname(source)
        files = [(source, None)] + [(h, os.path.basename(h)) for h in sorted(glob.glob(os.path.join(folder, "*.h")))]
        made, steps = [], []
        for path, name in files:
            with open(path) as f:
                text = f.read()
            if re.search(r"(?m)^\s*// lab step", text):
                made_text, its_steps = starter(text, number, name)
                made.append((os.path.join(folder, "lab", os.path.basename(path)), made_text))
                steps += its_steps
        if sorted(steps) != list(range(1, len(steps) + 1)):
            raise SystemExit("chapter %s: steps %s, expected 1, 2, 3..." % (number, sorted(steps)))
        yield from made


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--write", action="store_true")
    options = parser.parse_args()
    stale = []
    for path, text in pairs(options.root):
        current = open(path).read() if os.path.exists(path) else None
        if current == text:
            continue
        if options.write:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
            print("wrote " + os.path.relpath(path, options.root))
        else:
            stale.append(os.path.relpath(path, options.root))
    if stale:
        print("FAIL lab-starters-current: not what the chapters make (python3 tests/lab_starters.py --write): "
              + ", ".join(stale))
        return 1
    if not options.write:
        print("PASS lab-starters-current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
