#!/usr/bin/env python3
"""What the Python twin's response reader (ResponseReader in
chapters/03_select/select_client.py) says of each raw response in a set of
files: one line per file,

    NAME VERDICT BODYLEN | WHY

in the words of response_verdict.cpp (complete, truncated, malformed,
too-long, empty; BODYLEN for complete, "-" otherwise), so that compare.py
can hold the twin to our C++ reader on every response.

Each file is fed to take() whole, then at_eof() (the server's FIN). With
--split, the same bytes are also fed in pieces of 1, 2, 3, ... 13 bytes
over and over (recv may cut a response anywhere), and the verdict must be
the same; a difference is printed on stderr and the exit status is 1.

Usage: python3 twin_verdict.py [--split] FILE_OR_DIRECTORY...
Standard library only; runs under `python -S`.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "chapters", "03_select"))
from select_client import Failure, ResponseReader  # noqa: E402 (after the path)
from cpython_verdict import files_in  # noqa: E402 (a file or a folder of files, in name order)

# The start of a Failure's text -> the verdict, as response_verdict.cpp maps it.
VERDICTS = [
    ("response truncated:", "truncated"),
    ("response malformed:", "malformed"),
    ("response too long:", "too-long"),
    ("recv: the server closed the connection without answering", "empty"),
]


def judge(data, pieces=None):
    """(verdict, body length or "-", why) for one response's bytes, fed whole
    or in pieces of the sizes `pieces` gives, round and round."""
    reader = ResponseReader()
    try:
        if pieces is None:
            reader.take(data)
        else:
            at, turn = 0, 0
            while at < len(data):
                size = pieces[turn % len(pieces)]
                reader.take(data[at:at + size])
                at, turn = at + size, turn + 1
        reader.at_eof()
    except Failure as failure:
        text = str(failure)
        verdict = next((v for start, v in VERDICTS if text.startswith(start)), "unexpected-failure")
        return verdict, "-", text
    if not reader.complete():
        return "not-complete-after-eof", "-", reader.how_it_ended()
    return "complete", str(reader.body_bytes), reader.how_it_ended()


def main():
    args = sys.argv[1:]
    split = "--split" in args
    files = files_in([arg for arg in args if arg != "--split"])
    if not files:
        sys.stderr.write("usage: twin_verdict.py [--split] FILE_OR_DIRECTORY...\n")
        return 2
    status = 0
    lines = []
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        name = os.path.basename(path)
        whole = judge(data)
        if split:
            in_pieces = judge(data, list(range(1, 14)))
            if in_pieces[:2] != whole[:2]:
                sys.stderr.write("twin_verdict: %s: fed whole: %s %s (%s); in pieces: %s %s (%s)\n"
                                 % ((name,) + whole + in_pieces))
                status = 1
        lines.append("%s %s %s | %s" % (name, whole[0], whole[1], whole[2].replace("\n", " ")))
    sys.stdout.write("\n".join(lines) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
