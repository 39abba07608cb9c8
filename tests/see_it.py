#!/usr/bin/env python3
"""See a lab check for yourself: the servers and the system-call watch that
the grader (tests/labcheck.py) uses, as one command a student can run.

    python3 tests/see_it.py --server no-answer -- ./lab3 127.0.0.1 PORT --timeout 0.5
    python3 tests/see_it.py --server slow-reader -- ./lab1 127.0.0.1 PORT --path /aaaa...
    python3 tests/see_it.py --server keep-open --strace close,shutdown -- ./lab4 127.0.0.1 PORT
    python3 tests/see_it.py --server hello --short-send 16 -- ./lab1 127.0.0.1 PORT

starts the server, puts its port where the command says PORT, runs the
command with its output on this terminal (under strace, showing the calls
named, when --strace is given; with every send() cut to BYTES, with
--short-send), stops the server and exits with the command's exit status. The servers, all on 127.0.0.1:

  no-answer      a listener whose accept queue is full: a connect to it gets
                 no answer (SYNs are dropped), as from a host that is down
  refused        a port no one listens on: a connect to it is refused
  slow-reader    reads nothing for 0.8 s, with a small receive buffer, then
                 reads a request head and answers "HTTP/1.1 200 OK" with a
                 short body: a request larger than the buffers waits for it
  SCENARIO       any lab-server scenario (hello, silent, keep-open, echo:0.3,
                 ...): the labserver program next to the command's program,
                 or in the current folder

Linux's strace shows what a program asked the kernel, whatever the program
prints; the grader reads the same lines (calls(), below).
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import e2e

# The calls the grader watches: the socket's life, its options and modes,
# the data calls, and every way to wait. (send and recv are sendto and
# recvfrom to the kernel; select is pselect6.)
WATCHED = ("socket,connect,getsockopt,setsockopt,fcntl,ioctl,sendto,sendmsg,recvfrom,recvmsg,read,write,"
           "shutdown,close,select,pselect6,poll,ppoll,epoll_ctl,epoll_wait,epoll_pwait,dup,dup2,dup3")

# A system call's family, as the checks ask for it.
FAMILY = {"sendto": "send", "sendmsg": "send", "send": "send", "write": "send",
          "recvfrom": "recv", "recvmsg": "recv", "recv": "recv", "read": "recv",
          "select": "select", "pselect6": "select", "poll": "poll", "ppoll": "poll", "WSAPoll": "poll",
          "epoll_wait": "epoll_wait", "epoll_pwait": "epoll_wait"}

SLOW_READER_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\nConnection: close\r\n\r\nwhole request\n"


class Call:
    """One system call: its name, family (send for sendto, select for
    pselect6), first argument as a descriptor, the rest of its arguments as
    text, its result, errno name and the seconds it took."""

    def __init__(self, pid, name, args, result, errno, seconds):
        self.pid, self.name, self.args, self.result, self.errno, self.seconds = pid, name, args, result, errno, seconds
        self.family = FAMILY.get(name, name)
        first = args.split(",", 1)[0].strip()
        self.fd = int(first) if re.fullmatch(r"\d+", first) else None

    def __repr__(self):
        return "%s(%s) = %s%s" % (self.name, self.args[:80], self.result, " " + self.errno if self.errno else "")

    def registration(self):
        """An epoll_ctl's (operation, the socket it registers), as strace
        shows it, epoll_ctl(3, EPOLL_CTL_ADD, 4, {events=EPOLLOUT, ...}),
        and as --trace does, epoll_ctl(3, EPOLL_CTL_ADD, 4, EPOLLOUT);
        else None."""
        match = re.match(r"^\d+, (EPOLL_CTL_[A-Z]+), (\d+)\b", self.args) if self.name == "epoll_ctl" else None
        return (match.group(1), int(match.group(2))) if match else None


def parse_strace(text):
    """strace -f -T output -> [Call], in order. A call another thread
    interrupted (<unfinished ...>, then <... NAME resumed>) is joined up."""
    calls, pending = [], {}
    for line in text.splitlines():
        match = re.match(r"^(\d+)\s+(.*)$", line)
        pid, rest = (int(match.group(1)), match.group(2)) if match else (0, line)
        if rest.startswith(("---", "+++")):
            continue
        if rest.endswith("<unfinished ...>"):
            pending[pid] = rest[: -len("<unfinished ...>")].rstrip()
            continue
        resumed = re.match(r"^<\.\.\. \w+ resumed>\s*(.*)$", rest)
        if resumed:
            rest = pending.pop(pid, "") + resumed.group(1)
        call = re.match(r"^(\w+)\((.*)\)\s+=\s+(.*)$", rest, re.S)  # greedy: the last ") = " ends the arguments
        if not call:
            continue
        result_match = re.match(r"^(-?\d+|0x[0-9a-f]+|\?)(?:\s+([A-Z][A-Z0-9_]+))?.*?(?:<([\d.]+)>)?\s*$", call.group(3).strip())
        if not result_match:
            continue
        text_result = result_match.group(1)
        result = None if text_result == "?" else int(text_result, 0)
        seconds = float(result_match.group(3)) if result_match.group(3) else 0.0
        calls.append(Call(pid, call.group(1), call.group(2).strip(), result,
                          result_match.group(2) or "", seconds))
    return calls


TRACE_LINE = re.compile(r"^\s*(\w+)\((.*)\) = (-?\d+)(?:,? (?:value )?([A-Z][A-Z0-9_]+))?")


def parse_trace(stderr):
    """The chapters' own --trace lines -> [Call]: the fallback where there is
    no strace (under Wine, elsewhere). They show only the calls the program
    made through its traced wrappers."""
    calls = []
    for line in stderr.splitlines():
        match = TRACE_LINE.match(line)
        if match and match.group(1) != "getaddrinfo":
            errno = match.group(4) or ""
            calls.append(Call(0, match.group(1), match.group(2), int(match.group(3)),
                              errno if int(match.group(3)) < 0 else "", 0.0))
    return calls


def socket_calls(calls):
    """The calls on sockets only: what socket() returned, until that
    descriptor is closed (a read of a file is not a recv), the epoll_ctl
    calls that register them, and every wait."""
    sockets, kept = set(), []
    for call in calls:
        if call.name == "socket" and call.result is not None and call.result >= 0:
            sockets.add(call.result)
            kept.append(call)
        elif call.fd in sockets:
            kept.append(call)
            if call.name == "close" and call.result == 0:
                sockets.discard(call.fd)
        elif call.registration() and call.registration()[1] in sockets:
            kept.append(call)  # epoll_ctl(EPFD, OP, FD, ...): the socket is its third argument
        elif call.name == "close" and call.result is not None and call.result < 0 and call.errno in ("EBADF", "WSAENOTSOCK"):
            kept.append(call)  # a close of nothing open: the trace of a double close
        elif call.family in ("select", "poll", "epoll_wait"):
            kept.append(call)
    return kept


def short_send_library():
    """tests/short_send.c built as a library to preload (cached for this
    process), or None where it cannot be (no C compiler, not Linux)."""
    if short_send_library.path is None and sys.platform.startswith("linux"):
        compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if compiler:
            folder = tempfile.mkdtemp(prefix="labcheck-")
            path = os.path.join(folder, "short_send.so")
            source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "short_send.c")
            built = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", path, source, "-ldl"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            short_send_library.path = path if built.returncode == 0 else ""
    return short_send_library.path or None


short_send_library.path = None


def have_strace():
    return sys.platform.startswith("linux") and shutil.which("strace") is not None


def run_env(strace=False, short_send=None):
    """The environment for a watched run, or None for our own. A sanitizer
    build's LeakSanitizer cannot run under ptrace, so under strace it is
    off; a preloaded short_send.c comes before the sanitizer's runtime, so
    that order check is off (the library takes nothing from it)."""
    asan = [os.environ.get("ASAN_OPTIONS")]
    extra = {}
    if strace:
        asan.append("detect_leaks=0")
    if short_send:
        asan.append("verify_asan_link_order=0")
        extra = dict(LD_PRELOAD=short_send_library(), SHORT_SEND=str(short_send))
    if not strace and not short_send:
        return None
    return dict(os.environ, ASAN_OPTIONS=":".join(filter(None, asan)), **extra)


def strace_prefix(path, calls=WATCHED):
    return ["strace", "-f", "-qq", "-T", "-o", path, "-e", "trace=" + calls]


# ------------------------------------------------------------------ servers

def no_answer_listener():
    """A listener on 127.0.0.1 whose accept queue is full: another connect
    gets no answer. Returns (port, sockets to close)."""
    listener, fillers = e2e.full_backlog_listener()
    return listener.getsockname()[1], fillers + [listener]


def closed_port():
    """A port on 127.0.0.1 held by a socket that does not listen: a connect
    to it is refused. Returns (port, sockets to close)."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    return holder.getsockname()[1], [holder]


def slow_reader(delay=0.8):
    """A server that reads nothing for `delay` s, then reads a request head
    and answers SLOW_READER_ANSWER if it is whole. Returns (port, sockets)."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited by the accepted socket
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve():
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            time.sleep(delay)
            conn.settimeout(10)
            head = b""
            try:
                while b"\r\n\r\n" not in head:
                    piece = conn.recv(65536)
                    if not piece:
                        return
                    head += piece
                conn.sendall(SLOW_READER_ANSWER)
            except OSError:
                pass
    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], [listener]


class LabServer:
    """The labserver program with one scenario, on a port it picks."""

    def __init__(self, path, scenario, prefix=(), log=None):
        """log: a file for the server's log of what each client did (its
        FIN, its reset); None shows it on stderr."""
        self.proc = subprocess.Popen(list(prefix) + [path, "--scenario", scenario],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)
        line = self.proc.stdout.readline().decode(errors="replace").strip()
        match = re.search(r":(\d+)$", line)
        if not match:
            self.stop()
            raise RuntimeError("labserver printed %r, not its address" % line)
        self.port = int(match.group(1))

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def start_server(kind, labserver_path, prefix=(), log=None):
    """Start the server `kind` names; return (port, a function that stops it)."""
    if kind == "no-answer":
        port, sockets = no_answer_listener()
    elif kind == "refused":
        port, sockets = closed_port()
    elif kind == "slow-reader":
        port, sockets = slow_reader()
    else:
        server = LabServer(labserver_path, kind, prefix, log)
        return server.port, server.stop
    return port, lambda: [s.close() for s in sockets]


def labserver_beside(program):
    """The labserver built with the program: beside it, or in the current
    folder; a Windows program's is labserver.exe."""
    folder = os.path.dirname(os.path.abspath(program))
    name = "labserver.exe" if program.lower().endswith(".exe") else "labserver"
    for path in (os.path.join(folder, name), os.path.abspath(name)):
        if os.path.exists(path):
            return path
    return os.path.join(folder, name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--server", help="no-answer, slow-reader, or a lab-server scenario")
    parser.add_argument("--strace", metavar="CALLS", help="run the command under strace -f, showing these calls")
    parser.add_argument("--short-send", metavar="BYTES", type=int,
                        help="every send() of the command takes at most BYTES (tests/short_send.c, Linux)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    if not command:
        parser.error("no command to run")
    stop = None
    if options.server:
        port, stop = start_server(options.server, labserver_beside(command[0]))
        command = [str(port) if arg == "PORT" else arg for arg in command]
    if options.strace:
        if not have_strace():
            print("see_it: strace is not installed (Linux: apt-get install strace)", file=sys.stderr)
            return 2
        command = ["strace", "-f", "-qq", "-e", "trace=" + options.strace] + command
    if options.short_send and not short_send_library():
        print("see_it: --short-send needs Linux and a C compiler (cc)", file=sys.stderr)
        return 2
    env = run_env(options.strace, options.short_send)
    try:
        return subprocess.call(command, env=env)
    finally:
        if stop:
            stop()


if __name__ == "__main__":
    sys.exit(main())
