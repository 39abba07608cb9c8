"""The checks of each lab (tests/labcheck.py runs them): what a correct
program does, judged from outside it.

A check runs the student's program on loopback and looks at what it did: the
bytes on stdout, the exit status, how long it took, and on Linux the system
calls it made, as strace sees them (tests/see_it.py), whatever the program
prints. It never asks for our wording: where it needs the error line, it
asks only that it names the call that failed. Where strace cannot run (under
Wine, or not installed), the checks that watch calls read the program's own
--trace lines instead; those see only the calls made through the traced
wrappers (docs/teaching.md lists which checks are weaker there).

Each check is (name, title, function); the function takes a Grading and
raises Failed (what was expected, and what was seen) or Skipped (why it does
not apply here).
"""
import os
import re
import subprocess
import sys
import tempfile
import time

import e2e
import see_it
from cases import Failed, Skipped, expect
from e2e import big_response, chunked_hello_response, hello_response

# How the student runs tests/see_it.py: from the repository's root, as make does.
SEE_IT = "tests/see_it.py" if os.path.isfile(os.path.join("tests", "see_it.py")) else \
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "see_it.py")


class Grading:
    """One check's run of the student's program."""

    def __init__(self, lab, program, emulator="", slack=0.0):
        self.lab, self.program = lab, program
        self.emulator = [e for e in emulator.split(",") if e]
        # Extra seconds on every time bound: Wine's start-up, or a sanitizer build.
        self.slack = 4.0 if self.emulator else slack
        self.labserver = see_it.labserver_beside(program)
        self.strace = see_it.have_strace() and not self.emulator
        self.shown = None  # the command that shows the last run, for the student

    def run(self, args, bound, server=None, watch=None, log=None, short_send=None):
        """Run the program with args, stopped if it runs past bound seconds
        (plus slack and a second of grace). server: a see_it server (PORT in
        args is its port). watch: the calls to observe (names for strace's
        -e); the Run gets .calls, the calls on sockets, in order. log: a file
        for the lab server's log. short_send: every send() takes at most this
        many bytes (tests/short_send.c)."""
        args = list(args)
        see, prefix, trace_file = [], [], None
        if server:
            see += ["--server", server]
        if short_send:
            see += ["--short-send", str(short_send)]
        if watch is not None:
            if self.strace:
                handle, trace_file = tempfile.mkstemp(prefix="labcheck-strace-")
                os.close(handle)
                prefix = see_it.strace_prefix(trace_file)
                see += ["--strace", ",".join(watch)]
            else:
                args.append("--trace")
        env = see_it.run_env(watch is not None and self.strace, short_send)
        shown = [self.program] + args
        self.shown = (["python3", SEE_IT] + see + ["--"] if see else []) + shown
        stop = None
        try:
            if server:
                port, stop = see_it.start_server(server, self.labserver, self.emulator,
                                                  log if log is not None else subprocess.DEVNULL)
                args = [str(port) if a == "PORT" else a for a in args]
            start = time.monotonic()
            try:
                done = subprocess.run(prefix + self.emulator + [self.program] + args, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=bound + self.slack + 1, env=env)
            except subprocess.TimeoutExpired as stopped:
                raise Failed("expected it to end within %.1f s; it was still running after %.1f s and was stopped. "
                             "Its stderr until then:\n%s" % (bound, bound + self.slack + 1, tail(stopped.stderr)))
            run = e2e.Run(done.returncode, done.stdout, done.stderr, time.monotonic() - start)
            if watch is not None:
                if self.strace:
                    with open(trace_file, errors="replace") as f:
                        seen = see_it.parse_strace(f.read())
                else:
                    seen = see_it.parse_trace(run.stderr)
                run.calls = see_it.socket_calls(seen)
                run.watcher = "strace" if self.strace else "its --trace"
            return run
        finally:
            if stop:
                if log is not None:
                    settled(log)
                stop()
            if trace_file:
                os.unlink(trace_file)


def settled(log, seconds=1.0):
    """Give the lab server a moment to log how the connection ended (it
    sees our FIN or reset a little after we exit)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        log.seek(0)
        if re.search(rb"FIN arrived|reset|ECONN|closing", log.read()):
            return
        time.sleep(0.02)


def escaped(text):
    """A student's output as the grader prints it: control bytes escaped
    (\\x1b, not an escape sequence the terminal would obey)."""
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", lambda m: "\\x%02x" % ord(m.group(0)), text)


def tail(data, lines=12):
    text = escaped((data or b"").decode(errors="replace").replace("\r\n", "\n").strip())
    shown = text.splitlines()[-lines:]
    return "\n".join(shown) if shown else "(nothing)"


def last_line(run):
    return run.error_line()


def described(run):
    return "exit %s after %.2f s; stderr ends:\n%s" % (run.rc, run.seconds, tail(run.stderr.encode()))


# ------------------------------------------------------------------ ways to judge

def fetches(args, expected, bound=20, server=None):
    """Exit 0, and stdout is every byte of the response, in order."""
    def check(g):
        want = expected() if callable(expected) else expected
        run = g.run(args, bound, server)
        expect(run.rc == 0, "expected exit 0 and the whole response; seen " + described(run))
        same = len(run.stdout) == len(want) and run.stdout == want
        if not same:
            at = next((i for i, (a, b) in enumerate(zip(run.stdout, want)) if a != b), min(len(run.stdout), len(want)))
            raise Failed("expected %d bytes on stdout, the response byte for byte; seen %d bytes, the first "
                         "difference at byte %d: expected %r, seen %r"
                         % (len(want), len(run.stdout), at, want[at:at + 24], run.stdout[at:at + 24]))
        return run
    return check


def fails(args, bound, names=None, server=None, stdout=None, at_least=0.0):
    """Exit 1 within bound seconds (and not before at_least); the last stderr
    line names one of the calls `names` (any wording around it); stdout,
    when given, is every byte that came before the failure."""
    def check(g):
        run = g.run(args, bound, server)
        expect(run.rc == 1, "expected exit 1 (a failure); seen " + described(run))
        expect(run.seconds < bound + g.slack,
               "expected it to give up within %.1f s; it took %.2f s" % (bound, run.seconds))
        expect(run.seconds >= at_least, "expected it to wait %.1f s first; it gave up after %.2f s" % (at_least, run.seconds))
        if names:
            line = last_line(run)
            expect(any(re.search(r"(?i)\b%s" % re.escape(name), line) for name in names),
                   "expected the last line on stderr to name the call that failed (%s), in any words; seen %r. "
                   "Example: %r" % (" or ".join(names), line, "%s: %s ...: what went wrong" % (g.program, names[0])))
        if stdout is not None:
            want = stdout() if callable(stdout) else stdout
            expect(run.stdout == want, "expected on stdout every byte that came before the failure (%d); seen %d bytes"
                   % (len(want), len(run.stdout)))
        return run
    return check


def connect_gets_no_answer(args=(), skip_where=None):
    """A connect to a listener whose queue is full gets no answer: the program
    gives up after --timeout 0.5 (exit 1, the line names connect)."""
    def check(g):
        if skip_where and (g.emulator or not sys.platform.startswith("linux")):
            raise Skipped(skip_where)
        fails(list(args) + ["127.0.0.1", "PORT", "--timeout", "0.5"], 1.5, ["connect"], server="no-answer")(g)
    return check


def calls_text(run, lines=12):
    shown = [repr(c) for c in run.calls][-lines:]
    return "\n".join(shown) if shown else "(no calls on a socket)"


def one_close_each(args=(), scenario="hello"):
    """Each socket is closed exactly once: no close() that fails with EBADF
    (a second close of the same number, which could close another file),
    and no socket left open."""
    def check(g):
        run = g.run(list(args) + ["127.0.0.1", "PORT", "--quiet"], 10, server=scenario, watch=["socket", "close"])
        bad = [c for c in run.calls if c.name == "close" and c.result != 0]
        if bad:
            raise Failed("expected one close() per socket; %s saw a close that failed: %s (a second close of a "
                         "descriptor already closed)\n%s" % (run.watcher, bad[0], calls_text(run)))
        opened = [c.result for c in run.calls if c.name == "socket" and c.result is not None and c.result >= 0]
        closed = [c.fd for c in run.calls if c.name == "close" and c.result == 0]
        for fd in set(opened):
            # --trace does not show the close an owner makes on its way out:
            # without strace, only a second close is seen.
            expect(closed.count(fd) == opened.count(fd) if g.strace else closed.count(fd) <= opened.count(fd),
                   "expected socket %d closed once each time it was opened; %s saw it opened %d and closed %d times:\n%s"
                   % (fd, run.watcher, opened.count(fd), closed.count(fd), calls_text(run)))
    return check


def waits_slept(run, most):
    waits = [c for c in run.calls if c.family in ("select", "poll", "epoll_wait")]
    expect(waits, "expected the program to wait in select or poll; %s saw no wait:\n%s" % (run.watcher, calls_text(run)))
    expect(len(waits) <= most,
           "expected a wait that sleeps until something happens: at most %d waits in this run; %s saw %d "
           "(a wait that wakes up far more often than anything happens). The first: %s"
           % (most, run.watcher, len(waits), "; ".join(repr(w) for w in waits[:3])))
    return waits


def wants_little_cpu(args, expected_rc=0):
    """Waiting costs almost no CPU: how long the program wanted a core for a
    1.5 s wait (the lab server's slow:1.5), against a run with no wait
    (tests/e2e.py child_cpu_seconds). Under Wine each select or poll is a
    round trip to wineserver, another process, which takes about half of a
    spin's CPU: over a 1.5 s wait, a zero-timeout select loop used 0.54 s in
    the program and 0.52 to 0.62 s in wineserver (4 runs), which put the
    program's part at the 0.5 s line. There the wait is 3 s, so that a spin
    stands clear of it."""
    def check(g):
        ctx = e2e.Context("", "", ",".join(g.emulator), g.slack)
        ctx.programs = {"student": g.program}
        args_waiting = list(args) + ["--scenario", "slow:3" if g.emulator else "slow:1.5"]
        _, plain = e2e.child_cpu_seconds(ctx, "student", args)
        run, waiting = e2e.child_cpu_seconds(ctx, "student", args_waiting)
        g.shown = ["/usr/bin/time", "-f", "%U s user, %S s system", g.program] + args_waiting
        expect(run.rc == expected_rc, "the run with a wait failed: " + described(run))
        expect(waiting - plain < 0.5,
               "expected a program that sleeps while it waits: under 0.5 s more wanting a CPU than a run with "
               "no wait; seen %.2f s more over a %.1f s wait" % (waiting - plain, run.seconds))
    return check


# ------------------------------------------------------------------ the responses

def binary_response():
    body = e2e.binary_body(64)
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n" % len(body)) + body


def keep_open_response():
    return hello_response().replace(b"Connection: close", b"Connection: keep-alive")


# ------------------------------------------------------------------ lab 1: blocking client

def short_sends(g):
    """Every send() takes at most 16 bytes (tests/short_send.c, preloaded),
    as one into a socket buffer with little room does: the whole request
    must still reach the server."""
    if g.emulator or not see_it.short_send_library():
        raise Skipped("cutting send() short needs Linux and a C compiler (tests/short_send.c)")
    run = g.run(["127.0.0.1", "PORT", "--timeout", "1", "--quiet"], 3, server="hello", short_send=16)
    expect(run.rc == 0 and run.stdout == hello_response(),
           "expected the whole response: with each send() taking at most 16 bytes, the rest of the request must "
           "follow in more send() calls (the server answers only a whole request); seen " + described(run))


def calls_in_order(g):
    run = g.run(["127.0.0.1", "PORT", "--quiet"], 10, server="hello",
                watch=["socket", "connect", "sendto", "recvfrom", "read", "write", "close"])
    expect(run.rc == 0 and run.stdout == hello_response(), "expected exit 0 and the response: " + described(run))
    order = []
    for call in run.calls:
        if call.family in ("socket", "connect", "send", "recv", "close") and (not order or order[-1] != call.family):
            order.append(call.family)
    expect(order[:1] == ["socket"] and "connect" in order and "send" in order and "recv" in order and order[-1] == "close"
           and order.index("connect") < order.index("send") < order.index("recv"),
           "expected socket, connect, send, recv (as often as needed), close, in that order; %s saw: %s"
           % (run.watcher, ", ".join(order) or "none"))


LAB1 = [
    ("hello", "offline: the built-in lab server's answer, byte for byte", fetches(["--quiet"], hello_response())),
    ("drip", "a response in many small pieces (drip): recv until the end", fetches(["--scenario", "drip:16", "--quiet"], hello_response())),
    ("big", "a 16 MiB download, byte for byte", fetches(["--scenario", "big:16", "--quiet"], lambda: big_response(16))),
    ("binary", "a body with zero bytes and every byte value, byte for byte", fetches(["--scenario", "binary", "--quiet"], binary_response)),
    ("chunked", "a chunked response, read to its last chunk", fetches(["--scenario", "chunked", "--quiet"], chunked_hello_response())),
    # (--timeout 10: a program that waits for the FIN is stopped at the bound,
    # before its own timeout, with any build's slack; one verdict everywhere.)
    ("keep-open", "a server that keeps the connection open: done at the response's end, not at --timeout",
     fetches(["--scenario", "keep-open", "--timeout", "10", "--quiet"], keep_open_response, bound=1.5)),
    ("truncate", "a response cut short: exit 1, every byte received on stdout",
     fails(["--scenario", "truncate"], 3, stdout=lambda: big_response(1)[:-1024 * 1024] + e2e.big_body(1)[:1000])),
    ("refused", "a refused connection: exit 1, the error names connect", fails(["127.0.0.1", "PORT"], 3, ["connect"], server="refused")),
    ("unresolvable", "a name that does not resolve: exit 1, the error names getaddrinfo", fails(["host..invalid"], 3, ["getaddrinfo"])),
    ("silent", "a silent server: recv gives up after --timeout", fails(["--scenario", "silent", "--timeout", "0.5"], 1.5, at_least=0.4)),
    ("default-timeout", "with no --timeout, a silent server is given up on after the default 5 s",
     fails(["--scenario", "silent"], 6.5, at_least=4.5)),
    ("reset", "a reset connection: exit 1, the error names recv", fails(["--scenario", "reset"], 2, ["recv"])),
    ("connect-timeout", "a connect that gets no answer gives up after --timeout",
     connect_gets_no_answer(skip_where="chapter 1 bounds connect with SO_SNDTIMEO, which only Linux applies to connect")),
    ("short-sends", "a send() that takes part of the request: the rest follows", short_sends),
    ("one-close", "each socket closed exactly once", one_close_each()),
    ("calls", "the calls: socket, connect, send, recv until the end, close", calls_in_order),
]


# ------------------------------------------------------------------ lab 2: modes and timeouts

MODES = ["blocking", "nonblocking", "timeout", "deadline"]


def nonblocking_would_block(g):
    run = g.run(["--mode", "nonblocking", "127.0.0.1", "PORT", "--quiet"], 10, server="slow:0.05",
                watch=["socket", "fcntl", "ioctl", "recvfrom", "read", "close"])
    expect(run.rc == 0 and run.stdout == hello_response(), "expected exit 0 and the response: " + described(run))
    would_block = [c for c in run.calls if c.family == "recv" and c.errno in ("EAGAIN", "EWOULDBLOCK", "WSAEWOULDBLOCK")]
    expect(would_block, "expected, in nonblocking mode, a recv that fails with EAGAIN while the server has not "
           "answered (the socket in O_NONBLOCK mode); %s saw:\n%s" % (run.watcher, calls_text(run)))


def timeout_sets_rcvtimeo(g):
    run = g.run(["--mode", "timeout", "127.0.0.1", "PORT", "--quiet"], 10, server="hello",
                watch=["socket", "setsockopt", "recvfrom", "read", "close"])
    expect(run.rc == 0 and run.stdout == hello_response(), "expected exit 0 and the response: " + described(run))
    first_recv = next((i for i, c in enumerate(run.calls) if c.family == "recv"), len(run.calls))
    set_before = [c for c in run.calls[:first_recv] if c.name == "setsockopt" and "SO_RCVTIMEO" in c.args and c.result == 0]
    expect(set_before, "expected, in timeout mode, setsockopt(SO_RCVTIMEO) to succeed before the first recv; %s saw:\n%s"
           % (run.watcher, calls_text(run)))


def deadline_polls(g):
    run = g.run(["--mode", "deadline", "127.0.0.1", "PORT", "--quiet"], 10, server="slow:0.2",
                watch=["socket", "poll", "ppoll", "recvfrom", "read", "close"])
    expect(run.rc == 0 and run.stdout == hello_response(), "expected exit 0 and the response: " + described(run))
    slept = [c for c in run.calls if c.family == "poll" and c.result == 1 and (c.seconds > 0.1 or not g.strace)
             and not re.search(r",\s*0\)?$", c.args.replace(" ms", ""))]
    expect(slept, "expected, in deadline mode, a poll with the time left (above 0) that waits and returns 1 "
           "before the recv; %s saw:\n%s" % (run.watcher, calls_text(run)))


def every_mode_gives_up(g):
    for mode in MODES:
        fails(["--mode", mode, "--scenario", "silent", "--timeout", "0.3"], 1.5, at_least=0.25)(g)


LAB2 = [
    ("all-modes", "offline: all four modes fetch the answer, in order", fetches(["--scenario", "slow:0.2", "--quiet"], hello_response() * 4)),
    ("nonblocking-would-block", "nonblocking mode: recv fails with EAGAIN while nothing has come", nonblocking_would_block),
    ("timeout-sets-rcvtimeo", "timeout mode: SO_RCVTIMEO is set before the first recv", timeout_sets_rcvtimeo),
    ("deadline-polls", "deadline mode: poll with the time left, then recv", deadline_polls),
    ("silent-every-mode", "a silent server is given up on after --timeout, in every mode", every_mode_gives_up),
    ("big", "a 16 MiB download, byte for byte", fetches(["--mode", "deadline", "--scenario", "big:16", "--quiet"], lambda: big_response(16))),
    ("refused", "a refused connection: exit 1, the error names connect",
     fails(["--mode", "deadline", "127.0.0.1", "PORT"], 3, ["connect"], server="refused")),
    ("unresolvable", "a name that does not resolve: exit 1, the error names getaddrinfo",
     fails(["--mode", "deadline", "host..invalid"], 3, ["getaddrinfo"])),
] + [
    ("%s:connect-timeout" % mode, "%s mode: a connect that gets no answer gives up after --timeout" % mode,
     connect_gets_no_answer(["--mode", mode], "timeout mode bounds connect with SO_SNDTIMEO, which only Linux applies to connect"
                            if mode == "timeout" else None))
    for mode in MODES
] + [
    ("one-close", "each socket closed exactly once, in every mode", one_close_each()),
]


# ------------------------------------------------------------------ lab 3: select

def wakeups_while_waiting(g):
    run = g.run(["127.0.0.1", "PORT", "--quiet"], 10, server="slow:1.5",
                watch=["socket", "select", "pselect6", "poll", "ppoll", "recvfrom", "close"])
    expect(run.rc == 0 and run.stdout == hello_response(), "expected exit 0 and the response: " + described(run))
    waits_slept(run, 20)


def select_timeout(g):
    run = g.run(["127.0.0.1", "PORT", "--quiet"], 10, server="slow:0.3",
                watch=["socket", "select", "pselect6", "poll", "ppoll", "recvfrom", "close"])
    expect(run.rc == 0 and run.stdout == hello_response(), "expected exit 0 and the response: " + described(run))
    if g.strace:
        slept = [c for c in run.calls if c.family in ("select", "poll") and c.result and c.result > 0 and c.seconds > 0.1]
        how = "a select (or poll) that slept until the answer came (0.3 s) and returned it ready"
    else:
        slept = [c for c in run.calls if c.family in ("select", "poll") and c.result and c.result > 0
                 and re.search(r"[^\d]([1-9]\d*) ms\)?$", c.args)]
        how = "a select (or poll) with a timeout above 0 ms that returned ready"
    expect(slept, "expected %s; %s saw:\n%s" % (how, run.watcher, calls_text(run)))


def buffer_size(g):
    # 64 KiB: some 660 recv calls, each a stop under strace (1 MiB, over
    # 10,000 of them, took more than 10 s on a machine running two suites).
    run = g.run(["--buffer-size", "100", "127.0.0.1", "PORT", "--quiet"], 10, server="binary",
                watch=["socket", "recvfrom", "read", "close"])
    expect(run.rc == 0 and run.stdout == binary_response(), "expected exit 0 and the 64 KiB response: " + described(run))
    sizes = set()
    ended = next((i for i, c in enumerate(run.calls) if c.name == "shutdown"), len(run.calls))
    for call in run.calls[:ended]:  # the response's reads (a drain after our FIN may use its own buffer)
        # strace: recvfrom(3, "bytes"..., 100, 0, NULL, NULL); --trace: recv(3, 100)
        size = re.match(r'^\d+, (?:(?:"(?:[^"\\]|\\.)*"(?:\.\.\.)?|0x[0-9a-f]+|NULL|\[.*?\]), )?(\d+)\b', call.args)
        if call.family == "recv" and size:
            sizes.add(int(size.group(1)))
    expect(sizes and max(sizes) <= 100, "expected every recv of the response to ask for at most --buffer-size 100 bytes; %s saw "
           "recv sizes %s" % (run.watcher, sorted(sizes)[-5:] or "none"))


def ending(g):
    run = g.run(["127.0.0.1", "PORT", "--quiet"], 10, server="hello",
                watch=["socket", "shutdown", "recvfrom", "read", "close"])
    expect(run.rc == 0 and run.stdout == hello_response(), "expected exit 0 and the response: " + described(run))
    shutdowns = [i for i, c in enumerate(run.calls) if c.name == "shutdown"]
    closes = [i for i, c in enumerate(run.calls) if c.name == "close" and c.result == 0]
    got_data = [i for i, c in enumerate(run.calls) if c.family == "recv" and c.result and c.result > 0]
    expect(shutdowns and closes and re.search(r"SHUT_WR\b|, 1$", run.calls[shutdowns[-1]].args)
           and run.calls[shutdowns[-1]].result == 0 and got_data and got_data[-1] < shutdowns[-1] < closes[-1],
           "expected, after the response: shutdown(FD, SHUT_WR) = 0 (our FIN), then close(FD) = 0 (reading to "
           "the server's FIN in between is fine too); %s saw:\n%s" % (run.watcher, calls_text(run)))


LAB3 = [
    ("hello", "offline: the built-in lab server's answer, byte for byte", fetches(["--quiet"], hello_response())),
    ("drip", "a response in many small pieces (drip): recv until the end", fetches(["--scenario", "drip:16", "--quiet"], hello_response())),
    ("big", "a 16 MiB download, byte for byte", fetches(["--scenario", "big:16", "--quiet"], lambda: big_response(16))),
    ("binary", "a body with zero bytes and every byte value, byte for byte", fetches(["--scenario", "binary", "--quiet"], binary_response)),
    ("chunked", "a chunked response, read to its last chunk", fetches(["--scenario", "chunked", "--quiet"], chunked_hello_response())),
    ("keep-open", "a server that keeps the connection open: done at the response's end, not at --timeout",
     fetches(["--scenario", "keep-open", "--timeout", "10", "--quiet"], keep_open_response, bound=1.5)),
    ("silent", "a silent server: the wait gives up after --timeout", fails(["--scenario", "silent", "--timeout", "0.5"], 1.5, at_least=0.4)),
    ("refused", "a refused connection: exit 1, the error names connect", fails(["127.0.0.1", "PORT"], 3, ["connect"], server="refused")),
    ("unresolvable", "a name that does not resolve: exit 1, the error names getaddrinfo", fails(["host..invalid"], 3, ["getaddrinfo"])),
    ("connect-timeout", "a connect that gets no answer gives up after --timeout", connect_gets_no_answer()),
    ("waits-without-spinning", "waiting costs almost no CPU: the thread sleeps in select",
     wants_little_cpu(["--quiet"])),
    ("wakeups-while-waiting", "waiting wakes up rarely: a few selects for a 1.5 s wait, not one per millisecond", wakeups_while_waiting),
    ("select-timeout", "select waits with a timeout until the answer is ready", select_timeout),
    ("buffer-size", "--buffer-size: each recv asks for at most that many bytes", buffer_size),
    ("ending", "the ending: shutdown(SHUT_WR), then close", ending),
    ("one-close", "each socket closed exactly once", one_close_each()),
]


# ------------------------------------------------------------------ lab 4: shutdown and close

ECHO_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n"


def server_saw(mode, saw, scenario="echo", echoed=True, rc=0, watch=None, shutdown=None):
    """Run `--close mode` against the lab server's echo; its log says what
    it saw: the client's FIN or a reset."""
    def check(g):
        with tempfile.TemporaryFile() as log:
            run = g.run(["--close", mode, "127.0.0.1", "PORT", "--timeout", "0.5", "--quiet"], 3, server=scenario,
                        log=log, watch=watch)
            log.seek(0)
            seen = log.read().decode(errors="replace")
        expect(run.rc == rc, "--close %s: expected exit %d; seen %s" % (mode, rc, described(run)))
        fin, reset = "the client's FIN arrived" in seen, "reset" in seen
        if saw == "reset" and g.emulator and fin and not reset:
            return  # under Wine an abort sometimes reaches the server as a FIN (docs/portability.md)
        expect((fin and not reset) if saw == "FIN" else reset,
               "--close %s: expected the server to see %s; its log:\n%s"
               % (mode, "our FIN" if saw == "FIN" else "a reset", "\n".join(l for l in seen.splitlines() if "127.0.0.1:" in l) or "(nothing)"))
        if echoed is not None:
            expect(bool(run.stdout) == echoed, "--close %s: expected %s on stdout; seen %r"
                   % (mode, "the echo of our request" if echoed else "nothing", run.stdout[:80]))
        if shutdown:
            how = [c for c in run.calls if c.name == "shutdown"]
            expect(any(re.search(r"\b%s\b" % shutdown, c.args) and c.result == 0 for c in how),
                   "--close %s: expected shutdown(FD, %s) = 0; %s saw:\n%s" % (mode, shutdown, run.watcher, calls_text(run)))
    return check


def close_rd(g):
    server_saw("rd", "FIN", echoed=False, watch=["socket", "shutdown", "recvfrom", "read", "close"], shutdown="SHUT_RD")(g)


LAB4 = [
    ("hello", "offline: the built-in lab server's answer, byte for byte", fetches(["--quiet"], hello_response())),
    ("big", "a 16 MiB download, byte for byte", fetches(["--scenario", "big:16", "--quiet"], lambda: big_response(16))),
    ("close-half", "--close half: the server sees our FIN, and we still get the echo", server_saw("half", "FIN")),
    ("close-rd", "--close rd: shutdown(SHUT_RD), the request, then close: the server sees a FIN", close_rd),
    ("close-rdwr", "--close rdwr: shutdown(SHUT_RDWR), the server sees a FIN",
     server_saw("rdwr", "FIN", echoed=False, watch=["socket", "shutdown", "close"], shutdown="SHUT_RDWR")),
    ("close-linger0", "--close linger0: the server sees a reset, not a FIN", server_saw("linger0", "reset")),
    ("close-unread", "--close unread: closing with the (late) echo unread resets", server_saw("unread", "reset", scenario="echo:0.3", echoed=False)),
    ("refused", "a refused connection: exit 1, the error names connect", fails(["127.0.0.1", "PORT"], 3, ["connect"], server="refused")),
    ("silent", "a silent server: recv gives up after --timeout", fails(["--scenario", "silent", "--timeout", "0.5"], 1.5, at_least=0.4)),
    ("one-close", "each socket closed exactly once, in every ending", lambda g: [one_close_each(["--close", m], "echo")(g) for m in
                                                                                  ("none", "half", "rd", "rdwr", "linger0", "unread")]),
]


# ------------------------------------------------------------------ lab 5: many sockets

def lines_all_ok(args, count, bound=10, server=None, size=None):
    def check(g):
        run = g.run(args, bound, server)
        expect(run.rc == 0, "expected exit 0, every connection ok; seen " + described(run))
        try:
            found = e2e.connection_lines(run, count)
        except Failed as failure:
            raise Failed("expected one line per connection on stdout: %s" % failure)
        bad = {i: got for i, got in found.items() if got[0] != "ok" or (size is not None and got[1] != size)}
        expect(not bad, "expected every connection ok%s; seen %s" % (" with %d bytes" % size if size else "", list(bad.items())[:5]))
        return run
    return check


# Every scenario at once, one per connection (as tests/e2e.py's
# chapter5:every-scenario-*): how each must end. The lab server answers
# connection k with item k, in the order it accepts them.
EVERY = [("hello", "ok"), ("slow:0.3", "ok"), ("drip:64", "ok"), ("big:1", "ok"), ("chunked", "ok"),
         ("silent", "failed"), ("reset", "failed"), ("close", "failed"), ("truncate", "failed"),
         ("chunked:10", "failed"), ("echo", "failed")]


def every_scenario(how, skip=None):
    """Each connection ends as it would alone (ok or failed), the fast ones
    are not held up by the slow and silent ones, and the run ends when the
    silent one's --timeout does. how: the options that choose the way to
    wait (["--wait", "poll"]); skip(g): raises Skipped where it does not apply."""
    def check(g):
        if skip:
            skip(g)
        args = ["--connections", str(len(EVERY)), "--scenario", "mix:" + ",".join(i for i, _ in EVERY),
                "--timeout", "1"] + list(how)
        run = g.run(args, 2)
        expect(run.rc == 1, "expected exit 1 (some connections fail); seen " + described(run))
        try:
            found = e2e.connection_lines(run, len(EVERY))
        except Failed as failure:
            raise Failed("expected one line per connection on stdout: %s" % failure)
        wrong = ["connection %d (%s): %s, expected %s" % (i, item, found[i][0], outcome)
                 for i, (item, outcome) in enumerate(EVERY, 1) if found[i][0] != outcome]
        expect(not wrong, "expected each connection to end as it would alone; " + "; ".join(wrong))
        fast = max(found[i][2] for i, (item, outcome) in enumerate(EVERY, 1) if outcome == "ok" and not item.startswith("slow"))
        expect(fast < 0.25 + g.slack, "expected the fast peers done within 0.25 s; one took %.3f s: held up by the "
               "slow or silent ones?" % fast)
    return check


def waits(wait, scenario="slow:1.5"):
    def check(g):
        name = "poll" if wait == "poll" else "select"
        run = g.run(["--connections", "4", "--wait", wait, "127.0.0.1", "PORT", "--quiet"], 10, server=scenario,
                    watch=["socket", "connect", name, "pselect6" if wait == "select" else "ppoll", "close"])
        expect(run.rc == 0, "expected exit 0, every connection ok; seen " + described(run))
        waits_slept(run, 25)
    return check


def poll_watches_all(g):
    run = g.run(["--connections", "2", "--wait", "poll", "127.0.0.1", "PORT", "--quiet"], 10, server="slow:0.3",
                watch=["socket", "connect", "poll", "ppoll", "close"])
    expect(run.rc == 0, "expected exit 0, every connection ok; seen " + described(run))
    both = [c for c in run.calls if c.family == "poll" and (re.search(r",\s*2,\s*-?\d+$", c.args) or c.args.startswith("2 fds"))]
    expect(both, "expected one poll that watches both connections in flight (2 descriptors); %s saw:\n%s"
           % (run.watcher, calls_text(run)))


def refused_all(g):
    run = g.run(["--connections", "3", "127.0.0.1", "PORT"], 3, server="refused")
    expect(run.rc == 1, "expected exit 1; seen " + described(run))
    found = e2e.connection_lines(run, 3)
    wrong = {i: got for i, got in found.items() if got[0] != "failed" or not re.search(r"(?i)\bconnect", got[3])}
    expect(not wrong, "expected every connection failed, its line naming connect; seen %s" % list(wrong.items())[:3])


def wall_named(g):
    count = 1100
    run = g.run(["--connections", str(count), "--wait", "select", "--quiet"], 30)
    expect(run.rc == 1, "expected exit 1: the connections past FD_SETSIZE fail; seen " + described(run))
    found = e2e.connection_lines(run, count)
    failed = [got for got in found.values() if got[0] == "failed"]
    expect(failed and len(failed) < count, "expected some connections to fail, not all; %d of %d failed" % (len(failed), count))
    other = [got[3] for got in failed if "FD_SETSIZE" not in got[3]]
    expect(not other, "expected each failure to name the FD_SETSIZE wall; seen %r" % other[:1])


LAB5 = [
    ("hello", "offline, one connection: the built-in lab server's answer, byte for byte",
     fetches(["--connections", "1", "--quiet"], hello_response())),
    ("lines", "six connections: one line each on stdout, every one ok",
     lines_all_ok(["--connections", "6", "--quiet"], 6, size=len(hello_response()))),
    ("big", "a 16 MiB download over one connection, byte for byte",
     fetches(["--connections", "1", "--scenario", "big:16", "--quiet"], lambda: big_response(16))),
    ("output-dir", "--output: three 1 MiB responses, one file each, byte for byte", lambda g: e2e_case(g, "chapter5:output-dir")),
    ("every-scenario-poll", "every scenario at once, with poll: each connection ends as it would alone", every_scenario(["--wait", "poll"])),
    ("every-scenario-select", "every scenario at once, with select", every_scenario(["--wait", "select"])),
    ("slow-peer", "a slow peer does not hold up the others", lambda g: e2e_case(g, "chapter5:slow-peer-does-not-hold-up-the-rest")),
    ("drip-longer-than-timeout", "a peer that sends a little every 50 ms for longer than --timeout is not given up on",
     lines_all_ok(["--connections", "2", "--scenario", "drip:4", "--timeout", "0.5", "--quiet"], 2, size=len(hello_response()))),
    ("refused-all", "a refused port: exit 1, every connection failed, naming connect", refused_all),
    ("unresolvable", "a name that does not resolve: exit 1, the error names getaddrinfo",
     fails(["--connections", "2", "host..invalid"], 3, ["getaddrinfo"])),
    ("waits-without-spinning", "waiting costs almost no CPU",
     wants_little_cpu(["--connections", "4", "--quiet"])),
    ("waits-poll", "poll sleeps until something happens: a few polls for a 1.5 s wait", waits("poll")),
    ("waits-select", "select sleeps until something happens: a few selects for a 1.5 s wait", waits("select")),
    ("poll-watches-all", "one poll watches every connection in flight", poll_watches_all),
    ("all-in-flight-poll", "1,100 connections in flight at once with poll, past FD_SETSIZE: all complete",
     lines_all_ok(["--connections", "1100", "--wait", "poll", "--scenario", "slow:0.3", "--quiet"], 1100, bound=30)),
    ("fd-setsize-wall", "1,100 connections with select: the FD_SETSIZE wall, named, for those past it", wall_named),
    ("one-close", "each socket closed exactly once", one_close_each(["--connections", "3"])),
]


def e2e_case(g, name):
    """Run one of tests/e2e.py's cases with the student's program in place
    of the chapter (cases that judge bytes, exit status and time only)."""
    ctx = e2e.Context("", "", ",".join(g.emulator), g.slack)
    ctx.programs = {"chapter%d" % g.lab: g.program}
    ctx.grace = 1
    try:
        e2e.CASES[name](ctx)
    finally:
        if ctx.commands:
            g.shown = [g.program] + ctx.commands[-1][len(ctx.emulator) + 1:]


# ------------------------------------------------------------------ lab 6: an event loop

def needs_epoll(why):
    """A check of what epoll does (its registrations, --edge): under Wine
    chapter 6 waits with WSAPoll, as on Windows, and has neither."""
    def skip(g):
        if g.emulator or not sys.platform.startswith("linux"):
            raise Skipped(why)
    return skip


EDGE = needs_epoll("--edge needs epoll: under Wine chapter 6 waits with WSAPoll, which has no edge-triggered mode")
REGISTRATION = needs_epoll("registering once is epoll's: under Wine chapter 6 waits with WSAPoll, "
                           "which is handed the whole list on every wait")


def skipped_unless(skip, check):
    def run(g):
        skip(g)
        return check(g)
    return run


def connection_lines(run, count):
    try:
        return e2e.connection_lines(run, count)
    except Failed as failure:
        raise Failed("expected one line per connection on stdout: %s" % failure)


def silent_at_timeout(g):
    """Two silent peers among two quick ones, --timeout 0.5: the quick ones
    are done at once; each silent one fails at its own deadline, 0.5 s after
    its request went out: not before, and not long after."""
    run = g.run(["--connections", "4", "--scenario", "mix:hello,silent", "--timeout", "0.5", "--quiet"], 2)
    expect(run.rc == 1, "expected exit 1 (the silent ones fail); seen " + described(run))
    found = connection_lines(run, 4)
    wrong = ["connection %d: %s after %.3f s, expected ok within 0.25 s" % (i, found[i][0], found[i][2])
             for i in (1, 3) if found[i][0] != "ok" or found[i][2] >= 0.25 + g.slack]
    wrong += ["connection %d (silent): %s after %.3f s, expected failed at 0.5 s" % (i, found[i][0], found[i][2])
              for i in (2, 4) if found[i][0] != "failed" or not 0.495 <= found[i][2] < 0.75 + g.slack]
    expect(not wrong, "expected the quick peers ok at once, and each silent one failed at its --timeout 0.5, "
           "not before (a timer that fired early) and not much later (a wait that slept past it); " + "; ".join(wrong))


def registrations(run):
    """For each socket the program opened, in order: how many epoll_ctl
    calls of each kind registered it, {"ADD": 1, "MOD": 1, ...}, from its
    socket() to its close (a descriptor number is used again after a close)."""
    counts, open_now = [], {}
    for call in run.calls:
        if call.name == "socket" and call.result is not None and call.result >= 0:
            open_now[call.result] = len(counts)
            counts.append({"fd": call.result, "ADD": 0, "MOD": 0, "DEL": 0, "failed": 0})
        elif call.registration() and call.registration()[1] in open_now:
            operation, fd = call.registration()
            seen = counts[open_now[fd]]
            seen[operation[len("EPOLL_CTL_"):]] += 1
            seen["failed"] += call.result != 0
        elif call.name == "close" and call.result == 0:
            open_now.pop(call.fd, None)
    return counts


def registration_text(run, lines=16):
    shown = [repr(c) for c in run.calls if c.name in ("socket", "epoll_ctl", "close")][:lines]
    return "\n".join(shown) + ("\n..." if len(shown) == lines else "") if shown else "(no calls on a socket)"


def registered_once(edge):
    """Each socket registered once (epoll_ctl ADD), then changed only when
    what it waits for changes: level-triggered, one MOD at most, from writing
    (the connect) to reading (the answer); edge-triggered, registered for
    both at once and never changed. Against a server that sends its answer
    in four pieces: four reports for each connection, not four registrations."""
    def check(g):
        REGISTRATION(g)
        run = g.run(["--connections", "4"] + (["--edge"] if edge else []) + ["127.0.0.1", "PORT", "--quiet"], 10,
                    server="drip:32", watch=["socket", "epoll_ctl", "close"])
        expect(run.rc == 0, "expected exit 0, every connection ok; seen " + described(run))
        counts = registrations(run)
        expect(counts, "expected the program to open its sockets; %s saw none:\n%s" % (run.watcher, calls_text(run)))
        most_mods = 0 if edge else 1
        wrong = ["socket %d: %d ADD, %d MOD, %d DEL%s" % (c["fd"], c["ADD"], c["MOD"], c["DEL"],
                                                          ", %d of them failed" % c["failed"] if c["failed"] else "")
                 for c in counts if c["ADD"] != 1 or c["MOD"] > most_mods or c["DEL"] or c["failed"]]
        expect(not wrong, "expected each socket registered once, epoll_ctl(EPOLL_CTL_ADD) = 0, and %s; %s saw %s:\n%s"
               % ("never changed with --edge: no EPOLL_CTL_MOD (it is registered for reading and writing at once)" if edge
                  else "changed at most once, one EPOLL_CTL_MOD from writing to reading, whatever the number of reports",
                  run.watcher, "; ".join(wrong[:4]), registration_text(run)))
    return check


WAIT_CALLS = ["socket", "connect", "epoll_wait", "epoll_pwait", "poll", "ppoll", "close"]


def waits_sleep(g):
    """Two quick peers and two silent ones, --timeout 1.5: once the quick
    ones are done, the loop has nothing to do until the silent ones'
    deadline, and its wait sleeps until then, in one or a few waits."""
    run = g.run(["--connections", "4", "--timeout", "1.5", "127.0.0.1", "PORT", "--quiet"], 4, server="mix:hello,silent",
                watch=WAIT_CALLS)
    expect(run.rc == 1, "expected exit 1 (the silent ones fail at their --timeout); seen " + described(run))
    waits = waits_slept(run, 25)
    if g.strace:
        slept = [w for w in waits if w.result == 0 and w.seconds >= 1.0]
        how = "a wait that slept 1 s or more and returned 0: the silent peers' deadline"
    else:
        slept = [w for w in waits if w.result == 0 and re.search(r"\b\d{4,} ms$", w.args)]  # 1000 ms or more
        how = "a wait with a timeout of 1000 ms or more that returned 0: the silent peers' deadline"
    expect(slept, "expected, while only the silent peers were left, %s; %s saw:\n%s" % (how, run.watcher, calls_text(run)))


def edge_drains(g):
    """--edge, 64 connections of 2 MiB each, five runs: the bytes that
    arrive in a burst, more than one turn's reads, are read to EAGAIN over
    as many turns as they need. epoll reports an edge-triggered socket once:
    bytes left unread are not reported again, and their connection would
    wait for its --timeout (5 s here) with its answer in the kernel."""
    EDGE(g)
    args = ["--edge", "--connections", "64", "--scenario", "big:2", "--timeout", "5", "--quiet"]
    size = len(big_response(2))
    for attempt in range(1, 6):
        try:
            run = g.run(args, 2)
        except Failed as failure:
            raise Failed("run %d of 5: %s\n(an edge-triggered socket is reported once: bytes left unread when a turn "
                         "ends are not reported again, and wait for --timeout)" % (attempt, failure))
        expect(run.rc == 0, "run %d of 5: expected exit 0, every connection ok; seen %s" % (attempt, described(run)))
        bad = {i: got for i, got in connection_lines(run, 64).items() if got[0] != "ok" or got[1] != size}
        expect(not bad, "run %d of 5: expected every connection ok with %d bytes; seen %s" % (attempt, size, list(bad.items())[:3]))


LAB6 = [
    ("hello", "offline, one connection: the built-in lab server's answer, byte for byte",
     fetches(["--connections", "1", "--quiet"], hello_response())),
    ("lines", "200 connections at once: one line each on stdout, every one ok",
     lines_all_ok(["--connections", "200", "--quiet"], 200, size=len(hello_response()))),
    ("big", "a 16 MiB download over one connection, byte for byte",
     fetches(["--connections", "1", "--scenario", "big:16", "--quiet"], lambda: big_response(16))),
    ("big-edge", "--edge: a 16 MiB download over one connection, byte for byte",
     skipped_unless(EDGE, fetches(["--edge", "--connections", "1", "--scenario", "big:16", "--quiet"], lambda: big_response(16)))),
    ("every-scenario", "every scenario at once: each connection ends as it would alone, the fast ones at once",
     every_scenario([])),
    ("every-scenario-edge", "every scenario at once, with --edge", every_scenario(["--edge"], EDGE)),
    ("silent-at-timeout", "a silent peer fails at its --timeout, not before; the others do not wait for it", silent_at_timeout),
    ("drip-longer-than-timeout", "a peer that sends a little every 50 ms for longer than --timeout is not given up on",
     lines_all_ok(["--connections", "2", "--scenario", "drip:4", "--timeout", "0.5", "--quiet"], 2, size=len(hello_response()))),
    ("refused-all", "a refused port: exit 1, every connection failed, naming connect", refused_all),
    ("unresolvable", "a name that does not resolve: exit 1, the error names getaddrinfo",
     fails(["--connections", "2", "host..invalid"], 3, ["getaddrinfo"])),
    ("registered-once", "each socket registered once (epoll_ctl ADD), changed at most once (MOD), not at every report",
     registered_once(edge=False)),
    ("registered-once-edge", "--edge: each socket registered once for reading and writing, never changed (no MOD)",
     registered_once(edge=True)),
    ("waits-without-spinning", "waiting costs almost no CPU",
     wants_little_cpu(["--connections", "4", "--quiet"])),
    ("waits-sleep", "the wait sleeps until the nearest deadline: a few waits for 1.5 s with only silent peers left",
     waits_sleep),
    ("edge-drains", "--edge: bursts larger than a turn's reads, read to EAGAIN: done well within --timeout", edge_drains),
    ("one-close", "each socket closed exactly once", one_close_each(["--connections", "3"])),
]


CHECKS = {1: LAB1, 2: LAB2, 3: LAB3, 4: LAB4, 5: LAB5, 6: LAB6}
