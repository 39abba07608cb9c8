#!/usr/bin/env python3
"""Claims about what Python does, checked by watching Python do it.

Each claim runs a few lines of Python in a child interpreter under
`strace -f`, against the lab server (or a peer made here when the claim
needs one that the lab server is not), and asserts the system calls the
chapters say Python makes, in order. Descriptors, ports and times are
normalised; each test prints the CPython version and the calls it saw.

CTest registers each claim as claim:python-... (`--list`); `python_claims.py
CLAIM` runs one. Linux only. Exit: 0 pass, 1 fail, 77 skip. Under CI=true a
missing strace, or ptrace refused, is a failure, not a skip.
"""
import argparse
import copy
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from cases import Failed, Skipped, expect, registry, run

CLAIMS, claim = registry()
BIN_DIR = "."
EMULATED = False

# The calls that matter for sockets. strace names them as the kernel does:
# recv() is recvfrom, send() is sendto, and select() is pselect6 with glibc
# 2.33 and later, the select system call with older glibc on x86-64 (both are
# traced, so a filter on one alone cannot miss the wait). selectors and
# asyncio wait with epoll (epoll_pwait traced with epoll_wait, in the same
# spirit); eventfd2 is traced to see that asyncio's wake-up is a socketpair
# (in %network), not an eventfd.
TRACED = ("trace=%network,poll,ppoll,select,pselect6,ioctl,fcntl,close,rt_sigaction,"
          "epoll_create1,epoll_ctl,epoll_wait,epoll_pwait,eventfd2")
# The traced lines start and end at these two harmless, failing calls, so the
# interpreter's own start-up and exit are left out.
BEGIN, END = 9901, 9902
PRELUDE = """import os, select, socket, sys, time
def mark(fd):
    try:
        os.close(fd)
    except OSError:
        pass
"""


def skip_unless_linux():
    if EMULATED or not sys.platform.startswith("linux"):
        raise Skipped("Linux only: strace watches CPython on Linux (Windows: read from CPython's "
                      "source, docs/python-underneath.md)")


class Trace:
    """What one snippet did: `calls` between the markers, `startup` before them."""

    def __init__(self, lines, stderr):
        self.startup, self.calls, self.stderr = [], [], stderr
        where = self.startup
        for line in lines:
            if "close(%d)" % BEGIN in line:
                where = self.calls
                continue
            if "close(%d)" % END in line:
                where = []
                continue
            where.append(line)

    def show(self):
        return "\n".join("    " + c for c in self.calls)

    def in_order(self, *patterns):
        """Each pattern matches a call after the one the previous pattern matched."""
        at = 0
        for pattern in patterns:
            for i in range(at, len(self.calls)):
                if re.search(pattern, self.calls[i]):
                    at = i + 1
                    break
            else:
                raise Failed("no call matching %r (after call %d) in:\n%s" % (pattern, at, self.show()))

    def none(self, pattern, why):
        found = [c for c in self.calls if re.search(pattern, c)]
        expect(not found, "%s, but saw %s in:\n%s" % (why, found[0] if found else "", self.show()))

    def all(self, pattern):
        return [c for c in self.calls if re.search(pattern, c)]


def whole_calls(calls):
    """The calls with each "X(... <unfinished ...>" joined to its "<... X
    resumed>...", where it resumed (strace -f splits a call that another
    thread's call overlaps)."""
    joined, pending = [], {}
    for c in calls:
        start = re.match(r"^(\w+)\((.*) <unfinished \.\.\.>$", c)
        resumed = re.match(r"^<\.\.\. (\w+) resumed>(.*)$", c)
        if start:
            pending[start.group(1)] = c[:-len(" <unfinished ...>")].rstrip()
        elif resumed and resumed.group(1) in pending:
            head = pending.pop(resumed.group(1))  # "f(a," or "f(a, b"
            joined.append(head + (" " if head.endswith(",") else "") + resumed.group(2))
        else:
            joined.append(c)
    return joined


def strace_or_skip():
    path = shutil.which("strace")
    if not path:
        why = "strace is not installed (apt-get install strace)"
        if os.environ.get("CI") == "true":
            raise Failed(why + "; under CI=true that is a failure")
        raise Skipped(why)
    return path


def normalise(line):
    line = re.sub(r"^\d+ +", "", line)  # the pid strace -f puts first
    line = re.sub(r"sin6?_port=htons\(\d+\)", "sin_port=htons(PORT)", line)
    line = re.sub(r"0x[0-9a-f]+", "ADDR", line)
    line = re.sub(r"\)\s+= ", ") = ", line)  # strace pads short calls into a column
    # epoll_event.data is a union: the selectors use u32 (the descriptor);
    # u64 shows the rest of it too, which varies from run to run.
    line = re.sub(r"(data=\{u32=\d+), u64=\d+\}", r"\1, u64=...}", line)
    return line.rstrip()


# Where a descriptor stands in a call, so that a count or a length that
# happens to be the same number (a 4-byte option, 16-byte address) stays.
DESCRIPTOR_PLACES = [
    r"^(\w+\()%s(?=[,)])",                                          # the first argument
    r"^((?:socket|accept4?|epoll_create1|eventfd2|dup[23]?)\(.*\) = )%s$",  # a new descriptor
    r"(EPOLL_CTL_[A-Z]+, )%s(?=,)",                                 # epoll_ctl's descriptor
    r"((?:u32|fd)=)%s(?![\d])",                                     # epoll_event, pollfd
    r"^(socketpair\(.*\[)%s(?=[,\]])",                              # socketpair's first...
    r"^(socketpair\(.*\[\w+, )%s(?=\])",                            # ...and second
    r"^((?:pselect6|select)\(.*\[(?:\d+ )*)%s(?=[ \]])",            # in select's sets
]


def name_descriptor(calls, number, name):
    """Each call with descriptor `number` written `name` where it stands for a descriptor."""
    named = []
    for c in calls:
        for place in DESCRIPTOR_PLACES:
            while True:  # a select set may hold it more than once ([3] in, [3] out)
                c, n = re.subn(place % number, lambda m: m.group(1) + name, c)
                if not n:
                    break
        named.append(c)
    return named


def run_traced(snippet, peer_port, setup="", pair=("PAIR0", "PAIR1")):
    """Run PRELUDE + setup + snippet (with PORT defined) under strace; return a
    Trace. `setup` runs before the first marker (imports, so their own calls
    are left out). Descriptors are named: the first socket() the snippet made
    is FD, the first epoll_create1() EPFD, the first socketpair() `pair`."""
    strace = strace_or_skip()
    source = PRELUDE + "%s\nPORT = %d\nprint(sys.version.split()[0], file=sys.stderr)\nmark(%d)\n%s\nmark(%d)\n" % (
        setup, peer_port, BEGIN, snippet, END)
    with tempfile.TemporaryDirectory() as directory:
        out = os.path.join(directory, "trace")
        done = subprocess.run([strace, "-f", "-qq", "-e", TRACED, "-o", out, sys.executable, "-c", source],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        stderr = done.stderr.decode(errors="replace")
        if not os.path.exists(out) or "PTRACE" in stderr or "ptrace" in stderr:
            why = "strace could not trace (ptrace refused?): " + stderr.strip()[-300:]
            if os.environ.get("CI") == "true":
                raise Failed(why)
            raise Skipped(why)
        with open(out) as f:
            lines = [normalise(l) for l in f if l.strip()]
    trace = Trace(lines, stderr)
    for made, names in ((r"^socket\(.*\) = (\d+)$", ("FD",)),
                        (r"^epoll_create1\(.*\) = (\d+)$", ("EPFD",)),
                        (r"^socketpair\(.*\[(\d+), (\d+)\]\) = 0$", pair)):
        found = [m for m in (re.search(made, c) for c in trace.calls) if m]
        if found:
            for number, name in zip(found[0].groups(), names):
                trace.calls = name_descriptor(trace.calls, number, name)
    print("CPython %s; calls between the markers:\n%s" % (stderr.splitlines()[0] if stderr else "?", trace.show()))
    expect(done.returncode == 0, "the snippet failed (exit %d):\n%s" % (done.returncode, stderr[-2000:]))
    return trace


class LabServer:
    """The standalone lab server on 127.0.0.1 with one scenario."""

    def __init__(self, scenario):
        program = os.path.join(BIN_DIR, "labserver")
        if not os.path.exists(program):
            raise Failed("no labserver at %s" % program)
        self.proc = subprocess.Popen([program, "--quiet", "--scenario", scenario],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        match = re.match(r"listening on 127\.0\.0\.1:(\d+)", line)
        if not match:
            self.proc.kill()
            raise Failed("labserver said %r" % line)
        self.port = int(match.group(1))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


class SlowReader:
    """A peer that accepts one connection and reads 64 KiB every 0.2 s: a
    sendall to it keeps moving, slowly. (The lab server reads as fast as it can.)"""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        conn, _ = self.listener.accept()
        with conn:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            while not self.stop.wait(0.2):
                if not conn.recv(65536):
                    return

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.listener.close()


class UnansweredListener:
    """A listener that never accepts, with its accept queue full: a connect
    to it gets no answer (the SYN is dropped), so only a timeout ends it."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.fillers = []
        for _ in range(64):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(filler)
            if not select.select([], [filler], [], 0.3)[1]:
                return  # this one got no answer: the queue is full
        self.close()
        raise Failed("could not fill the listen backlog")

    def close(self):
        for s in self.fillers + [self.listener]:
            s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


REQUEST = r'b"GET / HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n"'


# ---------------------------------------------------------------- the claims

@claim("python-socket-cloexec")
def socket_cloexec():
    with LabServer("hello") as lab:
        t = run_traced("s = socket.socket()\ns.close()", lab.port)
    t.in_order(r"^socket\(AF_INET, SOCK_STREAM\|SOCK_CLOEXEC, IPPROTO_IP\) = FD$", r"^close\(FD\) = 0$")


@claim("python-ignores-sigpipe")
def ignores_sigpipe():
    with LabServer("hello") as lab:
        t = run_traced("pass", lab.port)
    found = [c for c in t.startup if re.search(r"^rt_sigaction\(SIGPIPE, \{sa_handler=SIG_IGN", c)]
    expect(found, "no rt_sigaction(SIGPIPE, SIG_IGN) at start-up:\n" + "\n".join(t.startup[-40:]))


@claim("python-setblocking-is-fionbio")
def setblocking_is_fionbio():
    with LabServer("hello") as lab:
        t = run_traced("s = socket.socket()\ns.setblocking(False)\ns.setblocking(True)\ns.close()", lab.port)
    t.in_order(r"^ioctl\(FD, FIONBIO, \[1\]\) = 0$", r"^ioctl\(FD, FIONBIO, \[0\]\) = 0$")
    t.none(r"^fcntl\(FD", "setblocking() makes one ioctl(FIONBIO) call, no fcntl")


@claim("python-settimeout-modes")
def settimeout_modes():
    # settimeout(0) is non-blocking, settimeout(None) blocking, settimeout(t)
    # non-blocking too (the timeout is CPython's own, with poll): no SO_RCVTIMEO.
    with LabServer("hello") as lab:
        t = run_traced("s = socket.socket()\ns.settimeout(0)\ns.settimeout(None)\ns.settimeout(2.5)\ns.close()", lab.port)
    t.in_order(r"^ioctl\(FD, FIONBIO, \[1\]\) = 0$", r"^ioctl\(FD, FIONBIO, \[0\]\) = 0$", r"^ioctl\(FD, FIONBIO, \[1\]\) = 0$")
    t.none(r"SO_RCVTIMEO|SO_SNDTIMEO", "settimeout() sets no kernel timeout")


@claim("python-connect-blocking")
def connect_blocking():
    with LabServer("hello") as lab:
        t = run_traced("s = socket.socket()\ns.connect(('127.0.0.1', PORT))\ns.close()", lab.port)
    t.in_order(r"^socket\(", r"^connect\(FD, .*\) = 0$", r"^close\(FD\)")
    t.none(r"^(poll|ioctl)\(", "a blocking connect is one connect() call")


@claim("python-connect-timeout-polls")
def connect_timeout_polls():
    with LabServer("hello") as lab:
        t = run_traced("s = socket.socket()\ns.settimeout(2)\ns.connect(('127.0.0.1', PORT))\ns.close()", lab.port)
    t.in_order(r"^ioctl\(FD, FIONBIO, \[1\]\) = 0$",
               r"^connect\(FD, .*\) = -1 EINPROGRESS",
               r"^poll\(\[\{fd=FD, events=POLLOUT\|POLLERR\}\], 1, 2000\) = 1",
               r"^getsockopt\(FD, SOL_SOCKET, SO_ERROR, \[0\]")
    t.none(r"^(p?select6?)\(", "CPython waits for the connect with poll, not select")


@claim("python-connect-timeout-expires")
def connect_timeout_expires():
    # The same connect to a listener that never answers: the poll times out
    # after the timeout (in ms), and connect() raises socket.timeout (the
    # TimeoutError class since 3.10) without asking SO_ERROR.
    snippet = """s = socket.socket()
s.settimeout(0.3)
try:
    s.connect(('127.0.0.1', PORT))
except socket.timeout as error:
    print("raised: %s" % error, file=sys.stderr)
s.close()"""
    with UnansweredListener() as peer:
        t = run_traced(snippet, peer.port)
    t.in_order(r"^ioctl\(FD, FIONBIO, \[1\]\) = 0$",
               r"^connect\(FD, .*\) = -1 EINPROGRESS",
               r"^poll\(\[\{fd=FD, events=POLLOUT\|POLLERR\}\], 1, 300\) = 0 \(Timeout\)$",
               r"^close\(FD\) = 0$")
    t.none(r"^getsockopt\(FD, SOL_SOCKET, SO_ERROR", "a connect that timed out has no SO_ERROR to read")
    expect("raised: timed out" in t.stderr, "connect() did not raise socket.timeout:\n" + t.stderr)


@claim("python-create-connection")
def create_connection():
    with LabServer("hello") as lab:
        t = run_traced("s = socket.create_connection(('127.0.0.1', PORT), timeout=3)\ns.close()", lab.port)
    t.in_order(r"^socket\(AF_INET, SOCK_STREAM\|SOCK_CLOEXEC, IPPROTO_TCP\) = FD$",
               r"^ioctl\(FD, FIONBIO, \[1\]\) = 0$",
               r"^connect\(FD, .*\) = -1 EINPROGRESS",
               r"^poll\(\[\{fd=FD, events=POLLOUT\|POLLERR\}\], 1, 3000\) = 1",
               r"^getsockopt\(FD, SOL_SOCKET, SO_ERROR, \[0\]")


@claim("python-recv-modes")
def recv_modes():
    # Blocking: recvfrom at once, sleeping in it. Timeout: poll(POLLIN, ms)
    # first. Non-blocking on an empty socket: recvfrom fails with EAGAIN
    # (BlockingIOError), no poll.
    snippet = """s = socket.socket()
s.connect(('127.0.0.1', PORT))
s.setblocking(False)
try:
    s.recv(4096)
except BlockingIOError:
    print("BlockingIOError", file=sys.stderr)
s.setblocking(True)
s.sendall(%s)
s.recv(10)
s.settimeout(4)
s.recv(10)
s.close()""" % REQUEST
    with LabServer("hello") as lab:
        t = run_traced(snippet, lab.port)
    expect("BlockingIOError" in t.stderr, "the non-blocking recv did not raise BlockingIOError")
    t.in_order(r"^ioctl\(FD, FIONBIO, \[1\]\) = 0$",
               r"^recvfrom\(FD, ADDR, 4096, 0, NULL, NULL\) = -1 EAGAIN",
               r"^ioctl\(FD, FIONBIO, \[0\]\) = 0$",
               r"^sendto\(FD, ",
               r"^recvfrom\(FD, \"HTTP/1.1 2\", 10, 0, NULL, NULL\) = 10$",
               r"^ioctl\(FD, FIONBIO, \[1\]\) = 0$",
               r"^poll\(\[\{fd=FD, events=POLLIN\}\], 1, 4000\) = 1",
               r"^recvfrom\(FD, .*, 10, 0, NULL, NULL\) = 10$")
    before = t.calls[:[i for i, c in enumerate(t.calls) if "recvfrom(FD, \"HTTP/1.1 2\"" in c][0]]
    expect(not [c for c in before if c.startswith("poll(")], "a poll before the blocking recv:\n" + t.show())


@claim("python-sendall-one-deadline")
def sendall_one_deadline():
    # sendall with settimeout(1) to a peer that reads slowly: one deadline
    # for the whole call, so each poll gets only what is left of it, and
    # TimeoutError comes after about 1 s although data was moving.
    snippet = """s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
s.connect(('127.0.0.1', PORT))
s.settimeout(1)
start = time.monotonic()
try:
    s.sendall(b"x" * (64 * 1024 * 1024))
except TimeoutError:
    print("TimeoutError after %.2f s" % (time.monotonic() - start), file=sys.stderr)
s.close()"""
    with SlowReader() as peer:
        t = run_traced(snippet, peer.port)
    late = re.search(r"TimeoutError after ([\d.]+) s", t.stderr)
    expect(late, "sendall did not raise TimeoutError:\n" + t.stderr)
    # About 1 s; strace and a busy machine (tests run four at a time) add
    # some. A fresh deadline per send would keep going while data moves.
    expect(0.9 <= float(late.group(1)) < 3, "TimeoutError after %s s, expected about 1 s" % late.group(1))
    waits = [int(m.group(1)) for m in (re.search(r"^poll\(\[\{fd=FD, events=POLLOUT\}\], 1, (\d+)\)", c) for c in t.calls) if m]
    sent = t.all(r"^sendto\(FD, .* = \d+$")
    expect(len(waits) >= 3 and len(sent) >= 2, "expected several polls and sends, saw %d polls, %d sends:\n%s" % (len(waits), len(sent), t.show()))
    expect(waits[0] == 1000, "the first poll waits the whole timeout, 1000 ms; saw %d" % waits[0])
    # Never growing (two polls less than a millisecond apart may ask for the
    # same time), and well below the first by the end.
    expect(all(b <= a for a, b in zip(waits, waits[1:])) and waits[-1] < waits[0] - 200,
           "the poll timeouts do not shrink: %s (one deadline for the whole sendall)" % waits)
    print("poll timeouts (ms): %s" % waits)


# linux: asserted with glibc 2.33 or later (CPython under strace); skipped with an older glibc, whose select() is the select system call on x86-64
@claim("python-select-is-pselect6")
def select_is_pselect6():
    # glibc's select() became pselect6 on 64-bit Linux in glibc 2.33
    # (pselect6_time64 on 32-bit; commit 2433d39b69, "linux: Add time64 select
    # support"); before, it made the select system call where the kernel has
    # one, as on x86-64.
    glibc = os.confstr("CS_GNU_LIBC_VERSION") or ""  # "glibc 2.36"
    version = tuple(int(n) for n in re.findall(r"\d+", glibc)[:2])
    if not glibc.startswith("glibc ") or version < (2, 33):
        raise Skipped("%s: the claim is about glibc 2.33 and later, whose select() is pselect6"
                      % (glibc or "not glibc"))
    print(glibc)
    snippet = """s = socket.socket()
s.connect(('127.0.0.1', PORT))
select.select([s], [], [], 0)
select.select([s], [], [], 0.25)
s.close()"""
    with LabServer("silent") as lab:
        t = run_traced(snippet, lab.port)
    t.in_order(r"^pselect6\(\d+, \[FD\], NULL, NULL, \{tv_sec=0, tv_nsec=0\}, NULL\) = 0 \(Timeout\)$",
               r"^pselect6\(\d+, \[FD\], NULL, NULL, \{tv_sec=0, tv_nsec=250000000\}, NULL\) = 0 \(Timeout\)$")
    t.none(r"^select\(", "%s: select() made the select system call, not pselect6" % glibc)


# An epoll wait's last arguments: epoll_wait(epfd, events, maxevents, timeout),
# and epoll_pwait adds (sigmask, size), NULL here.
EPOLL_WAIT = r"^epoll_p?wait\(EPFD, %s, %s(, NULL, \d+)?\) = %s$"


def epoll_event(events, fd):
    return r"\{events=%s, data=\{u32=%s, u64=\.\.\.\}\}" % (events, fd)


@claim("python-selectors-is-epoll")
def selectors_is_epoll():
    # DefaultSelector on Linux is EpollSelector (CPython Lib/selectors.py:
    # read): register/modify/unregister are epoll_ctl ADD/MOD/DEL, select()
    # one epoll_wait, level-triggered (no EPOLLET). Its timeout is in ms,
    # rounded up: math.ceil(timeout * 1e3) * 1e-3 seconds (EpollSelector.select),
    # which select.epoll.poll() makes milliseconds again, rounding up once
    # more. 0.0001 s is 1 ms; 0.009 s is 10 ms, as 9 * 1e-3 is
    # 0.009000000000000001 in floating point, a hair over 9 ms.
    snippet = """sel = selectors.DefaultSelector()
print(type(sel).__name__, file=sys.stderr)
s = socket.socket()
s.connect(('127.0.0.1', PORT))
sel.register(s, selectors.EVENT_READ)
sel.select(timeout=0.25)
sel.modify(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
sel.select(timeout=0.0001)
sel.select(timeout=0.009)
sel.unregister(s)
sel.close()
s.close()"""
    with LabServer("hello") as lab:  # it waits for a request: nothing to read
        t = run_traced(snippet, lab.port, setup="import selectors")
    expect("EpollSelector" in t.stderr, "DefaultSelector is not EpollSelector:\n" + t.stderr)
    writable = r"\[%s\]" % epoll_event("EPOLLOUT", "FD")
    t.in_order(r"^epoll_create1\(EPOLL_CLOEXEC\) = EPFD$",
               r"^socket\(.*\) = FD$",
               r"^connect\(FD, .*\) = 0$",
               r"^epoll_ctl\(EPFD, EPOLL_CTL_ADD, FD, %s\) = 0$" % epoll_event("EPOLLIN", "FD"),
               EPOLL_WAIT % (r"\[\]", "1, 250", "0"),
               r"^epoll_ctl\(EPFD, EPOLL_CTL_MOD, FD, %s\) = 0$" % epoll_event(r"EPOLLIN\|EPOLLOUT", "FD"),
               EPOLL_WAIT % (writable, "1, 1", "1"),
               EPOLL_WAIT % (writable, "1, 10", "1"),  # writable again: level-triggered
               r"^epoll_ctl\(EPFD, EPOLL_CTL_DEL, FD, ADDR\) = 0$",
               r"^close\(EPFD\) = 0$",
               r"^close\(FD\) = 0$")
    t.none(r"EPOLLET", "a selector's epoll is level-triggered")
    t.none(r"^(poll|ppoll|pselect6|select)\(", "EpollSelector waits only with epoll_wait")
    expect(len(t.all(r"^epoll_p?wait\(")) == 3, "one epoll_wait per select():\n" + t.show())


@claim("python-asyncio-open-connection")
def asyncio_open_connection():
    # asyncio.run() and open_connection(), on the default (selector) event
    # loop: an EpollSelector, a socketpair as the self-pipe (SSOCK is
    # asyncio's _ssock, registered for reading; CSOCK its _csock), a
    # non-blocking connect waited for with EPOLLOUT and no timeout (-1),
    # SO_ERROR, then the writer removed (DEL: EPOLLOUT was its only event)
    # and the socket added again for reading (CPython
    # Lib/asyncio/selector_events.py, _sock_connect, _remove_writer,
    # _add_reader: read). The request goes straight out with send; the
    # response is read when epoll_wait says EPOLLIN, until recv returns 0.
    snippet = """async def main():
    reader, writer = await asyncio.open_connection('127.0.0.1', PORT)
    writer.write(%s)
    data = b''
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            break
        data += chunk
    writer.close()
    await writer.wait_closed()
    print('read %%d bytes: %%r' %% (len(data), data[:15]), file=sys.stderr)
asyncio.run(main())""" % REQUEST
    with LabServer("hello") as lab:
        t = run_traced(snippet, lab.port, setup="import asyncio", pair=("SSOCK", "CSOCK"))
    expect("b'HTTP/1.1 200 OK'" in t.stderr, "no response read:\n" + t.stderr)
    t.in_order(r"^epoll_create1\(EPOLL_CLOEXEC\) = EPFD$",
               r"^socketpair\(AF_UNIX, SOCK_STREAM\|SOCK_CLOEXEC, 0, \[SSOCK, CSOCK\]\) = 0$",
               r"^ioctl\(SSOCK, FIONBIO, \[1\]\) = 0$",
               r"^ioctl\(CSOCK, FIONBIO, \[1\]\) = 0$",
               r"^epoll_ctl\(EPFD, EPOLL_CTL_ADD, SSOCK, %s\) = 0$" % epoll_event("EPOLLIN", "SSOCK"),
               r"^socket\(AF_INET, SOCK_STREAM\|SOCK_CLOEXEC, IPPROTO_TCP\) = FD$",
               r"^ioctl\(FD, FIONBIO, \[1\]\) = 0$",
               r"^connect\(FD, .*\) = -1 EINPROGRESS",
               r"^epoll_ctl\(EPFD, EPOLL_CTL_ADD, FD, %s\) = 0$" % epoll_event("EPOLLOUT", "FD"),
               EPOLL_WAIT % (r"\[%s\]" % epoll_event("EPOLLOUT", "FD"), r"\d+, -1", "1"),
               r"^getsockopt\(FD, SOL_SOCKET, SO_ERROR, \[0\], \[4\]\) = 0$",
               # Reported writable once more (level-triggered): the writer
               # goes in a callback of the connect's future, one turn later.
               EPOLL_WAIT % (r"\[%s\]" % epoll_event("EPOLLOUT", "FD"), r"\d+, 0", "1"),
               r"^epoll_ctl\(EPFD, EPOLL_CTL_DEL, FD, ADDR\) = 0$",
               r"^setsockopt\(FD, SOL_TCP, TCP_NODELAY, \[1\], 4\) = 0$",
               r"^epoll_ctl\(EPFD, EPOLL_CTL_ADD, FD, %s\) = 0$" % epoll_event("EPOLLIN", "FD"),
               r'^sendto\(FD, "GET / HTTP/1\.1\\r\\n.*, 48, 0, NULL, 0\) = 48$',
               EPOLL_WAIT % (r"\[%s\]" % epoll_event("EPOLLIN", "FD"), r"\d+, -1", "1"),
               r'^recvfrom\(FD, "HTTP/1\.1 200 OK\\r\\n.*, 0, NULL, NULL\) = \d+$',
               r'^recvfrom\(FD, "", \d+, 0, NULL, NULL\) = 0$',
               r"^epoll_ctl\(EPFD, EPOLL_CTL_DEL, FD, ADDR\) = 0$",
               r"^close\(FD\) = 0$",
               r"^epoll_ctl\(EPFD, EPOLL_CTL_DEL, SSOCK, ADDR\) = 0$",
               r"^close\(SSOCK\) = 0$",
               r"^close\(CSOCK\) = 0$",
               r"^close\(EPFD\) = 0$")
    t.none(r"^eventfd2\(", "asyncio's self-pipe is a socketpair, not an eventfd")
    t.none(r"EPOLLET|EPOLL_CTL_MOD", "the writer is removed (DEL) and the reader added (ADD), level-triggered")
    t.none(r"^(poll|ppoll|pselect6|select)\(", "the event loop waits only with epoll_wait")
    expect(len(t.all(r"^epoll_ctl\(EPFD, EPOLL_CTL_ADD, FD, \{events=EPOLLOUT")) == 1,
           "EPOLLOUT only for the connect; the request went straight out:\n" + t.show())
    # reader.read(65536) takes from the stream's buffer; the transport's recv
    # asks for its own size (max_size, 256 KiB in 3.11's selector_events.py).
    sizes = {int(m.group(1)) for m in (re.search(r"^recvfrom\(FD, .*, (\d+), 0, NULL, NULL\)", c) for c in t.calls) if m}
    expect(sizes and 65536 not in sizes, "the transport's recv asked for %s, not its own size" % sizes)
    print("recv sizes: %s" % sorted(sizes))


@claim("python-asyncio-wakeup-is-self-pipe")
def asyncio_wakeup_is_self_pipe():
    # call_soon_threadsafe() from another thread wakes the loop's epoll_wait
    # (no timeout: nothing else to do) by sending one byte, b"\0", into the
    # self-pipe's CSOCK; the loop reads SSOCK until EAGAIN (CPython
    # Lib/asyncio/selector_events.py, _write_to_self, _read_from_self: read).
    # strace shows the waiting call <unfinished ...> while the other thread
    # sends, then "resumed".
    snippet = """async def main():
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    def later():
        time.sleep(0.3)
        loop.call_soon_threadsafe(done.set_result, 'woken')
    threading.Thread(target=later).start()
    print(await done, file=sys.stderr)
asyncio.run(main())"""
    t = run_traced(snippet, 0, setup="import asyncio, threading", pair=("SSOCK", "CSOCK"))  # no peer
    expect("woken" in t.stderr, "the loop was not woken:\n" + t.stderr)
    # A call that another thread's call overlaps is two lines, "<unfinished
    # ...>" and "<... resumed>": the wait (the thread sends while it sleeps),
    # at times the send too. The send starts before the wait returns: the
    # wait returns because of it.
    woken = r"^(epoll_p?wait\(EPFD, |<\.\.\. epoll_p?wait resumed>)%s, \d+, -1(, NULL, \d+)?\) = 1$" % (
        r"\[%s\]" % epoll_event("EPOLLIN", "SSOCK"))
    t.in_order(r"^socketpair\(AF_UNIX, SOCK_STREAM\|SOCK_CLOEXEC, 0, \[SSOCK, CSOCK\]\) = 0$",
               r"^epoll_ctl\(EPFD, EPOLL_CTL_ADD, SSOCK, %s\) = 0$" % epoll_event("EPOLLIN", "SSOCK"),
               r'^sendto\(CSOCK, "\\0", 1, 0, NULL, 0(\) = 1$| <unfinished \.\.\.>$)',
               woken)
    # Then each call whole, where it ended: the byte sent, and read.
    ended = copy.copy(t)
    ended.calls = whole_calls(t.calls)
    ended.in_order(r'^sendto\(CSOCK, "\\0", 1, 0, NULL, 0\) = 1$')
    ended.in_order(woken,
                   r'^recvfrom\(SSOCK, "\\0", 4096, 0, NULL, NULL\) = 1$',
                   r"^recvfrom\(SSOCK, ADDR, 4096, 0, NULL, NULL\) = -1 EAGAIN")
    t.none(r"^eventfd2\(", "asyncio's self-pipe is a socketpair, not an eventfd")


@claim("python-shutdown-close")
def shutdown_close():
    snippet = """s = socket.socket()
s.connect(('127.0.0.1', PORT))
s.shutdown(socket.SHUT_WR)
s.close()"""
    with LabServer("hello") as lab:
        t = run_traced(snippet, lab.port)
    t.in_order(r"^connect\(FD", r"^shutdown\(FD, SHUT_WR\) = 0$", r"^close\(FD\) = 0$")


# linux: asserted (CPython's CPU time, from getrusage; not a trace)
@claim("python-select-client-sleeps-while-waiting")
def select_client_sleeps():
    # Not a trace: the CPU the corrected tutorial program spends while the
    # lab server waits before answering, against its --busy-wait (the
    # tutorial's select(..., 0) loop). Generous bounds: the point is the gap.
    import resource
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "chapters", "03_select", "select_client.py")

    def cpu_seconds(wait, *extra):
        with LabServer("slow:%g" % wait) as lab:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            done = subprocess.run([sys.executable, script] + list(extra) + ["127.0.0.1", str(lab.port)],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        expect(done.returncode == 0, "select_client.py failed: %s" % done.stderr.decode(errors="replace")[-500:])
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    asleep = cpu_seconds(2)
    spinning = cpu_seconds(1, "--busy-wait")
    print("CPython %s; CPU seconds: %.3f over a 2 s wait; %.3f over a 1 s wait with --busy-wait"
          % (sys.version.split()[0], asleep, spinning))
    # Interpreter start-up alone is about 0.08 CPU-s here.
    expect(asleep < 0.3, "spent %.3f CPU-s over a 2 s wait: it does not sleep while waiting" % asleep)
    # A spinning loop gets what CPU it can: with other tests on both cores,
    # half a core or less. It must still spend more than twice the sleeping
    # run's CPU over half the wait.
    expect(spinning > 2 * asleep,
           "--busy-wait spent only %.3f CPU-s over 1 s, against %.3f over 2 s asleep: it should spin"
           % (spinning, asleep))


def main():
    global BIN_DIR, EMULATED
    parser = argparse.ArgumentParser()
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--bin-dir", default=".")
    parser.add_argument("--suffix", default="")  # the programs' file suffix (".exe")
    parser.add_argument("--emulator", default="")
    parser.add_argument("claim", nargs="?")
    options = parser.parse_args()
    if options.list:
        print("\n".join(sorted(CLAIMS)))
        return 0
    BIN_DIR = options.bin_dir
    if options.claim not in CLAIMS:
        print("no claim %r (see --list)" % options.claim)
        return 1
    EMULATED = bool(options.emulator)

    def checked():
        skip_unless_linux()
        CLAIMS[options.claim]()
    return run(options.claim, checked)


if __name__ == "__main__":
    sys.exit(main())
