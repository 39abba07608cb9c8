#!/usr/bin/env python3
"""What CPython's http.client makes of each raw response in a set of files:
one line per file,

    NAME VERDICT BODYLEN DETAIL

in the words of tests/differential/response_verdict.cpp (complete,
truncated, malformed, empty). BODYLEN is the body's length for complete,
"-" otherwise; DETAIL is the exception's class name, or "-".

No network: http.client.HTTPResponse reads from sock.makefile("rb"), so a
stand-in socket whose makefile() returns the file's bytes in an io.BytesIO
is all it needs. A BytesIO at its end reads b"", as a socket does after the
server's FIN. Then, as urllib does: begin() (status line and headers), then
read() (the whole body, by Content-Length, chunks, or until the end).

How CPython's outcome maps to a verdict:
    no exception                          -> complete, len(body)
    IncompleteRead                        -> truncated
    RemoteDisconnected (no status line    -> empty when there were no bytes,
      at all: b"" where it was expected)     truncated otherwise
    any other HTTPException (BadStatusLine,
      LineTooLong, ...), ValueError, or
      OverflowError (a length too large
      for a read() count)                 -> malformed
Anything else is printed as "error" with its class, for compare.py to show.

What CPython itself does, and these lines do not change: it skips any
number of "100 Continue" responses in begin(), but returns any other 1xx
(103 Early Hints, 101) as the response, with no body; the final response
after it stays unread.

Usage: python3 cpython_verdict.py FILE_OR_DIRECTORY...
Standard library only; runs under `python -S`.
"""
import http.client
import io
import os
import sys


class RecordedSocket:
    """Just enough of a socket for http.client.HTTPResponse: makefile()."""

    def __init__(self, data):
        self.data = data

    def makefile(self, mode, *args, **kwargs):
        return io.BytesIO(self.data)


def judge(data):
    """(verdict, body length or "-", detail) for one response's bytes."""
    response = http.client.HTTPResponse(RecordedSocket(data), method="GET")
    try:
        response.begin()
        body = response.read()
    except http.client.IncompleteRead:
        return "truncated", "-", "IncompleteRead"
    except http.client.RemoteDisconnected:
        return ("empty" if not data else "truncated"), "-", "RemoteDisconnected"
    except (http.client.HTTPException, ValueError, OverflowError) as error:
        return "malformed", "-", type(error).__name__
    except Exception as error:  # noqa: BLE001 - shown by compare.py, never hidden
        return "error", "-", type(error).__name__
    return "complete", str(len(body)), "-"


def files_in(args):
    files = []
    for arg in args:
        if os.path.isdir(arg):
            files += [os.path.join(arg, name) for name in sorted(os.listdir(arg))]
        else:
            files.append(arg)
    return files


def main():
    files = files_in(sys.argv[1:])
    if not files:
        sys.stderr.write("usage: cpython_verdict.py FILE_OR_DIRECTORY...\n")
        return 2
    lines = []
    for path in files:
        with open(path, "rb") as f:
            verdict, body_length, detail = judge(f.read())
        lines.append("%s %s %s %s" % (os.path.basename(path), verdict, body_length, detail))
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
